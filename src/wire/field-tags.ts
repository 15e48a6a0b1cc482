/**
 * The one table of protobuf field tags for protos/replicator.proto, shared by every
 * hand-written encoder and decoder (the Write request decoder, the SubscribeResponse
 * encoder and decoder, log chunks). A tag is the first varint of a field on the wire:
 * field number << 3 | wire type, for a repeated scalar its packed (LEN) form.
 *
 * Names are the .proto's own: FieldTag.Message.field_name. The tags of fields 1 to 15
 * fit in one byte, so a fast path may compare a single byte with them; every field the
 * fast paths read is one of those (fields 16 and up are Status fields, decoded by
 * protobufjs), and a multi-byte tag is always a field these paths do not know.
 *
 * Invariant (test/unit/field-tags.test.ts): this table lists exactly the messages and
 * fields of protos/replicator.proto, each with the number and wire type declared there.
 * Change the .proto, and that test names the entries to change.
 */

/** Wire types of the protobuf encoding. Groups (3, 4) are not valid in proto3 messages. */
export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

const { VARINT, I64, LEN } = WireType;

function tag(field: number, wireType: WireType): number {
  return (field << 3) | wireType;
}

export const FieldTag = {
  Mutation: { kind: tag(1, VARINT), key: tag(2, LEN), value: tag(3, LEN) },
  Write: { mutations: tag(1, LEN) },
  AckPolicy: { followers: tag(1, VARINT), timeout_ms: tag(2, VARINT) },
  WriteRequest: { writes: tag(1, LEN), ack: tag(2, LEN), epoch: tag(3, VARINT) },
  WriteResponse: {
    first_seq: tag(1, VARINT),
    last_seq: tag(2, VARINT),
    ack_status: tag(3, VARINT),
    followers_requested: tag(4, VARINT),
    followers_acked: tag(5, VARINT),
    epoch: tag(6, VARINT),
  },
  EpochStart: { epoch: tag(1, VARINT), first_seq: tag(2, VARINT) },
  SubscribeRequest: {
    follower_id: tag(1, VARINT),
    from_seq: tag(2, VARINT),
    history_id: tag(3, LEN),
    prev_checksum: tag(4, VARINT),
    read_address: tag(5, LEN),
    durable: tag(6, VARINT),
    epochs: tag(7, LEN),
    seen_epoch: tag(8, VARINT),
  },
  SubscribeResponse: { entries: tag(1, LEN), heartbeat: tag(2, LEN), start: tag(3, LEN), snapshot_chunk: tag(4, LEN), snapshot_end: tag(5, LEN), snapshot_size: tag(6, LEN) },
  StreamStart: {
    history_id: tag(1, LEN),
    from_seq: tag(2, VARINT),
    master_last_seq: tag(3, VARINT),
    snapshot: tag(4, LEN),
    reason: tag(5, LEN),
    epoch: tag(6, VARINT),
    epochs: tag(7, LEN),
    fork_seq: tag(8, VARINT),
    diverged: tag(9, VARINT),
    chain: tag(10, LEN),
    master_address: tag(11, LEN),
  },
  SnapshotInfo: { seq: tag(1, VARINT), checksum: tag(2, VARINT), commit_time_ms: tag(3, VARINT), approx_bytes: tag(4, VARINT) },
  KeyValue: { key: tag(1, LEN), value: tag(2, LEN) },
  SnapshotChunk: { pairs: tag(1, LEN) },
  SnapshotEnd: { keys: tag(1, VARINT), digest: tag(2, LEN) },
  EntryBatch: { entries: tag(1, LEN), master_last_seq: tag(2, VARINT), epoch: tag(3, VARINT) },
  Heartbeat: { master_last_seq: tag(1, VARINT), master_time_ms: tag(2, VARINT), epoch: tag(3, VARINT) },
  AckRequest: { follower_id: tag(1, VARINT), applied_seq: tag(2, VARINT) },
  AckResponse: {},
  StatusRequest: {},
  FollowerStatus: {
    follower_id: tag(1, VARINT),
    connected: tag(2, VARINT),
    applied_seq: tag(3, VARINT),
    lag_entries: tag(4, VARINT),
    lag_ms: tag(5, VARINT),
    address: tag(6, LEN),
    read_address: tag(7, LEN),
    last_ack_time_ms: tag(8, VARINT),
    slot_lost: tag(9, VARINT),
    snapshotting: tag(10, VARINT),
    state: tag(11, VARINT),
    sent_seq: tag(12, VARINT),
    bytes_sent: tag(13, VARINT),
    durable: tag(14, VARINT),
    last_error: tag(15, LEN),
    seen: tag(16, VARINT),
    since_ms: tag(17, VARINT),
    slot_entries: tag(18, VARINT),
    slot_bytes: tag(19, VARINT),
    snapshot_progress: tag(20, LEN),
  },
  StatusResponse: {
    first_seq: tag(1, VARINT),
    last_seq: tag(2, VARINT),
    history_id: tag(3, LEN),
    master_time_ms: tag(4, VARINT),
    followers: tag(5, LEN),
    epoch: tag(6, VARINT),
    write_rate: tag(7, I64),
    min_followers: tag(8, VARINT),
    min_followers_max_lag_ms: tag(9, VARINT),
    good_followers: tag(10, VARINT),
    accepting_writes: tag(11, VARINT),
    default_ack_followers: tag(12, VARINT),
    default_ack_timeout_ms: tag(13, VARINT),
    role: tag(14, LEN),
    self: tag(15, LEN),
    log_bytes: tag(16, VARINT),
    version: tag(20, LEN),
    node_id: tag(21, VARINT),
    epochs: tag(22, LEN),
    master_address: tag(23, LEN),
    seen_epoch: tag(24, VARINT),
  },
  GetRequest: { key: tag(1, LEN), min_seq: tag(2, VARINT) },
  GetResponse: { found: tag(1, VARINT), value: tag(2, LEN), applied_seq: tag(3, VARINT) },
  DigestRequest: {},
  DigestResponse: { digest: tag(1, LEN), seq: tag(2, VARINT), keys: tag(3, VARINT) },
  SnapshotProgress: {
    seq: tag(1, VARINT),
    keys_sent: tag(2, VARINT),
    bytes_sent: tag(3, VARINT),
    approx_bytes: tag(4, VARINT),
  },
  FollowerSelf: {
    follower_id: tag(1, VARINT),
    master_address: tag(2, LEN),
    state: tag(3, VARINT),
    applied_seq: tag(4, VARINT),
    master_last_seq: tag(5, VARINT),
    lag_entries: tag(6, VARINT),
    lag_ms: tag(7, VARINT),
    since_ms: tag(8, VARINT),
    history_id: tag(9, LEN),
    durable: tag(10, VARINT),
    time_ms: tag(11, VARINT),
    last_error: tag(12, LEN),
    upstream_address: tag(13, LEN),
    epoch: tag(14, VARINT),
    applied_checksum: tag(15, VARINT),
    chain: tag(16, LEN),
  },
  DropSlotRequest: {
    follower_id: tag(1, VARINT),
    force: tag(2, VARINT),
  },
  DropSlotResponse: {
    applied_seq: tag(1, VARINT),
    was_connected: tag(2, VARINT),
    slot_lost: tag(3, VARINT),
    first_seq: tag(4, VARINT),
  },
  SnapshotSize: { keys: tag(1, VARINT) },
  PromoteRequest: { min_applied_seq: tag(1, VARINT), notify: tag(2, LEN), min_epoch: tag(3, VARINT) },
  PromoteResponse: { epoch: tag(1, VARINT), first_seq: tag(2, VARINT), address: tag(3, LEN), applied_seq: tag(4, VARINT) },
  FollowRequest: { upstream: tag(1, LEN), epoch: tag(2, VARINT), master_address: tag(3, LEN), epoch_first_seq: tag(4, VARINT) },
  FollowResponse: { role: tag(1, LEN), applied_seq: tag(2, VARINT), epoch: tag(3, VARINT) },
  PauseWritesRequest: { timeout_ms: tag(1, VARINT), resume: tag(2, VARINT) },
  PauseWritesResponse: { last_seq: tag(1, VARINT), epoch: tag(2, VARINT), paused: tag(3, VARINT) },
} as const;
