import { FoliolabError } from '@foliolab/ledger';

/*
 * Sizes and addresses as scenarios write them. Sizes are bytes: a number, or
 * a string of digits with an optional binary suffix K/M/G/T (`64K` = 65536),
 * or hex (`0x10000`). Addresses are a number, a hex string, or a sum of terms
 * where a term is a literal or a name bound by an earlier step
 * (`buf+32K`, `buf-4K+0x100`).
 */

export const PAGE_SIZE = 4096;

const SUFFIX: Readonly<Record<string, number>> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const SIZE_RE = /^(?:0x([0-9a-fA-F]+)|([0-9]+)([KMGT]?))$/;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The pattern a size string must match (used by the JSON Schema too). */
export const SIZE_PATTERN = '^(0x[0-9a-fA-F]+|[0-9]+[KMGT]?)$';
/** The pattern a bound name must match. */
export const NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
/** The pattern an address string must match: terms joined by + or -. */
export const ADDR_PATTERN = '^\\s*[A-Za-z0-9_]+(\\s*[-+]\\s*[A-Za-z0-9_]+)*\\s*$';

function bad(fn: string, what: string, v: unknown): never {
  throw new FoliolabError('EINVAL', `${fn}: bad ${what} ${JSON.stringify(v)}: expected bytes as a number or a string like 4K, 64K, 2M, 1G or 0x10000`, { value: v });
}

/** Size literal string → bytes (possibly unsafe: check), or undefined if `s` is not a size literal. */
function sizeLiteral(s: string): number | undefined {
  const m = SIZE_RE.exec(s);
  if (m === null) return undefined;
  return m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]) * (SUFFIX[m[3]!] ?? 1);
}

function tooLarge(fn: string, v: unknown): never {
  throw new FoliolabError('ERANGE', `${fn}: size ${JSON.stringify(v)} is too large (more than 2^53 bytes)`, { value: v });
}

/** Bytes of a size (`64K` → 65536). Throws EINVAL on anything else (`64Q`, -1, 1.5). */
export function parseSize(v: number | string): number {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v > Number.MAX_SAFE_INTEGER) tooLarge('parseSize', v);
    if (!Number.isSafeInteger(v) || v < 0) bad('parseSize', 'size', v);
    return v;
  }
  if (typeof v !== 'string') bad('parseSize', 'size', v);
  const n = sizeLiteral(v.trim());
  if (n === undefined) bad('parseSize', 'size', v);
  if (!Number.isSafeInteger(n)) tooLarge('parseSize', v);
  return n;
}

/** The shortest exact spelling of a size: 65536 → "64K", 4097 → "4097". */
export function formatSize(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new FoliolabError('EINVAL', `formatSize: ${n} is not a byte count`, { n });
  if (n === 0) return '0';
  for (const s of ['T', 'G', 'M', 'K'] as const) {
    const unit = SUFFIX[s]!;
    if (n % unit === 0) return `${n / unit}${s}`;
  }
  return String(n);
}

/** An address as hex, the dump's spelling: 0x40000000. */
export function formatAddr(n: number): string {
  return `0x${n.toString(16)}`;
}

/** One term of an address expression. */
export interface AddrTerm {
  sign: 1 | -1;
  /** A literal byte value, or a bound name. */
  value: number | string;
}

/** A parsed address expression: the sum of its terms. */
export interface AddrExpr {
  text: string;
  terms: AddrTerm[];
}

/** Parse `buf+32K` / `0x40000000` / 4096 into terms; throws EINVAL with the bad term. */
export function parseAddrExpr(v: number | string): AddrExpr {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new FoliolabError('EINVAL', `parseAddrExpr: bad address ${v}: expected a non-negative integer`, { value: v });
    return { text: formatAddr(v), terms: [{ sign: 1, value: v }] };
  }
  if (typeof v !== 'string') throw new FoliolabError('EINVAL', `parseAddrExpr: bad address ${JSON.stringify(v)}`, { value: v });
  const text = v.trim();
  const terms: AddrTerm[] = [];
  const parts = text.split(/([-+])/);
  let sign: 1 | -1 = 1;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!.trim();
    if (i % 2 === 1) {
      sign = p === '-' ? -1 : 1;
      continue;
    }
    if (p === '') throw new FoliolabError('EINVAL', `parseAddrExpr: bad address ${JSON.stringify(v)}: empty term`, { value: v });
    const lit = sizeLiteral(p);
    if (lit !== undefined && !Number.isSafeInteger(lit)) tooLarge('parseAddrExpr', p);
    if (lit !== undefined) terms.push({ sign, value: lit });
    else if (NAME_RE.test(p)) terms.push({ sign, value: p });
    else throw new FoliolabError('EINVAL', `parseAddrExpr: bad address ${JSON.stringify(v)}: "${p}" is neither a name nor a size like 32K or 0x1000`, { value: v, term: p });
  }
  return { text, terms };
}

/** Names an address expression refers to. */
export function addrNames(e: AddrExpr): string[] {
  return e.terms.filter((t) => typeof t.value === 'string').map((t) => t.value as string);
}

/** The literal part of an expression (sum of the non-name terms). */
export function addrOffset(e: AddrExpr): number {
  let n = 0;
  for (const t of e.terms) if (typeof t.value === 'number') n += t.sign * t.value;
  return n;
}

/** Evaluate an address expression; `lookup` gives bound names (undefined = unknown → EINVAL). */
export function evalAddr(e: AddrExpr, lookup: (name: string) => number | undefined): number {
  let n = 0;
  for (const t of e.terms) {
    let x: number;
    if (typeof t.value === 'number') x = t.value;
    else {
      const b = lookup(t.value);
      if (b === undefined) throw new FoliolabError('ENOENT', `evalAddr: unknown name "${t.value}" in address "${e.text}"`, { name: t.value });
      x = b;
    }
    n += t.sign * x;
  }
  if (n < 0 || !Number.isSafeInteger(n)) throw new FoliolabError('ERANGE', `evalAddr: address "${e.text}" evaluates to ${n}, outside 0..2^53`, { value: n });
  return n;
}

/** Whether `s` is a valid bound name (and not a size literal). */
export function isName(s: string): boolean {
  return NAME_RE.test(s);
}
