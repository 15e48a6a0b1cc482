import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/common/logger.js';
import { streamSnapshot } from '../../src/master/snapshot-sender.js';
import type { DataSnapshot } from '../../src/storage/interfaces.js';
import type { SnapshotRow } from '../../src/wire/subscribe-encoder.js';

const log = { debug: () => undefined } as unknown as Logger;

/** A snapshot of `keys` pairs read `perRead` at a time, whose count resolves when the test says. */
function fakeSnapshot(keys: number, perRead: number, counted = BigInt(keys)) {
  const rows: SnapshotRow[] = Array.from({ length: keys }, (_, i) => [`k${String(i).padStart(6, '0')}`, Buffer.from(`v${i}`)] as const);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { countSettled: false };
  const snapshot: DataSnapshot = {
    seq: 5n,
    checksum: 0,
    commitTimeMs: 0,
    approxBytes: 0,
    keyOffset: 0,
    rows() {
      let next = 0;
      return {
        next: async () => rows.slice(next, (next += perRead)),
        close: async () => undefined,
      };
    },
    async countKeys(signal) {
      try {
        await Promise.race([released, new Promise((_, reject) => signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))))]);
        return counted;
      } finally {
        state.countSettled = true;
      }
    },
    close: async () => undefined,
  };
  return { snapshot, release, state };
}

describe('snapshot sender: the exact size', () => {
  it('sends the count once, between two chunks, as soon as it is known', async () => {
    const { snapshot, release } = fakeSnapshot(10, 3);
    const sent: string[] = [];
    const done = streamSnapshot(
      snapshot,
      async () => {
        sent.push('chunk');
        if (sent.length === 1) release(); // counted while the first chunk goes out
        await new Promise((r) => setImmediate(r));
        return true;
      },
      log,
      async (keys) => {
        sent.push(`size ${keys}`);
        return true;
      },
    );
    const { keys } = await done;
    assert.equal(keys, 10n);
    assert.deepEqual(sent, ['chunk', 'size 10', 'chunk', 'chunk', 'chunk']);
  });

  it('a count slower than the chunks is waited for: the size always comes before the end', async () => {
    const { snapshot, release } = fakeSnapshot(4, 2);
    const sent: string[] = [];
    const done = streamSnapshot(
      snapshot,
      async () => {
        sent.push('chunk');
        return true;
      },
      log,
      async (keys) => {
        sent.push(`size ${keys}`);
        return true;
      },
    );
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(sent, ['chunk', 'chunk']);
    release();
    await done;
    assert.deepEqual(sent, ['chunk', 'chunk', 'size 4']);
  });

  it('a stream that ends early stops the count before returning (the caller then closes the snapshot)', async () => {
    const { snapshot, state } = fakeSnapshot(10, 3);
    const res = await streamSnapshot(snapshot, async () => false, log, async () => true);
    assert.equal(res.digest, '');
    assert.equal(state.countSettled, true);
  });

  it('a count that disagrees with the pairs read is an internal error', async () => {
    const { snapshot, release } = fakeSnapshot(4, 2, 5n);
    release();
    await assert.rejects(
      streamSnapshot(snapshot, async () => true, log, async () => true),
      (err: Error & { code?: string }) => err.code === 'INTERNAL' && /4 pairs read but 5 counted/.test(err.message),
    );
  });
});
