import fs from 'node:fs';
import path from 'node:path';

/**
 * The few file operations a segment log needs, behind an interface so that a test can put
 * a power-loss model under the real log code (crash-log-files.ts): the log never calls
 * node:fs itself. Names are plain file names inside one directory.
 */
export interface LogFiles {
  /** Creates the directory if missing (and makes its entry durable). */
  ensureDir(): Promise<void>;
  /** File names in the directory (any order). */
  list(): Promise<string[]>;
  size(name: string): Promise<number>;
  /** Reads up to length bytes at position into buf; returns the count read. */
  read(name: string, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Creates (or truncates) a file for appending. */
  create(name: string): Promise<void>;
  /** Writes bytes at position of an existing file. */
  write(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void>;
  /** fdatasync: the file's bytes written so far survive a power loss. */
  sync(name: string): Promise<void>;
  /**
   * write() and sync() in one: the bytes (and every byte written before them) survive a
   * power loss once it resolves.
   */
  writeDurable(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void>;
  /** Makes file creations, renames and removals in the directory durable. */
  syncDir(): Promise<void>;
  truncate(name: string, length: number): Promise<void>;
  remove(name: string): Promise<void>;
  /** Replaces `name` atomically with data (written, synced, renamed into place). */
  replace(name: string, data: Buffer): Promise<void>;
  /** Drops cached handles (the log is closing). */
  close(): Promise<void>;
}

/**
 * LogFiles on a real directory. File handles are kept open per file (the active segment
 * is written through one handle for its whole life; reads of older segments reuse theirs).
 */
export class FsLogFiles implements LogFiles {
  private readonly handles = new Map<string, fs.promises.FileHandle>();
  private readonly dsyncHandles = new Map<string, fs.promises.FileHandle>();

  constructor(readonly dir: string) {}

  async ensureDir(): Promise<void> {
    if (fs.existsSync(this.dir)) return;
    await fs.promises.mkdir(this.dir, { recursive: true });
    await syncPath(path.dirname(this.dir));
  }

  list(): Promise<string[]> {
    return fs.promises.readdir(this.dir);
  }

  async size(name: string): Promise<number> {
    return (await fs.promises.stat(path.join(this.dir, name))).size;
  }

  async read(name: string, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    const fh = await this.handle(name);
    const { bytesRead } = await fh.read(buf, offset, length, position);
    return bytesRead;
  }

  async create(name: string): Promise<void> {
    await this.drop(name);
    const fh = await fs.promises.open(path.join(this.dir, name), 'w+');
    this.handles.set(name, fh);
  }

  async write(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    const fh = await this.handle(name);
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await fh.write(data, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  async sync(name: string): Promise<void> {
    await (await this.handle(name)).datasync();
  }

  /**
   * Through a second handle opened with O_DSYNC: each write returns once its data is on
   * disk, in one system call and one thread-pool round trip, where write() then
   * fdatasync() take two of each (measured: see docs/performance.md, rows 1c and 1d).
   */
  async writeDurable(name: string, data: Buffer, offset: number, length: number, position: number): Promise<void> {
    let fh = this.dsyncHandles.get(name);
    if (!fh) {
      fh = await fs.promises.open(path.join(this.dir, name), fs.constants.O_RDWR | fs.constants.O_DSYNC);
      this.dsyncHandles.set(name, fh);
    }
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await fh.write(data, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  syncDir(): Promise<void> {
    return syncPath(this.dir);
  }

  async truncate(name: string, length: number): Promise<void> {
    await (await this.handle(name)).truncate(length);
  }

  async remove(name: string): Promise<void> {
    await this.drop(name);
    await fs.promises.rm(path.join(this.dir, name), { force: true });
  }

  async replace(name: string, data: Buffer): Promise<void> {
    await this.drop(name);
    const tmp = path.join(this.dir, `${name}.tmp`);
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, path.join(this.dir, name));
  }

  async close(): Promise<void> {
    const all = [...this.handles.values(), ...this.dsyncHandles.values()];
    this.handles.clear();
    this.dsyncHandles.clear();
    await Promise.all(all.map((h) => h.close().catch(() => undefined)));
  }

  private async handle(name: string): Promise<fs.promises.FileHandle> {
    let fh = this.handles.get(name);
    if (!fh) {
      fh = await fs.promises.open(path.join(this.dir, name), 'r+');
      // Another call may have opened it meanwhile: keep one handle per file.
      const other = this.handles.get(name);
      if (other) {
        await fh.close();
        return other;
      }
      this.handles.set(name, fh);
    }
    return fh;
  }

  private async drop(name: string): Promise<void> {
    for (const map of [this.handles, this.dsyncHandles]) {
      const fh = map.get(name);
      if (!fh) continue;
      map.delete(name);
      await fh.close();
    }
  }
}

/** fsync of a directory (its entries: created, renamed, removed files). */
async function syncPath(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
