import type * as grpc from '@grpc/grpc-js';
import { FieldTag } from './field-tags.js';
import type { SubscribeResponse } from './generated/levelreplicator/v1/SubscribeResponse.js';
import { REPLICATOR_PACKAGE } from './proto.js';
import { framedSize, varint64Size, varintSize, writeVarint, writeVarint64 } from './protobuf-wire.js';

/** One pair as read from a store: the store key as text (see storage/snapshot-reader.ts) or bytes, and the value. */
export type SnapshotRow = readonly [key: string | Buffer, value: Buffer];

/**
 * A fast path for the master's bulk messages: SubscribeResponses carrying log entries
 * (encodeEntryBatchResponse, once per follower per message, by the subscription before
 * it awaits anything) or snapshot pairs (encodeSnapshotRows, by the snapshot sender
 * straight from the rows it reads). Both come to the stream as an EncodedResponse,
 * whose bytes the serializer passes through: the stream's type takes either
 * (SubscribeResponseOut), and every server installs that serializer (server-guard.ts).
 *
 * protobufjs encodes repeated fields through a list of writer operations, objects per
 * element, then copies; this writes the same bytes directly: one allocation per message
 * and one copy per entry (the stored entry bytes, never re-encoded) or per key and value.
 * Any other message (start, heartbeat, snapshot end) takes the generic serializer. A unit
 * test checks that both give identical bytes.
 *
 * The tags are field-tags.ts's; subscribe-decoder.ts reads these messages on followers.
 */
const SUBSCRIBE_PATH = `/${REPLICATOR_PACKAGE}.Master/Subscribe`;

/** A copy of a service definition whose Master.Subscribe responses may come encoded (any other service: unchanged). */
export function withEncodedResponses<S extends grpc.ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = method.path === SUBSCRIBE_PATH ? { ...method, responseSerialize: fastSubscribeResponseSerializer(method.responseSerialize) } : method;
  }
  return out as S;
}

/** A SubscribeResponse already encoded by the caller: the serializer passes its bytes through. */
export class EncodedResponse {
  constructor(
    readonly bytes: Buffer,
    /** Payload (key and value) bytes, for the stream's unsent-bytes bound. */
    readonly payloadBytes: number,
  ) {}
}

/** What the master writes to a Subscribe stream: a message, or its bytes already encoded. */
export type SubscribeResponseOut = SubscribeResponse | EncodedResponse;

export function fastSubscribeResponseSerializer(generic: grpc.serialize<SubscribeResponse>): grpc.serialize<SubscribeResponseOut> {
  return (msg) => (msg instanceof EncodedResponse ? msg.bytes : generic(msg));
}

const SNAPSHOT_CHUNK_TAG = FieldTag.SubscribeResponse.snapshot_chunk;
const PAIRS_TAG = FieldTag.SnapshotChunk.pairs;
const KEY_TAG = FieldTag.KeyValue.key;
const VALUE_TAG = FieldTag.KeyValue.value;
const ENTRIES_TAG = FieldTag.SubscribeResponse.entries;
const ENTRY_TAG = FieldTag.EntryBatch.entries;
const MASTER_LAST_SEQ_TAG = FieldTag.EntryBatch.master_last_seq;
const BATCH_EPOCH_TAG = FieldTag.EntryBatch.epoch;

/** Key byte lengths of the chunk being encoded (reused: one chunk is encoded at a time). */
let keyLengths = new Int32Array(4096);

/**
 * The bytes of SubscribeResponse { snapshotChunk: { pairs } } for rows as a
 * SnapshotReader returns them ([store key, value]; the key as text or bytes), each key
 * without its first keyOffset bytes (the store's key prefix, ASCII): no pair objects, no
 * key views, one allocation and one copy per key and value. onPair sees each pair as it
 * is copied (the snapshot digest): its key is src[keyStart, keyEnd).
 */
export function encodeSnapshotRows(
  rows: readonly SnapshotRow[],
  keyOffset: number,
  onPair: (src: Buffer, keyStart: number, keyEnd: number, value: Buffer) => void,
): EncodedResponse {
  if (keyLengths.length < rows.length) keyLengths = new Int32Array(rows.length);
  let body = 0;
  let payload = 0;
  for (let i = 0; i < rows.length; i++) {
    const [k, v] = rows[i];
    const keyLength = (typeof k === 'string' ? Buffer.byteLength(k, 'utf8') : k.length) - keyOffset;
    keyLengths[i] = keyLength;
    body += framedSize(framedSize(keyLength) + framedSize(v.length));
    payload += keyLength + v.length;
  }
  const size = 1 + varintSize(body) + body;
  // keyOffset bytes of slack: a text key is written whole, prefix included, then moved
  // over its prefix; the last key's prefix may reach past the message.
  const buf = Buffer.allocUnsafe(size + keyOffset);
  buf[0] = SNAPSHOT_CHUNK_TAG;
  let o = writeVarint(buf, 1, body);
  for (let i = 0; i < rows.length; i++) {
    const [k, v] = rows[i];
    const keyLength = keyLengths[i];
    buf[o] = PAIRS_TAG;
    o = writeVarint(buf, o + 1, framedSize(keyLength) + framedSize(v.length));
    buf[o] = KEY_TAG;
    o = writeVarint(buf, o + 1, keyLength);
    if (typeof k === 'string') {
      buf.write(k, o, 'utf8');
      buf.copyWithin(o, o + keyOffset, o + keyOffset + keyLength);
    } else {
      k.copy(buf, o, keyOffset);
    }
    const keyStart = o;
    o += keyLength;
    buf[o] = VALUE_TAG;
    o = writeVarint(buf, o + 1, v.length);
    buf.set(v, o);
    o += v.length;
    onPair(buf, keyStart, keyStart + keyLength, v);
  }
  return new EncodedResponse(buf.subarray(0, size), payload);
}

/** The bytes of SubscribeResponse { entries: { entries, masterLastSeq, epoch } } (epoch 0 is left out, as proto3 does). */
export function encodeEntryBatchResponse(entries: readonly Buffer[], masterLastSeq: bigint, epoch = 0): Buffer {
  let body = 1 + varint64Size(masterLastSeq) + (epoch > 0 ? 1 + varintSize(epoch) : 0);
  for (const e of entries) body += framedSize(e.length);
  const buf = Buffer.allocUnsafe(1 + varintSize(body) + body);
  buf[0] = ENTRIES_TAG;
  let o = writeVarint(buf, 1, body);
  for (const e of entries) {
    buf[o] = ENTRY_TAG; // each entry framed as a log chunk frames it
    o = writeVarint(buf, o + 1, e.length);
    buf.set(e, o);
    o += e.length;
  }
  buf[o] = MASTER_LAST_SEQ_TAG;
  o = writeVarint64(buf, o + 1, masterLastSeq);
  if (epoch > 0) {
    buf[o] = BATCH_EPOCH_TAG;
    writeVarint(buf, o + 1, epoch);
  }
  return buf;
}
