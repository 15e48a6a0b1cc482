import { Etcd3, type Namespace } from 'etcd3';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * One etcd client for one replicator cluster (--etcd <endpoints> --cluster <name>).
 *
 * Key layout: everything of a cluster lives under `/level-replicator/<cluster>/`, so one
 * etcd serves many clusters and `etcdctl get --prefix` shows one cluster whole:
 *
 *   /level-replicator/<cluster>/election/leader/<lease id>  a candidate for leader (etcd3's
 *       Election recipe, the same as etcd's Go client: the live key with the lowest
 *       create revision is the leader; its value is a LeaderRecord)
 *   /level-replicator/<cluster>/members/<nodeId>            a node's published position
 *       (MemberRecord), under that node's own lease
 */
export const KEY_ROOT = '/level-replicator/';
/** The election's name under the cluster's prefix; etcd3 puts it at `election/<name>/`. */
export const LEADER_ELECTION = 'leader';
export const MEMBERS_DIR = 'members/';

export interface EtcdConnectionOptions {
  /** A comma list of client URLs (http://host:port) or host:port pairs; plain gRPC (TLS to etcd is not supported yet). */
  endpoints: string;
  /** The cluster name: a key prefix of its own. */
  cluster: string;
  /**
   * The deadline of each unary call. Without one a call to a frozen etcd member would wait
   * forever; with one it fails and the client's retry policy tries another member.
   */
  requestTimeoutMs?: number;
  /** How long to wait for a connection to a member. */
  dialTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_DIAL_TIMEOUT_MS = 5_000;
/**
 * gRPC pings on an otherwise quiet connection find a member that stopped answering (its
 * watch streams would hang silently otherwise). etcd answers pings closer than its
 * --grpc-keepalive-min-time (5 s by default) with GOAWAY, so stay above it.
 */
const GRPC_KEEPALIVE_MS = 10_000;
const GRPC_KEEPALIVE_TIMEOUT_MS = 5_000;

/** The endpoints of a comma list, trimmed; INVALID_ARGUMENT for an empty list or a malformed one. */
export function parseEndpoints(list: string): string[] {
  const endpoints = list
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (endpoints.length === 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, 'the etcd endpoint list is empty');
  for (const e of endpoints) {
    // https would need client credentials this module does not take yet: refused rather
    // than silently spoken to in plain text.
    if (/^https:/i.test(e)) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `TLS to etcd is not supported yet: ${JSON.stringify(e)}`);
    // http://host:port or host:port, host a name, IPv4 or [IPv6]; nothing after the port.
    if (!/^(http:\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}\/?$/.test(e)) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `an etcd endpoint must be http://host:port or host:port, got ${JSON.stringify(e)}`);
    }
  }
  return endpoints.map((e) => e.replace(/\/$/, ''));
}

/** The cluster's key prefix; INVALID_ARGUMENT for a name that could reach into another cluster's keys. */
export function clusterPrefix(cluster: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(cluster)) {
    throw new ReplicatorError(
      ErrorCode.INVALID_ARGUMENT,
      `a cluster name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(cluster)}`,
    );
  }
  return `${KEY_ROOT}${cluster}/`;
}

/** The key of a member's record, relative to the cluster's prefix. */
export function memberKey(nodeId: number): string {
  return `${MEMBERS_DIR}${nodeId}`;
}

export class EtcdConnection {
  /** The client at the root of the key space; close() closes it. */
  readonly client: Etcd3;
  /** The same client seen through the cluster's prefix: every key of this module is relative to it. */
  readonly ns: Namespace;
  /** `/level-replicator/<cluster>/` */
  readonly prefix: string;
  private closed = false;

  constructor(readonly options: EtcdConnectionOptions) {
    const hosts = parseEndpoints(options.endpoints);
    this.prefix = clusterPrefix(options.cluster);
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.client = new Etcd3({
      hosts,
      dialTimeout: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      // Streams (watches, keepalives) live as long as they are needed: only unary calls get a deadline.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
      grpcOptions: {
        'grpc.keepalive_time_ms': GRPC_KEEPALIVE_MS,
        'grpc.keepalive_timeout_ms': GRPC_KEEPALIVE_TIMEOUT_MS,
      },
    });
    this.ns = this.client.namespace(this.prefix);
  }

  /** The election's key prefix, absolute: candidates' keys are this plus their lease id. */
  get leaderElectionPrefix(): string {
    return `${this.prefix}election/${LEADER_ELECTION}/`;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Closes the client. Close what uses it first (LeaderLease.close(), MemberPublisher.close(),
   * LeaderWatch.close()): grpc-js lets calls in progress run on after a close, so a lease's
   * keepalive stream would go on renewing it. Only the process's death (or a cut link)
   * stops a lease without telling etcd.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

/** A connection from --etcd and --cluster. */
export function connectEtcd(options: EtcdConnectionOptions): EtcdConnection {
  return new EtcdConnection(options);
}
