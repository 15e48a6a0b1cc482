import { FsLogFiles, replaceDurably, type LogFiles } from './log-files.js';

/**
 * A power-loss model for the segment log, for tests only: real files (FsLogFiles) plus a
 * record of what has been made durable. powerLoss() then does to the directory what a
 * power cut does and kill -9 does not: every byte written since the file's last sync is
 * lost (or, with `torn`, a random prefix of it survives, as a torn write), a file
 * created since the directory's last sync disappears, and a rename since the directory's
 * last sync is undone (the file renamed over gets its durable content back). Process
 * kills keep the page cache, so only this shows whether the log's fsync ordering is right.
 *
 * `beforeSync` is the failpoint: it runs before every data sync and may throw to stop
 * the writer there (the "power goes out now" moment of a crash test); `beforeSyncDir`
 * the same before every directory sync.
 */
export class CrashLogFiles implements LogFiles {
  private readonly inner: FsLogFiles;
  /** Per file: bytes known durable, and whether its directory entry is durable. */
  private readonly files = new Map<string, { synced: number; durableEntry: boolean }>();
  /**
   * Files renamed over since the directory's last sync, with the durable content they had
   * (undefined: there was no durable file by that name): what a power loss brings back.
   */
  private readonly renamedOver = new Map<string, Buffer | undefined>();
  beforeSync: ((name: string) => void) | undefined;
  beforeSyncDir: (() => void) | undefined;

  constructor(dir: string) {
    this.inner = new FsLogFiles(dir);
  }

  async ensureDir(): Promise<void> {
    await this.inner.ensureDir();
    // Files already there when the model starts count as durable.
    for (const name of await this.inner.list()) {
      if (!this.files.has(name)) this.files.set(name, { synced: await this.inner.size(name), durableEntry: true });
    }
  }

  list(): Promise<string[]> {
    return this.inner.list();
  }

  size(name: string): Promise<number> {
    return this.inner.size(name);
  }

  read(name: string, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(name, buf, offset, length, position);
  }

  async create(name: string): Promise<void> {
    await this.inner.create(name);
    this.files.set(name, { synced: 0, durableEntry: false });
  }

  write(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    return this.inner.write(name, data, offset, length, position);
  }

  async sync(name: string): Promise<void> {
    this.beforeSync?.(name);
    await this.inner.sync(name);
    const f = this.files.get(name);
    if (f) f.synced = await this.inner.size(name);
  }

  /** A durable write is a write followed by a sync (the failpoint runs between: written, not yet durable). */
  async writeDurable(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    await this.inner.write(name, data, offset, length, position);
    await this.sync(name);
  }

  async syncDir(): Promise<void> {
    this.beforeSyncDir?.();
    await this.inner.syncDir();
    for (const f of this.files.values()) f.durableEntry = true;
    this.renamedOver.clear();
  }

  async truncate(name: string, length: number): Promise<void> {
    await this.inner.truncate(name, length);
    const f = this.files.get(name);
    if (f && f.synced > length) f.synced = length;
  }

  async remove(name: string): Promise<void> {
    await this.inner.remove(name);
    this.files.delete(name);
  }

  /**
   * A rename is durable only once the directory is synced: until then a power loss gives
   * `to` back its old durable content (or removes it, if it had none) and loses `from`.
   */
  async rename(from: string, to: string): Promise<void> {
    if (!this.renamedOver.has(to)) {
      const old = this.files.get(to);
      this.renamedOver.set(to, old?.durableEntry ? await this.readPrefix(to, old.synced) : undefined);
    }
    await this.inner.rename(from, to);
    const moved = this.files.get(from);
    this.files.delete(from);
    this.files.set(to, { synced: moved?.synced ?? 0, durableEntry: false });
  }

  /** The same steps as FsLogFiles, each through this model. */
  replace(name: string, data: Buffer): Promise<void> {
    return replaceDurably(this, name, data);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /**
   * The power cut: truncates every file to its synced length (keeping a random part of
   * the unsynced bytes when torn) and removes files whose creation was never made durable.
   * Call it after the log using these files is abandoned (its process "died").
   */
  async powerLoss({ torn = false, random = Math.random }: { torn?: boolean; random?: () => number } = {}): Promise<{ lostBytes: number }> {
    await this.inner.close();
    let lostBytes = 0;
    // Renames the directory never made durable are undone first.
    for (const [name, old] of this.renamedOver) {
      lostBytes += await this.inner.size(name).catch(() => 0);
      await this.inner.remove(name);
      this.files.delete(name);
      if (old === undefined) continue;
      await this.inner.create(name);
      await this.inner.write(name, old, 0, old.length, 0);
      await this.inner.sync(name);
      this.files.set(name, { synced: old.length, durableEntry: true });
    }
    this.renamedOver.clear();
    for (const name of await this.inner.list()) {
      const f = this.files.get(name);
      const size = await this.inner.size(name);
      if (!f || !f.durableEntry) {
        lostBytes += size;
        await this.inner.remove(name);
        this.files.delete(name);
        continue;
      }
      const keep = torn ? f.synced + Math.floor(random() * (size - f.synced + 1)) : f.synced;
      if (keep < size) {
        lostBytes += size - keep;
        await this.inner.truncate(name, keep);
      }
    }
    await this.inner.close();
    return { lostBytes };
  }

  private async readPrefix(name: string, length: number): Promise<Buffer> {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = await this.inner.read(name, b, got, length - got, got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  }
}
