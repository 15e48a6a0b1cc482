import path from 'node:path';
import { ErrorCode, ReplicatorError } from './errors.js';

export const DEFAULT_MASTER_ADDRESS = '127.0.0.1:50051';
export const DEFAULT_FOLLOWER_LISTEN = '127.0.0.1:0';
export const DEFAULT_DATA_ROOT = './data';
/** Deadline of every unary call made by the CLIs, and of a CLI's connection attempt. */
export const DEFAULT_TIMEOUT_MS = 5_000;
/** Master sends a heartbeat after this much idle time on a stream. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1_000;
/** Follower gives up on a stream that has been silent this long. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5_000;

const MAX_FOLLOWER_ID = 0xffff_ffff;

/**
 * A follower id is a positive decimal integer that fits uint32. It becomes part of a
 * directory name, so anything else (`../x`, `1/2`, `-1`, `1e3`) is refused here.
 */
export function parseFollowerId(raw: unknown): number {
  const s = String(raw ?? '');
  if (!/^[1-9][0-9]{0,9}$/.test(s) || Number(s) > MAX_FOLLOWER_ID) {
    throw new ReplicatorError(
      ErrorCode.INVALID_FOLLOWER_ID,
      `follower id must be a positive integer up to ${MAX_FOLLOWER_ID}, got ${JSON.stringify(s)}`,
    );
  }
  return Number(s);
}

/** `host:port` or `[v6]:port`; port 0 asks the OS for a free port (servers only). */
export function parseAddress(raw: unknown, { allowPortZero = false } = {}): string {
  const s = String(raw ?? '').trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || (port === 0 && !allowPortZero)) {
    throw new ReplicatorError(
      ErrorCode.INVALID_ADDRESS,
      `address must be host:port${allowPortZero ? ' (port 0 picks a free port)' : ''}, got ${JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s)}`,
    );
  }
  return s;
}

export function parsePositiveInt(raw: unknown, name: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** An integer in [min, max] (a size option with a floor and a ceiling). */
export function parseIntInRange(raw: unknown, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw === '' || raw === null || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function parseNonNegativeInt(raw: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (raw === '' || raw === null || !Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** A path given as an option: anything but empty (an empty --data-dir would scatter a store in the working directory). */
export function parsePath(raw: unknown, name: string): string {
  const s = String(raw ?? '');
  if (s === '') throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${name} needs a path`);
  return s;
}

/** Default metrics listener: loopback, a free port (several nodes share a host); the address is logged and in endpoint.json. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:0';
const METRICS_OFF = /^(off|none|false|no|0)$/i;

/** A metrics listen address, or undefined when metrics are switched off (`off`, `none`, empty). */
export function parseMetricsListen(raw: unknown): string | undefined {
  const s = String(raw ?? '').trim();
  if (s === '' || METRICS_OFF.test(s)) return undefined;
  return parseAddress(s, { allowPortZero: true });
}

export function masterDataDir(dataRoot: string): string {
  return path.join(dataRoot, 'master');
}

export function followerDataDir(dataRoot: string, followerId: number): string {
  return path.join(dataRoot, `follower-${followerId}`);
}
