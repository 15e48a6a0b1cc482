import { ErrorCode, type ReplicatorError } from '../../src/common/errors.js';
import { askEveryStatus, chooseMaster, newestEpoch, STATUS_PROBE_TIMEOUT_MS } from '../../src/tools/master-finder.js';
import { NO_CLIENT_SECURITY } from '../../src/wire/security.js';

/** A cluster whose master can move (promotions): the addresses of all its nodes, master or not. */
export interface MasterLocator {
  nodeAddresses(): readonly string[];
}

/**
 * Where the load's writers find the master of a cluster whose master changes, as a client
 * given every node's address does (src/tools/master-finder.ts): every node is asked for
 * its Status and the one answering as master at the newest epoch is used; deposed masters
 * and masters of an older epoch are never chosen. The address is kept until a write to it
 * fails: a refusal naming another master (NOT_MASTER, STALE_EPOCH) moves the writers there,
 * any other failure makes the next write look again. Between the death of a master and a
 * promotion no node answers as master: current() then resolves undefined and the writers
 * wait a little before asking again.
 *
 * The newest epoch any node or answer named is kept too; writes carry it, so a restarted
 * old master that has not heard of its deposition yet refuses them (STALE_EPOCH) instead of
 * acknowledging writes the cluster will roll back.
 *
 * One lookup at a time: writers that find no master while a lookup is running share it.
 */
export class MasterTracker {
  private address: string | undefined;
  /** The last master written to, kept while a lookup runs: a lookup that finds another one is a move. */
  private last: string | undefined;
  private known = 0;
  private finding: Promise<string | undefined> | undefined;
  /** For the report: Status rounds, redirects followed, and moves to another master. */
  readonly stats = { lookups: 0, redirects: 0, moves: 0 };

  constructor(private readonly locator: MasterLocator) {}

  /** The newest epoch known: what the next write carries. */
  get epoch(): number {
    return this.known;
  }

  /** The master to write to now, looked up when none is known; undefined while no node answers as master. */
  current(): Promise<string | undefined> {
    if (this.address !== undefined) return Promise.resolve(this.address);
    this.finding ??= this.find().finally(() => (this.finding = undefined));
    return this.finding;
  }

  /** Raises the newest epoch known (a write answer's, an error's); never lowers it. */
  learnEpoch(epoch: number | undefined): void {
    if (epoch !== undefined && Number.isSafeInteger(epoch) && epoch > this.known) this.known = epoch;
  }

  /** A write to `address` failed: follow a refusal that names the master, otherwise look again before the next write. */
  failed(address: string, err: ReplicatorError | undefined): void {
    this.learnEpoch(Number(err?.details.epoch));
    // Another writer may have moved on already; its view is newer than this failure.
    if (this.address !== address) return;
    const named = err?.details.masterAddress;
    if ((err?.code === ErrorCode.NOT_MASTER || err?.code === ErrorCode.STALE_EPOCH) && named && named !== address) {
      this.stats.redirects++;
      this.moveTo(named);
      return;
    }
    this.address = undefined;
  }

  private async find(): Promise<string | undefined> {
    this.stats.lookups++;
    const answers = await askEveryStatus(this.locator.nodeAddresses(), NO_CLIENT_SECURITY, STATUS_PROBE_TIMEOUT_MS);
    this.learnEpoch(newestEpoch(answers));
    try {
      const found = chooseMaster(answers);
      this.moveTo(found.address);
      return found.address;
    } catch {
      return undefined; // no master now (or two at one epoch): the writers ask again shortly
    }
  }

  private moveTo(address: string): void {
    if (this.last !== undefined && this.last !== address) this.stats.moves++;
    this.address = address;
    this.last = address;
  }
}
