import * as grpc from '@grpc/grpc-js';
import type { KeyValue__Output } from './generated/levelreplicator/v1/KeyValue.js';
import type { MasterClient } from './generated/levelreplicator/v1/Master.js';
import type { SubscribeResponse__Output } from './generated/levelreplicator/v1/SubscribeResponse.js';
import { FieldTag } from './field-tags.js';
import { replicatorProto } from './proto.js';
import { readLengthEnd, readUint64String, type Cursor } from './protobuf-wire.js';
import { channelSetup, type ClientSecurity } from './security.js';

/**
 * A fast path for the follower's bulk input: SubscribeResponses carrying log entries or
 * snapshot pairs. protobufjs decodes each element into a message object and converts it
 * into a plain one; this reads the wire format once into the same plain objects (entries,
 * keys and values are views into the message, as with protobufjs). Anything else, or
 * anything unexpected, goes to the generic deserializer. A unit test checks both agree.
 * The tags are field-tags.ts's, shared with the master's encoder (subscribe-encoder.ts).
 */
export function fastSubscribeResponseDeserializer(generic: grpc.deserialize<SubscribeResponse__Output>): grpc.deserialize<SubscribeResponse__Output> {
  return (bytes: Buffer) => {
    try {
      return decodeBulk(bytes) ?? generic(bytes);
    } catch {
      return generic(bytes); // a malformed message: the generic decoder reports it
    }
  };
}

/** The Master client a follower uses: its Subscribe responses take the fast path. */
export function followerMasterClient(address: string, security: ClientSecurity): MasterClient {
  const service = replicatorProto().Master.service;
  const subscribe = service.Subscribe as grpc.MethodDefinition<unknown, SubscribeResponse__Output>;
  const Client = grpc.makeClientConstructor(
    { ...service, Subscribe: { ...subscribe, responseDeserialize: fastSubscribeResponseDeserializer(subscribe.responseDeserialize) } },
    'levelreplicator.v1.Master',
  );
  const { credentials, options } = channelSetup(security);
  return new Client(address, credentials, options) as unknown as MasterClient;
}

const ENTRIES_TAG = FieldTag.SubscribeResponse.entries;
const ENTRY_TAG = FieldTag.EntryBatch.entries;
const MASTER_LAST_SEQ_TAG = FieldTag.EntryBatch.master_last_seq;
const BATCH_EPOCH_TAG = FieldTag.EntryBatch.epoch;
const SNAPSHOT_CHUNK_TAG = FieldTag.SubscribeResponse.snapshot_chunk;
const PAIRS_TAG = FieldTag.SnapshotChunk.pairs;
const KEY_TAG = FieldTag.KeyValue.key;
const VALUE_TAG = FieldTag.KeyValue.value;
const EMPTY = Buffer.alloc(0);

function decodeBulk(buf: Buffer): SubscribeResponse__Output | undefined {
  if (buf.length === 0) return undefined;
  const r: Cursor = { pos: 1 };
  const end = readLengthEnd(buf, r);
  if (end !== buf.length) return undefined; // exactly one field: the body
  if (buf[0] === ENTRIES_TAG) {
    const entries: Buffer[] = [];
    let masterLastSeq = '0';
    let epoch = 0;
    while (r.pos < end) {
      const tag = buf[r.pos++];
      if (tag === ENTRY_TAG) {
        const e = readLengthEnd(buf, r);
        if (e < 0) return undefined;
        entries.push(buf.subarray(r.pos, e));
        r.pos = e;
      } else if (tag === MASTER_LAST_SEQ_TAG) {
        const seq = readUint64String(buf, r);
        if (seq === undefined) return undefined;
        masterLastSeq = seq;
      } else if (tag === BATCH_EPOCH_TAG) {
        const v = readUint64String(buf, r);
        if (v === undefined || v.length > 10 || Number(v) > 0xffff_ffff) return undefined;
        epoch = Number(v);
      } else {
        return undefined;
      }
    }
    return { entries: { entries, masterLastSeq, epoch }, body: 'entries' } as SubscribeResponse__Output;
  }
  if (buf[0] === SNAPSHOT_CHUNK_TAG) {
    const pairs: KeyValue__Output[] = [];
    while (r.pos < end) {
      if (buf[r.pos++] !== PAIRS_TAG) return undefined;
      const pEnd = readLengthEnd(buf, r);
      if (pEnd < 0) return undefined;
      let key: Buffer = EMPTY;
      let value: Buffer = EMPTY;
      while (r.pos < pEnd) {
        const tag = buf[r.pos++];
        if (tag !== KEY_TAG && tag !== VALUE_TAG) return undefined;
        const fEnd = readLengthEnd(buf, r, pEnd);
        if (fEnd < 0) return undefined;
        if (tag === KEY_TAG) key = buf.subarray(r.pos, fEnd);
        else value = buf.subarray(r.pos, fEnd);
        r.pos = fEnd;
      }
      pairs.push({ key, value });
    }
    return { snapshotChunk: { pairs }, body: 'snapshotChunk' } as SubscribeResponse__Output;
  }
  return undefined;
}
