import type { ReplicatorError } from '../common/errors.js';
import { MAX_KEY_BYTES, MAX_MUTATIONS_PER_REQUEST, MAX_MUTATIONS_PER_WRITE, MAX_REQUEST_BYTES, MAX_VALUE_BYTES, MAX_WRITES_PER_REQUEST } from '../common/limits.js';
import { MutationKind } from './entry-codec.js';
import { FieldTag } from './field-tags.js';
import type { AckPolicy__Output } from './generated/levelreplicator/v1/AckPolicy.js';
import type { Mutation__Output } from './generated/levelreplicator/v1/Mutation.js';
import type { Write__Output } from './generated/levelreplicator/v1/Write.js';
import { decodeInto, nestedPlan, wrongWireType, type DecodedMessage, type MessagePlan } from './message-decoder.js';
import { GrowingBody, PreparedWrites } from './prepared-writes.js';
import { readFieldEnd, readTag, readVarint32, skipField, type Cursor } from './protobuf-wire.js';
import { keyError, mutationPlace, valueError, WriteLimit } from './write-validation.js';

/**
 * Master.Write requests, the master's hottest input, read in ONE pass: the bytes are
 * checked as strictly as message-decoder.ts checks every other request, the documented
 * limits are enforced as they are met, and the writes are packed straight into
 * PreparedWrites (entry bodies in one buffer, see prepared-writes.ts), which the Write
 * handler takes with prepared(). Nothing else decodes, counts or validates a WriteRequest.
 *
 * Three outcomes, the same (codes and messages) as when a wire count, proto-loader and a
 * check of the decoded request each read it in turn:
 * - bytes that are not a valid WriteRequest: throws a WireFormatError (the server answers
 *   MALFORMED_REQUEST, no handler runs);
 * - more writes or mutations than a request may hold: throws BATCH_TOO_LARGE the moment the
 *   count passes the limit, so 15 million empty mutations in 30 MB cost 100,001 of them;
 * - any other broken limit (an empty or oversize key, an oversize value, an unknown kind, a
 *   write without mutations or with too many, too many bytes, no writes): the request is
 *   decoded, carrying the error, which the handler throws (counted in its metrics; a
 *   follower answers NOT_MASTER first). When a request breaks several limits, the error is
 *   the one a check of the decoded request in order would meet first: the request's
 *   counts, then write by write (its mutation count, then each mutation's key, kind and
 *   value), then the byte total. Packing stops at the first broken limit.
 */
export class DecodedWriteRequest {
  private decodedWrites: Write__Output[] | undefined;

  constructor(
    /** The request's acknowledgement policy as proto-loader gives it; null when absent. */
    readonly ack: AckPolicy__Output | null,
    private readonly outcome: PreparedWrites | ReplicatorError,
    /** The newest epoch the client knows (WriteRequest.epoch; 0 when absent). */
    readonly epoch = 0,
  ) {}

  /** The writes, checked and packed; throws the limit the request broke. */
  prepared(): PreparedWrites {
    if (this.outcome instanceof PreparedWrites) return this.outcome;
    throw this.outcome;
  }

  /**
   * The writes as proto-loader objects, built on first use: views into the packed body, so
   * not after PreparedWrites.release() (the memory is reused; reading them then throws).
   * Throws, like prepared(), for a request that broke a limit.
   */
  get writes(): Write__Output[] {
    return (this.decodedWrites ??= writesOf(this.prepared()));
  }
}

export type WriteRequestDecoder = (bytes: Buffer) => DecodedWriteRequest;

/** The decoder for WriteRequests of this plan (from the descriptors of the .proto, see request-decoding.ts). */
export function writeRequestDecoder(plan: MessagePlan): WriteRequestDecoder {
  const writePlan = nestedPlan(plan, WRITES >>> 3);
  const plans: Plans = { request: plan, write: writePlan, mutation: nestedPlan(writePlan, MUTATIONS >>> 3), ack: nestedPlan(plan, ACK >>> 3) };
  return (bytes) => decode(bytes, plans);
}

const WRITES = FieldTag.WriteRequest.writes;
const ACK = FieldTag.WriteRequest.ack;
const EPOCH = FieldTag.WriteRequest.epoch;
const MUTATIONS = FieldTag.Write.mutations;
const KIND = FieldTag.Mutation.kind;
const KEY = FieldTag.Mutation.key;
const VALUE = FieldTag.Mutation.value;

interface Plans {
  request: MessagePlan;
  write: MessagePlan;
  mutation: MessagePlan;
  ack: MessagePlan;
}

/** The first broken limit; its message needs the request's final write count. */
type Refusal = (writesInRequest: number) => ReplicatorError;

/** One mutation's fields while it is read (reused: decoding is synchronous, one request at a time). */
const m = { kind: 0, keyStart: 0, keyEnd: 0, valueStart: 0, valueEnd: 0 };
/** The end of each write's body while a request is read (reused likewise; copied out once done). */
const ends = new Uint32Array(MAX_WRITES_PER_REQUEST);

function decode(buf: Buffer, plans: Plans): DecodedWriteRequest {
  const len = buf.length;
  const r: Cursor = { pos: 0 };
  const out = new GrowingBody();
  let body = out.buf;
  let o = 0;
  let writes = 0;
  let mutations = 0;
  let bytes = 0;
  let ack: DecodedMessage | null = null;
  let epoch = 0;
  let refusal: Refusal | undefined;
  try {
    while (r.pos < len) {
      const at = r.pos;
      const tag = readTag(buf, r, len);
      if (tag === ACK) {
        const end = readFieldEnd(buf, r, len);
        ack = decodeInto(plans.ack, buf, r.pos, end, 1, ack ?? plans.ack.defaults());
        r.pos = end;
        continue;
      }
      if (tag === EPOCH) {
        // uint32: a varint that does not fit is a malformed request.
        epoch = readVarint32(buf, r, len) >>> 0;
        continue;
      }
      if (tag !== WRITES) {
        const known = plans.request.fields.get(tag >>> 3);
        if (known) throw wrongWireType(known, tag & 7, at);
        skipField(buf, r, len, tag & 7);
        continue;
      }
      if (++writes > MAX_WRITES_PER_REQUEST) throw WriteLimit.tooManyWrites();
      const w = writes - 1;
      const end = readFieldEnd(buf, r, len);
      // Invariant while packing: body[0, o) holds the bodies of writes 0 .. w-1, then this one's.
      let packing = refusal === undefined && bytes <= MAX_REQUEST_BYTES;
      const countAt = o;
      if (packing) {
        if (o + 4 > body.length) body = out.grow(o, 4, estimate(o + 4, r.pos, len));
        o += 4;
      }
      let inWrite = 0;
      let failed: ((where: string) => ReplicatorError) | undefined;
      let failedAt = 0;
      while (r.pos < end) {
        const mAt = r.pos;
        const mTag = readTag(buf, r, end);
        if (mTag !== MUTATIONS) {
          const known = plans.write.fields.get(mTag >>> 3);
          if (known) throw wrongWireType(known, mTag & 7, mAt);
          skipField(buf, r, end, mTag & 7);
          continue;
        }
        if (++mutations > MAX_MUTATIONS_PER_REQUEST) throw WriteLimit.tooManyMutations();
        const mEnd = readFieldEnd(buf, r, end);
        readMutation(buf, r, mEnd, plans.mutation);
        const j = inWrite++;
        const keyLen = m.keyEnd - m.keyStart;
        const put = m.kind === MutationKind.PUT;
        const valueLen = put ? m.valueEnd - m.valueStart : 0; // a delete's value is ignored
        bytes += keyLen + valueLen;
        if (refusal !== undefined || failed !== undefined) continue;
        if (keyLen === 0 || keyLen > MAX_KEY_BYTES) {
          failed = (where) => keyError(keyLen, where)!;
        } else if (!put && m.kind !== MutationKind.DELETE) {
          const kind = m.kind;
          failed = (where) => WriteLimit.unknownKind(kind, where);
        } else if (valueLen > MAX_VALUE_BYTES) {
          failed = (where) => valueError(valueLen, where)!;
        }
        if (failed !== undefined) {
          failedAt = j;
          continue;
        }
        packing &&= bytes <= MAX_REQUEST_BYTES;
        if (!packing) continue;
        const size = 5 + keyLen + (put ? 4 + valueLen : 0);
        if (o + size > body.length) body = out.grow(o, size, estimate(o + size, r.pos, len));
        body[o] = m.kind;
        body.writeUInt32BE(keyLen, o + 1);
        o += 5 + buf.copy(body, o + 5, m.keyStart, m.keyEnd);
        if (put) {
          body.writeUInt32BE(valueLen, o);
          o += 4 + buf.copy(body, o + 4, m.valueStart, m.valueEnd);
        }
      }
      if (refusal === undefined) {
        const n = inWrite;
        if (n === 0) refusal = () => WriteLimit.noMutations(w);
        else if (n > MAX_MUTATIONS_PER_WRITE) refusal = () => WriteLimit.tooManyInWrite(w, n);
        else if (failed !== undefined) {
          const fail = failed;
          const j = failedAt;
          refusal = (total) => fail(mutationPlace(w, j, total, n));
        }
      }
      if (packing && refusal === undefined) {
        body.writeUInt32BE(inWrite, countAt);
        ends[w] = o;
      }
    }
  } catch (err) {
    out.abandon();
    throw err;
  }
  const broken = writes === 0 ? WriteLimit.noWrites() : refusal ? refusal(writes) : bytes > MAX_REQUEST_BYTES ? WriteLimit.tooManyBytes(bytes) : undefined;
  const policy = ack as AckPolicy__Output | null;
  if (broken) {
    out.abandon();
    return new DecodedWriteRequest(policy, broken, epoch);
  }
  const { body: packed, slab } = out.finish(o);
  return new DecodedWriteRequest(policy, new PreparedWrites(packed, ends.slice(0, writes), bytes, slab), epoch);
}

/**
 * The whole body's likely size, from what the request's first `consumed` bytes made: when
 * a body outgrows its slab it moves once, to a buffer of about its final size (never more
 * than twice: a mutation's body is at most 5 bytes more than its at least 5 bytes on the wire).
 */
function estimate(made: number, consumed: number, total: number): number {
  return Math.ceil((made / Math.max(consumed, 1)) * total) + 256;
}

/** Reads one Mutation into m; the last of a repeated field wins, as in protobuf. */
function readMutation(buf: Buffer, r: Cursor, end: number, plan: MessagePlan): void {
  m.kind = MutationKind.PUT;
  m.keyStart = m.keyEnd = m.valueStart = m.valueEnd = 0;
  while (r.pos < end) {
    const at = r.pos;
    const tag = readTag(buf, r, end);
    if (tag === KEY || tag === VALUE) {
      const fieldEnd = readFieldEnd(buf, r, end);
      if (tag === KEY) {
        m.keyStart = r.pos;
        m.keyEnd = fieldEnd;
      } else {
        m.valueStart = r.pos;
        m.valueEnd = fieldEnd;
      }
      r.pos = fieldEnd;
    } else if (tag === KIND) {
      m.kind = readVarint32(buf, r, end) | 0; // an enum is an int32
    } else {
      const known = plan.fields.get(tag >>> 3);
      if (known) throw wrongWireType(known, tag & 7, at);
      skipField(buf, r, end, tag & 7);
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** The writes of a prepared request as proto-loader objects (views into its body, so not after release()). */
function writesOf(p: PreparedWrites): Write__Output[] {
  const out: Write__Output[] = [];
  const b = p.liveBody;
  for (let i = 0; i < p.count; i++) {
    let o = p.startOf(i) + 4;
    const mutations: Mutation__Output[] = [];
    while (o < p.ends[i]) {
      const kind = b[o];
      const keyEnd = o + 5 + b.readUInt32BE(o + 1);
      const key = b.subarray(o + 5, keyEnd);
      o = keyEnd;
      if (kind === MutationKind.PUT) {
        const valueEnd = o + 4 + b.readUInt32BE(o);
        mutations.push({ kind: 'PUT', key, value: b.subarray(o + 4, valueEnd) });
        o = valueEnd;
      } else {
        mutations.push({ kind: 'DELETE', key, value: EMPTY });
      }
    }
    out.push({ mutations });
  }
  return out;
}
