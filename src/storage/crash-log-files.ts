import { FsLogFiles, type LogFiles } from './log-files.js';

/**
 * A power-loss model for the segment log, for tests only: real files (FsLogFiles) plus a
 * record of what has been made durable. powerLoss() then does to the directory what a
 * power cut does and kill -9 does not: every byte written since the file's last sync is
 * lost (or, with `torn`, a random prefix of it survives, as a torn write), and a file
 * created since the directory's last sync disappears. Process kills keep the page cache,
 * so only this shows whether the log's fsync ordering is right.
 *
 * `beforeSync` is the failpoint: it runs before every data sync and may throw to stop
 * the writer there (the "power goes out now" moment of a crash test).
 */
export class CrashLogFiles implements LogFiles {
  private readonly inner: FsLogFiles;
  /** Per file: bytes known durable, and whether its directory entry is durable. */
  private readonly files = new Map<string, { synced: number; durableEntry: boolean }>();
  beforeSync: ((name: string) => void) | undefined;

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
    await this.inner.syncDir();
    for (const f of this.files.values()) f.durableEntry = true;
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

  async replace(name: string, data: Buffer): Promise<void> {
    await this.inner.replace(name, data);
    // The rename is durable only once the directory is synced; model it as durable
    // (the log never relies on a replaced file for an acknowledged write).
    this.files.set(name, { synced: data.length, durableEntry: true });
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
}
