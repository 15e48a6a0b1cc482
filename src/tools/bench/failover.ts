import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connectEtcd, type EtcdConnection } from '../../coordination/etcd-connection.js';
import { readLeader } from '../../coordination/leader-watch.js';
import type { LeaderRecord } from '../../coordination/records.js';
import type { MasterClient } from '../../wire/generated/levelreplicator/v1/Master.js';
import type { WriteResponse__Output } from '../../wire/generated/levelreplicator/v1/WriteResponse.js';
import { callUnary, fetchStatus, masterClient } from '../../wire/rpc-client.js';
import { NO_CLIENT_SECURITY } from '../../wire/security.js';
import { EtcdCluster, etcdBinary } from '../harness/etcd-process.js';
import type { NodeProcess } from '../harness/node-process.js';
import { sleep, waitFor } from '../harness/polling.js';
import { ANY_PORT, startFollower, startMaster } from '../harness/start-node.js';
import { LOG_WAIT_MS, type NodeSettings } from './cluster.js';

/** How long one failover may take before the bench gives up on it. */
const FAILOVER_DEADLINE_MS = 60_000;
/** A write's deadline, and its wait for the follower's acknowledgement: short, so a dead master costs little. */
const WRITE_MS = 1_000;
/** After a failed write, before the next (and a fresh look at etcd): the resolution of the measurement. */
const RETRY_MS = 5;
const WRITERS = 2;
/** Acknowledged writes of the current leader before each kill: the kill lands under load. */
const WRITES_BEFORE_KILL = 50;
const PORT_RETRY_MS = 30_000;
/** A follower this close to the leader's last seq has caught up (the writers never pause). */
const CAUGHT_UP_SLACK = 100n;

/** etcd's version line, or undefined when the binary is not there (the row is then skipped). */
export function etcdVersion(): string | undefined {
  try {
    const first = execFileSync(etcdBinary(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
    return first.replace(/^etcd Version:\s*/i, 'etcd ').trim();
  } catch {
    return undefined;
  }
}

interface Node {
  id: number;
  dir: string;
  address: string;
  proc?: NodeProcess;
}

/**
 * Writers that follow the leader etcd names, each write asking for one follower's durable
 * apply (--ack-followers 1): what a client given --etcd does. A failed write sends the next
 * one, RETRY_MS later, to the leader etcd names then, on a new channel (a channel to a dead
 * node backs off its reconnects for a second or more, which would be measured too).
 */
class Writers {
  readonly acks: { at: number; epoch: number }[] = [];
  private stopped = false;
  private readonly running: Promise<void>[] = [];
  private n = 0;

  constructor(private readonly conn: EtcdConnection) {
    for (let w = 0; w < WRITERS; w++) this.running.push(this.loop());
  }

  private async loop(): Promise<void> {
    let leader: LeaderRecord | undefined;
    let client: MasterClient | undefined;
    while (!this.stopped) {
      try {
        if (!leader) {
          leader = await readLeader(this.conn);
          client?.close();
          client = leader?.epoch !== undefined ? masterClient(leader.address) : undefined;
        }
        if (!leader || !client) throw new Error('no leader with an epoch yet');
        const key = Buffer.from(`failover-${String(this.n++).padStart(10, '0')}`);
        const c = client;
        const res = await callUnary<WriteResponse__Output>(
          (o, cb) => c.Write({ writes: [{ mutations: [{ kind: 'PUT', key, value: key }] }], ack: { followers: 1, timeoutMs: WRITE_MS } }, o, cb),
          WRITE_MS,
          { role: 'master', address: leader.address },
        );
        if (res.ackStatus === 'REPLICATED') this.acks.push({ at: performance.now(), epoch: res.epoch });
      } catch {
        leader = undefined;
        await sleep(RETRY_MS);
      }
    }
    client?.close();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }
}

/**
 * Failover time, `runs` times: a 3-member etcd from the harness; node 1 a master-server,
 * nodes 2 and 3 follower-clients (--sync), all with --etcd, --lease-ttl-s ttlSeconds and
 * --ack-followers 1. Each time, under writes that follow the leader, the leader is SIGKILLed
 * and the time until the first write acknowledged at a newer epoch is taken (ms, from the
 * kill); the killed node is then started as before and the next run waits until it has
 * rejoined and caught up. Returns the times.
 */
export async function failoverTimes(dir: string, s: NodeSettings, ttlSeconds: number, runs: number): Promise<number[]> {
  // A fresh cluster each run: nodes on an earlier run's stores would meet a new, empty etcd.
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'etcd'), { recursive: true });
  const etcd = await EtcdCluster.start({ members: 3, root: path.join(dir, 'etcd') });
  const cluster = `bench-${process.pid}`;
  const flags = ['--etcd', etcd.endpoints, '--cluster', cluster, '--lease-ttl-s', String(ttlSeconds), '--ack-followers', '1', '--sync'];
  const nodes: Node[] = [1, 2, 3].map((id) => ({ id, dir: path.join(dir, `node-${id}`), address: '' }));
  const conn = connectEtcd({ endpoints: etcd.endpoints, cluster });
  const start = async (n: Node): Promise<void> => {
    const opts = { logLevel: 'info', nodeArgs: s.nodeArgs, launcher: s.launcher, readyTimeoutMs: LOG_WAIT_MS };
    const deadline = Date.now() + PORT_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        if (n.id === 1) {
          const h = await startMaster(n.dir, n.address || ANY_PORT, { ...opts, args: ['--node-id', '1', ...flags] });
          n.proc = h.proc;
          n.address = h.address;
        } else {
          // --master names node 1 as when first started; with --etcd the leader in etcd wins.
          const h = await startFollower(n.id, n.dir, nodes[0].address, { ...opts, args: ['--listen', n.address || ANY_PORT, ...flags] });
          n.proc = h.proc;
          n.address = h.readAddress;
        }
        return;
      } catch (err) {
        // A restarted node wants its old port back; another process may hold it a while.
        if (Date.now() > deadline || !/ADDRESS_IN_USE/.test((err as Error).message)) throw err;
        await sleep(Math.min(250 * attempt, 2_000));
      }
    }
  };
  let writers: Writers | undefined;
  try {
    await start(nodes[0]);
    await nodes[0].proc!.waitForLog('failover: elected; this node becomes the master', LOG_WAIT_MS);
    await Promise.all(nodes.slice(1).map(start));
    writers = new Writers(conn);
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const leader = await settled(conn, nodes);
      const from = writers.acks.length;
      await waitFor(() => writers!.acks.length >= from + WRITES_BEFORE_KILL, `writes acknowledged by node ${leader.nodeId}`, FAILOVER_DEADLINE_MS, 10);
      const victim = nodes.find((n) => n.id === leader.nodeId)!;
      const killedAt = performance.now();
      await victim.proc!.kill('SIGKILL');
      const acks = writers.acks;
      const first = await waitFor(() => acks.slice(from).find((a) => a.epoch > leader.epoch! && a.at > killedAt), 'a write acknowledged by a new leader', FAILOVER_DEADLINE_MS, 5);
      times.push(first.at - killedAt);
      process.stderr.write(`    failover ${run + 1}/${runs}: node ${leader.nodeId} killed, first acknowledged write at epoch ${first.epoch} after ${(first.at - killedAt).toFixed(0)} ms\n`);
      await start(victim);
    }
    return times;
  } finally {
    await writers?.stop();
    conn.close();
    await Promise.all(nodes.map((n) => n.proc?.kill('SIGKILL')));
    await etcd.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until etcd names a leader with an epoch and every other node is its connected follower, caught up; returns the leader. */
async function settled(conn: EtcdConnection, nodes: Node[]): Promise<LeaderRecord & { epoch: number }> {
  return waitFor(
    async () => {
      const leader = await readLeader(conn);
      if (leader?.epoch === undefined) return undefined;
      const s = await fetchStatus(leader.address, NO_CLIENT_SECURITY, 2_000);
      if (s.epoch !== leader.epoch) return undefined;
      const others = nodes.filter((n) => n.id !== leader.nodeId);
      // Within the writes in flight: the writers do not stop between runs.
      const caughtUp = others.every((n) => s.followers.some((f) => f.followerId === n.id && f.connected && BigInt(f.appliedSeq) + CAUGHT_UP_SLACK >= BigInt(s.lastSeq)));
      return caughtUp ? (leader as LeaderRecord & { epoch: number }) : undefined;
    },
    'every node to follow the leader and catch up',
    FAILOVER_DEADLINE_MS,
    50,
  );
}
