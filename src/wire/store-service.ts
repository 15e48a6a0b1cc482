import type * as grpc from '@grpc/grpc-js';
import { waitBudgetMs } from './deadline.js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { toServiceError } from './grpc-status.js';
import { seqFromWire, seqToWire } from './seq.js';
import { checkKey } from './write-validation.js';
import type { StoreHandlers } from './generated/levelreplicator/v1/Store.js';

/**
 * One consistent state of a node's data: its values and the seq they reflect, read from
 * one instant (storage's StoreView is one).
 */
export interface ConsistentView {
  /** The seq this state reflects (master: last committed; follower: applied). */
  seq(): Promise<bigint>;
  /** The value of a user key. */
  get(key: Buffer): Promise<Buffer | undefined>;
  /** The store digest of the user data (see the Digest RPC). */
  digest(): Promise<{ digest: string; keys: bigint }>;
  close(): Promise<void>;
}

/** What the Store service needs to know about a node's store. */
export interface StoreServiceSource {
  /** A consistent view of the node's data as of now; the caller closes it. */
  view(): ConsistentView;
  /** Read-your-writes: resolves true once the node's seq is at least seq, false after timeoutMs. */
  waitForSeq(seq: bigint, timeoutMs: number): Promise<boolean>;
  /** The node's seq now, and what to call the node, for the SEQ_NOT_APPLIED message. */
  currentSeq(): bigint;
  name: string;
  /** Told the outcome of each Get (for metrics): found, not_found, or an error code. */
  onGet?(outcome: string): void;
}

/** Get and Digest, served the same way by the master and by followers. */
export function storeHandlers(source: StoreServiceSource): StoreHandlers {
  return {
    Get(call, callback) {
      void (async () => {
        checkKey(call.request.key);
        const minSeq = seqFromWire(call.request.minSeq);
        if (minSeq > 0n) {
          const budget = waitBudgetMs(call);
          if (!(await source.waitForSeq(minSeq, budget))) {
            throw new ReplicatorError(
              ErrorCode.SEQ_NOT_APPLIED,
              `${source.name} has applied up to seq ${source.currentSeq()}, not yet seq ${minSeq} (waited ${budget} ms)`,
            );
          }
        }
        // One view for the value and the seq: the answer is one state's, even if a
        // follower switches to a new snapshot generation meanwhile.
        const view = source.view();
        try {
          const value = await view.get(call.request.key);
          const seq = await view.seq();
          return { found: value !== undefined, value: value ?? Buffer.alloc(0), appliedSeq: seqToWire(seq) };
        } finally {
          await view.close();
        }
      })().then(
        (res) => {
          source.onGet?.(res.found ? 'found' : 'not_found');
          callback(null, res);
        },
        (err) => {
          source.onGet?.(isReplicatorError(err) ? err.code : ErrorCode.INTERNAL);
          callback(toServiceError(err) as grpc.ServiceError);
        },
      );
    },
    Digest(_call, callback) {
      void (async () => {
        const view = source.view();
        try {
          const { digest, keys } = await view.digest();
          const seq = await view.seq();
          return { digest, seq: seqToWire(seq), keys: keys.toString() };
        } finally {
          await view.close();
        }
      })().then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },
  };
}
