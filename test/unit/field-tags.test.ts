import path from 'node:path';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { FieldTag, WireType } from '../../src/wire/field-tags.js';
import { PROTO_FILE, REPLICATOR_PACKAGE } from '../../src/wire/proto.js';

/** Every message of a namespace, nested ones included, by name relative to the package. */
function messagesOf(ns: protobuf.NamespaceBase, prefix = ''): Map<string, protobuf.Type> {
  const out = new Map<string, protobuf.Type>();
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) out.set(prefix + nested.name, nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) {
      for (const [name, type] of messagesOf(nested, `${prefix}${nested.name}.`)) out.set(name, type);
    }
  }
  return out;
}

/** The wire type protobuf gives a field of this declaration. */
function wireTypeOf(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return WireType.LEN;
  if (field.resolvedType instanceof protobuf.Enum) return field.repeated ? WireType.LEN : WireType.VARINT;
  const basic = protobuf.types.basic[field.type as keyof typeof protobuf.types.basic];
  return field.repeated && protobuf.types.packed[field.type as keyof typeof protobuf.types.packed] !== undefined ? WireType.LEN : basic;
}

describe('field tags', () => {
  it('list exactly the messages and fields of the .proto, each tag its declared number and wire type', () => {
    const root = new protobuf.Root().loadSync(PROTO_FILE, { keepCase: true });
    root.resolveAll();
    const messages = messagesOf(root.lookup(REPLICATOR_PACKAGE) as protobuf.Namespace);
    const table: Record<string, Record<string, number>> = FieldTag;
    assert.deepEqual(Object.keys(table).sort(), [...messages.keys()].sort(), 'one entry per message');
    for (const [name, type] of messages) {
      const expected = Object.fromEntries(type.fieldsArray.map((f) => [f.name, (f.id << 3) | wireTypeOf(f)]));
      assert.deepEqual(table[name], expected, name);
    }
  });

  it('fit in one byte each in every message a fast path reads, as they assume', () => {
    // The hand-written encoders and decoders compare single bytes with these tags. Other
    // messages (Status and its parts, decoded by protobufjs) may use fields past 15.
    const FAST_PATH_MESSAGES = ['Mutation', 'Write', 'WriteRequest', 'SubscribeResponse', 'EntryBatch', 'SnapshotChunk', 'KeyValue'] as const;
    for (const message of FAST_PATH_MESSAGES) {
      for (const [field, tag] of Object.entries(FieldTag[message])) assert.ok(tag > 0 && tag < 0x80, `${message}.${field}`);
    }
    const used = new Set(
      fs
        .readdirSync(path.resolve(import.meta.dirname, '../../src/wire'))
        .filter((f) => f.endsWith('.ts'))
        .flatMap((f) => [...fs.readFileSync(path.resolve(import.meta.dirname, '../../src/wire', f), 'utf8').matchAll(/FieldTag\.(\w+)/g)].map((m) => m[1])),
    );
    used.delete('Message'); // the doc comment's FieldTag.Message.field_name
    for (const message of used) assert.ok((FAST_PATH_MESSAGES as readonly string[]).includes(message), `${message} is read by a fast path: add it to FAST_PATH_MESSAGES`);
  });
});
