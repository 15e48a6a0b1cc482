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
  /**
   * Renames `from` to `to`, replacing `to` if it exists, atomically: the directory holds
   * the old `to` or the new one, never neither. Durable once syncDir() resolves.
   */
  rename(from: string, to: string): Promise<void>;
  /**
   * Replaces `name` atomically and durably with data (replaceDurably): once it resolves the
   * new content survives a power loss; if it is cut short, the old content stays.
   */
  replace(name: string, data: Buffer): Promise<void>;
  /** Drops cached handles (the log is closing). */
  close(): Promise<void>;
}

/** The suffix of a file being written to replace another; one left at open is a replace cut short. */
export const TEMP_SUFFIX = '.tmp';

/**
 * The atomic replace every LogFiles does, in terms of its other operations (so the
 * power-loss model sees each step): the data goes to `<name>.tmp`, which is fdatasynced,
 * renamed over `name`, and the directory is fsynced. A crash before the rename leaves the
 * old file (and a temp file, possibly torn, that the log removes at open); after it, the
 * new one. Only the directory sync makes the rename survive a power loss, so it resolves
 * after that.
 */
export async function replaceDurably(files: LogFiles, name: string, data: Buffer): Promise<void> {
  const tmp = `${name}${TEMP_SUFFIX}`;
  await files.create(tmp);
  await files.write(tmp, data, 0, data.length, 0);
  await files.sync(tmp);
  await files.rename(tmp, name);
  await files.syncDir();
}

/** Read handles kept open at most (see FsLogFiles.closeIdleReaders). */
const MAX_READERS = 16;

interface Reader {
  fh: fs.promises.FileHandle;
  /** Reads in flight on it (it is not closed while any is). */
  users: number;
  /** Dropped (its file removed) while in use: closed when the last read ends. */
  closeWhenIdle?: boolean;
}

/**
 * LogFiles on a real directory. File handles are kept open per file (the active segment
 * is written through one handle for its whole life; reads of older segments reuse theirs).
 */
export class FsLogFiles implements LogFiles {
  private readonly handles = new Map<string, fs.promises.FileHandle>();
  private readonly dsyncHandles = new Map<string, fs.promises.FileHandle>();
  /** Read handles by file, least recently used first. */
  private readonly readers = new Map<string, Reader>();

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
    const r = await this.reader(name);
    r.users++;
    try {
      const { bytesRead } = await r.fh.read(buf, offset, length, position);
      return bytesRead;
    } finally {
      r.users--;
      if (r.closeWhenIdle && r.users === 0) void r.fh.close().catch(() => undefined);
      this.closeIdleReaders();
    }
  }

  /** A read handle of the file, kept for the next read (most recently used last). */
  private async reader(name: string): Promise<Reader> {
    let r = this.readers.get(name);
    if (r) {
      this.readers.delete(name);
      this.readers.set(name, r);
      return r;
    }
    const fh = await fs.promises.open(path.join(this.dir, name), 'r');
    r = this.readers.get(name); // another read may have opened it meanwhile
    if (r) {
      await fh.close();
      return r;
    }
    r = { fh, users: 0 };
    this.readers.set(name, r);
    return r;
  }

  /**
   * Keeps at most MAX_READERS read handles: a follower catching up from far back reads
   * segment after segment, and a handle kept per segment could exhaust the process's file
   * descriptors on a long log. Only idle handles are closed, least recently used first.
   */
  private closeIdleReaders(): void {
    for (const [name, r] of this.readers) {
      if (this.readers.size <= MAX_READERS) return;
      if (r.users > 0) continue;
      this.readers.delete(name);
      void r.fh.close().catch(() => undefined);
    }
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

  async rename(from: string, to: string): Promise<void> {
    await this.drop(from);
    await this.drop(to);
    await fs.promises.rename(path.join(this.dir, from), path.join(this.dir, to));
  }

  replace(name: string, data: Buffer): Promise<void> {
    return replaceDurably(this, name, data);
  }

  async close(): Promise<void> {
    const all = [...this.handles.values(), ...this.dsyncHandles.values(), ...[...this.readers.values()].map((r) => r.fh)];
    this.handles.clear();
    this.dsyncHandles.clear();
    this.readers.clear();
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
    const r = this.readers.get(name);
    if (r) {
      this.readers.delete(name);
      // A read in flight finishes first (an unlinked file stays readable through its handle).
      if (r.users === 0) await r.fh.close();
      else r.closeWhenIdle = true;
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
