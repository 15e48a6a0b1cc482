import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { humanAgo, humanBytes, humanDuration } from '../../src/tools/human-units.js';
import { toJson, toText } from '../../src/tools/status-report.js';
import { gatherTree, treeNodes, treeText, type TreeNode } from '../../src/tools/status-tree.js';
import type { FollowerStatus__Output } from '../../src/wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../../src/wire/generated/levelreplicator/v1/StatusResponse.js';
import { FollowerMetrics } from '../../src/follower/metrics.js';
import { MasterMetrics } from '../../src/master/metrics.js';
import { FollowerRegistry } from '../../src/master/follower-registry.js';
import { WriteGate } from '../../src/master/write-gate.js';
import { AckWaiters } from '../../src/master/ack-waiters.js';
import { ErrorCode, ReplicatorError } from '../../src/common/errors.js';
import type { ReplicationLog } from '../../src/storage/interfaces.js';

const NOW = 1_700_000_000_000;

function follower(over: Partial<FollowerStatus__Output>): FollowerStatus__Output {
  return {
    followerId: 1, slotLost: false, snapshotting: false, connected: true, appliedSeq: '6', lagEntries: '30', lagMs: '1500', address: '127.0.0.1:1',
    readAddress: '127.0.0.1:2', lastAckTimeMs: String(NOW - 400), state: 'STREAMING', sentSeq: '36', bytesSent: '5000', durable: true, lastError: '',
    seen: true, sinceMs: String(NOW - 312_000), slotEntries: '30', slotBytes: String(3 * 1024 * 1024), snapshotProgress: null, ...over,
  };
}

function master(followers: FollowerStatus__Output[]): StatusResponse__Output {
  return {
    firstSeq: '7', lastSeq: '36', historyId: Buffer.from('ab', 'hex'), epoch: 1, masterTimeMs: String(NOW), followers, writeRate: 0, minFollowers: 0,
    minFollowersMaxLagMs: '0', goodFollowers: 0, acceptingWrites: true, defaultAckFollowers: 0, defaultAckTimeoutMs: 0, role: 'master', self: null, logBytes: '2048', version: '0.1.0',
    nodeId: 0, epochs: [], masterAddress: '', seenEpoch: 1,
  };
}

const row = (text: string, id: number) => text.split('\n').find((l) => l.startsWith(`${id} `))!.split(/\s{2,}/);

describe('replication-status output', () => {
  it('human units: one token each, never negative', () => {
    assert.deepEqual([0, 181, 1023, 1024, 1536, 5 * 1024 ** 3].map(humanBytes), ['0B', '181B', '1023B', '1.0KiB', '1.5KiB', '5.0GiB']);
    assert.deepEqual([0, 449, 12_345, 59_999, 312_000, 3 * 3600_000 + 5 * 60_000, 2 * 86_400_000 + 3 * 3600_000].map(humanDuration), ['0.0s', '0.4s', '12.3s', '59.9s', '5m12s', '3h05m', '2d03h']);
    assert.equal(humanDuration(-40), '0.0s', 'an ack stamped a moment after the status time is 0.0s, not -0.0s');
    assert.equal(humanAgo(NOW + 40, NOW, 'never'), '0.0s ago');
    assert.equal(humanAgo(0, NOW, 'unknown'), 'unknown');
  });

  it('the table: applied and sent side by side, since, slot holds, human units', () => {
    const text = toText('m:1', master([follower({})]));
    assert.match(text, /^master m:1 .* firstSeq 7  lastSeq 36  log 30 entries 2\.0KiB /m);
    assert.match(text, /^FOLLOWER\s+STATE\s+APPLIED\s+SENT\s+LAG\s+LAG_TIME\s+LAST_ACK\s+SINCE\s+SENT_BYTES\s+SLOT_ENTRIES\s+SLOT_BYTES\s+SYNC\s+ADDRESS\s+READ_ADDRESS$/m);
    assert.deepEqual(row(text, 1), ['1', 'streaming', '6', '36', '30', '1.5s', '0.4s ago', '5m12s ago', '4.9KiB', '30', '3.0MiB', 'yes', '127.0.0.1:1', '127.0.0.1:2']);
  });

  it('a follower known only from its slot (after a master restart) shows unknown, not never or no', () => {
    const f = follower({ connected: false, state: 'DISCONNECTED', seen: false, lastAckTimeMs: '0', sinceMs: '0', durable: false, address: '', readAddress: '' });
    const cells = row(toText('m:1', master([f])), 1);
    assert.deepEqual([cells[6], cells[7], cells[11], cells[12], cells[13]], ['unknown', 'unknown', 'unknown', 'unknown', 'unknown']);
    const json = toJson('m:1', master([f])) as { followers: Record<string, unknown>[] };
    assert.deepEqual([json.followers[0].durable, json.followers[0].lastAckTimeMs, json.followers[0].sinceMs, json.followers[0].seen], [null, null, null, false]);
    // One the master has seen and that never acknowledged: never.
    const seenNoAck = row(toText('m:1', master([follower({ lastAckTimeMs: '0', durable: false })])), 1);
    assert.deepEqual([seenNoAck[6], seenNoAck[11]], ['never', 'no']);
  });

  it('snapshot progress: a line under the table, and in JSON', () => {
    const f = follower({ state: 'SNAPSHOT', snapshotting: true, snapshotProgress: { seq: '900', keysSent: '4096', bytesSent: String(10 * 1024 * 1024), approxBytes: String(40 * 1024 * 1024) } });
    const text = toText('m:1', master([f]));
    assert.match(text, /^follower 1: snapshot at seq 900: 4096 keys, 10\.0MiB sent of about 40\.0MiB \(25%\)$/m);
    const json = toJson('m:1', master([f])) as { followers: { snapshotProgress: unknown }[] };
    assert.deepEqual(json.followers[0].snapshotProgress, { seq: '900', keysSent: '4096', bytesSent: 10 * 1024 * 1024, approxBytes: 40 * 1024 * 1024 });
  });

  it("a follower's own view", () => {
    const s: StatusResponse__Output = {
      ...master([]),
      role: 'follower',
      self: {
        followerId: 3, masterAddress: 'm:1', state: 'CATCHING_UP', appliedSeq: '10', masterLastSeq: '25', lagEntries: '15', lagMs: '2500',
        sinceMs: String(NOW - 4_000), historyId: Buffer.from('ab', 'hex'), durable: true, timeMs: String(NOW), lastError: '',
        upstreamAddress: 'm:1', epoch: 1, appliedChecksum: 0, chain: [],
      },
    };
    const text = toText('f:3', s);
    assert.match(text, /^follower 3 f:3  state catching_up since 4\.0s ago  master m:1$/m);
    assert.match(text, /^applied 10  master lastSeq 25 \(as last heard\)  lag 15 entries, 2\.5s  sync yes  history ab  checksum 00000000$/m);
    assert.deepEqual(toJson('f:3', s), {
      role: 'follower',
      follower: {
        id: 3, address: 'f:3', masterAddress: 'm:1', state: 'catching_up', sinceMs: NOW - 4_000, appliedSeq: '10', masterLastSeq: '25', lagEntries: '15', lagMs: 2500, historyId: 'ab', durable: true, timeMs: NOW, lastError: '',
        upstreamAddress: 'm:1', epoch: 1, epochs: [], seenEpoch: 1, chain: [], appliedChecksum: 0,
      },
      followers: [],
    });
    // Its place in the tree: a third line (the first two stay as they were).
    assert.match(text, /^upstream m:1  epoch 1$/m);
    assert.doesNotMatch(text, /FOLLOWER\s+STATE/, 'no downstream followers: no table');
  });

  it("a chained follower's own view: checksum, epochs after a promotion, seen epoch, chain, its downstream followers", () => {
    const s: StatusResponse__Output = {
      ...master([follower({ followerId: 4, appliedSeq: '480', sentSeq: '500', lagEntries: '20', slotEntries: '0', slotBytes: '0', address: 'p:4', readAddress: 'r:4' })]),
      role: 'follower',
      epoch: 2,
      epochs: [{ epoch: 1, firstSeq: '1' }, { epoch: 2, firstSeq: '301' }],
      seenEpoch: 3,
      nodeId: 3,
      masterAddress: 'r:1',
      self: {
        followerId: 3, masterAddress: 'r:1', state: 'STREAMING', appliedSeq: '500', masterLastSeq: '500', lagEntries: '0', lagMs: '0',
        sinceMs: String(NOW - 4_000), historyId: Buffer.from('ab', 'hex'), durable: true, timeMs: String(NOW), lastError: '',
        upstreamAddress: 'r:1', epoch: 2, appliedChecksum: 0x1a2b3c, chain: [1, 9],
      },
    };
    const text = toText('r:3', s);
    const lines = text.split('\n');
    assert.equal(lines[0], 'follower 3 r:3  state streaming since 4.0s ago  master r:1');
    assert.equal(lines[1], 'applied 500  master lastSeq 500 (as last heard)  lag 0 entries, 0.0s  sync yes  history ab  checksum 001a2b3c');
    assert.equal(lines[2], 'upstream r:1  epoch 2  epochs 1@1 2@301  seen epoch 3  chain 1 -> 9');
    // The followers streaming from it, in the master's table (its slots hold none of its log).
    assert.match(text, /^FOLLOWER\s+STATE\s+APPLIED\s+SENT\s+LAG\s/m);
    assert.deepEqual(row(text, 4).slice(0, 5), ['4', 'streaming', '480', '500', '20']);
    assert.deepEqual(row(text, 4).slice(9, 11), ['0', '0B']);
    const json = toJson('r:3', s) as { role: string; follower: Record<string, unknown>; followers: Record<string, unknown>[] };
    assert.equal(json.role, 'follower');
    assert.deepEqual(
      [json.follower.upstreamAddress, json.follower.epoch, json.follower.epochs, json.follower.seenEpoch, json.follower.chain, json.follower.appliedChecksum],
      ['r:1', 2, [{ epoch: 1, firstSeq: '1' }, { epoch: 2, firstSeq: '301' }], 3, [1, 9], 0x1a2b3c],
    );
    assert.deepEqual(json.followers.map((f) => [f.id, f.appliedSeq, f.sentSeq, f.lagEntries, f.readAddress]), [[4, '480', '500', '20', 'r:4']]);
    // One epoch, nothing newer seen, no chain (it follows a master without a node id): the line stays short.
    const plain = { ...s, epochs: [{ epoch: 2, firstSeq: '1' }], seenEpoch: 2, self: { ...s.self!, chain: [] } };
    assert.equal(toText('r:3', plain).split('\n')[2], 'upstream r:1  epoch 2');
    // A follower older than the seen epoch field (0): never shown below its own epoch.
    assert.equal((toJson('r:3', { ...plain, seenEpoch: 0 }) as { follower: { seenEpoch: number } }).follower.seenEpoch, 2);
  });

  it('the master line: node id, epoch history, seen epoch when newer; the first words as before', () => {
    const s = { ...master([follower({})]), nodeId: 7, epoch: 2, epochs: [{ epoch: 1, firstSeq: '1' }, { epoch: 2, firstSeq: '5301' }], seenEpoch: 2 };
    const text = toText('m:1', s);
    assert.match(text, /^master m:1  version 0\.1\.0  history ab epoch 2  node 7  epochs 1@1 2@5301  firstSeq 7  lastSeq 36  log 30 entries 2\.0KiB  writes\/s 0\.0$/m);
    assert.doesNotMatch(text, /seen epoch|DEPOSED/);
    assert.match(toText('m:1', master([])), /^master m:1  version 0\.1\.0  history ab epoch 1  node -  firstSeq 7 /m, 'no node id, no history (an older master)');
    const json = toJson('m:1', s) as { role: string; master: Record<string, unknown> };
    assert.equal(json.role, 'master');
    assert.deepEqual([json.master.nodeId, json.master.epochs, json.master.seenEpoch, json.master.newestEpoch], [7, [{ epoch: 1, firstSeq: '1' }, { epoch: 2, firstSeq: '5301' }], 2, 2]);
    // Found among several addresses, one of which knows of a newer epoch.
    assert.match(toText('m:1', s, { newestEpoch: 3 }), /^WARNING: a node asked knows of epoch 3, newer than this master's 2: this master is out of date/m);
  });

  it('a deposed master: role deposed, its seen epoch and the master it names', () => {
    const s = { ...master([follower({})]), role: 'deposed', nodeId: 1, epoch: 1, epochs: [{ epoch: 1, firstSeq: '1' }], seenEpoch: 2, masterAddress: 'n:2' };
    const text = toText('m:1', s);
    assert.match(text, /^deposed m:1  version 0\.1\.0  history ab epoch 1  node 1  epochs 1@1  seen epoch 2  firstSeq 7 /m);
    assert.match(text, /^DEPOSED: this master of epoch 1 knows of epoch 2 and acknowledges no write; the master is at n:2$/m);
    assert.match(text, /^1\s+streaming\s+6\s+36\s/m, 'its followers are still listed');
    const json = toJson('m:1', s) as { role: string; master: Record<string, unknown> };
    assert.deepEqual([json.role, json.master.seenEpoch, json.master.masterAddress], ['deposed', 2, 'n:2']);
    // A master reporting a newer seen epoch than its own is deposed whatever its role says.
    assert.match(toText('m:1', { ...s, role: 'master' }), /^deposed m:1 /m);
  });
});

describe('replication-status --tree', () => {
  const self = (id: number, upstream: string, applied: string, followers: FollowerStatus__Output[] = []): StatusResponse__Output => ({
    ...master(followers),
    role: 'follower',
    epoch: 2,
    seenEpoch: 2,
    self: {
      followerId: id, masterAddress: 'm:1', state: 'STREAMING', appliedSeq: applied, masterLastSeq: '36', lagEntries: '0', lagMs: '0', sinceMs: '0',
      historyId: Buffer.from('ab', 'hex'), durable: true, timeMs: String(NOW), lastError: '', upstreamAddress: upstream, epoch: 2, appliedChecksum: 0, chain: [],
    },
  });

  /** master m:1 -> follower 1 (r:1) -> follower 3 (r:3); follower 2 (r:2) does not answer; follower 4 has no read address. */
  function cluster() {
    const m = {
      ...master([
        follower({ followerId: 2, readAddress: 'r:2', appliedSeq: '20' }),
        follower({ followerId: 1, readAddress: 'r:1', appliedSeq: '36' }),
        // Follower 3's old slot on the master: it now streams from follower 1.
        follower({ followerId: 3, readAddress: 'r:3', appliedSeq: '12', connected: false, state: 'DISCONNECTED' }),
        follower({ followerId: 4, readAddress: '', appliedSeq: '5', connected: false, seen: false, state: 'DISCONNECTED' }),
      ]),
      nodeId: 9,
      epoch: 2,
    };
    const answers: Record<string, StatusResponse__Output> = {
      'r:1': self(1, 'm:1', '36', [follower({ followerId: 3, readAddress: 'r:3', appliedSeq: '30' })]),
      'r:3': self(3, 'r:1', '30'),
    };
    const asked: string[] = [];
    const fetch = async (address: string) => {
      asked.push(address);
      const a = answers[address];
      if (!a) throw new ReplicatorError(ErrorCode.FOLLOWER_UNAVAILABLE, `follower at ${address} is unavailable: connection refused`);
      return a;
    };
    return { m, fetch, asked };
  }

  it('master -> follower -> chained follower, each with applied seq and lag; unreachable nodes shown as such', async () => {
    const { m, fetch, asked } = cluster();
    const tree = await gatherTree('m:1', m, fetch);
    assert.deepEqual(asked.sort(), ['r:1', 'r:2', 'r:3'], 'each read address asked once');
    assert.equal(
      treeText(tree),
      [
        'master m:1  node 9  epoch 2  lastSeq 36',
        '├─ follower 1 r:1  streaming  applied 36  lag 0  upstream m:1  epoch 2',
        '│  └─ follower 3 r:3  streaming  applied 30  lag 6  upstream r:1  epoch 2',
        '├─ follower 2 r:2  UNREACHABLE  streaming  applied 20 (as its upstream last heard)  lag 16: follower at r:2 is unavailable: connection refused [FOLLOWER_UNAVAILABLE]',
        '└─ follower 4 address-unknown  UNREACHABLE  disconnected  applied 5 (as its upstream last heard)  lag 31: read address unknown (not connected since its upstream started)',
        '',
      ].join('\n'),
    );
  });

  it('in the text in place of the table, and in JSON with each follower\'s upstream', async () => {
    const { m, fetch } = cluster();
    const tree = await gatherTree('m:1', m, fetch);
    const text = toText('m:1', m, { tree });
    assert.doesNotMatch(text, /^FOLLOWER\s+STATE/m);
    assert.match(text, /^master m:1  version .*\n.*\n\nmaster m:1  node 9  epoch 2  lastSeq 36\n├─ follower 1 /);
    const json = toJson('m:1', m, { tree }) as { followers: { id: number; upstream: string | null }[]; tree: TreeNode };
    assert.deepEqual(json.followers.map((f) => [f.id, f.upstream]), [[2, null], [1, 'm:1'], [3, 'r:1'], [4, null]]);
    assert.deepEqual(json.tree.children.map((c) => [c.id, c.reachable, c.appliedSeq, c.lagEntries]), [[1, true, '36', '0'], [2, false, '20', '16'], [4, false, '5', '31']]);
    assert.deepEqual(json.tree.children[0].children.map((c) => [c.id, c.upstream]), [[3, 'r:1']]);
    // Through JSON and back: plain data.
    assert.deepEqual(JSON.parse(JSON.stringify(json.tree)), json.tree);
  });

  it("a follower's own view lists its downstream followers: a table, or the tree under it", async () => {
    const { fetch } = cluster();
    const one = self(1, 'm:1', '36', [follower({ followerId: 3, readAddress: 'r:3', appliedSeq: '30' })]);
    const text = toText('r:1', one);
    assert.match(text, /^upstream m:1  epoch 2$/m);
    assert.match(text, /^3\s+streaming\s+30\s+36\s/m);
    const tree = await gatherTree('r:1', one, fetch);
    assert.match(toText('r:1', one, { tree }), /^follower 1 r:1  streaming  applied 36  lag 0  upstream m:1  epoch 2\n└─ follower 3 r:3  streaming  applied 30  lag 6  upstream r:1  epoch 2$/m);
    assert.equal((toJson('r:1', one, { tree }) as { followers: { upstream: string }[] }).followers[0].upstream, 'r:1');
  });

  it('a loop of listings ends: every address is asked once', async () => {
    const asked: string[] = [];
    const a = self(1, 'r:2', '10', [follower({ followerId: 2, readAddress: 'r:2' })]);
    const b = self(2, 'r:1', '10', [follower({ followerId: 1, readAddress: 'r:1' })]);
    const tree = await gatherTree('r:1', a, async (addr) => {
      asked.push(addr);
      return addr === 'r:1' ? a : b;
    });
    assert.deepEqual(asked, ['r:2']);
    assert.deepEqual(treeNodes(tree).map((n) => n.id), [1, 2, 1]);
    assert.match(treeText(tree), /^   └─ follower 1 r:1  streaming  applied 10  lag 26  upstream r:2  epoch 2  \(shown above: these nodes list each other as followers\)$/m);
  });
});

describe('metrics: labelled counters start at 0', () => {
  const wal = { lastSeq: 0n, firstSeq: 1n, bytesFrom: async () => 0 } as unknown as ReplicationLog;

  it('on the master, for every known label value, and a known follower\'s stream counters', async () => {
    const registry = FollowerRegistry.fromSlots([{ followerId: 4, appliedSeq: 0n, lost: false }]);
    const m = new MasterMetrics({ wal, followers: registry, gate: new WriteGate({ minFollowers: 0, maxLagMs: 1000 }, registry, wal), acks: new AckWaiters(registry) });
    const text = await m.registry.metrics();
    for (const r of ['committed', 'replicated', 'replication_timeout', 'error']) assert.match(text, new RegExp(`^lr_master_write_requests_total\\{result="${r}"\\} 0$`, 'm'));
    for (const r of ['accepted', 'refused']) assert.match(text, new RegExp(`^lr_master_subscriptions_total\\{result="${r}"\\} 0$`, 'm'));
    for (const code of Object.values(ErrorCode)) assert.match(text, new RegExp(`^lr_master_errors_total\\{code="${code}"\\} 0$`, 'm'));
    assert.match(text, /^lr_master_write_duration_seconds_count\{ack="followers"\} 0$/m);
    assert.match(text, /^lr_master_streamed_entries_total\{follower="4"\} 0$/m);
    assert.match(text, /^lr_master_streamed_bytes_total\{follower="4"\} 0$/m);
    assert.match(text, /^lr_master_follower_sent_seq\{follower="4"\} 0$/m);
    assert.match(text, /^lr_master_log_retained_bytes 0$/m);
  });

  it('on a follower', async () => {
    const text = await new FollowerMetrics().registry.metrics();
    for (const code of Object.values(ErrorCode)) assert.match(text, new RegExp(`^lr_follower_errors_total\\{code="${code}"\\} 0$`, 'm'));
    for (const r of ['found', 'not_found', 'SEQ_NOT_APPLIED']) assert.match(text, new RegExp(`^lr_follower_reads_total\\{result="${r}"\\} 0$`, 'm'));
  });
});
