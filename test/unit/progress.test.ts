import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/common/logger.js';
import { aroundStatusLine } from '../../src/common/status-line.js';
import { Progress, SNAPSHOT_BAR_AFTER_MS } from '../../src/follower/progress.js';
import { frames, screenLines } from '../helpers/terminal-screen.js';

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

/** A clock the test moves. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('follower progress', () => {
  it('logs snapshot progress lines (keys, bytes, rate) when not on a terminal', () => {
    const { log, lines } = fakeLog();
    const p = new Progress(log, 0, new PassThrough());
    p.snapshotStarted();
    p.snapshotTotal(10_000n); // the master's exact count
    p.snapshotProgress(4_096n, 500_000);
    p.snapshotProgress(8_192n, 1_000_000);
    const progress = lines.filter((l) => l.msg === 'progress');
    assert.equal(progress.length, 2);
    assert.deepEqual(
      progress.map((l) => [l.fields.phase, l.fields.keys, l.fields.bytes, l.fields.totalKeys, l.fields.percent]),
      [
        ['snapshot', '4096', 500_000, '10000', 40],
        ['snapshot', '8192', 1_000_000, '10000', 81],
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
    p.snapshotStarted();
    for (let i = 1; i <= 100; i++) p.snapshotProgress(BigInt(i), i * 10);
    assert.equal(lines.filter((l) => l.msg === 'progress').length, 1, 'one line, then nothing within the interval');
  });

  it('draws a bar on a terminal (keys, MB, rate, ETA) and logs no progress lines', () => {
    const { log, lines } = fakeLog();
    const term = fakeTerminal();
    const clock = fakeClock();
    const p = new Progress(log, 0, term.stream, clock.now);
    p.snapshotStarted();
    p.snapshotTotal(20_000n);
    clock.advance(1_000);
    p.snapshotProgress(8_192n, 1_000_000);
    p.finish();
    const snapshotBar = term.text();
    assert.match(snapshotBar, /snapshot {2}\|/);
    assert.match(snapshotBar, /8192 keys, 1\.0 MB \| \d+ keys\/s \| ETA /);
    p.applied(0n, 20_000n);
    clock.advance(1_000);
    p.applied(5_000n, 20_000n);
    clock.advance(1_000);
    p.applied(20_000n, 20_000n);
    assert.match(term.text().slice(snapshotBar.length), /catch-up {2}\|.*\d+\/20000 entries \| \d+ entries\/s \| ETA /s);
    assert.equal(lines.filter((l) => l.msg === 'progress').length, 0, 'the bar replaces progress lines');
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 1);
  });
  it('a snapshot bar ends at 100% of the master\'s count, then is cleared, leaving the screen as it was', () => {
    const { log } = fakeLog();
    const term = fakeTerminal();
    const clock = fakeClock();
    const p = new Progress(log, 0, term.stream, clock.now);
    term.stream.write('before\n');
    p.snapshotStarted();
    p.snapshotTotal(12_288n);
    for (const keys of [4_096n, 8_192n]) {
      clock.advance(500);
      p.snapshotProgress(keys, Number(keys) * 100);
    }
    clock.advance(500);
    p.snapshotInstalled(12_288n, 1_228_800);
    const drawn = frames(term.text(), 'snapshot  |');
    assert.match(drawn[0], /^snapshot {2}\|░{40}\| 0% of 12288 \| 0 keys, 0\.0 MB \| 0 keys\/s \| ETA \?$/);
    assert.match(drawn[1], /\| 33% of 12288 \| 4096 keys, 0\.4 MB \| 8192 keys\/s \| ETA 1s$/);
    assert.match(drawn[drawn.length - 1], /^snapshot {2}\|█{40}\| 100% of 12288 \| 12288 keys, 1\.2 MB \| 8192 keys\/s \| ETA 0s$/);
    assert.deepEqual(screenLines(term.text()), ['before', ''], 'nothing of the bar is left');
  });

  it('a tiny snapshot draws no bar; a slow one of unknown size gets one after a second', () => {
    const { log } = fakeLog();
    const term = fakeTerminal();
    const clock = fakeClock();
    const p = new Progress(log, 0, term.stream, clock.now);
    p.snapshotStarted();
    p.snapshotTotal(1n);
    p.snapshotProgress(1n, 20);
    p.snapshotInstalled(1n, 20);
    assert.equal(term.text(), '', 'a one-key snapshot draws nothing');

    p.snapshotStarted();
    clock.advance(SNAPSHOT_BAR_AFTER_MS - 1);
    p.snapshotProgress(4_096n, 4_000_000);
    assert.equal(term.text(), '', 'not within the first second');
    clock.advance(1);
    p.snapshotProgress(8_192n, 8_000_000);
    assert.match(frames(term.text(), 'snapshot')[0], /\| \?% \| 8192 keys, 8\.0 MB \| \d+ keys\/s \| ETA \?$/, 'no total yet: no percentage, no ETA');
    p.finish();
    assert.deepEqual(screenLines(term.text()), [''], 'an interrupted snapshot clears its bar');
  });

  it('log lines written meanwhile are never torn: the bar is erased before each and drawn again below it', () => {
    const { log } = fakeLog();
    const term = fakeTerminal();
    const clock = fakeClock();
    const p = new Progress(log, 0, term.stream, clock.now);
    // The follower's logger on the same terminal (pino-pretty on stdout), routed like logger.ts does.
    const logs = aroundStatusLine({ write: (chunk: string) => term.stream.write(chunk) }, term.stream);
    p.snapshotStarted();
    p.snapshotTotal(40_000n);
    clock.advance(200);
    p.snapshotProgress(4_096n, 400_000);
    logs.write('[12:00:00.000] INFO (follower-client/1): followerId: 4\n');
    const middle = screenLines(term.text());
    assert.equal(middle[0], '[12:00:00.000] INFO (follower-client/1): followerId: 4');
    assert.match(middle[1], /^snapshot {2}\|.*\| 10% of 40000 \| 4096 keys/);
    clock.advance(200);
    p.snapshotProgress(40_000n, 4_000_000);
    p.snapshotInstalled(40_000n, 4_000_000);
    logs.write('[12:00:01.000] INFO (follower-client/1): snapshot installed; streaming the log after it\n');
    assert.deepEqual(screenLines(term.text()), [
      '[12:00:00.000] INFO (follower-client/1): followerId: 4',
      '[12:00:01.000] INFO (follower-client/1): snapshot installed; streaming the log after it',
      '',
    ]);
  });

  it('a catch-up against a master that keeps writing still ends: at 100%, cleared, "caught up"', () => {
    const { log, lines } = fakeLog();
    const term = fakeTerminal();
    const clock = fakeClock();
    const p = new Progress(log, 0, term.stream, clock.now);
    p.applied(0n, 199_000n);
    for (let seq = 10_000n; seq <= 199_000n; seq += 10_000n) {
      clock.advance(150);
      p.applied(seq, seq + 10_000n + 500n); // the master is always a little ahead
    }
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 0, 'not yet at 199000');
    clock.advance(150);
    p.applied(199_500n, 200_100n);
    const drawn = frames(term.text(), 'catch-up');
    assert.match(drawn[drawn.length - 1], /\| 100% \| 199000\/199000 entries \|.*ETA 0s$/);
    assert.deepEqual(screenLines(term.text()), ['']);
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 1);
    // Far behind when the target is reached: the target moves on instead of ending there.
    p.applied(200_100n, 250_000n);
    p.applied(250_000n, 300_000n);
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 1);
    p.applied(300_000n, 300_000n);
    assert.equal(lines.filter((l) => l.msg === 'caught up').length, 2);
  });

  it('off a terminal, every snapshot\'s progress lines end with one at 100% of the master\'s count', () => {
    const { log, lines } = fakeLog();
    const clock = fakeClock();
    const p = new Progress(log, 60_000, new PassThrough(), clock.now);
    p.snapshotStarted();
    p.snapshotProgress(4_096n, 400_000); // before the count arrived: no percentage yet
    p.snapshotTotal(9_000n);
    p.snapshotProgress(8_192n, 800_000); // within the interval: not logged
    p.snapshotInstalled(9_000n, 900_000);
    const progress = lines.filter((l) => l.msg === 'progress');
    assert.deepEqual(
      progress.map((l) => [l.fields.keys, l.fields.totalKeys, l.fields.percent]),
      [
        ['4096', undefined, undefined],
        ['9000', '9000', 100],
      ],
    );
  });
});
