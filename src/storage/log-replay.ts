import { ENTRY_BODY_OFFSET, entryBodyEnd, entryChecksum, entryCommitTimeMs, forEachMutation, MutationKind } from '../wire/entry-codec.js';
import type { LogBase } from './interfaces.js';
import { APPLIED_CHECKSUM_KEY, APPLIED_COMMIT_TIME_KEY, APPLIED_SEQ_KEY, dataKeyOf, u32, u64 } from './layout.js';
import type { Store } from './level-store.js';
import type { SegmentLog } from './segment-log.js';

/** Entries re-applied per LevelDB batch. */
const REPLAY_BATCH_ENTRIES = 2_000;
const REPLAY_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Re-applies the log's entries after `from` up to `toSeq` into data generation `gen` of a
 * store: each batch's data changes together with the position they bring the store to
 * (seq, checksum, commit time), not synced (the log stays the durable record). Idempotent:
 * a crash part way leaves a position the next replay continues from. Master and follower
 * recovery share it. Returns the position reached.
 */
export async function replayLog(db: Store, log: SegmentLog, gen: number, from: LogBase, toSeq: bigint): Promise<LogBase> {
  let at = from;
  while (at.seq < toSeq) {
    const entries = await log.read(at.seq + 1n, REPLAY_BATCH_ENTRIES, REPLAY_BATCH_BYTES);
    const batch = db.batch();
    let buf: Buffer = entries[0];
    const visit = (kind: MutationKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => {
      const key = dataKeyOf(gen, buf, keyStart, keyEnd);
      if (kind === MutationKind.PUT) batch.put(key, buf.subarray(valueStart, valueEnd));
      else batch.del(key);
    };
    for (buf of entries) forEachMutation(buf, ENTRY_BODY_OFFSET, entryBodyEnd(buf), visit);
    const last = entries[entries.length - 1];
    at = { seq: at.seq + BigInt(entries.length), checksum: entryChecksum(last), commitTimeMs: entryCommitTimeMs(last) };
    batch.put(APPLIED_SEQ_KEY, u64(at.seq));
    batch.put(APPLIED_CHECKSUM_KEY, u32(at.checksum));
    batch.put(APPLIED_COMMIT_TIME_KEY, u64(BigInt(at.commitTimeMs)));
    await batch.write({ sync: false });
  }
  return at;
}
