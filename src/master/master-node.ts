import * as grpc from '@grpc/grpc-js';
import { removeEndpoint, writeEndpoint } from '../common/endpoint-file.js';
import type { ReplicatorError } from '../common/errors.js';
import { bindServer, shutdownServer } from '../common/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { replicatorProto } from '../common/proto.js';
import type { ServerSecurity } from '../common/security.js';
import { createServer } from '../common/server-guard.js';
import { openStore, removeNewDataDir, storeExists } from '../common/store.js';
import fs from 'node:fs';
import { storeHandlers } from '../common/store-service.js';
import { FollowerRegistry } from './follower-registry.js';
import { GroupCommitter, MASTER_DATA_GEN } from './group-commit.js';
import { LogRetention, type RetentionPolicy } from './log-retention.js';
import { masterHandlers } from './master-service.js';
import { lastSeqAt, Wal } from './wal.js';

export interface MasterOptions {
  dataDir: string;
  listen: string;
  sync: boolean;
  maxGroupEntries: number;
  heartbeatIntervalMs: number;
  retention: RetentionPolicy;
  /** Drop the log from a corrupt entry on and start a new history, instead of refusing to start. */
  repairLog: boolean;
  log: Logger;
  /** TLS and tokens; plaintext and open when absent. */
  security?: ServerSecurity;
}

export interface MasterNode {
  address: string;
  wal: Wal;
  /** Resolves when the node has stopped on its own (fatal store error). */
  failed: Promise<ReplicatorError>;
  close(): Promise<void>;
}

export const MAX_GROUP_BYTES = 32 * 1024 * 1024;

export async function startMaster(opts: MasterOptions): Promise<MasterNode> {
  const { log } = opts;
  const isNew = !fs.existsSync(opts.dataDir) && !storeExists(opts.dataDir);
  const db = await openStore(opts.dataDir, { create: true });
  let closing = false;
  let server: grpc.Server | undefined;
  try {
    const wal = await Wal.open(db, { repairLog: opts.repairLog, log });
    log.info(
      { dataDir: opts.dataDir, historyId: wal.historyId.toString('hex'), firstSeq: wal.firstSeq.toString(), lastSeq: wal.lastSeq.toString() },
      'master store opened',
    );
    let reportFailure!: (err: ReplicatorError) => void;
    const failed = new Promise<ReplicatorError>((resolve) => (reportFailure = resolve));
    const committer = new GroupCommitter(
      db,
      wal,
      { sync: opts.sync, maxGroupEntries: opts.maxGroupEntries, maxGroupBytes: MAX_GROUP_BYTES },
      log,
      reportFailure,
    );
    const registry = await FollowerRegistry.load(db);
    const retention = new LogRetention(db, wal, registry, opts.retention, log);
    const proto = replicatorProto();
    server = createServer(opts.security?.tokens, log);
    server.addService(
      proto.Master.service,
      masterHandlers({ wal, committer, registry, heartbeatIntervalMs: opts.heartbeatIntervalMs, isClosing: () => closing, log }),
    );
    server.addService(
      proto.Store.service,
      storeHandlers({ db, genAt: async () => MASTER_DATA_GEN, seqAt: (snapshot) => lastSeqAt(db, snapshot) }),
    );
    const address = await bindServer(server, opts.listen, opts.security?.credentials);
    const tls = opts.security?.tls ?? false;
    writeEndpoint(opts.dataDir, { pid: process.pid, role: 'master', address, startedAt: new Date().toISOString(), tls });
    retention.start();
    log.info({ address, sync: opts.sync, tls, clientAuth: opts.security?.clientAuth ?? false, tokens: Boolean(opts.security?.tokens) }, 'master listening');

    const srv = server;
    return {
      address,
      wal,
      failed,
      async close() {
        if (closing) return;
        closing = true;
        wal.wake(); // parked streams see `closing` and end
        await shutdownServer(srv);
        await committer.close();
        await retention.stop();
        removeEndpoint(opts.dataDir);
        await db.close();
        log.info({ lastSeq: wal.lastSeq.toString() }, 'master stopped');
      },
    };
  } catch (err) {
    server?.forceShutdown();
    await db.close();
    if (isNew) removeNewDataDir(opts.dataDir);
    throw err;
  }
}
