import type * as grpc from '@grpc/grpc-js';
import { digestData } from './digest.js';
import { toServiceError } from './errors.js';
import { dataKey } from './keys.js';
import { seqToWire } from './seq.js';
import type { Store, StoreSnapshot } from './store.js';
import { checkKey } from './write-validation.js';
import type { StoreHandlers } from './generated/levelreplicator/v1/Store.js';

/** What the Store service needs to know about a node's store. */
export interface StoreView {
  db: Store;
  /** The generation of user data that reads are served from, as of snapshot. */
  genAt(snapshot: StoreSnapshot): Promise<number>;
  /** The node's seq as of snapshot (master: last committed; follower: applied). */
  seqAt(snapshot: StoreSnapshot): Promise<bigint>;
}

/** Get and Digest, served the same way by the master and by followers. */
export function storeHandlers(view: StoreView): StoreHandlers {
  return {
    Get(call, callback) {
      void (async () => {
        checkKey(call.request.key);
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
        (res) => callback(null, res),
        (err) => callback(toServiceError(err) as grpc.ServiceError),
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
