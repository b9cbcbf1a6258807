import type { FolioDump, ProcessDump, PteDump, StateV1, VmaDump } from '@foliolab/scenario';
import type { Style } from './io.js';

/*
 * `foliolab explain`: what one step did to every PTE, folio counter and swap
 * slot, in the words a kernel reviewer uses ("unmapped: swap entry at offset
 * 16–31 replaces pfn 4096–4111", "_refcount 17 → 1 (−16)", "PageAnonExclusive
 * cleared on pages 0–15"). A pure function of the state dumps before and
 * after the step (foliolab.state/v1), so it is testable without an engine.
 * Consecutive PTEs (and swap slots) that changed the same way are reported as
 * one run, with their pfns/offsets as ranges.
 */

export type ExplainArea = 'process' | 'vma' | 'pte' | 'folio' | 'swap' | 'stats' | 'invariants';

export interface ExplainItem {
  area: ExplainArea;
  /** The object: "pid 1 (parent) 0x40000000–0x4000ffff (16 PTEs)", "folio pfn 4096 (order 4)", "swap offsets 16–31". */
  where: string;
  text: string;
}

export interface ExplainOptions {
  /** Only this PTE address (in every process), the folios it maps and the swap slots it references. */
  pte?: number;
}

const PAGE = 4096;
/** Placeholder for a number that becomes a range when consecutive changes are merged. */
const N = '\u0001';

interface Change {
  key: number;
  text: string;
  nums: number[];
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const addrOf = (s: string): number => Number.parseInt(s, 16);
const sizeName = (order: number): string => {
  const b = PAGE << order;
  return b >= 2 ** 20 ? `${b / 2 ** 20}M` : `${b / 1024}K`;
};
const signed = (d: number): string => (d > 0 ? `+${d}` : `−${-d}`);
const arrow = (a: unknown, b: unknown): string => `${String(a)} → ${String(b)}`;
const delta = (a: number, b: number): string => `${a} → ${b} (${signed(b - a)})`;

/** Merge consecutive keys (key step `step`) with the same text whose numbers all advance by one. */
function mergeRuns(changes: Change[], step: number): { first: Change; last: Change; count: number }[] {
  const out: { first: Change; last: Change; count: number }[] = [];
  for (const c of changes) {
    const run = out[out.length - 1];
    if (
      run !== undefined &&
      run.last.text === c.text &&
      c.key === run.last.key + step &&
      c.nums.every((n, i) => n === run.last.nums[i]! + 1)
    ) {
      run.last = c;
      run.count++;
    } else out.push({ first: c, last: c, count: 1 });
  }
  return out;
}

function fill(text: string, first: readonly number[], last: readonly number[]): string {
  let i = 0;
  return text.replace(new RegExp(N, 'g'), () => {
    const a = first[i]!;
    const b = last[i]!;
    i++;
    return a === b ? String(a) : `${a}–${b}`;
  });
}

// ── PTEs ─────────────────────────────────────────────────────────────────

const KIND: Readonly<Record<string, string>> = {
  present: 'present',
  swap: 'swap entry',
  marker: 'PTE marker',
  migration: 'migration entry',
  deviceExclusive: 'device-exclusive entry',
  devicePrivate: 'device-private entry',
  hwpoison: 'hwpoison entry',
};
const kindName = (p: PteDump | undefined): string => (p === undefined ? 'pte_none' : (KIND[p.kind] ?? p.kind));

function presentAttrs(p: PteDump): string {
  return [p.write ? 'writable' : 'read-only', p.dirty && 'dirty', p.young && 'young', p.cont && 'PTE_CONT', p.uffdWp && 'uffd-wp'].filter(Boolean).join(', ');
}
function swapAttrs(p: PteDump): string {
  return [`type ${p.type ?? 0}`, p.exclusive && 'swp-exclusive', p.uffdWp && 'swp-uffd-wp'].filter(Boolean).join(', ');
}

function flips(b: PteDump, a: PteDump, swap: boolean): string[] {
  const out: string[] = [];
  const flip = (k: keyof PteDump, on: string, off: string): void => {
    if (Boolean(b[k]) !== Boolean(a[k])) out.push(a[k] ? on : off);
  };
  if (swap) {
    flip('exclusive', 'swp-exclusive set', 'swp-exclusive cleared (the swap entry may be shared now)');
    flip('uffdWp', 'swp-uffd-wp set', 'swp-uffd-wp cleared');
    return out;
  }
  flip('write', 'made writable', 'write-protected');
  flip('dirty', 'marked dirty', 'dirty cleared');
  flip('young', 'marked young (accessed)', 'young cleared (aged)');
  flip('cont', 'PTE_CONT set (contpte block folded)', 'PTE_CONT cleared (contpte block unfolded)');
  flip('uffdWp', 'uffd-wp armed', 'uffd-wp cleared');
  return out;
}

const PTE_FIELDS = ['kind', 'pfn', 'write', 'dirty', 'young', 'cont', 'uffdWp', 'type', 'offset', 'exclusive'] as const;

function samePte(a: PteDump, b: PteDump): boolean {
  return PTE_FIELDS.every((k) => (a[k] ?? null) === (b[k] ?? null));
}

/** One PTE's change in words, with pfns/offsets as mergeable numbers; null when unchanged. */
export function describePte(b: PteDump | undefined, a: PteDump | undefined, forkedChild = false): { text: string; nums: number[] } | null {
  if (b === undefined && a === undefined) return null;
  if (forkedChild && b === undefined && a !== undefined) {
    if (a.kind === 'present') return { text: `copied by fork: maps pfn ${N} (${presentAttrs(a)})`, nums: [a.pfn!] };
    if (a.kind === 'swap') return { text: `copied by fork: swap entry at offset ${N} (${swapAttrs(a)})`, nums: [a.offset!] };
    return { text: `copied by fork: ${kindName(a)}`, nums: [] };
  }
  if (a !== undefined && b !== undefined && samePte(a, b)) return null;
  const bp = b?.kind === 'present';
  const ap = a?.kind === 'present';
  const bs = b?.kind === 'swap';
  const as = a?.kind === 'swap';
  if (b === undefined && ap) return { text: `faulted in: maps pfn ${N} (${presentAttrs(a)})`, nums: [a.pfn!] };
  if (b === undefined && as) return { text: `now a swap entry at offset ${N} (${swapAttrs(a)})`, nums: [a.offset!] };
  if (b === undefined) return { text: `now a ${kindName(a)}`, nums: [] };
  if (bp && a === undefined) return { text: `zapped to pte_none (was pfn ${N}, ${presentAttrs(b)})`, nums: [b.pfn!] };
  if (bp && as) {
    return { text: `unmapped: swap entry at offset ${N} (${swapAttrs(a)}) replaces pfn ${N} (${presentAttrs(b)})`, nums: [a.offset!, b.pfn!] };
  }
  if (bs && ap) return { text: `swapped in: maps pfn ${N} (${presentAttrs(a)}), was swap offset ${N}`, nums: [a.pfn!, b.offset!] };
  if (bs && a === undefined) return { text: `swap entry at offset ${N} zapped to pte_none (its slot reference is dropped)`, nums: [b.offset!] };
  if (bp && ap) {
    const parts = flips(b, a, false);
    if (a.pfn !== b.pfn) return { text: [`now maps pfn ${N} (was ${N}: a COW copy or migration)`, ...parts].join(', '), nums: [a.pfn!, b.pfn!] };
    return { text: `pfn ${N}: ${parts.join(', ')}`, nums: [a.pfn!] };
  }
  if (bs && as) {
    const parts = flips(b, a, true);
    if (a.offset !== b.offset || a.type !== b.type) return { text: [`swap offset ${N} → ${N}`, ...parts].join(', '), nums: [b.offset!, a.offset!] };
    return { text: `swap entry at offset ${N}: ${parts.join(', ')}`, nums: [a.offset!] };
  }
  if (bp && a !== undefined) {
    const why = a.kind === 'marker' ? ' (the page is gone; the marker keeps the uffd-wp state)' : '';
    return { text: `replaced by a ${kindName(a)}${why}; was pfn ${N} (${presentAttrs(b)})`, nums: [b.pfn!] };
  }
  if (a === undefined) return { text: `${kindName(b)} cleared to pte_none`, nums: [] };
  return { text: `${kindName(b)} → ${kindName(a)}`, nums: [] };
}

function ptesByAddr(p: ProcessDump | undefined): Map<number, PteDump> {
  return new Map((p?.ptes ?? []).map((e) => [addrOf(e.addr), e]));
}

function explainPtes(before: StateV1, after: StateV1, o: ExplainOptions, out: ExplainItem[]): void {
  const pids = [...new Set([...before.processes, ...after.processes].map((p) => p.pid))].sort((x, y) => x - y);
  for (const pid of pids) {
    const pb = before.processes.find((p) => p.pid === pid);
    const pa = after.processes.find((p) => p.pid === pid);
    const name = (pa ?? pb)!.name;
    const mb = ptesByAddr(pb);
    const ma = ptesByAddr(pa);
    const addrs = o.pte !== undefined ? [o.pte] : [...new Set([...mb.keys(), ...ma.keys()])].sort((x, y) => x - y);
    const changes: Change[] = [];
    for (const addr of addrs) {
      const d = describePte(mb.get(addr), ma.get(addr), pb === undefined && pa?.parent !== null && pa?.parent !== undefined);
      if (d !== null) changes.push({ key: addr, ...d });
      else if (o.pte !== undefined && ma.has(addr)) {
        const a = ma.get(addr)!;
        const text = a.kind === 'present' ? `unchanged: present, pfn ${a.pfn} (${presentAttrs(a)})` : a.kind === 'swap' ? `unchanged: swap entry at offset ${a.offset} (${swapAttrs(a)})` : `unchanged: ${kindName(a)}`;
        out.push({ area: 'pte', where: `pid ${pid} (${name}) ${hex(addr)}`, text });
      }
    }
    for (const r of mergeRuns(changes, PAGE)) {
      const range = r.count === 1 ? hex(r.first.key) : `${hex(r.first.key)}–${hex(r.last.key + PAGE - 1)} (${r.count} PTEs)`;
      out.push({ area: 'pte', where: `pid ${pid} (${name}) ${range}`, text: fill(r.first.text, r.first.nums, r.last.nums) });
    }
  }
}

// ── processes and VMAs ───────────────────────────────────────────────────

const RSS: readonly [keyof ProcessDump['rss'], string][] = [
  ['anon', 'MM_ANONPAGES'],
  ['file', 'MM_FILEPAGES'],
  ['shmem', 'MM_SHMEMPAGES'],
  ['swapents', 'MM_SWAPENTS'],
];

function vmaRange(v: VmaDump): string {
  return `${v.start}–${v.end}`;
}

function explainVmas(where: string, b: VmaDump[], a: VmaDump[], out: ExplainItem[]): void {
  const bs = new Map(b.map((v) => [v.start, v]));
  const as = new Map(a.map((v) => [v.start, v]));
  for (const v of b) if (!as.has(v.start)) out.push({ area: 'vma', where, text: `VMA ${vmaRange(v)} removed (unmapped, moved or merged)` });
  for (const v of a) {
    const old = bs.get(v.start);
    if (old === undefined) {
      out.push({ area: 'vma', where, text: `VMA ${vmaRange(v)} added [${v.flags.join(' ')}]` });
      continue;
    }
    const parts: string[] = [];
    if (old.end !== v.end) parts.push(`end ${arrow(old.end, v.end)}`);
    if (old.pgoff !== v.pgoff) parts.push(`pgoff ${arrow(old.pgoff, v.pgoff)}`);
    const added = v.flags.filter((f) => !old.flags.includes(f));
    const removed = old.flags.filter((f) => !v.flags.includes(f));
    if (added.length > 0) parts.push(`flags +${added.join(' +')}`);
    if (removed.length > 0) parts.push(`flags −${removed.join(' −')}`);
    if (old.anonVma !== v.anonVma) parts.push(`anon_vma ${arrow(old.anonVma, v.anonVma)}`);
    if (parts.length > 0) out.push({ area: 'vma', where, text: `VMA ${vmaRange(v)}: ${parts.join(', ')}` });
  }
}

function explainProcesses(before: StateV1, after: StateV1, out: ExplainItem[]): void {
  for (const a of after.processes) {
    const b = before.processes.find((p) => p.pid === a.pid);
    const where = `pid ${a.pid} (${a.name})`;
    if (b === undefined) {
      out.push({ area: 'process', where, text: a.parent === null ? 'created' : `forked from pid ${a.parent}` });
      for (const [k, n] of RSS) if (a.rss[k] !== 0) out.push({ area: 'process', where, text: `${n} ${a.rss[k]}` });
      continue;
    }
    if (!b.exited && a.exited) out.push({ area: 'process', where, text: 'exited: its address space is torn down' });
    for (const [k, n] of RSS) if (b.rss[k] !== a.rss[k]) out.push({ area: 'process', where, text: `${n} ${delta(b.rss[k], a.rss[k])}` });
    if (b.hasPinned !== a.hasPinned) out.push({ area: 'process', where, text: a.hasPinned ? 'MMF_HAS_PINNED set (a FOLL_PIN happened)' : 'MMF_HAS_PINNED cleared' });
    if (b.onMmlist !== a.onMmlist) out.push({ area: 'process', where, text: a.onMmlist ? 'added to mmlist (it now has swap entries)' : 'removed from mmlist' });
    explainVmas(where, b.vmas, a.vmas, out);
  }
  for (const b of before.processes) {
    if (!after.processes.some((p) => p.pid === b.pid)) out.push({ area: 'process', where: `pid ${b.pid} (${b.name})`, text: 'gone (reaped)' });
  }
}

// ── folios ───────────────────────────────────────────────────────────────

function pageRuns(pages: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < pages.length; ) {
    let j = i;
    while (j + 1 < pages.length && pages[j + 1] === pages[j]! + 1) j++;
    parts.push(i === j ? `${pages[i]}` : `${pages[i]}–${pages[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function folioChanges(b: FolioDump, a: FolioDump): string[] {
  const parts: string[] = [];
  if (b.order !== a.order) parts.push(`order ${arrow(b.order, a.order)} (split)`);
  if (b.refcount !== a.refcount) parts.push(`_refcount ${delta(b.refcount, a.refcount)}`);
  if (b.mapcount !== a.mapcount) parts.push(`mapcount ${delta(b.mapcount, a.mapcount)}`);
  if (b.entireMapcount !== a.entireMapcount) parts.push(`_entire_mapcount ${delta(b.entireMapcount, a.entireMapcount)}`);
  if (b.pincount !== a.pincount) parts.push(`_pincount ${delta(b.pincount, a.pincount)}`);
  for (const f of a.flags) if (!b.flags.includes(f)) parts.push(`PG_${f} set`);
  for (const f of b.flags) if (!a.flags.includes(f)) parts.push(`PG_${f} cleared`);
  const cleared: number[] = [];
  const set: number[] = [];
  for (let i = 0; i < Math.max(a.anonExclusive.length, b.anonExclusive.length); i++) {
    const x = b.anonExclusive[i] === '1';
    const y = a.anonExclusive[i] === '1';
    if (x && !y) cleared.push(i);
    if (!x && y) set.push(i);
  }
  if (cleared.length > 0) parts.push(`PageAnonExclusive cleared on page(s) ${pageRuns(cleared)}`);
  if (set.length > 0) parts.push(`PageAnonExclusive set on page(s) ${pageRuns(set)}`);
  if (b.swap === null && a.swap !== null) parts.push(`added to the swap cache: folio->swap = type ${a.swap.type}, offset ${a.swap.offset}`);
  else if (b.swap !== null && a.swap === null) parts.push(`removed from the swap cache (was offset ${b.swap.offset})`);
  else if (b.swap !== null && a.swap !== null && (b.swap.offset !== a.swap.offset || b.swap.type !== a.swap.type)) {
    parts.push(`folio->swap offset ${arrow(b.swap.offset, a.swap.offset)}`);
  }
  if (b.deferredSplit !== a.deferredSplit) parts.push(a.deferredSplit ? 'queued for deferred split' : 'taken off the deferred split queue');
  if (b.partiallyMapped !== a.partiallyMapped) parts.push(a.partiallyMapped ? 'now partially mapped' : 'no longer partially mapped');
  if (b.pageMapcounts !== undefined && a.pageMapcounts !== undefined) {
    const byDelta = new Map<number, number[]>();
    a.pageMapcounts.forEach((m, i) => {
      const d = m - (b.pageMapcounts![i] ?? 0);
      if (d !== 0) byDelta.set(d, [...(byDelta.get(d) ?? []), i]);
    });
    for (const [d, pages] of byDelta) parts.push(`per-page _mapcount ${signed(d)} on page(s) ${pageRuns(pages)}`);
  }
  return parts;
}

function explainFolios(before: StateV1, after: StateV1, pfns: Set<number> | null, out: ExplainItem[]): void {
  const keep = (f: FolioDump): boolean => pfns === null || [...pfns].some((p) => p >= f.pfn && p < f.pfn + (1 << f.order));
  const bm = new Map(before.folios.map((f) => [f.pfn, f]));
  const am = new Map(after.folios.map((f) => [f.pfn, f]));
  const where = (f: FolioDump): string => `folio pfn ${f.pfn}${f.order > 0 ? `–${f.pfn + (1 << f.order) - 1}` : ''} (order ${f.order}, ${sizeName(f.order)})`;
  for (const [pfn, a] of am) {
    if (!keep(a)) continue;
    const b = bm.get(pfn);
    if (b === undefined) {
      const extra = [a.pincount > 0 && `_pincount ${a.pincount}`, a.swap !== null && `in the swap cache at offset ${a.swap.offset}`].filter(Boolean);
      out.push({ area: 'folio', where: where(a), text: `allocated: _refcount ${a.refcount}, mapcount ${a.mapcount}${extra.length > 0 ? `, ${extra.join(', ')}` : ''} [${a.flags.map((f) => `PG_${f}`).join(' ')}]` });
      continue;
    }
    const parts = folioChanges(b, a);
    if (parts.length > 0) out.push({ area: 'folio', where: where(a), text: parts.join('; ') });
  }
  for (const [pfn, b] of bm) {
    if (!am.has(pfn) && keep(b)) out.push({ area: 'folio', where: where(b), text: `freed (was _refcount ${b.refcount}, mapcount ${b.mapcount})` });
  }
}

// ── swap ─────────────────────────────────────────────────────────────────

function explainSwap(before: StateV1, after: StateV1, offsets: Set<number> | null, out: ExplainItem[]): void {
  const bm = new Map(before.swap.slots.map((s) => [s.offset, s]));
  const am = new Map(after.swap.slots.map((s) => [s.offset, s]));
  const keys = [...new Set([...bm.keys(), ...am.keys()])].filter((k) => offsets === null || offsets.has(k)).sort((x, y) => x - y);
  const changes: Change[] = [];
  for (const off of keys) {
    const b = bm.get(off);
    const a = am.get(off);
    const cache = (c: number | null): string => (c === null ? 'not in the swap cache' : `swap cache → pfn ${c}`);
    if (b === undefined && a !== undefined) changes.push({ key: off, text: `allocated: count ${a.count}, ${cache(a.cached)}`, nums: [] });
    else if (b !== undefined && a === undefined) changes.push({ key: off, text: `freed (was count ${b.count})`, nums: [] });
    else if (b !== undefined && a !== undefined) {
      const parts: string[] = [];
      if (b.count !== a.count) parts.push(`count ${delta(b.count, a.count)}`);
      if (b.cached !== a.cached) parts.push(a.cached === null ? `dropped from the swap cache (was pfn ${b.cached})` : `swap cache → pfn ${a.cached}`);
      if (parts.length > 0) changes.push({ key: off, text: parts.join(', '), nums: [] });
    }
  }
  for (const r of mergeRuns(changes, 1)) {
    const where = r.count === 1 ? `swap offset ${r.first.key}` : `swap offsets ${r.first.key}–${r.last.key} (${r.count} slots)`;
    out.push({ area: 'swap', where, text: r.first.text });
  }
  const cb = new Map(before.swap.swapCache.map((c) => [c.pfn, c]));
  const ca = new Map(after.swap.swapCache.map((c) => [c.pfn, c]));
  const inScope = (c: { offset: number; nr: number }): boolean => offsets === null || [...offsets].some((o) => o >= c.offset && o < c.offset + c.nr);
  for (const [pfn, c] of ca) {
    if (!cb.has(pfn) && inScope(c)) out.push({ area: 'swap', where: `swap cache`, text: `folio pfn ${pfn} added for offsets ${c.offset}–${c.offset + c.nr - 1}` });
  }
  for (const [pfn, c] of cb) {
    if (!ca.has(pfn) && inScope(c)) out.push({ area: 'swap', where: `swap cache`, text: `folio pfn ${pfn} removed (offsets ${c.offset}–${c.offset + c.nr - 1})` });
  }
}

// ── stats and invariants ─────────────────────────────────────────────────

function flatten(v: unknown, prefix: string, out: Map<string, number>): void {
  if (typeof v === 'number') out.set(prefix, v);
  else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flatten(x, prefix === '' ? k : `${prefix}.${k}`, out);
  }
}

function explainStats(before: StateV1, after: StateV1, out: ExplainItem[]): void {
  const b = new Map<string, number>();
  const a = new Map<string, number>();
  flatten(before.stats, '', b);
  flatten(after.stats, '', a);
  for (const [k, v] of a) {
    const old = b.get(k) ?? 0;
    if (v !== old) out.push({ area: 'stats', where: k, text: signed(v - old) });
  }
  for (const [k, v] of b) if (!a.has(k) && v !== 0) out.push({ area: 'stats', where: k, text: signed(-v) });
}

function explainInvariants(before: StateV1, after: StateV1, out: ExplainItem[]): void {
  const key = (v: { rule: string; where: string; detail: string }): string => `${v.rule}|${v.where}|${v.detail}`;
  const had = new Set(before.invariants.violations.map(key));
  const has = new Set(after.invariants.violations.map(key));
  for (const v of after.invariants.violations) if (!had.has(key(v))) out.push({ area: 'invariants', where: v.where, text: `VIOLATED: ${v.rule}: ${v.detail}` });
  for (const v of before.invariants.violations) if (!has.has(key(v))) out.push({ area: 'invariants', where: v.where, text: `no longer violated: ${v.rule}` });
}

/** Every change between two state dumps, in kernel-reviewer words (filtered to one PTE address with `pte`). */
export function explainDiff(before: StateV1, after: StateV1, o: ExplainOptions = {}): ExplainItem[] {
  const out: ExplainItem[] = [];
  if (o.pte === undefined) explainProcesses(before, after, out);
  explainPtes(before, after, o, out);
  let pfns: Set<number> | null = null;
  let offsets: Set<number> | null = null;
  if (o.pte !== undefined) {
    pfns = new Set();
    offsets = new Set();
    for (const s of [before, after]) {
      for (const p of s.processes) {
        const e = p.ptes.find((x) => addrOf(x.addr) === o.pte);
        if (e?.pfn !== undefined) pfns.add(e.pfn);
        if (e?.kind === 'swap' && e.offset !== undefined) offsets.add(e.offset);
      }
    }
  }
  explainFolios(before, after, pfns, out);
  explainSwap(before, after, offsets, out);
  if (o.pte === undefined) {
    explainStats(before, after, out);
    explainInvariants(before, after, out);
  }
  return out;
}

const TITLES: Readonly<Record<ExplainArea, string>> = {
  process: 'processes',
  vma: 'VMAs',
  pte: 'PTEs',
  folio: 'folios',
  swap: 'swap slots and swap cache',
  stats: 'stats',
  invariants: 'invariants',
};

/** The items grouped by area, one line each (no trailing newline). */
export function renderExplain(items: readonly ExplainItem[], st: Style): string {
  if (items.length === 0) return 'no change to any PTE, folio counter or swap slot';
  const lines: string[] = [];
  for (const area of Object.keys(TITLES) as ExplainArea[]) {
    const xs = items.filter((i) => i.area === area);
    if (xs.length === 0) continue;
    lines.push(st.bold(TITLES[area]));
    for (const x of xs) lines.push(`  ${st.cyan(x.where)}: ${area === 'invariants' && x.text.startsWith('VIOLATED') ? st.red(x.text) : x.text}`);
  }
  return lines.join('\n');
}
