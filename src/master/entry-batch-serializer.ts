import type * as grpc from '@grpc/grpc-js';
import type { SubscribeResponse } from '../common/generated/levelreplicator/v1/SubscribeResponse.js';
import { ENTRY_FIELD_TAG, framedSize, varintSize, writeVarint } from './log-chunk.js';

/**
 * A fast path for the master's most frequent message: a SubscribeResponse carrying log
 * entries, encoded once per follower per message.
 *
 * protobufjs encodes `repeated bytes` through a list of writer operations, an object per
 * entry, then copies; this writes the same bytes directly: one allocation per message
 * and one copy per entry (the stored entry bytes, never re-encoded). Any other message
 * (start, heartbeat, snapshot) takes the generic serializer. A unit test checks that both
 * decode to the same message.
 *
 * SubscribeResponse { EntryBatch entries = 1 }; EntryBatch { repeated bytes entries = 1;
 * uint64 master_last_seq = 2 }.
 */
export function withFastEntryBatchEncoding<S extends grpc.ServiceDefinition>(service: S): S {
  const subscribe = service.Subscribe as grpc.MethodDefinition<unknown, SubscribeResponse>;
  return { ...service, Subscribe: { ...subscribe, responseSerialize: fastSubscribeResponseSerializer(subscribe.responseSerialize) } };
}

export function fastSubscribeResponseSerializer(generic: grpc.serialize<SubscribeResponse>): grpc.serialize<SubscribeResponse> {
  return (msg: SubscribeResponse) => {
    const batch = msg.entries;
    const lastSeq = batch?.masterLastSeq;
    if (!batch || msg.start || msg.heartbeat || msg.snapshotChunk || msg.snapshotEnd || !isBufferArray(batch.entries) || typeof lastSeq !== 'string') {
      return generic(msg);
    }
    return encodeEntryBatchResponse(batch.entries, BigInt(lastSeq));
  };
}

const MASTER_LAST_SEQ_TAG = 0x10; // EntryBatch field 2, varint

/** The bytes of SubscribeResponse { entries: { entries, masterLastSeq } }. */
export function encodeEntryBatchResponse(entries: readonly Buffer[], masterLastSeq: bigint): Buffer {
  let body = 1 + varint64Size(masterLastSeq);
  for (const e of entries) body += framedSize(e.length);
  const buf = Buffer.allocUnsafe(1 + varintSize(body) + body);
  buf[0] = ENTRY_FIELD_TAG; // SubscribeResponse.entries is field 1 too
  let o = writeVarint(buf, 1, body);
  for (const e of entries) {
    buf[o] = ENTRY_FIELD_TAG;
    o = writeVarint(buf, o + 1, e.length);
    buf.set(e, o);
    o += e.length;
  }
  buf[o] = MASTER_LAST_SEQ_TAG;
  writeVarint64(buf, o + 1, masterLastSeq);
  return buf;
}

function isBufferArray(v: unknown): v is Buffer[] {
  if (!Array.isArray(v)) return false;
  for (const e of v) if (!Buffer.isBuffer(e)) return false;
  return true;
}

function varint64Size(n: bigint): number {
  let size = 1;
  for (; n >= 0x80n; n >>= 7n) size++;
  return size;
}

function writeVarint64(buf: Buffer, o: number, n: bigint): number {
  while (n >= 0x80n) {
    buf[o++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[o++] = Number(n);
  return o;
}
