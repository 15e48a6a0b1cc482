import { describe } from 'node:test';
import type { MasterStore, ReplicaStore } from '../../src/storage/interfaces.js';
import { epochConformance } from './storage-conformance-epochs.js';
import { masterLogConformance } from './storage-conformance-log.js';
import { masterStoreConformance } from './storage-conformance-master.js';
import { replicaStoreConformance } from './storage-conformance-replica.js';
import { roleChangeConformance } from './storage-conformance-roles.js';
import { servingReplicaConformance } from './storage-conformance-serving.js';

/**
 * The storage contract (src/storage/interfaces.ts) as tests: one suite that every
 * implementation of MasterStore and ReplicaStore must pass. Replica tests apply entries
 * read from a master store's log, so passing also proves that master and replica agree on
 * the entry format, the checksum chain and the digest.
 *
 * An implementation provides nodes: each test asks for fresh ones and every node is
 * disposed after its test. A LevelDB run is a temp directory per node:
 *
 *   storageConformance('LevelDB', {
 *     async newNode() {
 *       const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lr-conformance-'));
 *       return {
 *         openMaster: () => openMasterStore(dir, { create: true }),
 *         openReplica: () => openReplicaStore(dir, { create: true, sync: true }),
 *         dispose: () => fs.promises.rm(dir, { recursive: true, force: true }),
 *       };
 *     },
 *   });
 */
export interface StorageNode {
  /**
   * Opens the node's master store, creating it the first time; opening it again after
   * close() is a restart. The node is one directory (disk) for both roles: after closing
   * a replica store, openMaster() opens what it left (a promotion), and the other way round.
   */
  openMaster(): Promise<MasterStore>;
  /** Opens the node's replica store, creating it the first time; opening it again after close() is a restart. */
  openReplica(): Promise<ReplicaStore>;
  /**
   * Makes the next write of the store open on this node fail as a disk error would,
   * writing nothing. Optional: the failure tests are skipped without it.
   */
  failNextWrite?(): void;
  /** Frees the node once its test is done (its stores are closed first). */
  dispose(): Promise<void>;
}

export interface StorageImpl {
  /** A new, empty node: a directory of its own, or a disk of its own. */
  newNode(): Promise<StorageNode>;
}

export function storageConformance(name: string, impl: StorageImpl): void {
  describe(`storage conformance: ${name}`, () => {
    masterLogConformance(impl);
    masterStoreConformance(impl);
    replicaStoreConformance(impl);
    servingReplicaConformance(impl);
    epochConformance(impl);
    roleChangeConformance(impl);
  });
}
