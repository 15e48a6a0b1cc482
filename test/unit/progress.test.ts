import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/common/logger.js';
import { Progress } from '../../src/follower/progress.js';

type Line = { fields: Record<string, unknown>; msg: string };

function fakeLog(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log = { info: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger;
  return { log, lines };
}

/** A stream that says it is a terminal and keeps what is written to it. */
function fakeTerminal(): { stream: PassThrough & { isTTY: boolean; columns: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('follower progress', () => {
  it('logs snapshot progress lines (keys, bytes, rate) when not on a terminal', () => {
    const { log, lines } = fakeLog();
    const p = new Progress(log, 0, new PassThrough());
    p.snapshotStarted(1_000_000);
    p.snapshotProgress(4_096n, 500_000);
    p.snapshotProgress(8_192n, 1_000_000);
    const progress = lines.filter((l) => l.msg === 'progress');
    assert.equal(progress.length, 2);
    assert.deepEqual(
      progress.map((l) => [l.fields.phase, l.fields.keys, l.fields.bytes, l.fields.approxTotalBytes]),
      [
        ['snapshot', '4096', 500_000, 1_000_000],
        ['snapshot', '8192', 1_000_000, 1_000_000],
      ],
    );
    assert.equal(typeof progress[0].fields.keysPerSecond, 'number');
    // A log line during a snapshot never comes from applied(): the catch-up phase waits.
    p.applied(0n, 50_000n);
    assert.equal(lines.filter((l) => l.fields.phase === 'catch-up').length, 0);
  });

  it('logs catch-up progress only when far enough behind, and "caught up" at the end', () => {
    const { log, lines } = fakeLog();
    const p = new Progress(log, 0, new PassThrough());
    p.applied(100n, 5_000n); // 4,900 behind: too little to report
    assert.equal(lines.length, 0);
    p.applied(0n, 30_000n);
    p.applied(10_000n, 30_000n);
    p.applied(30_000n, 30_000n);
    const progress = lines.filter((l) => l.msg === 'progress');
    assert.deepEqual(
      progress.map((l) => [l.fields.phase, l.fields.appliedSeq, l.fields.masterLastSeq, l.fields.behind]),
      [
        ['catch-up', '0', '30000', '30000'],
        ['catch-up', '10000', '30000', '20000'],
      ],
    );
    const done = lines.filter((l) => l.msg === 'caught up');
    assert.equal(done.length, 1);
    assert.equal(done[0].fields.entries, 30_000);
  });

  it('spaces progress lines by the interval', () => {
    const { log, lines } = fakeLog();
    const p = new Progress(log, 60_000, new PassThrough());
    p.snapshotStarted(1_000);
    for (let i = 1; i <= 100; i++) p.snapshotProgress(BigInt(i), i * 10);
    assert.equal(lines.filter((l) => l.msg === 'progress').length, 1, 'one line, then nothing within the interval');
  });

  it('draws a bar on a terminal (keys, MB, rate, ETA) and logs no progress lines', () => {
    const { log, lines } = fakeLog();
    const term = fakeTerminal();
    const p = new Progress(log, 0, term.stream);
    p.snapshotStarted(2_000_000);
    p.snapshotProgress(8_192n, 1_000_000);
    p.finish();
    const snapshotBar = term.text();
    assert.match(snapshotBar, /snapshot {2}\|/);
    assert.match(snapshotBar, /8192 keys, 1\.0 MB \| \d+ keys\/s \| ETA /);
    p.applied(0n, 20_000n);
    p.applied(5_000n, 20_000n);
    p.applied(20_000n, 20_000n);
    assert.match(term.text().slice(snapshotBar.length), /catch-up {2}\|.*\d+\/20000 entries \| \d+ entries\/s \| ETA /s);
    assert.equal(lines.filter((l) => l.msg === 'progress').length, 0, 'the bar replaces progress lines');
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 1);
  });
});
