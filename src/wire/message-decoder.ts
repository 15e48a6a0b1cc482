import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { WireType } from './field-tags.js';
import {
  int64String,
  needBytes,
  readFieldEnd,
  readTag,
  readVarint,
  readVarint32,
  readVarintHigh,
  skipField,
  uint64String,
  WireFormatError,
  type Cursor,
} from './protobuf-wire.js';

/**
 * A strict protobuf decoder driven by message descriptors (protobufjs reflection types).
 *
 * protobufjs's Reader reads a known field by its declared type whatever its wire type, and
 * lets a string run short of its length: `08 63 15 01` sent as a SubscribeRequest decoded
 * as follower 99 from seq 1. This decoder refuses, with a WireFormatError naming the field,
 * everything protobufjs would guess at (see protobuf-wire.ts for the varint, tag and length
 * rules), plus: a known field with another wire type than its type has (a repeated scalar
 * may also come packed, as protobuf allows), a string that is not UTF-8 (proto3 requires
 * it), messages nested more than MAX_DEPTH deep. Unknown fields are skipped.
 *
 * The object it returns is exactly what proto-loader returns for the same bytes under the
 * options of proto.ts (longs: String, enums: String, bytes: Buffer, defaults: true,
 * oneofs: true), so handlers and the generated types are unchanged: unit tests compare
 * the two, on valid messages and on random ones. Where protobufjs departs from the
 * protobuf specification on valid input, this follows the specification: a message field
 * that occurs twice is merged (protobufjs keeps the last), and a oneof keeps only its
 * last member (protobufjs keeps every member it saw).
 */
export type DecodedMessage = Record<string, unknown>;

/** Deeper than any message of ours; bounds recursion on hostile input. */
const MAX_DEPTH = 32;

type ReadValue = (buf: Buffer, r: Cursor, end: number) => unknown;

export interface FieldPlan {
  readonly number: number;
  /** The output property: the field's name as the descriptors spell it (proto-loader's). */
  readonly name: string;
  /** For errors: `Message field N (name)`. */
  readonly label: string;
  readonly typeName: string;
  readonly wireType: number;
  readonly repeated: boolean;
  /** A repeated scalar: also accepted packed (one LEN field of values). */
  readonly packable: boolean;
  readonly read: ReadValue;
  /** Set for message-typed fields (read is unused then). */
  readonly message: protobuf.Type | undefined;
  readonly oneof: string | undefined;
}

export interface MessagePlan {
  readonly name: string;
  readonly fields: ReadonlyMap<number, FieldPlan>;
  /** A fresh object holding every default proto-loader sets. */
  defaults(): DecodedMessage;
}

const WIRE_NAMES = ['VARINT', 'I64', 'LEN', 'SGROUP', 'EGROUP', 'I32'];

const plans = new WeakMap<protobuf.Type, MessagePlan>();

/** The plan for a message type, built once per type. */
export function planOf(type: protobuf.Type): MessagePlan {
  let plan = plans.get(type);
  if (!plan) {
    plan = buildPlan(type);
    plans.set(type, plan);
  }
  return plan;
}

/** Decodes a whole buffer as one message of the plan's type. */
export function decodeMessage(plan: MessagePlan, buf: Buffer): DecodedMessage {
  return decodeInto(plan, buf, 0, buf.length, 0, plan.defaults());
}

/**
 * Decodes buf[start, end) into out (a fresh defaults() object, or a message decoded
 * earlier: protobuf merges a message field's occurrences).
 */
export function decodeInto(plan: MessagePlan, buf: Buffer, start: number, end: number, depth: number, out: DecodedMessage): DecodedMessage {
  if (depth > MAX_DEPTH) throw new WireFormatError(`messages nested more than ${MAX_DEPTH} deep`, start);
  const r: Cursor = { pos: start };
  while (r.pos < end) {
    const at = r.pos;
    const tag = readTag(buf, r, end);
    const field = plan.fields.get(tag >>> 3);
    const wireType = tag & 7;
    if (field === undefined) {
      skipField(buf, r, end, wireType);
      continue;
    }
    if (wireType !== field.wireType) {
      if (!(field.packable && wireType === WireType.LEN)) throw wrongWireType(field, wireType, at);
      const packedEnd = readFieldEnd(buf, r, end);
      const values = out[field.name] as unknown[];
      while (r.pos < packedEnd) values.push(field.read(buf, r, packedEnd));
      continue;
    }
    if (field.oneof !== undefined) {
      // A oneof holds one member: setting another clears the one set before.
      const previous = out[field.oneof];
      if (typeof previous === 'string' && previous !== field.name) delete out[previous];
      out[field.oneof] = field.name;
    }
    if (field.message) {
      const fieldEnd = readFieldEnd(buf, r, end);
      const nested = planOf(field.message);
      if (field.repeated) {
        (out[field.name] as unknown[]).push(decodeInto(nested, buf, r.pos, fieldEnd, depth + 1, nested.defaults()));
      } else {
        const earlier = out[field.name] as DecodedMessage | null | undefined;
        out[field.name] = decodeInto(nested, buf, r.pos, fieldEnd, depth + 1, earlier ?? nested.defaults());
      }
      r.pos = fieldEnd;
    } else if (field.repeated) {
      (out[field.name] as unknown[]).push(field.read(buf, r, end));
    } else {
      out[field.name] = field.read(buf, r, end);
    }
  }
  return out;
}

/** A known field sent with a wire type its type never has. */
export function wrongWireType(field: FieldPlan, wireType: number, at: number): WireFormatError {
  return new WireFormatError(
    `${field.label} has wire type ${wireType} (${WIRE_NAMES[wireType]}), but its type ${field.typeName} is sent as ${field.wireType} (${WIRE_NAMES[field.wireType]})`,
    at,
  );
}

/** The plan of a message-typed field's type. */
export function nestedPlan(plan: MessagePlan, fieldNumber: number): MessagePlan {
  const type = plan.fields.get(fieldNumber)?.message;
  if (!type) throw new Error(`${plan.name} has no message field ${fieldNumber}`);
  return planOf(type);
}

function buildPlan(type: protobuf.Type): MessagePlan {
  type.resolveAll();
  const fields = new Map<number, FieldPlan>();
  const defaults: [name: string, value: unknown][] = [];
  const arrays: string[] = [];
  for (const f of type.fieldsArray) {
    f.resolve();
    const where = `${type.fullName}.${f.name}`;
    if (f.map) throw new Error(`${where}: map fields are not supported by the strict decoder`);
    if (f.delimited) throw new Error(`${where}: groups are not supported by the strict decoder`);
    const message = f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined;
    const scalar = message ? undefined : f.resolvedType instanceof protobuf.Enum ? enumScalar(f.resolvedType) : SCALARS[f.type];
    if (!message && !scalar) throw new Error(`${where}: unsupported type ${f.type}`);
    const wireType = scalar ? scalar.wireType : WireType.LEN;
    const oneof = f.partOf?.name;
    fields.set(f.id, {
      number: f.id,
      name: f.name,
      label: `${type.name} field ${f.id} (${f.name})`,
      typeName: f.type,
      wireType,
      repeated: f.repeated,
      packable: f.repeated && wireType !== WireType.LEN,
      read: scalar ? scalar.read : readNothing,
      message,
      oneof,
    });
    // proto-loader (toObject with defaults) sets every field but oneof members.
    if (f.repeated) arrays.push(f.name);
    else if (oneof === undefined) defaults.push([f.name, scalar ? scalar.zero : null]);
  }
  return {
    name: type.fullName,
    fields,
    defaults() {
      const o: DecodedMessage = {};
      for (const name of arrays) o[name] = [];
      for (const [name, value] of defaults) o[name] = value;
      return o;
    },
  };
}

interface Scalar {
  wireType: number;
  read: ReadValue;
  /** The default proto-loader gives (an empty Buffer is shared: it cannot change). */
  zero: unknown;
}

const EMPTY = Buffer.alloc(0);

function fixed(n: number, read: (buf: Buffer, at: number) => unknown): ReadValue {
  return (buf, r, end) => {
    needBytes(r, end, n);
    const v = read(buf, r.pos);
    r.pos += n;
    return v;
  };
}

function fixed64(signed: boolean): ReadValue {
  return fixed(8, (buf, at) => {
    const lo = buf.readUInt32LE(at);
    const hi = buf.readUInt32LE(at + 4);
    return signed ? int64String(lo, hi) : uint64String(lo, hi);
  });
}

const SCALARS: Record<string, Scalar> = {
  double: { wireType: WireType.I64, read: fixed(8, (buf, at) => buf.readDoubleLE(at)), zero: 0 },
  float: { wireType: WireType.I32, read: fixed(4, (buf, at) => buf.readFloatLE(at)), zero: 0 },
  fixed32: { wireType: WireType.I32, read: fixed(4, (buf, at) => buf.readUInt32LE(at)), zero: 0 },
  sfixed32: { wireType: WireType.I32, read: fixed(4, (buf, at) => buf.readInt32LE(at)), zero: 0 },
  fixed64: { wireType: WireType.I64, read: fixed64(false), zero: '0' },
  sfixed64: { wireType: WireType.I64, read: fixed64(true), zero: '0' },
  int32: { wireType: WireType.VARINT, read: (buf, r, end) => readVarint32(buf, r, end) | 0, zero: 0 },
  uint32: { wireType: WireType.VARINT, read: (buf, r, end) => readVarint32(buf, r, end), zero: 0 },
  sint32: {
    wireType: WireType.VARINT,
    read: (buf, r, end) => {
      const v = readVarint32(buf, r, end);
      return (v >>> 1) ^ -(v & 1);
    },
    zero: 0,
  },
  bool: { wireType: WireType.VARINT, read: (buf, r, end) => readVarint32(buf, r, end) !== 0, zero: false },
  int64: { wireType: WireType.VARINT, read: (buf, r, end) => int64String(readVarint(buf, r, end), readVarintHigh()), zero: '0' },
  uint64: { wireType: WireType.VARINT, read: (buf, r, end) => uint64String(readVarint(buf, r, end), readVarintHigh()), zero: '0' },
  sint64: {
    wireType: WireType.VARINT,
    read: (buf, r, end) => {
      const lo = readVarint(buf, r, end);
      const hi = readVarintHigh();
      // Zigzag: value = (n >>> 1) ^ -(n & 1), on 64 bits.
      const n = (BigInt(hi) << 32n) | BigInt(lo);
      return ((n >> 1n) ^ -(n & 1n)).toString();
    },
    zero: '0',
  },
  string: {
    wireType: WireType.LEN,
    read: (buf, r, end) => {
      const at = r.pos;
      const fieldEnd = readFieldEnd(buf, r, end);
      const start = r.pos;
      r.pos = fieldEnd;
      if (!isUtf8(buf.subarray(start, fieldEnd))) throw new WireFormatError('a string that is not valid UTF-8', at);
      return buf.toString('utf8', start, fieldEnd);
    },
    zero: '',
  },
  bytes: {
    wireType: WireType.LEN,
    read: (buf, r, end) => {
      // A view into the request, as protobufjs gives it.
      const fieldEnd = readFieldEnd(buf, r, end);
      const v = fieldEnd === r.pos ? EMPTY : buf.subarray(r.pos, fieldEnd);
      r.pos = fieldEnd;
      return v;
    },
    zero: EMPTY,
  },
};

/** Message-typed fields are decoded by decodeInto itself. */
function readNothing(): undefined {
  return undefined;
}

/** An enum is an int32 on the wire; proto-loader gives its name, or the number when the enum has no such value. */
function enumScalar(type: protobuf.Enum): Scalar {
  const nameOf = (value: number): string | number => type.valuesById[value] ?? value;
  return {
    wireType: WireType.VARINT,
    read: (buf, r, end) => nameOf(readVarint32(buf, r, end) | 0),
    // protobufjs's default is the first value declared (0 in proto3).
    zero: nameOf(type.values[Object.keys(type.values)[0]]),
  };
}
