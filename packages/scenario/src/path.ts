import { FoliolabError } from '@foliolab/ledger';
import { didYouMean } from './diagnostics.js';
import type { FolioDump, ProcessDump, PteDump } from './engine-like.js';
import { addrNames, evalAddr, formatAddr, PAGE_SIZE, parseAddrExpr, type AddrExpr } from './sizes.js';

/*
 * The path language of `expect.state`: a root key of the state dump, then
 * `.key` and `[selector]` segments.
 *
 *   processes[parent].rss.anon        process by scenario name (or [0], [pid=2])
 *   folios[0].refcount                array index ([-1] = last)
 *   swap.slots[*].count               every element (the value becomes a list)
 *   swap.slots[offset=16].count       first element whose field equals
 *   stats.mthp.64K.split_deferred     keys may start with a digit
 *
 * and three views computed from the dump, indexed by process and address:
 *
 *   ptes[parent]                      the process's PTE list
 *   ptes[parent][buf+4K]              one PTE; a none PTE reads { addr, kind: "none" }
 *   ptes[parent][buf..buf+64K]        one PTE per 4K page of [buf, buf+64K) (a list)
 *   folioAt[child][buf]               the folio the PTE maps (null if none)
 *   pageAt[child][buf..buf+64K]       { pfn, folio, index, anonExclusive, mapcount } per page
 */

/** Roots a path may start with: the dump's top-level keys and the computed views. */
export const PATH_ROOTS = ['schema', 'config', 'processes', 'folios', 'swap', 'stats', 'ledger', 'invariants', 'ptes', 'folioAt', 'pageAt'] as const;
const VIEWS = new Set(['ptes', 'folioAt', 'pageAt']);

export type Selector =
  | { t: 'index'; i: number }
  | { t: 'all' }
  | { t: 'filter'; key: string; value: string }
  | { t: 'range'; from: AddrExpr; to: AddrExpr }
  | { t: 'ref'; text: string };
export type Segment = { t: 'prop'; key: string } | { t: 'sel'; sel: Selector };

/** A parsed path. */
export interface StatePath {
  text: string;
  root: string;
  segs: Segment[];
}

const WORD = /^[A-Za-z0-9_]+/;

function fail(text: string, why: string): never {
  throw new FoliolabError('EINVAL', `bad path "${text}": ${why}`, { path: text });
}

function parseSelector(text: string, body: string): Selector {
  const b = body.trim();
  if (b === '*') return { t: 'all' };
  if (/^-?[0-9]+$/.test(b)) return { t: 'index', i: Number(b) };
  const dots = b.indexOf('..');
  if (dots >= 0) {
    try {
      return { t: 'range', from: parseAddrExpr(b.slice(0, dots)), to: parseAddrExpr(b.slice(dots + 2)) };
    } catch (e) {
      fail(text, `bad range [${b}]: ${(e as Error).message.replace(/^parseAddrExpr: /, '')}`);
    }
  }
  const eq = b.indexOf('=');
  if (eq >= 0) {
    const key = b.slice(0, eq).trim();
    if (!WORD.test(key)) fail(text, `bad filter [${b}]: expected [field=value]`);
    return { t: 'filter', key, value: b.slice(eq + 1).trim() };
  }
  if (b === '') fail(text, 'empty []');
  return { t: 'ref', text: b };
}

/** Parse a path; throws EINVAL naming the problem (unknown root with "did you mean"). */
export function parsePath(text: string): StatePath {
  const m = WORD.exec(text);
  if (m === null) fail(text, 'expected a root key such as processes, folios, swap, stats, ptes');
  const root = m[0];
  if (!(PATH_ROOTS as readonly string[]).includes(root)) fail(text, `unknown root \`${root}\`${didYouMean(root, PATH_ROOTS)} (roots: ${PATH_ROOTS.join(', ')})`);
  const segs: Segment[] = [];
  let i = root.length;
  while (i < text.length) {
    const c = text[i];
    if (c === '.') {
      const k = WORD.exec(text.slice(i + 1));
      if (k === null) fail(text, `expected a key after "." at column ${i + 1}`);
      segs.push({ t: 'prop', key: k[0] });
      i += 1 + k[0].length;
    } else if (c === '[') {
      const close = text.indexOf(']', i);
      if (close < 0) fail(text, `"[" at column ${i + 1} is not closed`);
      segs.push({ t: 'sel', sel: parseSelector(text, text.slice(i + 1, close)) });
      i = close + 1;
    } else fail(text, `unexpected "${c}" at column ${i + 1}`);
  }
  if (VIEWS.has(root)) checkView(text, root, segs);
  return { text, root, segs };
}

function checkView(text: string, root: string, segs: Segment[]): void {
  const [p, a] = segs;
  if (p?.t !== 'sel' || p.sel.t !== 'ref') fail(text, `${root} needs a process first: ${root}[process]…`);
  if (root === 'ptes' && a?.t !== 'sel') return;
  if (a?.t !== 'sel' || (a.sel.t !== 'ref' && a.sel.t !== 'range')) fail(text, `${root}[${p.sel.text}] needs an address or a range next: [buf+4K] or [buf..buf+64K]`);
  if (a.sel.t === 'ref') {
    try {
      parseAddrExpr(a.sel.text);
    } catch (e) {
      fail(text, (e as Error).message.replace(/^parseAddrExpr: /, ''));
    }
  }
}

/** Process names and bound address names a path refers to (for load-time checks). */
export function pathRefs(p: StatePath): { processes: string[]; names: string[] } {
  const processes: string[] = [];
  const names: string[] = [];
  const first = p.segs[0];
  if ((p.root === 'processes' || VIEWS.has(p.root)) && first?.t === 'sel' && first.sel.t === 'ref') processes.push(first.sel.text);
  const second = p.segs[1];
  if (VIEWS.has(p.root) && second?.t === 'sel') {
    if (second.sel.t === 'ref') names.push(...addrNames(parseAddrExpr(second.sel.text)));
    if (second.sel.t === 'range') names.push(...addrNames(second.sel.from), ...addrNames(second.sel.to));
  }
  return { processes, names };
}

/** Names the runner bound: scenario process name → pid, address name → address. */
export interface PathContext {
  processes?: ReadonlyMap<string, number>;
  names?: ReadonlyMap<string, number>;
}

/** What a path resolved to: `multi` when a [*] or a range made it a list. */
export interface Resolved {
  value: unknown;
  multi: boolean;
  /** Why nothing was found, when a step of the path had nothing to select. */
  missing?: string;
}

type Dumpish = { processes?: ProcessDump[]; folios?: FolioDump[] };

function findProcess(dump: Dumpish, name: string, ctx: PathContext): ProcessDump | undefined {
  const list = dump.processes ?? [];
  const pid = ctx.processes?.get(name);
  if (pid !== undefined) return list.find((p) => p.pid === pid);
  return list.find((p) => p.name === name);
}

function lookup(ctx: PathContext): (n: string) => number | undefined {
  return (n) => ctx.names?.get(n);
}

function pteAt(p: ProcessDump, addr: number): PteDump {
  for (const e of p.ptes) if (parseInt(e.addr, 16) === addr) return e;
  return { addr: formatAddr(addr), kind: 'none' };
}

function folioOf(dump: Dumpish, pte: PteDump): FolioDump | null {
  if (typeof pte.pfn !== 'number') return null;
  const pfn = pte.pfn;
  return (dump.folios ?? []).find((f) => pfn >= f.pfn && pfn < f.pfn + 2 ** f.order) ?? null;
}

function pageOf(dump: Dumpish, pte: PteDump): Record<string, unknown> | null {
  const f = folioOf(dump, pte);
  if (f === null || typeof pte.pfn !== 'number') return null;
  const index = pte.pfn - f.pfn;
  return { pfn: pte.pfn, folio: f.pfn, index, anonExclusive: f.anonExclusive[index] === '1', mapcount: f.pageMapcounts?.[index] ?? null };
}

/** The first value of a view (ptes / folioAt / pageAt) and how many segments it used. */
function startView(dump: Dumpish, p: StatePath, ctx: PathContext): { vals: unknown[]; multi: boolean; used: number; missing?: string } {
  const ps = p.segs[0] as { t: 'sel'; sel: { t: 'ref'; text: string } };
  const proc = findProcess(dump, ps.sel.text, ctx);
  if (proc === undefined) return { vals: [undefined], multi: false, used: p.segs.length, missing: `no process \`${ps.sel.text}\` in the dump` };
  const a = p.segs[1];
  if (a?.t !== 'sel') return { vals: [proc.ptes], multi: false, used: 1 };
  let ptes: PteDump[];
  let multi = false;
  if (a.sel.t === 'range') {
    const from = evalAddr(a.sel.from, lookup(ctx));
    const to = evalAddr(a.sel.to, lookup(ctx));
    ptes = [];
    for (let x = from; x < to; x += PAGE_SIZE) ptes.push(pteAt(proc, x));
    multi = true;
  } else {
    const ref = a.sel as { t: 'ref'; text: string };
    ptes = [pteAt(proc, evalAddr(parseAddrExpr(ref.text), lookup(ctx)))];
  }
  const vals = p.root === 'ptes' ? ptes : p.root === 'folioAt' ? ptes.map((e) => folioOf(dump, e)) : ptes.map((e) => pageOf(dump, e));
  return { vals, multi, used: 2 };
}

function filterMatch(v: unknown, want: string): boolean {
  if (typeof v === 'number') return /^(0x[0-9a-fA-F]+|-?[0-9]+)$/.test(want) && Number(want) === v;
  if (typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v) && /^0x[0-9a-f]+$|^[0-9]+$/i.test(want)) return parseInt(v, 16) === Number(want);
  return String(v) === want;
}

function selectOne(v: unknown, sel: Selector, dump: Dumpish, ctx: PathContext): { out: unknown[]; spread: boolean } {
  if (sel.t === 'all') {
    if (Array.isArray(v)) return { out: v, spread: true };
    if (v !== null && typeof v === 'object') return { out: Object.values(v), spread: true };
    return { out: [], spread: true };
  }
  if (Array.isArray(v)) {
    if (sel.t === 'index') return { out: [v.at(sel.i)], spread: false };
    if (sel.t === 'filter') return { out: [v.find((e) => e !== null && typeof e === 'object' && filterMatch((e as Record<string, unknown>)[sel.key], sel.value))], spread: false };
    if (sel.t === 'ref') {
      if (v === dump.processes) return { out: [findProcess(dump, sel.text, ctx)], spread: false };
      return { out: [v.find((e) => e !== null && typeof e === 'object' && (e as Record<string, unknown>).name === sel.text)], spread: false };
    }
    return { out: [undefined], spread: false };
  }
  if (v !== null && typeof v === 'object' && (sel.t === 'ref' || sel.t === 'index')) {
    const key = sel.t === 'ref' ? sel.text : String(sel.i);
    return { out: [(v as Record<string, unknown>)[key]], spread: false };
  }
  return { out: [undefined], spread: false };
}

/** Resolve a path against a state dump (see the header for the language). */
export function resolvePath(dump: unknown, path: string | StatePath, ctx: PathContext = {}): Resolved {
  const p = typeof path === 'string' ? parsePath(path) : path;
  const d = (dump ?? {}) as Dumpish & Record<string, unknown>;
  let vals: unknown[];
  let multi = false;
  let i = 0;
  if (VIEWS.has(p.root)) {
    const s = startView(d, p, ctx);
    if (s.missing !== undefined) return { value: undefined, multi: false, missing: s.missing };
    vals = s.vals;
    multi = s.multi;
    i = s.used;
  } else vals = [d[p.root]];
  for (; i < p.segs.length; i++) {
    const seg = p.segs[i]!;
    const next: unknown[] = [];
    for (const v of vals) {
      if (seg.t === 'prop') next.push(v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[seg.key] : undefined);
      else {
        const r = selectOne(v, seg.sel, d, ctx);
        next.push(...r.out);
        if (r.spread) multi = true;
      }
    }
    vals = next;
  }
  return { value: multi ? vals : vals[0], multi };
}
