import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterPrefix, memberKey, parseEndpoints } from '../../src/coordination/etcd-connection.js';
import { defaultMarginMs, LeaseFence } from '../../src/coordination/lease-fence.js';
import { decodeLeader, decodeMember, encodeLeader, encodeMember, type MemberRecord } from '../../src/coordination/records.js';

/** The coordination module's pure parts: the fencing arithmetic (with a clock the test moves), the etcd values, the flags. */
describe('lease fence: self-fencing arithmetic', () => {
  const clockAt = () => {
    const c = { now: 0, clock: () => c.now };
    return c;
  };

  it('the default margin is a third of the TTL, at least a second', () => {
    assert.equal(defaultMarginMs(5_000), 5_000 / 3);
    assert.equal(defaultMarginMs(2_000), 1_000);
    assert.equal(defaultMarginMs(9_000), 3_000);
  });

  it('acts only after a confirmation, and strictly before confirmed send time + TTL - margin', () => {
    const c = clockAt();
    const f = new LeaseFence(5, 1_500, c.clock);
    assert.equal(f.canAct(), false, 'nothing confirmed yet');
    assert.equal(f.remainingMs(), 0);
    c.now = 1_000;
    assert.equal(f.confirm(900), true);
    assert.equal(f.deadline(), 900 + 5_000 - 1_500);
    c.now = 4_399.999;
    assert.equal(f.canAct(), true);
    assert.ok(Math.abs(f.remainingMs() - 0.001) < 1e-6);
    c.now = 4_400;
    assert.equal(f.canAct(), false, 'the deadline itself is too late');
    assert.equal(f.remainingMs(), 0);
    assert.equal(f.earliestExpiry(), 5_900);
  });

  it('an answer to an older keepalive never moves the deadline, a newer one does', () => {
    const c = clockAt();
    const f = new LeaseFence(5, 1_000, c.clock);
    f.confirm(2_000);
    assert.equal(f.confirm(1_500), false, 'a late answer to an older keepalive');
    assert.equal(f.confirm(2_000), false);
    assert.equal(f.deadline(), 6_000);
    assert.equal(f.confirm(2_500), true);
    assert.equal(f.deadline(), 6_500);
    assert.equal(f.lastConfirmedSentAt, 2_500);
  });

  it('a revoked fence never acts again, whatever is confirmed later', () => {
    const c = clockAt();
    const f = new LeaseFence(5, undefined, c.clock);
    f.confirm(0);
    assert.equal(f.canAct(), true);
    f.revoke();
    assert.equal(f.canAct(), false);
    assert.equal(f.confirm(10), false);
    assert.equal(f.canAct(), false);
  });

  it('the deadline is always before the earliest expiry, for every valid TTL and margin', () => {
    for (const ttl of [2, 3, 5, 10, 60]) {
      for (const margin of [undefined, 1, 500, ttl * 1000 - 1]) {
        const f = new LeaseFence(ttl, margin, () => 0);
        for (const sent of [0, 123.456, 1e9]) {
          f.confirm(sent);
          assert.ok(f.deadline() < f.earliestExpiry(), `ttl ${ttl} margin ${margin} sent ${sent}`);
          assert.equal(f.canAct(f.earliestExpiry()), false);
        }
      }
    }
  });

  it('refuses TTLs etcd cannot grant and margins that leave no time or are not below the TTL', () => {
    for (const ttl of [0, -1, 1.5, NaN, 3601]) assert.throws(() => new LeaseFence(ttl, 100), /TTL/);
    assert.throws(() => new LeaseFence(1, undefined), /margin/, 'a 1 s TTL leaves no room for the 1 s default margin');
    assert.ok(new LeaseFence(1, 300));
    for (const margin of [0, -5, 5_000, 6_000, NaN]) assert.throws(() => new LeaseFence(5, margin), /margin/);
  });
});

describe('coordination records: the values kept in etcd', () => {
  const member: MemberRecord = { nodeId: 3, address: '127.0.0.1:50052', role: 'follower', appliedSeq: 2n ** 64n - 1n, appliedChecksum: 0xffff_ffff, epoch: 12, ackEligible: false };

  it('a member record round-trips, seqs beyond 2^53 exactly (as decimal strings)', () => {
    const text = encodeMember(member);
    assert.equal(JSON.parse(text).appliedSeq, '18446744073709551615');
    assert.deepEqual(decodeMember(text), member);
    const { ackEligible: _, ...noFlag } = member;
    assert.deepEqual(decodeMember(encodeMember(noFlag)), noFlag, 'ackEligible is optional');
  });

  it('a leader record round-trips, with or without its epoch', () => {
    assert.deepEqual(decodeLeader(encodeLeader({ nodeId: 1, address: 'h:1', epoch: 9 })), { nodeId: 1, address: 'h:1', epoch: 9 });
    assert.deepEqual(decodeLeader(encodeLeader({ nodeId: 1, address: 'h:1' })), { nodeId: 1, address: 'h:1' });
  });

  it('malformed values are refused, never guessed at', () => {
    const m = JSON.parse(encodeMember(member)) as Record<string, unknown>;
    const bad: [string, unknown][] = [
      ['appliedSeq', 5],
      ['appliedSeq', '-1'],
      ['appliedSeq', '18446744073709551616'],
      ['appliedSeq', '1e3'],
      ['appliedChecksum', -1],
      ['appliedChecksum', 2 ** 32],
      ['role', 'king'],
      ['epoch', 0],
      ['epoch', 2 ** 32],
      ['nodeId', 0],
      ['nodeId', '3'],
      ['address', ''],
      ['ackEligible', 'yes'],
    ];
    for (const [field, value] of bad) assert.throws(() => decodeMember(JSON.stringify({ ...m, [field]: value })), /malformed member record/, `${field}=${JSON.stringify(value)}`);
    for (const text of ['', 'null', '[]', '{"nodeId":1', '"x"']) assert.throws(() => decodeLeader(text), /malformed leader record/, text);
    assert.throws(() => decodeLeader('{"nodeId":1,"address":"h:1","epoch":1.5}'), /epoch/);
  });
});

describe('coordination flags: endpoints and cluster names', () => {
  it('parses a comma list of endpoints', () => {
    assert.deepEqual(parseEndpoints('http://127.0.0.1:2379, 127.0.0.1:22379 ,http://[::1]:2379/'), ['http://127.0.0.1:2379', '127.0.0.1:22379', 'http://[::1]:2379']);
    for (const bad of ['', ' , ', 'localhost', 'http://h', 'https://127.0.0.1:2379', 'http://h:1/path', 'h:1 h:2']) {
      assert.throws(() => parseEndpoints(bad), /etcd/, JSON.stringify(bad));
    }
  });

  it('a cluster name is one key segment of its own', () => {
    assert.equal(clusterPrefix('prod-1.eu_west'), '/level-replicator/prod-1.eu_west/');
    assert.equal(memberKey(7), 'members/7');
    for (const bad of ['', '..', '.x', 'a/b', 'a b', '-x', 'x'.repeat(129)]) assert.throws(() => clusterPrefix(bad), /cluster name/, JSON.stringify(bad));
  });
});
