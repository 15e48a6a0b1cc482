import { connectEtcd, DEFAULT_REQUEST_TIMEOUT_MS, type EtcdConnection } from '../coordination/etcd-connection.js';
import { listMembers } from '../coordination/member-registry.js';
import { decodeLeader, type LeaderRecord, type MemberRecord } from '../coordination/records.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { optionSource, type OptionSpec } from '../common/options.js';
import type { ClientSecurity } from '../wire/security.js';
import { lastConnectionError } from '../wire/transport-errors.js';
import { ETCD_OPTIONS } from './failover-options.js';
import { locateMaster, type LocatedMaster } from './master-locator.js';

/**
 * Clients that find the cluster through etcd (`--etcd <endpoints> --cluster <name>`,
 * issue 16 part 4): the master is the node the leader record names, the followers are the
 * member records. etcd is only where to look: a node is still used only once it answers as
 * the master of at least the epoch etcd names (reads), or a write carries that epoch so a
 * node of an older one refuses it (writes), exactly as with --master a,b,c.
 */

/** --etcd and --cluster as the clients take them (the nodes' ETCD_OPTIONS, worded for a client). */
export const CLIENT_ETCD_OPTIONS: Record<string, OptionSpec> = {
  etcd: {
    ...ETCD_OPTIONS.etcd,
    describe:
      'Find the master (and the followers) in etcd at these endpoints, comma-separated (http://host:port,...), instead of --master: the leader etcd names is used, at the epoch it names. Empty: --master is used',
  },
  cluster: ETCD_OPTIONS.cluster,
};

/** A leader that has announced its epoch: one that has not acknowledges nothing yet. */
export type ElectedLeader = Required<LeaderRecord>;

/**
 * Which of --etcd and --master a client uses, at parse time: a --master flag beats an
 * --etcd from the environment or a config file (and the reverse), both as flags is a
 * usage error, and a --cluster flag without --etcd would be silently ignored, so it is
 * refused. Leaves argv.etcd undefined unless etcd is used; `masterOption` is the option
 * naming the master in this command (cleared when etcd is used).
 */
export function chooseEtcdOrMaster(a: Record<string, unknown>, masterOption: string | undefined = 'master'): void {
  const etcdFlag = optionSource(a, 'etcd') === 'flag';
  const masterFlag = masterOption !== undefined && optionSource(a, masterOption) === 'flag';
  if (etcdFlag && masterFlag) throw usage(`give --etcd (find the master in etcd) or --${masterOption} (its address), not both`);
  if (masterFlag) a.etcd = undefined;
  if (a.etcd === undefined || a.etcd === '') {
    a.etcd = undefined;
    if (optionSource(a, 'cluster') === 'flag') throw usage('--cluster applies only with --etcd');
    return;
  }
  if (masterOption !== undefined) a[masterOption] = undefined;
}

function usage(message: string): ReplicatorError {
  return new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${message} (see --help)`);
}

/** Rejects with MASTER_UNAVAILABLE naming etcd once timeoutMs passed: etcd3 retries a call on other members, which can outlast one deadline. */
async function bounded<T>(what: string, where: string, timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `etcd at ${where} did not answer ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** etcd3's and grpc-js's wording of a failure, as one readable line ("connect ECONNREFUSED 127.0.0.1:2379"). */
function etcdReason(err: unknown): string {
  const text = String((err as Error)?.message ?? err);
  return /No connection established|Last error:/.test(text) ? lastConnectionError(text.replace(/^\d+ [A-Z_]+: /, '')) : text;
}

/** The leader's election key as etcd holds it: the oldest live key under the election prefix. */
export interface LeaderKey {
  record: LeaderRecord;
  key: string;
  /** The lease the key lives under (decimal, as etcd3 gives it). */
  leaseId: string;
}

export class EtcdDiscovery {
  /** `cluster c1 at http://...`, for messages. */
  readonly where: string;

  constructor(
    readonly conn: EtcdConnection,
    readonly cluster: string,
    readonly endpoints: string,
    /** Bound on each read from etcd. */
    readonly timeoutMs: number,
  ) {
    this.where = `${endpoints} (cluster ${cluster})`;
  }

  /** Why the last read failed, for when etcd3's circuit breaker then refuses further calls without trying. */
  private lastReason: string | undefined;

  /** Runs one etcd read within the discovery's bound; a failure is MASTER_UNAVAILABLE naming etcd. */
  async read<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await bounded(what, this.where, this.timeoutMs, Promise.resolve().then(work));
    } catch (err) {
      if (isReplicatorError(err)) throw err;
      // After a few failures etcd3 stops calling a member for 5 s; what failed before is the news.
      const breaker = /circuit breaker is open/i.test(String((err as Error)?.message));
      const reason = breaker && this.lastReason ? this.lastReason : etcdReason(err);
      if (!breaker) this.lastReason = reason;
      throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `cannot read ${what} from etcd at ${this.where}: ${reason}`, { cause: err });
    }
  }

  /** The leader key and its record (undefined: no leader now). Read as etcd3's election reads it. */
  leaderKey(): Promise<LeaderKey | undefined> {
    return this.read('the leader', async () => {
      const res = await this.conn.client.getAll().prefix(this.conn.leaderElectionPrefix).sort('Create', 'Ascend').limit(1).exec();
      const kv = res.kvs[0];
      if (!kv) return undefined;
      return { record: decodeLeader(kv.value.toString('utf8')), key: kv.key.toString('utf8'), leaseId: String(kv.lease) };
    });
  }

  /** The leader record now (undefined: none). */
  async leader(): Promise<LeaderRecord | undefined> {
    return (await this.leaderKey())?.record;
  }

  /** The leader with its epoch, or MASTER_UNAVAILABLE saying why there is none (a failover under way, most likely). */
  async electedLeader(): Promise<ElectedLeader> {
    const leader = await this.leader();
    if (!leader) throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `etcd names no leader of cluster ${this.cluster} at ${this.endpoints} (a failover may be under way, or no node runs with this --etcd and --cluster)`);
    if (leader.epoch === undefined) {
      throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `node ${leader.nodeId} at ${leader.address} was just elected in etcd and has not announced its epoch yet; try again`);
    }
    return leader as ElectedLeader;
  }

  /** Every member record (by node id); malformed ones are left out (replication-status shows them). */
  async members(): Promise<MemberRecord[]> {
    return (await this.read('the member records', () => listMembers(this.conn))).members;
  }

  close(): void {
    this.conn.close();
  }
}

/** The discovery --etcd names (undefined without it); each read from etcd bounded by min(timeoutMs, 5 s). */
export function discoveryFromArgv(argv: Record<string, unknown>, timeoutMs: number): EtcdDiscovery | undefined {
  const endpoints = argv.etcd as string | undefined;
  if (!endpoints) return undefined;
  const cluster = argv.cluster as string;
  const bound = Math.min(timeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  const conn = connectEtcd({ endpoints, cluster, requestTimeoutMs: bound, dialTimeoutMs: bound });
  return new EtcdDiscovery(conn, cluster, endpoints, bound);
}

/**
 * The master for a read or an admin call (get-data, store-digest, replication-status,
 * replication-admin drop-slot): the leader etcd names, asked for its Status as
 * master-locator.ts asks one address (a follower or deposed master there is followed once
 * to the master it names); the node used must answer as the master of at least the
 * leader's epoch in etcd, so a deposed master that missed its deposition is never used.
 */
export async function locateMasterViaEtcd(d: EtcdDiscovery, security: ClientSecurity, timeoutMs: number): Promise<LocatedMaster & { leader: ElectedLeader }> {
  const leader = await d.electedLeader();
  const found = await locateMaster([leader.address], security, timeoutMs);
  if (found.status.epoch < leader.epoch) {
    throw new ReplicatorError(
      ErrorCode.MASTER_UNAVAILABLE,
      `etcd names node ${leader.nodeId} at ${leader.address} the leader of epoch ${leader.epoch}, but the master found (${found.address}) is at epoch ${found.status.epoch}: the leader has not taken office yet; try again`,
    );
  }
  return { ...found, newestEpoch: Math.max(found.newestEpoch, leader.epoch), leader };
}
