import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openMasterStore } from '../../src/storage/level-master-store.js';
import { openReplicaStore } from '../../src/storage/level-replica-store.js';
import type { StoreFaults } from '../../src/storage/store-faults.js';
import { storageConformance } from '../helpers/storage-conformance.js';

/**
 * The storage contract against the LevelDB stores, the product: a node is a temp
 * directory, and failures are injected through the stores' fault seam (the write fails
 * before it reaches LevelDB, exactly as a LevelDB error would).
 */
for (const sync of [true, false]) {
  storageConformance(`LevelDB (replica sync ${sync})`, {
    async newNode() {
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lr-conformance-'));
      let failNext = false;
      const faults: StoreFaults = {
        before(op) {
          // An apply's log append and store write run at once: the fault fails both (this tick).
          if ((op === 'append' || op === 'write') && failNext) {
            setImmediate(() => (failNext = false));
            throw new Error('injected write failure');
          }
        },
        after() {},
      };
      return {
        openMaster: () => openMasterStore(dir, { create: true, faults }),
        openReplica: () => openReplicaStore(dir, { create: true, sync, faults }),
        failNextWrite: () => {
          failNext = true;
        },
        dispose: () => fs.promises.rm(dir, { recursive: true, force: true }),
      };
    },
  });
}
