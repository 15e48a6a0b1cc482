import * as grpc from '@grpc/grpc-js';
import { removeEndpoint, writeEndpoint } from '../common/endpoint-file.js';
import type { MasterClient } from '../wire/generated/levelreplicator/v1/Master.js';
import { bindServer, shutdownServer } from '../wire/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { startMetricsServer, type MetricsServer } from '../common/metrics-server.js';
import { replicatorProto } from '../wire/proto.js';
import { NO_CLIENT_SECURITY, type ClientSecurity, type ServerSecurity } from '../wire/security.js';
import { createServer } from '../wire/server-guard.js';
import { MASTER_SERVICE, StandardServices, STORE_SERVICE } from '../wire/standard-services.js';
import { openStore, removeNewDataDir, storeExists } from '../storage/level-store.js';
import fs from 'node:fs';
import { storeHandlers } from '../wire/store-service.js';
import { ApplyAudit } from './apply-audit.js';
import { Applier } from './applier.js';
import { LevelStoreView } from '../storage/level-store-view.js';
import { FollowerMetrics } from './metrics.js';
import { readOnlyMasterHandlers } from './read-only-master.js';
import { Subscriber } from './subscriber.js';
import { followerMasterClient } from '../wire/subscribe-decoder.js';

export interface FollowerOptions {
  followerId: number;
  dataDir: string;
  masterAddress: string;
  listen: string;
  sync: boolean;
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
}

export interface FollowerNode {
  readAddress: string;
  metricsAddress: string | undefined;
  applier: Applier;
  subscriber: Subscriber;
  metrics: FollowerMetrics;
  close(): Promise<void>;
}

export async function startFollower(opts: FollowerOptions): Promise<FollowerNode> {
  const { log } = opts;
  const isNew = !fs.existsSync(opts.dataDir) && !storeExists(opts.dataDir);
  const db = await openStore(opts.dataDir, { create: true });
  let server: grpc.Server | undefined;
  let client: MasterClient | undefined;
  let metricsServer: MetricsServer | undefined;
  let audit: ApplyAudit | undefined;
  try {
    audit = opts.auditFile ? ApplyAudit.open(opts.auditFile) : undefined;
    const applier = await Applier.open(db, { sync: opts.sync, audit });
    audit?.opened(applier.appliedSeq);
    log.info(
      { dataDir: opts.dataDir, appliedSeq: applier.appliedSeq.toString(), historyId: applier.historyId.toString('hex') },
      'follower store opened',
    );
    const metrics = new FollowerMetrics();
    const proto = replicatorProto();
    server = createServer(opts.security?.tokens, log);
    server.addService(
      proto.Store.service,
      storeHandlers({
        view: () => new LevelStoreView(db, 'replica'),
        name: `follower ${opts.followerId}`,
        currentSeq: () => applier.appliedSeq,
        waitForSeq: (seq, timeoutMs) => applier.progress.wait(seq, timeoutMs),
        onGet: (outcome) => metrics.reads.inc({ result: outcome }),
      }),
    );
    server.addService(
      proto.Master.service,
      readOnlyMasterHandlers(opts.followerId, opts.masterAddress, () => metrics.errors.inc({ code: 'NOT_MASTER' })),
    );
    // The follower's Master service only refuses (NOT_MASTER): never reported as serving.
    const health = new StandardServices(server, [STORE_SERVICE], [MASTER_SERVICE]);
    const readAddress = await bindServer(server, opts.listen, opts.security?.credentials);
    const tls = opts.security?.tls ?? false;

    client = followerMasterClient(opts.masterAddress, opts.masterSecurity ?? NO_CLIENT_SECURITY);
    const subscriber = new Subscriber(client, applier, {
      followerId: opts.followerId,
      masterAddress: opts.masterAddress,
      readAddress,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      progressIntervalMs: opts.progressIntervalMs,
      durable: opts.sync,
      metrics,
      log,
    });
    metrics.bind(applier, subscriber);
    if (opts.metricsListen) metricsServer = await startMetricsServer(metrics.registry, opts.metricsListen, log);
    const metricsAddress = metricsServer?.address;
    health.setAll('SERVING');
    writeEndpoint(opts.dataDir, { pid: process.pid, role: 'follower', address: readAddress, metricsAddress, startedAt: new Date().toISOString(), tls });
    log.info(
      { readAddress, metricsAddress, masterAddress: opts.masterAddress, sync: opts.sync, tls, masterTls: Boolean(opts.masterSecurity?.tls) },
      'follower serving reads',
    );
    subscriber.start();

    const srv = server;
    const cli = client;
    const msrv = metricsServer;
    let closed = false;
    return {
      readAddress,
      metricsAddress,
      applier,
      subscriber,
      metrics,
      async close() {
        if (closed) return;
        closed = true;
        health.setAll('NOT_SERVING');
        await subscriber.stop(); // waits for the batch being applied, if any
        applier.progress.cancelAll(); // readers waiting for a seq get SEQ_NOT_APPLIED now
        cli.close();
        await shutdownServer(srv);
        await msrv?.close();
        removeEndpoint(opts.dataDir);
        await db.close();
        audit?.close();
        log.info({ appliedSeq: applier.appliedSeq.toString() }, 'follower stopped');
      },
    };
  } catch (err) {
    client?.close();
    server?.forceShutdown();
    await metricsServer?.close();
    audit?.close();
    await db.close();
    if (isNew) removeNewDataDir(opts.dataDir);
    throw err;
  }
}

