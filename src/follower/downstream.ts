import type { Registry } from 'prom-client';
import type { ClusterView } from '../common/cluster-view.js';
import type { Logger } from '../common/logger.js';
import type { ReplicaStore } from '../storage/interfaces.js';
import type { StatusResponse } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import type { MasterServiceHandlers } from '../wire/master-handlers.js';

/**
 * Chained followers: what a follower needs to serve Subscribe and Ack from its own log to
 * downstream followers. Built outside src/follower (src/node/downstream.ts, with the
 * master's subscription code), handed in through FollowerOptions.downstream.
 */
export interface DownstreamContext {
  store: ReplicaStore;
  cluster: ClusterView;
  /** Node ids from this follower up to the master: [its id, ...its upstream's chain]. */
  chain: () => number[];
  /** The master as this follower knows it (StreamStart.master_address, else --master). */
  masterAddress: () => string;
  heartbeatIntervalMs: number;
  /** The follower's metrics registry: the downstream's stream metrics are served with its own. */
  registry: Registry;
  log: Logger;
}

export interface Downstream {
  subscribe: MasterServiceHandlers['Subscribe'];
  ack: MasterServiceHandlers['Ack'];
  /**
   * Whether Subscribe is served now (else subscribers are refused and retry): the
   * follower's log has a history. Invariant: once true it stays true while the node runs.
   */
  ready(): boolean;
  /** The downstream followers and the log's bounds, for Status. */
  status(): Promise<Pick<StatusResponse, 'followers' | 'firstSeq' | 'lastSeq' | 'historyId' | 'epoch'>>;
  /** Ends the streams (they see the node closing) and saves the slots. */
  close(): Promise<void>;
}

export type DownstreamFactory = (ctx: DownstreamContext) => Promise<Downstream>;
