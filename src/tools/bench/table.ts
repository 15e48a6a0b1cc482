/** Plain-text table rendering for the benchmark report (pure). */

export type Align = 'left' | 'right';

/** Renders rows under a header, each column padded to its widest cell. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (align[i] === 'right' ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** 1234567.8 -> "1,234,568"; NaN -> "n/a". */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** A ratio with two decimals and a multiplication sign: 0.4567 -> "0.46x". */
export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : '—';
}

/** A relative spread as "±12%"; empty when there is nothing to compare. */
export function formatSpread(s: number): string {
  return Number.isFinite(s) ? `±${Math.round(s * 100)}%` : '';
}

/** Seconds with a unit, to two decimals below 100 s. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return 'n/a';
  return s < 100 ? `${s.toFixed(2)} s` : `${Math.round(s)} s`;
}

/** Milliseconds, with more precision for sub-millisecond values. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : String(Math.round(ms));
}
