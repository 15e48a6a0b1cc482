import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * The durable state of one memory node: what a data directory is to the LevelDB stores.
 * A test closes a memory store and opens a new one on the same MemoryDisk to "restart"
 * the node. It is a sorted key-value store of atomic batches, holding the same key layout
 * as LevelDB (layout.ts), so the memory stores keep their data, log and metadata exactly
 * where the LevelDB ones do.
 *
 * It models two things a directory does and a Map does not:
 * - Power loss: crash() drops every write made with sync=false since the last synced
 *   write (a synced write makes every earlier write durable too, as LevelDB's
 *   write-ahead log does), and cuts off the store that had the disk open.
 * - Failures: failWrites() makes the next write (or writes matching a predicate) fail,
 *   writing nothing or, with `landed`, after the write reached the disk (as when the
 *   write-ahead log append succeeded and its fsync failed); failReopens() makes the
 *   replica's reopen after a failed write fail.
 *
 * Reads are consistent snapshots by copy-on-write: snapshot() shares the live map, and
 * the next write copies it first, so a snapshot never sees a later write.
 *
 * Invariant: live = durable + the unsynced writes, applied in order.
 */
export class MemoryDisk {
  private live = new Map<string, Buffer>();
  /** Whether a snapshot holds `live` (the next write must copy it first). */
  private liveShared = false;
  private durable = new Map<string, Buffer>();
  private unsynced: DiskOp[][] = [];
  private created = false;
  private holder: DiskHandle | undefined;
  private faults: Required<WriteFault>[] = [];
  private reopenFaults = 0;

  /** Whether a store was ever created on this disk (the directory exists). */
  get exists(): boolean {
    return this.created;
  }

  /** Opens the disk for one store: STORE_NOT_FOUND without create, DATA_DIR_LOCKED while another store has it open. */
  open({ create }: { create: boolean }): DiskHandle {
    if (!this.created && !create) throw new ReplicatorError(ErrorCode.STORE_NOT_FOUND, 'no store on this memory disk');
    if (this.holder) throw new ReplicatorError(ErrorCode.DATA_DIR_LOCKED, 'the memory disk is in use by another store');
    this.created = true;
    this.holder = new DiskHandle(this);
    return this.holder;
  }

  /**
   * Power loss: every write since the last synced one is lost, and the store that had the
   * disk open is cut off (its writes fail; its in-memory state is the dead process's).
   */
  crash(): void {
    this.live = new Map(this.durable);
    this.liveShared = false;
    this.unsynced = [];
    if (this.holder) this.holder.alive = false;
    this.holder = undefined;
  }

  /** Makes writes fail: by default the next one, writing nothing. */
  failWrites(fault: WriteFault = {}): void {
    this.faults.push({ match: fault.match ?? (() => true), times: fault.times ?? 1, landed: fault.landed ?? false });
  }

  /** Makes the next `times` reopens (ReplicaStore.ensureWritable after a failed write) fail. */
  failReopens(times = 1): void {
    this.reopenFaults += times;
  }

  clearFaults(): void {
    this.faults = [];
    this.reopenFaults = 0;
  }

  /**
   * Edits the disk behind the stores' back, durably (a torn or flipped record): only while
   * no store has it open, like editing the files of a stopped node. undefined deletes.
   */
  poke(key: Buffer, value: Buffer | undefined): void {
    if (this.holder) throw new Error('poke() while a store has the memory disk open');
    const op: DiskOp = value ? { type: 'put', key: str(key), value: Buffer.from(value) } : { type: 'del', key: str(key) };
    this.apply([op]);
    applyOps(this.durable, [op]);
  }

  /** The raw value at key as the disk holds it now (for tests that inspect the layout). */
  peek(key: Buffer): Buffer | undefined {
    const v = this.live.get(str(key));
    return v && Buffer.from(v);
  }

  /** @internal the live value at key (the disk's own buffer). */
  liveGet(key: Buffer): Buffer | undefined {
    return this.live.get(str(key));
  }

  /** @internal the state a snapshot reads. */
  share(): Map<string, Buffer> {
    this.liveShared = true;
    return this.live;
  }

  /** @internal a fault for this write, if one is armed (consumed). */
  takeFault(write: DiskWrite): Required<WriteFault> | undefined {
    const i = this.faults.findIndex((f) => f.match(write));
    if (i < 0) return undefined;
    const f = this.faults[i];
    if (--f.times <= 0) this.faults.splice(i, 1);
    return f;
  }

  /** @internal */
  takeReopenFault(): boolean {
    if (this.reopenFaults <= 0) return false;
    this.reopenFaults--;
    return true;
  }

  /** @internal lands one write: on live now, on durable once a synced write follows (or it is one). */
  land(ops: DiskOp[], sync: boolean): void {
    this.apply(ops);
    this.unsynced.push(ops);
    if (sync) this.syncAll();
  }

  /** @internal */
  release(handle: DiskHandle): void {
    if (this.holder === handle) this.holder = undefined;
  }

  private apply(ops: DiskOp[]): void {
    if (this.liveShared) {
      this.live = new Map(this.live);
      this.liveShared = false;
    }
    applyOps(this.live, ops);
  }

  private syncAll(): void {
    for (const ops of this.unsynced) applyOps(this.durable, ops);
    this.unsynced = [];
  }
}

/** Which store operation a write is (what fault predicates match on). */
export type DiskWriteKind = 'create' | 'repair' | 'commit' | 'trim' | 'slots' | 'apply' | 'pairs' | 'switch' | 'clear' | 'epochs';

/** One atomic write as a fault predicate sees it. */
export interface DiskWrite {
  kind: DiskWriteKind;
  sync: boolean;
  /** Number of put and delete operations in the batch. */
  ops: number;
}

export interface WriteFault {
  /** Which writes fail (default: any). */
  match?: (write: DiskWrite) => boolean;
  /** How many matching writes fail (default 1; Infinity for all). */
  times?: number;
  /** The write reaches the disk before it reports failure (its outcome unknown to the store). */
  landed?: boolean;
}

/** One operation of a batch as the caller gives it (copied when the write is made). */
export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer } | { type: 'clear'; gte: Buffer; lt: Buffer };

/** Keys as latin1 strings: one char per byte, so string order is LevelDB's byte order. */
type DiskOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string } | { type: 'clear'; gte: string; lt: string };

/** One store's access to the disk, from open to close (or crash). */
export class DiskHandle {
  /** False once closed or cut off by a crash. */
  alive = true;

  constructor(private readonly disk: MemoryDisk) {}

  /**
   * Writes ops as one atomic batch, landing on a later turn of the event loop (as a
   * LevelDB write completes off the main thread), so a caller sees the effect only once
   * the promise resolves; concurrent writes land in call order. Keys and values are
   * copied now: the caller may reuse its buffers at once.
   */
  async write(kind: DiskWriteKind, ops: readonly BatchOp[], { sync }: { sync: boolean }): Promise<void> {
    this.check();
    const copied = ops.map(copyOp);
    const fault = this.disk.takeFault({ kind, sync, ops: ops.length });
    await new Promise<void>((resolve) => setImmediate(resolve));
    // A crash or close meanwhile: the write never happened.
    this.check();
    if (fault?.landed) this.disk.land(copied, false);
    if (fault) throw new Error(`injected ${kind} write failure${fault.landed ? ' (after the write landed)' : ''}`);
    this.disk.land(copied, sync);
  }

  /** A reopen after a failed write (ReplicaStore.ensureWritable): throws while failReopens() says so. */
  async reopen(): Promise<void> {
    this.check();
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.disk.takeReopenFault()) throw new Error('injected reopen failure');
  }

  /**
   * The value at key as of now (the disk's own buffer: copy it before handing it out).
   * Cheaper than a snapshot, which makes the next write copy the state.
   */
  get(key: Buffer): Buffer | undefined {
    this.check();
    return this.disk.liveGet(key);
  }

  /** A consistent read-only state of the disk as of now. */
  snapshot(): DiskSnapshot {
    this.check();
    return new DiskSnapshot(this.disk.share());
  }

  close(): void {
    this.alive = false;
    this.disk.release(this);
  }

  private check(): void {
    if (!this.alive) throw new Error('the memory store is closed (or its disk crashed)');
  }
}

/** A frozen state of a disk. Returned buffers are the disk's own: callers copy what they hand out. */
export class DiskSnapshot {
  constructor(private readonly map: ReadonlyMap<string, Buffer>) {}

  get(key: Buffer): Buffer | undefined {
    return this.map.get(str(key));
  }

  has(key: Buffer): boolean {
    return this.map.has(str(key));
  }

  /** Every [key, value] with gte <= key < lt, in key order. */
  range(gte: Buffer, lt: Buffer): [Buffer, Buffer][] {
    const lo = str(gte);
    const hi = str(lt);
    const keys: string[] = [];
    for (const k of this.map.keys()) if (k >= lo && k < hi) keys.push(k);
    keys.sort();
    return keys.map((k) => [Buffer.from(k, 'latin1'), this.map.get(k)!]);
  }
}

function str(key: Buffer): string {
  return key.toString('latin1');
}

function copyOp(op: BatchOp): DiskOp {
  if (op.type === 'put') return { type: 'put', key: str(op.key), value: Buffer.from(op.value) };
  if (op.type === 'del') return { type: 'del', key: str(op.key) };
  return { type: 'clear', gte: str(op.gte), lt: str(op.lt) };
}

function applyOps(map: Map<string, Buffer>, ops: readonly DiskOp[]): void {
  for (const op of ops) {
    if (op.type === 'put') map.set(op.key, op.value);
    else if (op.type === 'del') map.delete(op.key);
    else for (const k of map.keys()) if (k >= op.gte && k < op.lt) map.delete(k);
  }
}
