import * as grpc from '@grpc/grpc-js';
import { removeEndpoint, writeEndpoint } from '../common/endpoint-file.js';
import type { MasterClient } from '../common/generated/levelreplicator/v1/Master.js';
import { bindServer, shutdownServer } from '../common/grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { replicatorProto } from '../common/proto.js';
import { masterClient } from '../common/rpc-client.js';
import type { ClientSecurity, ServerSecurity } from '../common/security.js';
import { createServer } from '../common/server-guard.js';
import { openStore, removeNewDataDir, storeExists } from '../common/store.js';
import fs from 'node:fs';
import { storeHandlers } from '../common/store-service.js';
import { Applier, appliedSeqAt, dataGenAt } from './applier.js';
import { Subscriber } from './subscriber.js';

export interface FollowerOptions {
  followerId: number;
  dataDir: string;
  masterAddress: string;
  listen: string;
  sync: boolean;
  heartbeatTimeoutMs: number;
  progressIntervalMs: number;
  log: Logger;
  /** TLS and tokens of the read service; plaintext and open when absent. */
  security?: ServerSecurity;
  /** How to connect to the master; plaintext without a token when absent. */
  masterSecurity?: ClientSecurity;
}

export interface FollowerNode {
  readAddress: string;
  applier: Applier;
  subscriber: Subscriber;
  close(): Promise<void>;
}

export async function startFollower(opts: FollowerOptions): Promise<FollowerNode> {
  const { log } = opts;
  const isNew = !fs.existsSync(opts.dataDir) && !storeExists(opts.dataDir);
  const db = await openStore(opts.dataDir, { create: true });
  let server: grpc.Server | undefined;
  let client: MasterClient | undefined;
  try {
    const applier = await Applier.open(db, { sync: opts.sync });
    log.info(
      { dataDir: opts.dataDir, appliedSeq: applier.appliedSeq.toString(), historyId: applier.historyId.toString('hex') },
      'follower store opened',
    );
    const proto = replicatorProto();
    server = createServer(opts.security?.tokens, log);
    server.addService(
      proto.Store.service,
      storeHandlers({ db, genAt: (snapshot) => dataGenAt(db, snapshot), seqAt: (snapshot) => appliedSeqAt(db, snapshot) }),
    );
    const readAddress = await bindServer(server, opts.listen, opts.security?.credentials);
    const tls = opts.security?.tls ?? false;
    writeEndpoint(opts.dataDir, { pid: process.pid, role: 'follower', address: readAddress, startedAt: new Date().toISOString(), tls });
    log.info({ readAddress, masterAddress: opts.masterAddress, tls, masterTls: Boolean(opts.masterSecurity?.tls) }, 'follower serving reads');

    client = masterClient(opts.masterAddress, opts.masterSecurity);
    const subscriber = new Subscriber(client, db, applier, {
      followerId: opts.followerId,
      masterAddress: opts.masterAddress,
      readAddress,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      progressIntervalMs: opts.progressIntervalMs,
      log,
    });
    subscriber.start();

    const srv = server;
    const cli = client;
    let closed = false;
    return {
      readAddress,
      applier,
      subscriber,
      async close() {
        if (closed) return;
        closed = true;
        await subscriber.stop(); // waits for the batch being applied, if any
        cli.close();
        await shutdownServer(srv);
        removeEndpoint(opts.dataDir);
        await db.close();
        log.info({ appliedSeq: applier.appliedSeq.toString() }, 'follower stopped');
      },
    };
  } catch (err) {
    client?.close();
    server?.forceShutdown();
    await db.close();
    if (isNew) removeNewDataDir(opts.dataDir);
    throw err;
  }
}
