import type * as grpc from '@grpc/grpc-js';
import { waitBudgetMs } from './deadline.js';
import { digestData } from '../storage/digest.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { toServiceError } from './grpc-status.js';
import { dataKey } from '../storage/layout.js';
import { seqFromWire, seqToWire } from './seq.js';
import type { Store, StoreSnapshot } from '../storage/level-store.js';
import { checkKey } from './write-validation.js';
import type { StoreHandlers } from './generated/levelreplicator/v1/Store.js';

/** What the Store service needs to know about a node's store. */
export interface StoreView {
  db: Store;
  /** The generation of user data that reads are served from, as of snapshot. */
  genAt(snapshot: StoreSnapshot): Promise<number>;
  /** The node's seq as of snapshot (master: last committed; follower: applied). */
  seqAt(snapshot: StoreSnapshot): Promise<bigint>;
  /** Read-your-writes: resolves true once the node's seq is at least seq, false after timeoutMs. */
  waitForSeq(seq: bigint, timeoutMs: number): Promise<boolean>;
  /** The node's seq now, and what to call the node, for the SEQ_NOT_APPLIED message. */
  currentSeq(): bigint;
  name: string;
  /** Told the outcome of each Get (for metrics): found, not_found, or an error code. */
  onGet?(outcome: string): void;
}

/** Get and Digest, served the same way by the master and by followers. */
export function storeHandlers(view: StoreView): StoreHandlers {
  return {
    Get(call, callback) {
      void (async () => {
        checkKey(call.request.key);
        const minSeq = seqFromWire(call.request.minSeq);
        if (minSeq > 0n) {
          const budget = waitBudgetMs(call);
          if (!(await view.waitForSeq(minSeq, budget))) {
            throw new ReplicatorError(
              ErrorCode.SEQ_NOT_APPLIED,
              `${view.name} has applied up to seq ${view.currentSeq()}, not yet seq ${minSeq} (waited ${budget} ms)`,
            );
          }
        }
        // One snapshot for the generation, the value and the seq: the answer is one state's,
        // even if a follower switches to a new snapshot generation meanwhile.
        const snapshot = view.db.snapshot();
        try {
          const value = await view.db.get(dataKey(await view.genAt(snapshot), call.request.key), { snapshot });
          const seq = await view.seqAt(snapshot);
          return { found: value !== undefined, value: value ?? Buffer.alloc(0), appliedSeq: seqToWire(seq) };
        } finally {
          await snapshot.close();
        }
      })().then(
        (res) => {
          view.onGet?.(res.found ? 'found' : 'not_found');
          callback(null, res);
        },
        (err) => {
          view.onGet?.(isReplicatorError(err) ? err.code : ErrorCode.INTERNAL);
          callback(toServiceError(err) as grpc.ServiceError);
        },
      );
    },
    Digest(_call, callback) {
      void (async () => {
        const snapshot = view.db.snapshot();
        try {
          const { digest, keys } = await digestData(view.db, snapshot, await view.genAt(snapshot));
          const seq = await view.seqAt(snapshot);
          return { digest, seq: seqToWire(seq), keys: keys.toString() };
        } finally {
          await snapshot.close();
        }
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },
  };
}
