import { it, type TestContext } from 'node:test';
import type { MasterStore, ReplicaStore } from '../../src/storage/interfaces.js';
import type { StorageImpl, StorageNode } from './storage-conformance.js';

// ---- Per-test nodes and stores ------------------------------------------------------

interface Closable {
  close(): Promise<void>;
}

/** A test's nodes and open stores, all closed and disposed when the test ends. */
export class Env {
  private readonly nodes: StorageNode[] = [];
  private readonly open = new Set<Closable>();

  constructor(private readonly impl: StorageImpl) {}

  async node(): Promise<StorageNode> {
    const n = await this.impl.newNode();
    this.nodes.push(n);
    return n;
  }

  async master(node?: StorageNode): Promise<MasterStore> {
    return this.track(await (node ?? (await this.node())).openMaster());
  }

  async replica(node?: StorageNode): Promise<ReplicaStore> {
    return this.track(await (node ?? (await this.node())).openReplica());
  }

  async close(store: Closable): Promise<void> {
    this.open.delete(store);
    await store.close();
  }

  async dispose(): Promise<void> {
    for (const s of this.open) await s.close().catch(() => undefined);
    for (const n of this.nodes) await n.dispose();
  }

  private track<T extends Closable>(store: T): T {
    this.open.add(store);
    return store;
  }
}

/** A test of the suite: it gets an Env of its own, disposed when the test ends. */
export function conformanceTest(impl: StorageImpl) {
  return (title: string, fn: (env: Env, t: TestContext) => Promise<void>) =>
    it(title, async (t) => {
      const env = new Env(impl);
      try {
        await fn(env, t);
      } finally {
        await env.dispose();
      }
    });
}
