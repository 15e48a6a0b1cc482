/**
 * What one node process knows about the cluster beyond its own log: the newest epoch it
 * has heard of (from its own history, an upstream, a subscriber, a client or an operator)
 * and where the master of that epoch is, when known. Shared by whichever role the process
 * holds, so it survives role changes.
 *
 * Invariant: seenEpoch never decreases.
 */
export class ClusterView {
  private seen: number;
  private master: string;
  private readonly listeners = new Set<(epoch: number, masterAddress: string) => void>();

  constructor(
    /** --node-id of a master, the follower id of a follower; undefined: none. */
    readonly nodeId: number | undefined,
    seenEpoch = 1,
    masterAddress = '',
  ) {
    this.seen = seenEpoch;
    this.master = masterAddress;
  }

  get seenEpoch(): number {
    return this.seen;
  }

  /** The master of the newest epoch known, '' when not known. */
  get masterAddress(): string {
    return this.master;
  }

  /**
   * Records an epoch someone reported, with its master's address when they named it.
   * Returns true when it is newer than any seen before (listeners are told then).
   */
  observe(epoch: number, masterAddress = ''): boolean {
    if (epoch < this.seen) return false;
    if (epoch === this.seen) {
      if (masterAddress && !this.master) this.master = masterAddress;
      return false;
    }
    this.seen = epoch;
    this.master = masterAddress;
    for (const l of this.listeners) l(epoch, masterAddress);
    return true;
  }

  /** The master of the current epoch is known to be at this address (e.g. this node, once promoted). */
  setMaster(masterAddress: string): void {
    this.master = masterAddress;
  }

  /** Called with every newer epoch; returns the function that stops it. */
  onNewer(listener: (epoch: number, masterAddress: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
