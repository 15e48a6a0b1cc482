import type * as grpc from '@grpc/grpc-js';
import { waitBudgetMs } from './deadline.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { toServiceError } from './grpc-status.js';
import { seqFromWire, seqToWire } from './seq.js';
import { checkKey } from './write-validation.js';
import type { StoreHandlers } from './generated/levelreplicator/v1/Store.js';

/**
 * One consistent state of a node's data (the storage layer's StoreView; declared here by
 * shape because wire does not import storage): values and seq from one instant.
 */
export interface ConsistentRead {
  /** The node's seq in this state (master: last committed; follower: applied). */
  seq(): Promise<bigint>;
  get(key: Buffer): Promise<Buffer | undefined>;
  digest(): Promise<{ digest: string; keys: bigint }>;
  close(): Promise<void>;
}

/** What the Store service needs to know about a node's store. */
export interface StoreView {
  /** A new consistent read of the data; the handler closes it. */
  view(): ConsistentRead;
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
        // One consistent read for the value and the seq: the answer is one state's, even if
        // a follower switches to a new snapshot generation meanwhile.
        const read = view.view();
        try {
          const value = await read.get(call.request.key);
          const seq = await read.seq();
          return { found: value !== undefined, value: value ?? Buffer.alloc(0), appliedSeq: seqToWire(seq) };
        } finally {
          await read.close();
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
        const read = view.view();
        try {
          const { digest, keys } = await read.digest();
          const seq = await read.seq();
          return { digest, seq: seqToWire(seq), keys: keys.toString() };
        } finally {
          await read.close();
        }
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },
  };
}
