import { Registry } from 'prom-client';
import * as grpc from '@grpc/grpc-js';
import { removeEndpoint, writeEndpoint } from '../common/endpoint-file.js';
import type { MasterClient } from '../wire/generated/levelreplicator/v1/Master.js';
import { bindServer, shutdownServer } from '../wire/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { startMetricsServer, type MetricsServer } from '../common/metrics-server.js';
import { replicatorProto } from '../wire/proto.js';
import { NO_CLIENT_SECURITY, type ClientSecurity, type ServerSecurity } from '../wire/security.js';
import { createServer } from '../wire/server-guard.js';
import { MASTER_SERVICE, REPLICATION_STREAM, StandardServices, STORE_SERVICE } from '../wire/standard-services.js';
import { removeNewDataDir, storeExists } from '../storage/level-store.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import { openReplicaStore } from '../storage/level-replica-store.js';
import fs from 'node:fs';
import { storeHandlers } from '../wire/store-service.js';
import { ApplyAudit } from './apply-audit.js';
import { FollowerMetrics } from './metrics.js';
import { readOnlyMasterHandlers } from './read-only-master.js';
import { followerSelf, followerStatus, type SelfSource } from './self-status.js';
import { Subscriber } from './subscriber.js';
import { followerMasterClient } from '../wire/subscribe-decoder.js';
import { ClusterView } from '../common/cluster-view.js';
import type { AdminHandlers } from '../wire/admin-handlers.js';
import type { Downstream, DownstreamFactory } from './downstream.js';

export interface FollowerOptions {
  /** More metrics to serve beside the role's own (failover, with --etcd); their names must not clash. */
  extraMetrics?: Registry;
  followerId: number;
  dataDir: string;
  /** The master (named in NOT_MASTER refusals); also the upstream when `upstream` is not given. */
  masterAddress: string;
  /** The node to stream from: the master or another follower (chained followers); default masterAddress. */
  upstream?: string;
  /** Serves Subscribe and Ack from this follower's own log to downstream followers, when given. */
  downstream?: DownstreamFactory;
  /** Heartbeats to downstream followers (default 1000 ms). */
  heartbeatIntervalMs?: number;
  listen: string;
  sync: boolean;
  /** The follower's own log keeps at least this many applied entries. */
  retainEntries?: bigint;
  /** Its segment files roll over at about this size. */
  maxSegmentBytes?: number;
  heartbeatTimeoutMs: number;
  progressIntervalMs: number;
  /** Where to serve Prometheus metrics; undefined: no metrics listener. */
  metricsListen: string | undefined;
  /** Audit mode: append every store open and applied seq range to this file (see apply-audit.ts). */
  auditFile?: string;
  log: Logger;
  /** TLS and tokens of the read service; plaintext and open when absent. */
  security?: ServerSecurity;
  /** How to connect to the master; plaintext without a token when absent. */
  masterSecurity?: ClientSecurity;
  /** What the process knows of epochs and the master (shared across role changes); default: a new one. */
  cluster?: ClusterView;
  /** The Admin service (role changes), served when given. */
  admin?: AdminHandlers;
}

export interface FollowerNode {
  readAddress: string;
  metricsAddress: string | undefined;
  store: ReplicaStore;
  subscriber: Subscriber;
  metrics: FollowerMetrics;
  close(): Promise<void>;
}

/** The follower's view before its subscriber exists (the read service binds first). */
const STARTING: SelfSource = { state: 'disconnected', stateSinceMs: 0, masterLastSeq: 0n, lastError: '', lagMs: () => 0 };

export async function startFollower(opts: FollowerOptions): Promise<FollowerNode> {
  const { log } = opts;
  const isNew = !fs.existsSync(opts.dataDir) && !storeExists(opts.dataDir);
  let opened: ReplicaStore | undefined;
  let server: grpc.Server | undefined;
  let client: MasterClient | undefined;
  let metricsServer: MetricsServer | undefined;
  let audit: ApplyAudit | undefined;
  let downstream: Downstream | undefined;
  const upstream = opts.upstream || opts.masterAddress;
  try {
    // The audit is opened before the store (which reports its open to it), so the data
    // directory is created first, as opening the store would: the audit file may be in it.
    fs.mkdirSync(opts.dataDir, { recursive: true });
    audit = opts.auditFile ? ApplyAudit.open(opts.auditFile) : undefined;
    const store: ReplicaStore = await openReplicaStore(opts.dataDir, { create: true, sync: opts.sync, hooks: audit, retainEntries: opts.retainEntries, maxSegmentBytes: opts.maxSegmentBytes, log });
    opened = store;
    log.info(
      { dataDir: opts.dataDir, appliedSeq: store.appliedSeq.toString(), historyId: store.historyId.toString('hex') },
      'follower store opened',
    );
    opts.cluster?.observe(store.log.epoch);
    const metrics = new FollowerMetrics();
    const proto = replicatorProto();
    server = createServer(opts.security?.tokens, log);
    server.addService(
      proto.Store.service,
      storeHandlers({
        view: () => store.view(),
        name: `follower ${opts.followerId}`,
        currentSeq: () => store.appliedSeq,
        waitForSeq: (seq, timeoutMs) => store.progress.wait(seq, timeoutMs),
        onGet: (outcome) => metrics.reads.inc({ result: outcome }),
      }),
    );
    // Status answers with the follower's own view, once the subscriber exists (until then: NOT_MASTER).
    let selfSource: SelfSource | undefined;
    let subscriberRef: Subscriber | undefined;
    const cluster = opts.cluster ?? new ClusterView(opts.followerId, store.log.epoch, opts.masterAddress);
    // The master as this follower knows it now (Status, NOT_MASTER, StreamStart to chained
    // followers): --master only until a stream starts. The upstream names the master in each
    // StreamStart, so a chained follower whose upstream was promoted names it, not the dead
    // master it was started with; a newer epoch heard of since (a Follow notice) wins.
    const currentMaster = () => {
      if (cluster.seenEpoch > store.log.epoch && cluster.masterAddress) return cluster.masterAddress;
      return subscriberRef?.upstreamMasterAddress || cluster.masterAddress || opts.masterAddress;
    };
    if (opts.downstream) {
      downstream = await opts.downstream({
        store,
        cluster,
        chain: () => [opts.followerId, ...(subscriberRef?.upstreamChain ?? [])],
        masterAddress: currentMaster,
        heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1_000,
        registry: metrics.registry,
        log,
      });
    }
    const ds = downstream;
    server.addService(
      proto.Master.service,
      readOnlyMasterHandlers(
        opts.followerId,
        currentMaster,
        () => metrics.errors.inc({ code: 'NOT_MASTER' }),
        () => followerStatus(followerSelf(opts.followerId, currentMaster(), opts.sync, store, selfSource ?? STARTING, upstream), store, cluster.seenEpoch),
        ds && (() => ds),
      ),
    );
    if (opts.admin) server.addService(proto.Admin.service, opts.admin);
    // Health: '' and the Store service follow the node. The Master service name stands for
    // writes, which a follower refuses (NOT_MASTER): never SERVING here. The replication
    // stream (Subscribe, Ack) is SERVING once the downstream serves subscribers (below).
    const health = new StandardServices(server, [STORE_SERVICE], [MASTER_SERVICE, REPLICATION_STREAM]);
    const readAddress = await bindServer(server, opts.listen, opts.security?.credentials);
    const tls = opts.security?.tls ?? false;

    client = followerMasterClient(upstream, opts.masterSecurity ?? NO_CLIENT_SECURITY);
    const subscriber = new Subscriber(client, store, {
      followerId: opts.followerId,
      masterAddress: upstream,
      readAddress,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      progressIntervalMs: opts.progressIntervalMs,
      durable: opts.sync,
      metrics,
      log,
      cluster,
      dataDir: opts.dataDir,
    });
    selfSource = subscriber;
    subscriberRef = subscriber;
    metrics.bind(store, subscriber);
    if (opts.metricsListen) metricsServer = await startMetricsServer(opts.extraMetrics ? Registry.merge([metrics.registry, opts.extraMetrics]) : metrics.registry, opts.metricsListen, log);
    const metricsAddress = metricsServer?.address;
    health.setAll('SERVING');
    writeEndpoint(opts.dataDir, { pid: process.pid, role: 'follower', address: readAddress, metricsAddress, startedAt: new Date().toISOString(), tls });
    log.info(
      { readAddress, metricsAddress, masterAddress: opts.masterAddress, upstream, sync: opts.sync, tls, masterTls: Boolean(opts.masterSecurity?.tls) },
      'follower serving reads',
    );
    subscriber.start();

    let closed = false;
    // A follower without a history yet refuses subscribers (FOLLOWER_UNAVAILABLE) until its
    // first stream gives it one: its log wakes waiters on every append and on a snapshot's
    // reset, and ready() never turns false again while the node runs, so this ends once set.
    const streamHealth = (async () => {
      while (ds && !closed) {
        if (ds.ready()) return health.set(REPLICATION_STREAM, 'SERVING');
        await store.log.waitForAppend(1_000);
      }
    })();

    const srv = server;
    const cli = client;
    const msrv = metricsServer;
    return {
      readAddress,
      metricsAddress,
      store,
      subscriber,
      metrics,
      async close() {
        if (closed) return;
        closed = true;
        health.setAll('NOT_SERVING');
        health.set(REPLICATION_STREAM, 'NOT_SERVING');
        store.log.wake(); // the health loop above ends
        await streamHealth;
        await subscriber.stop(); // waits for the batch being applied, if any
        store.progress.cancelAll(); // readers waiting for a seq get SEQ_NOT_APPLIED now
        cli.close();
        const closingDownstream = ds?.close(); // its streams end: the server can shut down
        await shutdownServer(srv);
        await closingDownstream;
        await msrv?.close();
        removeEndpoint(opts.dataDir);
        await store.close();
        audit?.close();
        log.info({ appliedSeq: store.appliedSeq.toString() }, 'follower stopped');
      },
    };
  } catch (err) {
    client?.close();
    await downstream?.close().catch(() => undefined);
    server?.forceShutdown();
    await metricsServer?.close();
    audit?.close();
    await opened?.close();
    if (isNew) removeNewDataDir(opts.dataDir);
    throw err;
  }
}

