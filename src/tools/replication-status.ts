#!/usr/bin/env node
import { addOptions, MASTER_OPTION } from '../common/options.js';
import { cli, runCli } from './cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../wire/security.js';
import { DEFAULT_TIMEOUT_MS, parsePositiveInt } from '../common/config.js';
import type { FollowerStatus__Output } from '../wire/generated/levelreplicator/v1/FollowerStatus.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import { callUnary, masterClient } from '../wire/rpc-client.js';
import { stateFromWire } from '../wire/follower-status-state.js';

const NAME = 'replication-status';

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(
      NAME,
      '$0 [options]\n\nShows the master\'s log position, write rate and write policy and, per follower: state, applied seq,\nlag in entries and ms, time of the last acknowledgement, bytes sent, and whether its acks are durable.',
    ),
    {
      ...MASTER_OPTION,
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the status call', parse: parsePositiveInt },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the status as JSON' },
    },
  ), CLIENT_SECURITY_OPTIONS).parse();
  const address = argv.master as string;
  const client = masterClient(address, clientSecurityFromArgv(argv));
  try {
    const s = await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), argv['timeout-ms'] as number, { role: 'master', address });
    process.stdout.write(argv.json ? JSON.stringify(toJson(address, s), null, 2) + '\n' : toText(address, s));
  } finally {
    client.close();
  }
});

/** The state in the vocabulary the metrics and the README use (common/replication-state.ts). */
function stateName(f: FollowerStatus__Output): string {
  return stateFromWire(f.state);
}

function toJson(address: string, s: StatusResponse__Output) {
  return {
    master: {
      address,
      version: s.version,
      historyId: s.historyId.toString('hex'),
      epoch: s.epoch,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      timeMs: Number(s.masterTimeMs),
      writeRate: s.writeRate,
      acceptingWrites: s.acceptingWrites,
      minFollowers: s.minFollowers,
      minFollowersMaxLagMs: Number(s.minFollowersMaxLagMs),
      goodFollowers: s.goodFollowers,
      defaultAckFollowers: s.defaultAckFollowers,
      defaultAckTimeoutMs: s.defaultAckTimeoutMs,
    },
    followers: s.followers.map((f) => ({
      id: f.followerId,
      state: stateName(f),
      connected: f.connected,
      appliedSeq: f.appliedSeq,
      sentSeq: f.sentSeq,
      lagEntries: f.lagEntries,
      lagMs: Number(f.lagMs),
      lastAckTimeMs: Number(f.lastAckTimeMs),
      bytesSent: Number(f.bytesSent),
      durable: f.durable,
      address: f.address,
      readAddress: f.readAddress,
      lastError: f.lastError,
      slotLost: f.slotLost,
      snapshotting: f.snapshotting,
    })),
  };
}

function toText(address: string, s: StatusResponse__Output): string {
  const now = Number(s.masterTimeMs);
  const lines = [
    `master ${address}  version ${s.version || 'unknown'}  history ${s.historyId.toString('hex')} epoch ${s.epoch}  firstSeq ${s.firstSeq}  lastSeq ${s.lastSeq}  writes/s ${s.writeRate.toFixed(1)}`,
    `acks: ${s.defaultAckFollowers === 0 ? 'async (committed on the master)' : `wait for ${s.defaultAckFollowers} followers, up to ${s.defaultAckTimeoutMs} ms`}` +
      (s.minFollowers > 0
        ? `  min-followers ${s.minFollowers} (lag <= ${s.minFollowersMaxLagMs} ms): ${s.goodFollowers} good, ${s.acceptingWrites ? 'accepting writes' : 'REFUSING WRITES'}`
        : ''),
    '',
  ];
  if (s.followers.length === 0) {
    lines.push('no followers are registered');
  } else {
    const rows = [['FOLLOWER', 'STATE', 'APPLIED', 'LAG', 'LAG_MS', 'LAST_ACK', 'SENT_BYTES', 'SYNC', 'ADDRESS', 'READ_ADDRESS']];
    for (const f of s.followers) {
      const ack = Number(f.lastAckTimeMs);
      rows.push([
        String(f.followerId),
        stateName(f) + (f.slotLost ? ',SLOT-LOST' : ''),
        f.appliedSeq,
        f.lagEntries,
        f.lagMs,
        ack ? `${((now - ack) / 1000).toFixed(1)}s ago` : 'never',
        f.bytesSent,
        f.durable ? 'yes' : 'no',
        f.address || '-',
        f.readAddress || '-',
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
    for (const f of s.followers) {
      if (f.slotLost) lines.push(`follower ${f.followerId}: fell behind the log retention cap; it gets a snapshot when it returns`);
      if (f.lastError) lines.push(`follower ${f.followerId}: ${f.lastError}`);
    }
  }
  return lines.join('\n') + '\n';
}
