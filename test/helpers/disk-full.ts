import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isReplicatorError } from '../../src/common/errors.js';
import { readVia } from './cluster.js';
import { waitFor } from './processes.js';
import { tempDir } from './processes.js';
import type { ScenarioDef } from './scenario-runner.js';
import { sleep } from './scenario-runner.js';

/**
 * Disk full, for real: follower 1's data directory lives on its own small tmpfs, which
 * the scenario fills with a ballast file until writes fail with ENOSPC, and later frees.
 * Mounting needs Linux and CAP_SYS_ADMIN (root in CI); without them the scenario is
 * skipped and says why (a size-limited directory needs a filesystem of its own, and
 * every way to get one — tmpfs, a loop device, FUSE — needs mount rights).
 */
const FS_SIZE = '64m';
const FS_DIR = 'small-fs';
const BALLAST = 'ballast';

function mount(dir: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_SIZE},mode=0755`, 'lr-faults', dir], { stdio: 'pipe' });
}

function umount(dir: string): void {
  execFileSync('umount', [dir], { stdio: 'pipe' });
}

/** Why a tmpfs cannot be mounted here, or undefined when it can (tried on a scratch directory). */
export async function tmpfsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `needs Linux to mount a size-limited tmpfs (this is ${process.platform})`;
  const dir = tempDir('lr-mount-probe-');
  try {
    mount(dir);
    umount(dir);
    return undefined;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): ${stderr || (err as Error).message}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a ballast file until the filesystem is full (ENOSPC); returns its size. */
export function fillFilesystem(dir: string): number {
  const fd = fs.openSync(path.join(dir, BALLAST), 'a');
  let size = 0;
  try {
    for (const chunk of [1024 * 1024, 4096]) {
      const buf = Buffer.alloc(chunk, 0xaa);
      for (;;) {
        try {
          size += fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

export const diskFullScenario: ScenarioDef = {
  id: '7',
  title: 'disk full on a follower: it stops applying with a clear error, loses nothing, resumes',
  unavailable: tmpfsUnavailable,
  cluster: {
    prepare: async (root) => {
      const dir = path.join(root, FS_DIR);
      fs.mkdirSync(dir);
      mount(dir);
      return async () => umount(dir);
    },
    followerDir: (id, root) => (id === 1 ? path.join(root, FS_DIR, 'follower-1') : path.join(root, `follower-${id}`)),
  },
  async run(ctx) {
    const { cluster } = ctx;
    const fsDir = path.join(cluster.root, FS_DIR);
    const applied = async () => BigInt((await cluster.status()).followers.find((f) => f.followerId === 1)?.appliedSeq ?? '0');
    while (ctx.running()) {
      const proc = cluster.slot(1).proc!;
      const logFrom = proc.logs.length;
      const ballast = fillFilesystem(fsDir);
      ctx.fault(`filled follower 1's filesystem (${(ballast / 1024 / 1024).toFixed(1)} MiB ballast)`);

      // A clear error: the store failure, naming the cause.
      const failure = await waitFor(
        () => proc.logs.slice(logFrom).find((l) => l.code === 'STORE_FAILED'),
        'follower 1 to report the store failure',
        45_000,
      );
      if (!/no space left on device/i.test(String(failure.msg))) ctx.problem(`follower 1's store error does not name the cause: ${failure.msg}`);
      ctx.note(`follower 1 said: ${failure.msg}`);

      // It stops applying while the master and follower 2 go on: its lag grows. (LevelDB
      // may free some space itself when it reopens the store, so the ballast is topped up.)
      const lag = async () => {
        const s = await cluster.status();
        return BigInt(s.lastSeq) - BigInt(s.followers.find((f) => f.followerId === 1)?.appliedSeq ?? '0');
      };
      const lagAtFailure = await lag();
      await waitFor(
        async () => {
          fillFilesystem(fsDir);
          return (await lag()) > lagAtFailure + 500n;
        },
        'follower 1 to fall behind while its disk is full',
        45_000,
        50,
      );
      if (proc.exited) ctx.problem(`follower 1 exited on a full disk: ${proc.stderr.trim()}`);
      const stalledAt = await applied();

      // Reads of what it holds still get an answer: the value, or a clear store error.
      const probe = ctx.load.acked[0];
      try {
        const r = await readVia(cluster.slot(1).readAddress!, probe.key);
        if (r.value !== probe.value) ctx.problem(`follower 1 read ${probe.key} as ${r.value} with a full disk`);
      } catch (err) {
        const code = isReplicatorError(err) ? err.code : 'not a ReplicatorError';
        if (code !== 'STORE_FAILED') ctx.problem(`a read of follower 1 with a full disk failed with ${code}: ${(err as Error).message}`);
        else ctx.note(`a read with a full disk: ${(err as Error).message}`);
      }

      // Space returns: it resumes by itself.
      fs.rmSync(path.join(fsDir, BALLAST));
      const t0 = Date.now();
      await waitFor(async () => (await applied()) > stalledAt, 'follower 1 to resume applying after space returned', 45_000, 50);
      ctx.note(`follower 1 resumed ${Date.now() - t0} ms after space returned`);
      await sleep(ctx.random.between(300, 1_000));
    }
  },
};
