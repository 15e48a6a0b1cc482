#!/usr/bin/env node
import { addOptions, cli, runCli } from '../common/cli.js';
import { CLIENT_SECURITY_OPTIONS, clientSecurityFromArgv, withSecurityOptions } from '../common/security.js';
import { DEFAULT_MASTER_ADDRESS, DEFAULT_TIMEOUT_MS, parseAddress, parsePositiveInt } from '../common/config.js';
import type { StatusResponse__Output } from '../common/generated/levelreplicator/v1/StatusResponse.js';
import { callUnary, masterClient } from '../common/rpc-client.js';

const NAME = 'replication-status';

await runCli(NAME, async () => {
  const argv = await withSecurityOptions(addOptions(
    cli(NAME, '$0 [options]\n\nShows the master\'s log position and, per follower: connected or not, applied seq, lag in entries and ms.'),
    {
      master: { type: 'string', default: DEFAULT_MASTER_ADDRESS, env: 'LR_MASTER_ADDRESS', describe: 'Address of the master' },
      'timeout-ms': { type: 'number', default: DEFAULT_TIMEOUT_MS, env: 'LR_TIMEOUT_MS', describe: 'Deadline of the status call' },
      json: { type: 'boolean', default: false, env: 'LR_JSON', describe: 'Print the status as JSON' },
    },
  ), CLIENT_SECURITY_OPTIONS).parse();
  const address = parseAddress(argv.master);
  const client = masterClient(address, clientSecurityFromArgv(argv));
  try {
    const timeoutMs = parsePositiveInt(argv['timeout-ms'], '--timeout-ms');
    const s = await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), timeoutMs, { role: 'master', address });
    const now = Number(s.masterTimeMs);
    if (argv.json) {
      process.stdout.write(
        JSON.stringify(
          {
            master: { address, historyId: s.historyId.toString('hex'), epoch: s.epoch, firstSeq: s.firstSeq, lastSeq: s.lastSeq, timeMs: now },
            followers: s.followers.map((f) => ({
              id: f.followerId,
              connected: f.connected,
              appliedSeq: f.appliedSeq,
              lagEntries: f.lagEntries,
              lagMs: Number(f.lagMs),
              address: f.address,
              readAddress: f.readAddress,
              lastAckTimeMs: Number(f.lastAckTimeMs),
              slotLost: f.slotLost,
              snapshotting: f.snapshotting,
            })),
          },
          null,
          2,
        ) + '\n',
      );
      return;
    }
    const lines = [
      `master ${address}  history ${s.historyId.toString('hex')} epoch ${s.epoch}  firstSeq ${s.firstSeq}  lastSeq ${s.lastSeq}`,
      '',
    ];
    if (s.followers.length === 0) {
      lines.push('no followers are registered');
    } else {
      const rows = [['FOLLOWER', 'STATE', 'APPLIED', 'LAG', 'LAG_MS', 'LAST_ACK', 'READ_ADDRESS']];
      for (const f of s.followers) {
        const ack = Number(f.lastAckTimeMs);
        rows.push([
          String(f.followerId),
          [f.connected ? (f.snapshotting ? 'snapshot' : 'connected') : 'disconnected', f.slotLost ? 'SLOT-LOST' : ''].filter(Boolean).join(','),
          f.appliedSeq,
          f.lagEntries,
          f.lagMs,
          ack ? `${((now - ack) / 1000).toFixed(1)}s ago` : 'never',
          f.readAddress || '-',
        ]);
      }
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    client.close();
  }
});
