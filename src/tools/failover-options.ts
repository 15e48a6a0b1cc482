import { connectEtcd, type EtcdConnection } from '../coordination/etcd-connection.js';
import { DEFAULT_LEADER_TTL_SECONDS } from '../coordination/leader-lease.js';
import { checkTtlSeconds } from '../coordination/lease-fence.js';
import { readLeader } from '../coordination/leader-watch.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { OptionSpec } from '../common/options.js';
import { FailoverAgent } from '../node/failover-agent.js';
import { clientSecurityFromArgv } from '../wire/security.js';
import { FailoverMetrics } from '../node/failover-metrics.js';
import type { NodeRunner, RunnerConfig } from '../node/node-runner.js';

/** --etcd and --cluster: every command that finds nodes through etcd takes them. */
export const ETCD_OPTIONS: Record<string, OptionSpec> = {
  etcd: {
    type: 'string',
    default: '',
    env: 'LR_ETCD',
    describe: 'etcd endpoints, comma-separated (http://host:port,...): leader election, failover and discovery through etcd. Empty: no etcd, nothing changes',
  },
  cluster: { type: 'string', default: 'default', env: 'LR_CLUSTER', describe: 'The cluster\'s name in etcd (a key prefix, so one etcd serves many clusters); only with --etcd' },
};

/** What a node (master-server, follower-client) also takes for failover. */
export const FAILOVER_OPTIONS: Record<string, OptionSpec> = {
  ...ETCD_OPTIONS,
  'lease-ttl-s': {
    type: 'number',
    default: DEFAULT_LEADER_TTL_SECONDS,
    env: 'LR_LEASE_TTL_S',
    describe: 'With --etcd: the leader lease\'s TTL in seconds. A dead master is replaced about this long after it stops renewing; a master that cannot renew stops acknowledging writes max(1 s, TTL/3) before its lease can expire',
    parse: (v: unknown) => checkTtlSeconds(Number(v)),
  },
};

/** The connection --etcd and --cluster name, or undefined without --etcd. */
export function etcdFromArgv(argv: Record<string, unknown>): EtcdConnection | undefined {
  const endpoints = argv.etcd as string | undefined;
  if (!endpoints) return undefined;
  return connectEtcd({ endpoints, cluster: argv.cluster as string });
}

/** A node's failover: the agent, its connection, and what the node runner needs from it. */
export interface NodeFailover {
  agent: FailoverAgent;
  conn: EtcdConnection;
  runner: Pick<RunnerConfig, 'leaseGate' | 'ackFilter' | 'extraMetrics' | 'coordinated'>;
  /** The leader's address when one leads now (a follower starts by following it). */
  leaderAddress: string | undefined;
  attach(node: NodeRunner): Promise<void>;
  close(): Promise<void>;
}

/** Failover for a node with --etcd; undefined without it. Needs the node's id. */
export async function nodeFailover(argv: Record<string, unknown>, nodeId: number | undefined, log: Logger): Promise<NodeFailover | undefined> {
  const conn = etcdFromArgv(argv);
  if (!conn) return undefined;
  if (nodeId === undefined) {
    conn.close();
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--etcd needs --node-id: every node of a failover cluster may become a follower, and a follower needs an id');
  }
  const metrics = new FailoverMetrics();
  const agent = new FailoverAgent({
    conn,
    nodeId,
    ttlSeconds: argv['lease-ttl-s'] as number,
    ackFollowers: () => argv['ack-followers'] as number,
    log: log.child({ failover: argv.cluster }),
    metrics,
    chained: Boolean(argv.upstream),
    clientSecurity: clientSecurityFromArgv(argv),
  });
  let leaderAddress: string | undefined;
  try {
    leaderAddress = (await readLeader(conn))?.address;
  } catch (err) {
    conn.close();
    throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `cannot read the leader from etcd at ${String(argv.etcd)}: ${(err as Error).message}`);
  }
  return {
    agent,
    conn,
    leaderAddress,
    runner: { leaseGate: agent.gate, ackFilter: agent.ackFilter, extraMetrics: metrics.registry, coordinated: `etcd cluster ${String(argv.cluster)}` },
    attach: (node) => agent.attach(node),
    async close() {
      await agent.close().catch(() => undefined);
      conn.close();
    },
  };
}

/** How long a node with --etcd may take to exit once it has closed everything. */
const EXIT_AFTER_CLOSE_MS = 1_000;

/**
 * Call once a node with --etcd has closed its role and its failover (its stores are
 * closed): the process then exits within a second even if something is left open. A
 * campaign that lost leaves etcd3 watching the winner's key (etcd3's Campaign cannot
 * cancel that watch, and closing the client lets calls in progress run on), which would
 * keep the process alive after SIGTERM for as long as the winner leads. The timer is
 * unref'd: a process with nothing left open exits at once, as before.
 */
export function exitOnceClosed(): void {
  setTimeout(() => process.exit(), EXIT_AFTER_CLOSE_MS).unref();
}
