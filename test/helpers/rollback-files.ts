import fs from 'node:fs';
import path from 'node:path';

/** A key or value as a rollback file writes it: the text, or base64 when it is not printable UTF-8. */
type Readable = string | { base64: string };

export interface RollbackEntry {
  seq: bigint;
  epoch: number;
  /** Puts as key and value (latin1, as readStore gives them), deletes with value undefined. */
  mutations: { op: 'put' | 'delete'; key: string; value?: string }[];
}

/** One rollback file (docs/roles.md, src/follower/rollback-file.ts): its header and entries. */
export interface RollbackFile {
  file: string;
  /** The epoch the rolled-back entries were committed in. */
  epoch: number;
  newEpoch: number;
  forkSeq: bigint;
  fromSeq: bigint;
  toSeq: bigint;
  /** Part of the range no longer in the node's log when the file was written. */
  missing: unknown;
  entries: RollbackEntry[];
}

function text(v: Readable): string {
  return typeof v === 'string' ? Buffer.from(v, 'utf8').toString('latin1') : Buffer.from(v.base64, 'base64').toString('latin1');
}

/**
 * Every complete rollback file in a node's data directory (<dir>/rollback/*.jsonl), oldest
 * range first; temporary files of an interrupted write are not rollback files yet.
 */
export function readRollbackFiles(dataDir: string): RollbackFile[] {
  const dir = path.join(dataDir, 'rollback');
  if (!fs.existsSync(dir)) return [];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  return files
    .map((name) => {
      const file = path.join(dir, name);
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
      const head = (JSON.parse(lines[0]) as { rollback: Record<string, unknown> }).rollback;
      const entries = lines.slice(1).map((l) => {
        const e = JSON.parse(l) as { seq: string; epoch: number; mutations: { op: 'put' | 'delete'; key: Readable; value?: Readable }[] };
        return {
          seq: BigInt(e.seq),
          epoch: e.epoch,
          mutations: e.mutations.map((m) => ({ op: m.op, key: text(m.key), value: m.value === undefined ? undefined : text(m.value) })),
        };
      });
      return {
        file,
        epoch: Number(head.epoch),
        newEpoch: Number(head.newEpoch),
        forkSeq: BigInt(String(head.forkSeq)),
        fromSeq: BigInt(String(head.fromSeq)),
        toSeq: BigInt(String(head.toSeq)),
        missing: head.missing,
        entries,
      };
    })
    .sort((a, b) => (a.fromSeq < b.fromSeq ? -1 : a.fromSeq > b.fromSeq ? 1 : a.epoch - b.epoch));
}
