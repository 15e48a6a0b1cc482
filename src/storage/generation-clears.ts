/**
 * Deletions of whole data generations run in the background (a replaced snapshot's data),
 * by generation, shared by every ReplicaStore implementation: a later clear of the same
 * generation waits for the one under way, and close() can wait for all of them.
 */
export class GenerationClears {
  private readonly running = new Map<number, Promise<void>>();

  /** Resolves once a deletion of gen already under way (if any) has ended. */
  async settled(gen: number): Promise<void> {
    await this.running.get(gen);
  }

  /** Runs clear() in the background as gen's deletion; its failure goes to onError. */
  start(gen: number, clear: () => Promise<void>, onError: (err: unknown) => void): void {
    const p = clear()
      .catch(onError)
      .finally(() => {
        if (this.running.get(gen) === p) this.running.delete(gen);
      });
    this.running.set(gen, p);
  }

  /** Resolves once every deletion under way has ended. */
  async all(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}
