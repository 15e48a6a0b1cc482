import { Registry } from 'prom-client';
import * as grpc from '@grpc/grpc-js';
import { removeEndpoint, writeEndpoint } from '../common/endpoint-file.js';
import type { ReplicatorError } from '../common/errors.js';
import { bindServer, shutdownServer } from '../wire/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { startMetricsServer, type MetricsServer } from '../common/metrics-server.js';
import { replicatorProto } from '../wire/proto.js';
import type { ServerSecurity } from '../wire/security.js';
import { createServer } from '../wire/server-guard.js';
import { MASTER_SERVICE, REPLICATION_STREAM, StandardServices, STORE_SERVICE } from '../wire/standard-services.js';
import { removeNewDataDir, storeExists } from '../storage/level-store.js';
import { openMasterStore } from '../storage/level-master-store.js';
import type { ReplicationLog } from '../storage/interfaces.js';
import fs from 'node:fs';
import { storeHandlers } from '../wire/store-service.js';
import type { AckPolicy } from './ack-policy.js';
import { AckWaiters } from './ack-waiters.js';
import { FollowerRegistry } from './follower-registry.js';
import { GroupCommitter } from './group-commit.js';
import { LogRetention, type RetentionPolicy } from './log-retention.js';
import { masterHandlers } from './master-service.js';
import { MasterMetrics } from './metrics.js';
import { WriteGate, type WriteGateOptions } from './write-gate.js';
import { WriteRate } from './write-rate.js';
import { WriteFence, type LeaseGate } from './write-fence.js';
import { ClusterView } from '../common/cluster-view.js';
import type { AdminHandlers } from '../wire/admin-handlers.js';

export interface MasterOptions {
  /** More metrics to serve beside the role's own (failover, with --etcd); their names must not clash. */
  extraMetrics?: Registry;
  dataDir: string;
  listen: string;
  sync: boolean;
  maxGroupEntries: number;
  heartbeatIntervalMs: number;
  retention: RetentionPolicy;
  /** Drop the log from a corrupt entry on and start a new history, instead of refusing to start. */
  repairLog: boolean;
  /** Log segment files roll over at about this size (default 64 MiB). */
  maxSegmentBytes?: number;
  /** Default acknowledgement policy of writes that do not name one. */
  ack: AckPolicy;
  /** --min-followers / --min-followers-max-lag-ms. */
  gate: WriteGateOptions;
  /** Where to serve Prometheus metrics; undefined: no metrics listener. */
  metricsListen: string | undefined;
  log: Logger;
  /** TLS and tokens; plaintext and open when absent. */
  security?: ServerSecurity;
  /** What the process knows of epochs and the master (shared across role changes); default: a new one. */
  cluster?: ClusterView;
  /** Promotion: start this epoch at the log's next seq, durably, before any write is taken. */
  beginEpoch?: number;
  /** The Admin service (role changes), served when given. */
  admin?: AdminHandlers;
  /** With --etcd: writes are taken and acknowledged only while this says the leader lease is held. */
  leaseGate?: LeaseGate;
  /** With --etcd: only followers this admits count for write acknowledgements (the sync set). */
  ackFilter?: (followerId: number) => boolean;
}

export interface MasterNode {
  address: string;
  metricsAddress: string | undefined;
  wal: ReplicationLog;
  registry: FollowerRegistry;
  metrics: MasterMetrics;
  fence: WriteFence;
  /**
   * Stops taking writes for at most ms (WRITES_PAUSED) and resolves with the last seq once
   * every write taken before is committed.
   */
  pauseWrites(ms: number): Promise<bigint>;
  resumeWrites(): void;
  /** Resolves when the node has stopped on its own (fatal store error). */
  failed: Promise<ReplicatorError>;
  close(): Promise<void>;
}

export const MAX_GROUP_BYTES = 32 * 1024 * 1024;

export async function startMaster(opts: MasterOptions): Promise<MasterNode> {
  const { log } = opts;
  const isNew = !fs.existsSync(opts.dataDir) && !storeExists(opts.dataDir);
  // Verifies (or with --repair-log repairs) the log; removes the directory again if it made it and that fails.
  const store = await openMasterStore(opts.dataDir, { create: true, repairLog: opts.repairLog, log, maxSegmentBytes: opts.maxSegmentBytes });
  const wal = store.log;
  const cluster = opts.cluster ?? new ClusterView(undefined);
  let closing = false;
  let server: grpc.Server | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    if (opts.beginEpoch !== undefined) {
      // Durable before the server is bound: no write of the new master is taken under the old epoch.
      await wal.beginEpoch(opts.beginEpoch, wal.lastSeq + 1n);
      log.warn({ epoch: opts.beginEpoch, firstSeq: (wal.lastSeq + 1n).toString() }, 'promoted: a new epoch starts');
    }
    cluster.observe(wal.epoch);
    const fence = new WriteFence(cluster, () => wal.epoch);
    fence.setLeaseGate(opts.leaseGate); // before the server is bound: no write is taken without the lease
    let boundAddress = '';
    log.info(
      { dataDir: opts.dataDir, epoch: wal.epoch, historyId: wal.historyId.toString('hex'), firstSeq: wal.firstSeq.toString(), lastSeq: wal.lastSeq.toString() },
      'master store opened',
    );
    let standard: StandardServices | undefined;
    let reportFailure!: (err: ReplicatorError) => void;
    const failed = new Promise<ReplicatorError>((resolve) => (reportFailure = resolve));
    const committer = new GroupCommitter(
      store,
      { sync: opts.sync, maxGroupEntries: opts.maxGroupEntries, maxGroupBytes: MAX_GROUP_BYTES },
      log,
      (err) => {
        standard?.setAll('NOT_SERVING');
        reportFailure(err);
      },
    );
    const registry = FollowerRegistry.fromSlots(await store.loadSlots());
    registry.setAckFilter(opts.ackFilter);
    const retention = new LogRetention(store, registry, opts.retention, log);
    const acks = new AckWaiters(registry);
    const gate = new WriteGate(opts.gate, registry, wal);
    const metrics = new MasterMetrics({ wal, followers: registry, gate, acks });
    const proto = replicatorProto();
    server = createServer(opts.security?.tokens, log);
    server.addService(
      proto.Master.service,
      masterHandlers({
        store,
        committer,
        registry,
        acks,
        gate,
        ackDefaults: opts.ack,
        metrics,
        writeRate: new WriteRate(),
        retention,
        heartbeatIntervalMs: opts.heartbeatIntervalMs,
        isClosing: () => closing,
        log,
        fence,
        cluster,
        address: () => boundAddress,
      }),
    );
    if (opts.admin) server.addService(proto.Admin.service, opts.admin);
    server.addService(
      proto.Store.service,
      storeHandlers({
        view: () => store.view(),
        name: 'the master',
        currentSeq: () => wal.lastSeq,
        waitForSeq: (seq, timeoutMs) => waitForCommitted(wal, seq, timeoutMs, () => closing),
      }),
    );
    // The master serves writes, reads and the replication stream: all follow the node.
    const health = new StandardServices(server, [MASTER_SERVICE, STORE_SERVICE, REPLICATION_STREAM]);
    standard = health;
    const address = await bindServer(server, opts.listen, opts.security?.credentials);
    boundAddress = address;
    if (!fence.deposed) cluster.setMaster(address);
    const tls = opts.security?.tls ?? false;
    if (opts.metricsListen) metricsServer = await startMetricsServer(opts.extraMetrics ? Registry.merge([metrics.registry, opts.extraMetrics]) : metrics.registry, opts.metricsListen, log);
    const metricsAddress = metricsServer?.address;
    health.setAll('SERVING');
    // The write service is SERVING only while writes can be acknowledged: not once deposed,
    // and with --etcd only while the lease holds, so a load balancer checking
    // levelreplicator.v1.Master sends writes to the one master that takes them.
    const writable = () => !fence.deposed && (opts.leaseGate?.canAcknowledge() ?? true);
    const showWritable = () => {
      if (!closing) health.set(MASTER_SERVICE, writable() ? 'SERVING' : 'NOT_SERVING');
    };
    showWritable();
    const healthTimer = setInterval(showWritable, 250);
    healthTimer.unref();
    retention.start();
    writeEndpoint(opts.dataDir, { pid: process.pid, role: 'master', address, metricsAddress, startedAt: new Date().toISOString(), tls });
    log.info(
      {
        address,
        metricsAddress,
        sync: opts.sync,
        tls,
        clientAuth: opts.security?.clientAuth ?? false,
        tokens: Boolean(opts.security?.tokens),
        ackFollowers: opts.ack.followers,
        minFollowers: opts.gate.minFollowers,
      },
      'master listening',
    );

    const srv = server;
    const msrv = metricsServer;
    return {
      address,
      metricsAddress,
      wal,
      registry,
      metrics,
      fence,
      async pauseWrites(ms: number) {
        fence.pause(ms);
        await committer.settled();
        return wal.lastSeq;
      },
      resumeWrites() {
        fence.resume();
      },
      failed,
      async close() {
        if (closing) return;
        closing = true;
        clearInterval(healthTimer);
        fence.close();
        health.setAll('NOT_SERVING');
        acks.releaseAll(); // waiting writes are committed: answer them with the counts so far
        wal.wake(); // parked streams see `closing` and end
        await shutdownServer(srv);
        await committer.close();
        await retention.stop();
        await msrv?.close();
        removeEndpoint(opts.dataDir);
        await store.close();
        log.info({ lastSeq: wal.lastSeq.toString() }, 'master stopped');
      },
    };
  } catch (err) {
    server?.forceShutdown();
    await metricsServer?.close();
    await store.close();
    if (isNew) removeNewDataDir(opts.dataDir);
    throw err;
  }
}

/** Read-your-writes on the master: waits until seq is committed (it may not be yet). */
async function waitForCommitted(wal: ReplicationLog, seq: bigint, timeoutMs: number, isClosing: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (wal.lastSeq < seq) {
    const left = deadline - Date.now();
    if (left <= 0 || isClosing()) return false;
    await wal.waitForAppend(left);
  }
  return true;
}
