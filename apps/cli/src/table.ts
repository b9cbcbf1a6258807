import { visibleLength } from './io.js';

/*
 * Plain-text tables and number formatting for human output. Cells may carry
 * ANSI colour: widths are measured without the escapes.
 */

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Alignment per column (default: first column left, the rest right). */
  align?: readonly Align[];
  /** Prefix of every line. */
  indent?: string;
  /** Spaces between columns (default 2). */
  gap?: number;
  /** A rule under the header row, drawn with this function (e.g. dim). */
  rule?: (s: string) => string;
}

function pad(s: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - visibleLength(s)));
  return align === 'right' ? fill + s : s + fill;
}

/** Render `header` and `rows` as aligned columns; returns the lines joined with \n (no trailing newline). */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], o: TableOptions = {}): string {
  const n = Math.max(header.length, ...rows.map((r) => r.length));
  const widths = Array.from({ length: n }, (_, i) => Math.max(visibleLength(header[i] ?? ''), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const align = (i: number): Align => o.align?.[i] ?? (i === 0 ? 'left' : 'right');
  const gap = ' '.repeat(o.gap ?? 2);
  const indent = o.indent ?? '';
  const line = (cells: readonly string[]): string =>
    (indent + widths.map((w, i) => pad(cells[i] ?? '', w, align(i))).join(gap)).replace(/\s+$/, '');
  const out = [line(header)];
  if (o.rule) out.push(indent + o.rule(widths.map((w) => '─'.repeat(w)).join(gap)));
  for (const r of rows) out.push(line(r));
  return out.join('\n');
}

/** 1234567 → "1,234,567" (integers), fractions kept to 2 places. */
export function fmtCount(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Nanoseconds as milliseconds with 3 significant decimals ("37.402"). */
export function fmtMs(ns: number): string {
  return (ns / 1e6).toFixed(3);
}

/** Nanoseconds in the most readable unit ("850 ns", "12.5 µs", "3.21 ms"). */
export function fmtNs(ns: number): string {
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  return `${(ns / 1e6).toFixed(ns < 1e7 ? 3 : 2)} ms`;
}

/** A ratio with 3 decimals, or "—". */
export function fmtRatio(r: number | null | undefined): string {
  return r === null || r === undefined || !Number.isFinite(r) ? '—' : r.toFixed(3);
}

/** "PTE_READ 71 · PTE_XCHG 32 · …" wrapped to `width` columns after `indent`. */
export function fmtEvents(events: Readonly<Record<string, number | undefined>>, width: number, indent: string): string {
  const parts = Object.entries(events)
    .filter(([, v]) => v !== undefined && v !== 0)
    .map(([k, v]) => `${k} ${fmtCount(v!)}`);
  if (parts.length === 0) return '(no events)';
  const lines: string[] = [];
  let cur = '';
  for (const p of parts) {
    const next = cur === '' ? p : `${cur} · ${p}`;
    if (cur !== '' && indent.length + next.length > width) {
      lines.push(cur);
      cur = p;
    } else cur = next;
  }
  lines.push(cur);
  return lines.join(`\n${indent}`);
}
