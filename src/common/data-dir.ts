import fs from 'node:fs';
import { ErrorCode, ReplicatorError } from './errors.js';

/**
 * A server adopts a data directory only if it does not exist yet, is empty, or already
 * holds a store. A mistyped --data-dir (`/`, `$HOME`, `../..`) then fails with one clear
 * line instead of scattering a store and an endpoint file among unrelated files. (Follower
 * ids, the only part of a data directory path that comes from an id, are checked by
 * parseFollowerId; nothing that arrives over the network ever becomes a path.)
 */
export function checkDataDir(dataDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dataDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new ReplicatorError(ErrorCode.NOT_A_DATA_DIR, `data directory ${dataDir} is a file, not a directory`);
    return; // unreadable: opening the store reports it
  }
  if (entries.length > 0 && !entries.includes('store')) {
    throw new ReplicatorError(
      ErrorCode.NOT_A_DATA_DIR,
      `${dataDir} is not empty and holds no store; refusing to use it as a data directory (give a new or empty directory)`,
    );
  }
}
