import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/logger.js';
import { decodeEntry, MutationKind } from '../wire/entry-codec.js';
import { epochOf } from '../storage/epoch-history.js';
import type { ReplicationLog } from '../storage/interfaces.js';

/** Entries read from the log per step while a rollback file is written. */
const READ_ENTRIES = 1_000;
const READ_BYTES = 4 * 1024 * 1024;

/** The rollback files' directory inside a node's data directory. */
export function rollbackDir(dataDir: string): string {
  return path.join(dataDir, 'rollback');
}

export interface RollbackInfo {
  /** The last seq the node's history shares with its new upstream's. */
  forkSeq: bigint;
  /** The node's last entry (the range written is forkSeq + 1 .. lastSeq). */
  lastSeq: bigint;
  /** The epoch of the history the node now follows (its upstream's). */
  newEpoch: number;
  upstream: string;
}

/** A key or value as a person reads it: the string when it is printable UTF-8, else base64. */
function readable(b: Buffer): string | { base64: string } {
  const s = b.toString('utf8');
  // Round-trips and has no control characters: shown as text.
  if (Buffer.from(s, 'utf8').equals(b) && !/[\u0000-\u001f\u007f\ufffd]/.test(s)) return s;
  return { base64: b.toString('base64') };
}

/**
 * Writes the entries forkSeq+1..lastSeq of `log` (a node's writes that the new master's
 * history does not hold) to a human-readable JSON-lines file in <dataDir>/rollback, as
 * MongoDB writes rollback files: a header line, then one line per entry with its seq,
 * epoch, commit time and mutations. Written to a temporary name, fsynced, renamed and the
 * directory fsynced, so once this resolves the file is complete and durable: only then may
 * the node's data be replaced. Entries the log no longer holds (trimmed: a fork older than
 * the log's retention) are named in the header as missing, never silently left out.
 * Returns the file's path and how many entries it lists.
 */
export async function writeRollbackFile(dataDir: string, log: ReplicationLog, info: RollbackInfo, logger?: Logger): Promise<{ file: string; entries: number }> {
  const dir = rollbackDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  const epochs = log.epochs;
  const from = info.forkSeq + 1n;
  const oldEpoch = epochOf(epochs, from);
  const name = `rollback-epoch${oldEpoch}-${from}-${info.lastSeq}.jsonl`;
  const file = path.join(dir, name);
  const tmp = `${file}.tmp`;
  const available = log.firstSeq > from ? log.firstSeq : from;
  const fd = fs.openSync(tmp, 'w');
  let entries = 0;
  try {
    const header = {
      rollback: {
        epoch: oldEpoch,
        forkSeq: info.forkSeq.toString(),
        fromSeq: from.toString(),
        toSeq: info.lastSeq.toString(),
        missing: available > from ? { fromSeq: from.toString(), toSeq: (available - 1n).toString(), why: 'no longer in the log (trimmed)' } : null,
        newEpoch: info.newEpoch,
        upstream: info.upstream,
        writtenAt: new Date().toISOString(),
      },
    };
    fs.writeSync(fd, `${JSON.stringify(header)}\n`);
    let next = available;
    while (next <= info.lastSeq && next <= log.lastSeq) {
      const batch = await log.read(next, READ_ENTRIES, READ_BYTES);
      const lines: string[] = [];
      for (const buf of batch) {
        const e = decodeEntry(buf);
        if (e.seq > info.lastSeq) break;
        lines.push(
          JSON.stringify({
            seq: e.seq.toString(),
            epoch: epochOf(epochs, e.seq),
            commitTime: new Date(e.commitTimeMs).toISOString(),
            mutations: e.mutations.map((m) =>
              m.kind === MutationKind.PUT ? { op: 'put', key: readable(m.key), value: readable(m.value ?? Buffer.alloc(0)) } : { op: 'delete', key: readable(m.key) },
            ),
          }),
        );
        entries++;
        next = e.seq + 1n;
      }
      if (lines.length > 0) fs.writeSync(fd, `${lines.join('\n')}\n`);
      if (batch.length === 0) break;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
  logger?.warn(
    { file, entries, fromSeq: from.toString(), toSeq: info.lastSeq.toString(), oldEpoch, newEpoch: info.newEpoch },
    `rolled back ${entries} entr${entries === 1 ? 'y' : 'ies'} this node had after the fork at seq ${info.forkSeq}; they are listed in the rollback file`,
  );
  return { file, entries };
}
