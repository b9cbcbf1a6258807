import { isAllowedDifference, type Policy } from '@foliolab/unmap-engine';
import { COMPARED_VMFLAGS } from './engine-view.js';
import { expandRuns } from './normalise.js';
import type { PageObs, StepObs } from './types.js';

/*
 * The kernel's answer against the engine's, field by field. Only what both
 * sides can state is compared: counters the engine models, page flags it
 * keeps, VMA flags it has. A difference names the step, the process, the
 * page range and the field, with both values.
 */

/** Counters compared (deltas over a step): the engine's stats with the kernel's exact event counters. */
export const COMPARED_VMSTAT: readonly string[] = [
  'pswpin',
  'pswpout',
  'swpout_zero',
  'swpin_zero',
  'pglazyfree',
  'pglazyfreed',
  'pgmajfault',
  'pgactivate',
  'pgdeactivate',
  'swap_ra',
  'thp_split_page',
  'thp_split_page_failed',
  'thp_deferred_split_page',
  'thp_swpout',
  'thp_swpout_fallback',
  // refault detection (mm/workingset.c): every swap-in allocation, the recent ones, the restored ones
  'workingset_refault_anon',
  'workingset_activate_anon',
  'workingset_restore_anon',
  // not nr_foll_pin_acquired/released: io_uring, the guest's FOLL_PIN, keeps one pin per large folio
  // (io_coalesce_buffer unpins the others), where pin_user_pages keeps one per page
];
/** Engine vmstat names that the kernel spells differently. */
const KERNEL_NAME: Readonly<Record<string, string>> = { nr_swapcache: 'nr_swapcached' };
export const COMPARED_MTHP: readonly string[] = [
  'anon_fault_alloc',
  'anon_fault_fallback',
  'swpout',
  'swpout_fallback',
  'swpin',
  'swpin_fallback',
  'split',
  'split_failed',
  'split_deferred',
  'nr_anon',
  'nr_anon_partially_mapped',
];
/** Folio flags compared (kpageflags names the engine keeps too). */
export const COMPARED_FLAGS: readonly string[] = ['anon', 'swapbacked', 'swapcache', 'dirty', 'lru', 'active', 'referenced', 'unevictable', 'mlocked', 'locked', 'writeback', 'uptodate', 'reclaim'];

/**
 * Kernel functions whose call counts are ledger events of the engine (when a record has traced
 * calls): ledger event → the functions whose calls it counts. contpte_convert folds and unfolds,
 * told apart by a probe on its pte argument (__contpte_try_unfold is inlined into contpte.c's own
 * callers, so counting it misses unfolds). rmap_one callbacks are the functions an rmap walk calls
 * per VMA.
 */
export const CALL_EVENTS: Readonly<Record<string, { plus: readonly string[]; minus?: readonly string[] }>> = {
  // from the arm64 probe on contpte_convert's pte argument (PTE_CONT set: fold)
  CONTPTE_UNFOLD: { plus: ['contpte_convert.unfold'] },
  CONTPTE_FOLD: { plus: ['contpte_convert.fold'] },
  PVMW_CALL: { plus: ['page_vma_mapped_walk'] },
  RMAP_ONE: { plus: ['try_to_unmap_one', 'try_to_migrate_one', 'folio_referenced_one', 'page_mkclean_one'] },
  DEFERRED_SPLIT_CALL: { plus: ['deferred_split_folio'] },
};

/** The kernel's count of a ledger event from its traced calls. */
export function kernelEventCount(calls: Readonly<Record<string, number>>, event: string): number {
  const m = CALL_EVENTS[event]!;
  let n = 0;
  for (const f of m.plus) n += calls[f] ?? 0;
  for (const f of m.minus ?? []) n -= calls[f] ?? 0;
  return n;
}

export interface Difference {
  step: number;
  /** Human-readable place: "parent 0x40000000+16 pages", "counters", "outcome". */
  where: string;
  field: string;
  kernel: unknown;
  engine: unknown;
  /** The state-dump path pattern this corresponds to (for ALLOWED_DIFFERENCES). */
  dumpPath: string;
}

export interface CompareOptions {
  /** Compare per-page mapcounts and pagemap's exclusive bit (false under mapcountMode mm_id). */
  mapcounts?: boolean;
  /** Compare soft-dirty (x86 only; the engine does not model it yet). */
  softDirty?: boolean;
  /** Compare traced kernel calls with ledger events (only the mainline engine makes the kernel's calls). */
  calls?: boolean;
}

/** Counter names in the kernel's spelling that either side moved (an engine alias counts as its kernel name). */
function counterKeys(kernel: Record<string, number>, engine: Record<string, number>): string[] {
  const keys = new Set<string>();
  for (const raw of [...Object.keys(kernel), ...Object.keys(engine)]) {
    const k = KERNEL_NAME[raw] ?? raw;
    const m = /^mthp\.[^.]+\.(.*)$/.exec(k);
    if (m !== null ? COMPARED_MTHP.includes(m[1]!) : COMPARED_VMSTAT.includes(k) || Object.values(KERNEL_NAME).includes(k)) keys.add(k);
  }
  return [...keys].sort();
}

function engineCounter(engine: Record<string, number>, k: string): number {
  const alias = Object.entries(KERNEL_NAME).find(([, v]) => v === k)?.[0];
  return engine[k] ?? (alias !== undefined ? engine[alias] : undefined) ?? 0;
}

function counterPath(k: string): string {
  return k.startsWith('mthp.') ? `stats.${k}` : `stats.vmstat.${k}`;
}

const PAGE_FIELDS = ['kind', 'folio', 'idx', 'order', 'mapcount', 'exclusive', 'anonExclusiveHead', 'poisoned', 'type', 'offset', 'uffdWp', 'guard', 'softDirty'] as const;

function pagePath(field: string): string {
  switch (field) {
    case 'mapcount':
    case 'exclusive':
      return 'folios.*.pageMapcounts.*';
    case 'anonExclusiveHead':
      return 'folios.*.anonExclusive';
    case 'poisoned':
      return 'folios.*.hwpoison';
    case 'folio':
    case 'idx':
    case 'order':
      return 'processes.*.ptes.*.pfn';
    default:
      return `processes.*.ptes.*.${field}`;
  }
}

function comparePages(step: number, name: string, k: Map<number, PageObs>, e: Map<number, PageObs>, o: CompareOptions, out: Difference[]): void {
  const addrs = [...new Set([...k.keys(), ...e.keys()])].sort((a, b) => a - b);
  for (const a of addrs) {
    const kp = k.get(a);
    const ep = e.get(a);
    const where = `${name} 0x${a.toString(16)}`;
    if (kp === undefined || ep === undefined) {
      out.push({ step, where, field: 'kind', kernel: kp?.kind ?? 'none', engine: ep?.kind ?? 'none', dumpPath: 'processes.*.ptes.*.kind' });
      continue;
    }
    for (const f of PAGE_FIELDS) {
      if ((f === 'mapcount' || f === 'exclusive') && o.mapcounts === false) continue;
      if (f === 'softDirty' && o.softDirty !== true) continue;
      const kv = kp[f] ?? (f === 'kind' ? undefined : false);
      const ev = ep[f] ?? (f === 'kind' ? undefined : false);
      if (kv !== ev) out.push({ step, where, field: f, kernel: kp[f], engine: ep[f], dumpPath: pagePath(f) });
    }
    if (kp.kind === 'present' && ep.kind === 'present') {
      for (const fl of COMPARED_FLAGS) {
        const kh = kp.flags?.includes(fl) === true;
        const eh = ep.flags?.includes(fl) === true;
        if (kh !== eh) out.push({ step, where, field: `flags.${fl}`, kernel: kh, engine: eh, dumpPath: `folios.*.flags.${fl}` });
      }
    }
  }
}

/** Differences between the kernel's observations and the engine's, step by step. */
export function compareObservations(kernel: readonly StepObs[], engine: readonly StepObs[], o: CompareOptions = {}): Difference[] {
  const out: Difference[] = [];
  const n = Math.max(kernel.length, engine.length);
  for (let i = 0; i < n; i++) {
    const ks = kernel[i];
    const es = engine[i];
    if (ks === undefined || es === undefined) {
      out.push({ step: (ks ?? es)!.step, where: 'steps', field: 'present', kernel: ks !== undefined, engine: es !== undefined, dumpPath: 'steps' });
      continue;
    }
    const step = ks.step;
    if (ks.step !== es.step) {
      out.push({ step, where: 'steps', field: 'index', kernel: ks.step, engine: es.step, dumpPath: 'steps' });
      continue;
    }
    if ((ks.outcome === 'ok') !== (es.outcome === 'ok')) out.push({ step, where: 'outcome', field: 'outcome', kernel: ks.outcome, engine: es.outcome, dumpPath: 'outcome' });
    const kl = ks.lost.map((l) => `${l.addr} ${l.reason}`).sort();
    const el = es.lost.map((l) => `${l.addr} ${l.reason}`).sort();
    if (kl.join() !== el.join()) out.push({ step, where: 'read', field: 'lost', kernel: kl, engine: el, dumpPath: 'read.lost' });
    for (const c of counterKeys(ks.counters, es.counters)) {
      const kv = ks.counters[c] ?? 0;
      const ev = engineCounter(es.counters, c);
      if (kv !== ev) out.push({ step, where: 'counters', field: c, kernel: kv, engine: ev, dumpPath: counterPath(c) });
    }
    if (o.calls !== false && ks.calls !== undefined && es.events !== undefined) {
      const probed = ks.calls['contpte_convert'] === undefined || ks.calls['contpte_convert.fold'] !== undefined || ks.calls['contpte_convert.unfold'] !== undefined;
      for (const ev of Object.keys(CALL_EVENTS)) {
        if (ev.startsWith('CONTPTE_') && !probed) continue;
        const kv = kernelEventCount(ks.calls, ev);
        const evv = es.events[ev] ?? 0;
        if (kv !== evv) out.push({ step, where: 'calls', field: ev, kernel: kv, engine: evv, dumpPath: `ledger.${ev}` });
      }
    }
    const slots = [...new Set([...ks.processes.map((p) => p.slot), ...es.processes.map((p) => p.slot)])].sort((a, b) => a - b);
    for (const slot of slots) {
      const kp = ks.processes.find((p) => p.slot === slot);
      const ep = es.processes.find((p) => p.slot === slot);
      const name = kp?.name ?? ep?.name ?? `slot ${slot}`;
      if (kp === undefined || ep === undefined) {
        out.push({ step, where: name, field: 'alive', kernel: kp !== undefined, engine: ep !== undefined, dumpPath: 'processes.*.exited' });
        continue;
      }
      const kv = kp.vmas.map((v) => `${v.start}-${v.end} ${v.perms} ${v.flags.filter((f) => COMPARED_VMFLAGS.has(f)).join(',')} rss=${v.rss} swap=${v.swap}`);
      const ev = ep.vmas.map((v) => `${v.start}-${v.end} ${v.perms} ${v.flags.filter((f) => COMPARED_VMFLAGS.has(f)).join(',')} rss=${v.rss} swap=${v.swap}`);
      if (kv.join('\n') !== ev.join('\n')) out.push({ step, where: name, field: 'vmas', kernel: kv, engine: ev, dumpPath: 'processes.*.vmas' });
      comparePages(step, name, expandRuns(kp.pages), expandRuns(ep.pages), o, out);
    }
  }
  return out;
}

/** Differences a policy other than mainline may have, by ALLOWED_DIFFERENCES; the rest. */
export function notAllowedFor(policy: Policy, diffs: readonly Difference[]): Difference[] {
  if (policy === 'mainline') return [...diffs];
  return diffs.filter((d) => !isAllowedDifference(d.dumpPath.replace(/\*/g, '0'), policy, 'mainline'));
}

/** Sort key: step, then place without the address, then field, then address (so a field's pages are adjacent). */
function sortKey(d: Difference): [number, string, string, number] {
  const m = /^(.*) 0x([0-9a-f]+)$/.exec(d.where);
  return m === null ? [d.step, d.where, d.field, -1] : [d.step, `~${m[1]}`, d.field, Number.parseInt(m[2]!, 16)];
}

/** Differences as lines, consecutive pages with the same field and values folded into one line. */
export function formatDifferences(unsorted: readonly Difference[]): string[] {
  const diffs = [...unsorted].sort((a, b) => {
    const x = sortKey(a);
    const y = sortKey(b);
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0) || x[3] - y[3];
  });
  const out: string[] = [];
  let i = 0;
  while (i < diffs.length) {
    const d = diffs[i]!;
    const m = /^(.*) 0x([0-9a-f]+)$/.exec(d.where);
    let j = i + 1;
    if (m !== null) {
      let next = Number.parseInt(m[2]!, 16) + 4096;
      while (j < diffs.length) {
        const x = diffs[j]!;
        const mx = /^(.*) 0x([0-9a-f]+)$/.exec(x.where);
        if (mx === null || mx[1] !== m[1] || Number.parseInt(mx[2]!, 16) !== next || x.field !== d.field || x.step !== d.step) break;
        const sameVals = JSON.stringify(x.kernel) === JSON.stringify(d.kernel) && JSON.stringify(x.engine) === JSON.stringify(d.engine);
        const numeric = typeof d.kernel === 'number' && typeof d.engine === 'number';
        if (!sameVals && !numeric) break;
        next += 4096;
        j++;
      }
    }
    const n = j - i;
    const place = n > 1 ? `${d.where} (+${n - 1} pages)` : d.where;
    const val = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
    const last = diffs[j - 1]!;
    const k = n > 1 && JSON.stringify(last.kernel) !== JSON.stringify(d.kernel) ? `${val(d.kernel)}..${val(last.kernel)}` : val(d.kernel);
    const e = n > 1 && JSON.stringify(last.engine) !== JSON.stringify(d.engine) ? `${val(d.engine)}..${val(last.engine)}` : val(d.engine);
    out.push(`step ${d.step} ${place} ${d.field}: kernel ${k}, engine ${e}`);
    i = j;
  }
  return out;
}
