/**
 * Sizes and durations as people read them in a status table: one token each (no spaces),
 * so the columns stay whitespace-separated for `awk` and tests.
 */

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 181B, 1.2KiB, 3.4MiB, 1.0GiB. */
export function humanBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Math.max(0, Math.round(bytes || 0))}B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)}${BYTE_UNITS[unit]}`;
}

/**
 * 0.4s, 12.3s, 5m12s, 3h05m, 2d03h. Never negative: two clocks, or a clock read a moment
 * apart, can put an event a little in the "future", which is shown as 0.0s (not -0.0s).
 */
export function humanDuration(ms: number): string {
  const t = Number.isFinite(ms) && ms > 0 ? ms : 0;
  if (t < 60_000) return `${(Math.floor(t / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(t / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** An event at atMs as seen at nowMs: `0.4s ago`; `unknown` (atMs 0, not known) or `never` as the caller says. */
export function humanAgo(atMs: number, nowMs: number, missing: 'unknown' | 'never'): string {
  return atMs > 0 ? `${humanDuration(nowMs - atMs)} ago` : missing;
}
