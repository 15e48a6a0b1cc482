import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { PairHasher } from '../storage/digest.js';
import type { DataSnapshot } from '../storage/interfaces.js';
import type { Logger } from '../common/logger.js';
import { seqToWire } from '../wire/seq.js';
import type { SnapshotInfo } from '../wire/generated/levelreplicator/v1/SnapshotInfo.js';
import { encodeSnapshotRows, type EncodedResponse } from '../wire/subscribe-encoder.js';

/**
 * Pairs per chunk message (fewer, larger chunks cost less per pair on both sides), and a
 * byte bound: a chunk ends with the pair that crosses it, so it stays far below the gRPC
 * cap (at most this plus one largest key and value).
 */
export const SNAPSHOT_CHUNK_PAIRS = 4_096;
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** The snapshot's position as sent to the follower in the stream's start message. */
export function snapshotInfo(snapshot: DataSnapshot): SnapshotInfo {
  return {
    seq: seqToWire(snapshot.seq),
    checksum: snapshot.checksum,
    commitTimeMs: String(snapshot.commitTimeMs),
    approxBytes: String(snapshot.approxBytes),
  };
}

/**
 * Streams every pair of a snapshot in key order, in chunks (one per read: at most
 * SNAPSHOT_CHUNK_PAIRS pairs, about SNAPSHOT_CHUNK_BYTES), each encoded straight from the
 * rows read (no pair objects, no key views), through send(), which resolves when the
 * transport can take more (backpressure). Returns the count and the digest (same framing
 * as the Digest RPC) for the follower to verify.
 *
 * The follower's progress needs the real total, which nothing keeps (a live count would
 * cost a read per write on the write path). It is counted on the same snapshot beside
 * the stream (keys only), so the first chunk does not wait for it, and sent (a
 * SnapshotSize, through sendSize) between two chunks once known: for 1M pairs, about a
 * third of the way in. Not free: classic-level makes a string of every key on the main
 * thread, about the cost of the stream's own reads (README, Benchmarks). It is always
 * sent before the caller's SnapshotEnd (the end waits for the count if need be), and the
 * two counts must agree.
 */
export async function streamSnapshot(
  snapshot: DataSnapshot,
  send: (chunk: EncodedResponse) => Promise<boolean>,
  log: Logger,
  sendSize: (keys: bigint) => Promise<boolean>,
  /** Told after each chunk is handed to send: its pairs and their key and value bytes (for status). */
  onSent?: (pairs: number, bytes: number) => void,
): Promise<{ keys: bigint; digest: string }> {
  const hash = new PairHasher();
  const hashPair = (src: Buffer, keyStart: number, keyEnd: number, value: Buffer) => hash.update(src, value, keyStart, keyEnd);
  let keys = 0n;
  const abort = new AbortController();
  let total: bigint | undefined;
  const counting = snapshot.countKeys(abort.signal).then((n) => (total = n));
  counting.catch(() => undefined); // awaited below (or abandoned when the stream ends early)
  let sizeSent = false;
  const sendSizeOnce = async (n: bigint): Promise<boolean> => {
    sizeSent = true;
    return sendSize(n);
  };
  const reader = snapshot.rows(SNAPSHOT_CHUNK_PAIRS, SNAPSHOT_CHUNK_BYTES);
  try {
    for (;;) {
      // The next read runs (off the main thread) while this one's pairs are encoded and sent.
      const rows = await reader.next();
      if (rows.length === 0) break;
      const chunk = encodeSnapshotRows(rows, snapshot.keyOffset, hashPair);
      keys += BigInt(rows.length);
      const sent = await send(chunk);
      onSent?.(rows.length, chunk.payloadBytes);
      if (!sent) return { keys, digest: '' };
      if (!sizeSent && total !== undefined && !(await sendSizeOnce(total))) return { keys, digest: '' };
    }
    const counted = await counting;
    if (counted !== keys) {
      throw new ReplicatorError(ErrorCode.INTERNAL, `snapshot at seq ${snapshot.seq}: ${keys} pairs read but ${counted} counted on the same snapshot`);
    }
    if (!sizeSent && !(await sendSizeOnce(counted))) return { keys, digest: '' };
  } finally {
    // The count must be over before the caller closes the snapshot it reads.
    abort.abort();
    await Promise.all([reader.close(), counting.catch(() => undefined)]);
  }
  log.debug({ keys: keys.toString(), seq: snapshot.seq.toString() }, 'snapshot streamed');
  return { keys, digest: hash.digest() };
}
