import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chainsFrom, decodeEntry, entryChecksum, GENESIS_CHECKSUM } from '../../src/wire/entry-codec.js';
import { dataRange, userKeyOf } from '../../src/storage/layout.js';
import { openStore } from '../../src/storage/level-store.js';
import { APPLIED_SEQ_KEY } from '../../src/storage/layout.js';
import { FsLogFiles } from '../../src/storage/log-files.js';
import { SegmentLog } from '../../src/storage/segment-log.js';
import { writeRaw } from '../../src/tools/bench/raw-level.js';
import type { WriteRequest__Output } from '../../src/wire/generated/levelreplicator/v1/WriteRequest.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { entryLagsMs, parseTrace, summarizeLags } from '../../src/tools/bench/lag.js';
import { TickReplies } from '../../src/tools/bench/redis-wait.js';
import { RespReplyParser } from '../../src/tools/bench/resp.js';
import { median, quantileSorted, relativeSpread } from '../../src/tools/bench/stats.js';
import { formatCount, formatRatio, renderTable } from '../../src/tools/bench/table.js';
import { encodeWriteRequest, KEY_BYTES, Workload } from '../../src/tools/bench/workload.js';

describe('benchmark helpers', () => {
  it('medians, nearest-rank quantiles and spreads', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    const sorted = Array.from({ length: 1_000 }, (_, i) => i + 1);
    assert.equal(quantileSorted(sorted, 0.5), 500);
    assert.equal(quantileSorted(sorted, 0.99), 990);
    assert.equal(quantileSorted(sorted, 0.999), 999);
    assert.equal(quantileSorted([7], 0.99), 7);
    assert.equal(relativeSpread([90, 100, 110]), 0.1);
    assert.ok(Number.isNaN(relativeSpread([5])));
  });

  it('joins master and follower traces into per-entry lag', () => {
    // Master commits seqs 1..4 at t=1000 µs and 5..6 at t=2000 µs; the follower applies 1..5 at 3000 µs and 6 at 2500 µs later.
    const master = parseTrace('4 1000\n6 2000\n');
    const follower = parseTrace('5 3000\n6 5500\n7'); // a torn last line is ignored
    assert.deepEqual(follower.map((p) => p.seq), [5, 6]);
    const lags = entryLagsMs(master, follower, 1, 6);
    assert.deepEqual([...lags], [2, 2, 2, 2, 1, 3.5]);
    const s = summarizeLags(lags);
    assert.equal(s.p50, 2);
    assert.equal(s.max, 3.5);
    assert.equal(entryLagsMs(master, follower, 1, 9).length, 6, 'seqs the follower never reached are left out');
  });

  it('encodes Write requests that proto-loader decodes to the workload, with distinct 16-byte keys', () => {
    const w = new Workload(100);
    const decode = replicatorProto().Master.service.Write.requestDeserialize as (b: Buffer) => WriteRequest__Output;
    const req = decode(encodeWriteRequest(w, 1_000, 300));
    assert.equal(req.writes.length, 300);
    const keys = new Set<string>();
    for (const [i, write] of req.writes.entries()) {
      assert.equal(write.mutations.length, 1);
      const m = write.mutations[0];
      assert.equal(m.kind, 'PUT');
      assert.equal(m.key.length, KEY_BYTES);
      assert.ok(m.key.equals(w.key(1_000 + i)));
      assert.ok(m.value.equals(w.value(1_000 + i)));
      keys.add(m.key.toString());
    }
    assert.equal(keys.size, 300);
  });

  it('times pipelined Redis ticks from their replies, split anywhere', () => {
    const done: [number, number][] = [];
    const r = new TickReplies((sets, ms) => done.push([sets, ms]));
    r.sent(2, 0); // +OK +OK :1
    r.sent(1, 5); // +OK :1
    r.received(Buffer.from('+OK\r\n+O'), 1);
    r.received(Buffer.from('K\r\n:'), 2);
    assert.deepEqual(done, [], 'WAIT has not answered yet');
    r.received(Buffer.from('1\r\n+OK\r\n'), 3);
    assert.deepEqual(done, [[2, 3]]);
    assert.equal(r.pending, 1);
    r.received(Buffer.from(':1\r\n'), 9);
    assert.deepEqual(done, [[2, 3], [1, 4]]);
    assert.equal(r.pending, 0);
    assert.throws(() => r.received(Buffer.from('+OK\r\n'), 10), /no request waiting/);
    const e = new TickReplies(() => undefined);
    e.sent(1, 0);
    assert.throws(() => e.received(Buffer.from('-ERR wrong\r\n'), 1), /Redis answered an error: ERR wrong/);
  });

  it('parses Redis replies split anywhere: simple, integer, error, bulk and null bulk strings', () => {
    const stream = Buffer.from('+PONG\r\n:42\r\n-ERR no\r\n$11\r\nrole:master\r\n$-1\r\n$0\r\n\r\n');
    for (const cut of [1, 3, 7, 20, stream.length]) {
      const p = new RespReplyParser();
      const got: (string | Error)[] = [];
      for (let i = 0; i < stream.length; i += cut) got.push(...p.push(stream.subarray(i, i + cut)));
      assert.deepEqual(got.map((r) => (r instanceof Error ? `E:${r.message}` : r)), ['PONG', '42', 'E:Redis answered an error: ERR no', 'role:master', '', ''], `cut every ${cut} bytes`);
    }
    assert.throws(() => new RespReplyParser().push(Buffer.from('*1\r\n')), /unexpected Redis reply type/);
  });

  it('renders aligned tables and readable numbers', () => {
    const text = renderTable(['a', 'value'], [['x', '1'], ['long', '1,234']], ['left', 'right']);
    assert.equal(text, ['a     value', '----  -----', 'x         1', 'long  1,234'].join('\n'));
    assert.equal(formatCount(1234567.8), '1,234,568');
    assert.equal(formatRatio(0.456), '0.46x');
    assert.equal(formatRatio(NaN), '—');
  });

  it("raw segment and once modes write what the nodes would: a chained log and data with its position, data with the applied seq", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-raw-'));
    const w = new Workload(40);
    try {
      const master = await openStore(path.join(dir, 'm'), { create: true });
      const follower = await openStore(path.join(dir, 'f'), { create: true });
      try {
        await writeRaw(master, w, 'segment', 2_500, 1_200, path.join(dir, 'm-log'));
        await writeRaw(follower, w, 'once', 2_500, 1_200, path.join(dir, 'f-log'));
        const index = new Map(Array.from({ length: 2_500 }, (_, j) => [w.key(j).toString('hex'), j]));
        for (const db of [master, follower]) {
          let i = 0;
          for await (const [k, v] of db.iterator(dataRange(0))) {
            const j = index.get(userKeyOf(k).toString('hex'));
            assert.ok(j !== undefined && v.equals(w.value(j)));
            i++;
          }
          assert.equal(i, 2_500);
        }
        // The segment log verifies on open (chained from genesis) and holds every entry in order.
        const log = await SegmentLog.open(new FsLogFiles(path.join(dir, 'm-log')));
        let seq = 0n;
        let checksum = GENESIS_CHECKSUM;
        for (const entry of await log.read(1n, 10_000, 1 << 30)) {
          const e = decodeEntry(entry);
          assert.equal(e.seq, ++seq);
          assert.ok(chainsFrom(entry, checksum), `entry ${seq} chains from the one before`);
          assert.ok(e.mutations[0].key.equals(w.key(Number(seq) - 1)));
          checksum = entryChecksum(entry);
        }
        await log.close();
        assert.equal(fs.existsSync(path.join(dir, 'f-log')), false, 'once mode keeps no log');
        assert.equal(seq, 2_500n);
        assert.equal((await follower.get(APPLIED_SEQ_KEY))?.readBigUInt64BE(), 2_500n);
        assert.equal((await master.get(APPLIED_SEQ_KEY))?.readBigUInt64BE(), 2_500n);
      } finally {
        await master.close();
        await follower.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
