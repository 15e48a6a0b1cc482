import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { clientSecurityFromArgv } from '../wire/security.js';
import { fetchStatus } from '../wire/rpc-client.js';
import { adminMaster } from './drop-slot.js';
import { switchoverViaEtcd } from './etcd-switchover.js';
import { follow, formatPositions, pauseWrites, positions, promoteAt, settledPositions, promotionRefusal, waitForMaster } from './role-commands.js';

/** How long a promoted node may take to open its store as the master's. */
const BECOME_MASTER_MS = 30_000;

function nodesOf(argv: Record<string, unknown>): string[] {
  const list = String(argv.nodes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--nodes must list the addresses of the nodes (followers, and the old master if it may come back)');
  return list;
}

/** replication-admin promote <id>: makes follower <id> the master of a new epoch. */
export async function promoteCommand(argv: Record<string, unknown>): Promise<void> {
  const security = clientSecurityFromArgv(argv);
  const id = argv.id as number;
  const nodes = nodesOf(argv);
  const all = await settledPositions(nodes, security);
  process.stderr.write(formatPositions(all));
  const target = all.find((p) => p.role === 'follower' && p.id === id);
  if (!target) throw new ReplicatorError(ErrorCode.FOLLOWER_UNAVAILABLE, `follower ${id} is not among the reachable --nodes`);
  const refusal = promotionRefusal(all, target);
  if (refusal && !argv.force) throw new ReplicatorError(ErrorCode.PROMOTION_REFUSED, `${refusal}; --force promotes it anyway`);
  const minEpoch = Math.max(...all.map((p) => p.epoch));
  const res = await promoteAt(target.address, { minAppliedSeq: 0n, notify: nodes.filter((a) => a !== target.address), minEpoch }, security, argv['timeout-ms'] as number);
  await waitForMaster(target.address, res.epoch, security, BECOME_MASTER_MS);
  if (argv.json) {
    process.stdout.write(JSON.stringify({ promoted: id, address: target.address, epoch: res.epoch, firstSeq: res.firstSeq, appliedSeq: res.appliedSeq }) + '\n');
    return;
  }
  process.stdout.write(`follower ${id} at ${target.address} is the master of epoch ${res.epoch} from seq ${res.firstSeq}; the other nodes were told to follow it\n`);
}

/**
 * replication-admin switchover --to <id>: pauses writes on the master, waits until follower
 * <id> has applied everything, promotes it and makes the old master and the other nodes
 * follow it. On a timeout or a refusal, writes resume on the old master.
 */
export async function switchoverCommand(argv: Record<string, unknown>): Promise<void> {
  // --etcd: the nodes' roles are decided there; the handover goes through etcd too.
  if (argv.etcd !== undefined) return switchoverViaEtcd(argv);
  const security = clientSecurityFromArgv(argv);
  const master = await adminMaster(argv, 'replication-admin');
  const id = argv.to as number;
  const timeoutMs = argv['timeout-ms'] as number;
  const nodes = nodesOf(argv);
  const all = await positions(nodes, security);
  const target = all.find((p) => p.role === 'follower' && p.id === id);
  if (!target) throw new ReplicatorError(ErrorCode.FOLLOWER_UNAVAILABLE, `follower ${id} is not among the reachable --nodes`);
  const started = process.hrtime.bigint();
  const paused = await pauseWrites(master, { timeoutMs }, security, timeoutMs);
  const lastSeq = BigInt(paused.lastSeq);
  let promoted;
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await fetchStatus(target.address, security, 2_000, 'follower');
      if (s.self && BigInt(s.self.appliedSeq) >= lastSeq) break;
      if (Date.now() > deadline) throw new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `follower ${id} did not apply seq ${lastSeq} within ${timeoutMs} ms; writes resume on the master`);
      await new Promise((r) => setTimeout(r, 5));
    }
    promoted = await promoteAt(target.address, { minAppliedSeq: lastSeq, notify: [master, ...nodes.filter((a) => a !== target.address && a !== master)], minEpoch: paused.epoch }, security, timeoutMs);
  } catch (err) {
    await pauseWrites(master, { resume: true }, security, timeoutMs).catch(() => undefined);
    throw err;
  }
  // The old master is deposed at once (writes get NOT_MASTER naming the new master), then rejoins.
  await follow(master, { upstream: target.address, epoch: promoted.epoch, masterAddress: target.address, epochFirstSeq: BigInt(promoted.firstSeq) }, security, timeoutMs).catch(() => undefined);
  await waitForMaster(target.address, promoted.epoch, security, BECOME_MASTER_MS);
  const pauseMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (argv.json) {
    process.stdout.write(JSON.stringify({ master: target.address, followerId: id, epoch: promoted.epoch, firstSeq: promoted.firstSeq, handedOverSeq: lastSeq.toString(), pauseMs: Math.round(pauseMs) }) + '\n');
    return;
  }
  process.stdout.write(`switched over to follower ${id} at ${target.address}: master of epoch ${promoted.epoch} from seq ${promoted.firstSeq}; writes were paused for ${pauseMs.toFixed(0)} ms\n`);
}
