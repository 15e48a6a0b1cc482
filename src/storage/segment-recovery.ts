import type { Logger } from '../common/logger.js';
import type { LogBase } from './interfaces.js';
import type { LogFiles } from './log-files.js';
import { corruptLog, decodeHeader, firstSeqOfName, HEADER_BYTES, scanSegment, type SegmentHeader } from './segment-format.js';

/** One segment file as the log knows it. */
export interface Segment {
  name: string;
  header: SegmentHeader;
  /** The last seq it holds (header.base.seq when it holds none). */
  last: LogBase;
  /** Bytes of header and records. */
  size: number;
  /** File offsets of the records of seqs header.base.seq + 1 + k * INDEX_STRIDE. */
  index: number[];
}

export interface Recovered {
  segments: Segment[];
  /** Set when repairLog dropped the log from a bad entry on: the caller starts a new history after it. */
  repaired?: { seq: bigint; reason: string };
}

/**
 * Reads every segment of a log directory, oldest first, and verifies the whole log: headers,
 * that each segment starts where the one before ended (a missing middle segment is a hole),
 * and every record (segment-format.ts scanSegment).
 *
 * - A torn end of the newest segment (an append that never finished: a partial record, with
 *   nothing chained after it) is cut off, with a warning. Nothing acknowledged is there: an
 *   append is acknowledged only after its sync, and only the part after the last sync can tear.
 * - Any other bad record, header or hole is damage: CORRUPT_ENTRY naming the entry and how
 *   far the log is intact, unless repairLog, which cuts the log there (files after it are
 *   removed) and reports `repaired`.
 */
export async function recoverSegments(files: LogFiles, { repairLog = false, log }: { repairLog?: boolean; log?: Logger }): Promise<Recovered> {
  const all = await files.list();
  for (const n of all) if (n.endsWith('.tmp')) await files.remove(n); // an interrupted replace or reset
  const names = all.filter((n) => firstSeqOfName(n) !== undefined).sort();
  const segments: Segment[] = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const isLast = i === names.length - 1;
    const file = await readWhole(files, name);
    const prev = segments[segments.length - 1]?.last;
    /** Damage at seq (the log is intact up to seq - 1): refuse, or with repairLog cut the file at cutAt. */
    const damage = async (seq: bigint, reason: string, cutAt: number): Promise<Recovered> => {
      const intactTo = seq - 1n;
      if (!repairLog) throw corruptLog(seq, reason, intactTo);
      if (cutAt <= HEADER_BYTES) await files.remove(name);
      else await files.truncate(name, cutAt);
      for (const later of names.slice(i + 1)) await files.remove(later);
      await files.syncDir();
      return { segments, repaired: { seq, reason } };
    };
    const header = decodeHeader(file);
    if (typeof header === 'string') {
      if (isLast && file.length <= HEADER_BYTES) {
        // A segment whose creation was cut short (its header is synced before any record).
        log?.warn({ segment: name, bytes: file.length }, 'log: removed a segment whose creation never finished');
        await files.remove(name);
        continue;
      }
      const seq = prev ? prev.seq + 1n : firstSeqOfName(name)!;
      return damage(seq, `segment ${name}: ${header}`, 0);
    }
    if (firstSeqOfName(name) !== header.base.seq + 1n) return damage(prev ? prev.seq + 1n : header.base.seq + 1n, `segment ${name} holds seqs from ${header.base.seq + 1n}`, 0);
    if (prev && (header.base.seq !== prev.seq || header.base.checksum !== prev.checksum)) {
      const why = header.base.seq > prev.seq ? `segment ${name} follows seq ${prev.seq}: seqs ${prev.seq + 1n}..${header.base.seq} are missing` : `segment ${name} does not continue the segment before it`;
      return damage(prev.seq + 1n, why, 0);
    }
    const scan = scanSegment(file, header);
    const seg: Segment = { name, header, last: scan.last, size: scan.goodBytes, index: scan.index };
    if (scan.bad) {
      if (!isLast || scan.bad.recordsAfter) {
        if (scan.goodBytes > HEADER_BYTES) segments.push(seg);
        return damage(scan.bad.seq, scan.bad.reason, scan.bad.offset);
      }
      log?.warn({ segment: name, seq: scan.bad.seq.toString(), droppedBytes: file.length - scan.goodBytes, reason: scan.bad.reason }, 'log: cut off the torn end of the newest segment (an append that never finished; nothing acknowledged)');
      await files.truncate(name, scan.goodBytes);
      await files.sync(name);
    }
    segments.push(seg);
  }
  return { segments };
}

async function readWhole(files: LogFiles, name: string): Promise<Buffer> {
  const size = await files.size(name);
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = await files.read(name, buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
