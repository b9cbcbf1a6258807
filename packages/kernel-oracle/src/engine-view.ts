import type { FolioDump, ProcessDump, StateV1 } from '@foliolab/unmap-engine';
import { normalisePages, type RawPage } from './normalise.js';
import type { LostObs, ProcObs, StepObs, VmaObs } from './types.js';

/*
 * The engine's state, projected onto what the guest sees through
 * /proc/<pid>/pagemap, /proc/kpageflags, /proc/kpagecount and smaps (7.2.13
 * fs/proc/task_mmu.c pte_to_pagemap_entry, fs/proc/page.c stable_page_flags
 * and get_kpage_count), so the two answers can be compared field by field.
 */

/** Process slots: slot → engine pid and name. */
export interface Slots {
  readonly pidOf: readonly number[];
  readonly names: readonly string[];
}

/** smaps VmFlags mnemonics (show_smap_vma_flags) for the engine's VMA flag names that user space can see. */
export const VMA_FLAG_MNEMONIC: Readonly<Record<string, string>> = {
  read: 'rd',
  write: 'wr',
  exec: 'ex',
  locked: 'lo',
  dontcopy: 'dc',
  uffdWp: 'uw',
  wipeonfork: 'wf',
  droppable: 'dp',
};
/** The mnemonics compared: those above. */
export const COMPARED_VMFLAGS: ReadonlySet<string> = new Set(Object.values(VMA_FLAG_MNEMONIC));

/** Engine folio flag → kpageflags name (lower case): the flags both sides have. */
const FOLIO_FLAG_KPF: Readonly<Record<string, string>> = {
  anon: 'anon',
  swapbacked: 'swapbacked',
  swapcache: 'swapcache',
  dirty: 'dirty',
  lru: 'lru',
  active: 'active',
  referenced: 'referenced',
  unevictable: 'unevictable',
  mlocked: 'mlocked',
  locked: 'locked',
  writeback: 'writeback',
  uptodate: 'uptodate',
  reclaim: 'reclaim',
};

function vmaObs(v: ProcessDump['vmas'][number], p: ProcessDump): VmaObs {
  const start = Number.parseInt(v.start, 16);
  const end = Number.parseInt(v.end, 16);
  const f = new Set(v.flags);
  const perms = `${f.has('read') ? 'r' : '-'}${f.has('write') ? 'w' : '-'}${f.has('exec') ? 'x' : '-'}p`;
  let rss = 0;
  let swap = 0;
  for (const pte of p.ptes) {
    const a = Number.parseInt(pte.addr, 16);
    if (a < start || a >= end) continue;
    // smaps (7.2.13 fs/proc/task_mmu.c smaps_pte_entry) counts a present vm_normal_page() (not the
    // zero page) and every non-swap entry with a pfn (softleaf_has_pfn: migration, device, hwpoison)
    // as Rss, and swap entries as Swap
    if (pte.kind === 'present') rss += pte.zeroPage === true ? 0 : 1;
    else if (pte.kind === 'swap') swap++;
    else if (pte.kind !== 'marker') rss++;
  }
  const flags = v.flags.map((n) => VMA_FLAG_MNEMONIC[n]).filter((m): m is string => m !== undefined);
  return { start: v.start, end: v.end, perms, flags: flags.sort(), rss, swap };
}

function folioIndex(folios: readonly FolioDump[]): (pfn: number) => FolioDump | undefined {
  const sorted = [...folios].sort((a, b) => a.pfn - b.pfn);
  return (pfn) => {
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = sorted[mid]!;
      if (pfn < f.pfn) hi = mid - 1;
      else if (pfn >= f.pfn + 2 ** f.order) lo = mid + 1;
      else return f;
    }
    return undefined;
  };
}

function folioFlags(f: FolioDump): string[] {
  return f.flags
    .map((n) => FOLIO_FLAG_KPF[n])
    .filter((n): n is string => n !== undefined)
    .sort();
}

/** The engine's pages of one process, in the guest's raw form. */
function rawPages(p: ProcessDump, slot: number, folioAt: (pfn: number) => FolioDump | undefined): RawPage[] {
  const out: RawPage[] = [];
  for (const pte of p.ptes) {
    const addr = Number.parseInt(pte.addr, 16);
    switch (pte.kind) {
      case 'present': {
        if (pte.zeroPage === true) {
          out.push({ slot, addr, kind: 'zero', uffdWp: pte.uffdWp === true });
          break;
        }
        const f = folioAt(pte.pfn!);
        if (f === undefined) throw new Error(`engine-view: PTE at ${pte.addr} maps pfn ${pte.pfn} of no folio`);
        const idx = pte.pfn! - f.pfn;
        const mapcount = f.pageMapcounts?.[idx] ?? f.mapcount;
        out.push({
          slot,
          addr,
          kind: 'present',
          head: f.pfn,
          idx,
          order: f.order,
          mapcount,
          exclusive: mapcount === 1,
          flags: folioFlags(f),
          anonExclusiveHead: f.flags.includes('anon') && f.anonExclusive[0] === '1',
          poisoned: f.hwpoison?.[idx] === '1',
          uffdWp: pte.uffdWp === true,
        });
        break;
      }
      case 'swap':
        out.push({ slot, addr, kind: 'swap', type: pte.type!, offset: pte.offset!, uffdWp: pte.uffdWp === true });
        break;
      case 'marker':
        out.push({ slot, addr, kind: 'marker', uffdWp: pte.uffdWp === true });
        break;
      case 'hwpoison':
        out.push({ slot, addr, kind: 'hwpoison' });
        break;
      case 'migration':
        out.push({ slot, addr, kind: 'migration' });
        break;
      default:
        out.push({ slot, addr, kind: 'device' });
    }
  }
  return out;
}

/** The engine's counters as one flat record: vmstat names and mthp.<size>.<stat>. */
export function engineCounters(d: StateV1): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(d.stats.vmstat)) out[k] = v;
  for (const [size, m] of Object.entries(d.stats.mthp)) for (const [k, v] of Object.entries(m)) out[`mthp.${size}.${k}`] = v;
  return out;
}

export interface CallFacts {
  step: number;
  kind: string;
  /** The outcome when not "ok": the engine's rejection, or the errno the kernel would give. */
  outcome: string | null;
  result: unknown;
}

function lostOf(result: unknown): LostObs[] {
  const lost = (result as { lost?: { addr: number; actual: number; reason?: string }[] } | undefined)?.lost ?? [];
  return lost.map((l) => ({ addr: `0x${l.addr.toString(16)}`, reason: l.reason === 'hwpoison' || l.actual === -1 ? 'hwpoison' : 'mismatch' }));
}

/** The engine's answer to one step: the state after it, projected; counters as deltas from `prev`. */
export function engineObservation(after: StateV1, prev: StateV1 | null, c: CallFacts, slots: Slots): StepObs {
  const folioAt = folioIndex(after.folios);
  const raw: RawPage[] = [];
  const procs: ProcObs[] = [];
  for (let slot = 0; slot < slots.pidOf.length; slot++) {
    const p = after.processes.find((x) => x.pid === slots.pidOf[slot]);
    if (p === undefined || p.exited) continue;
    procs.push({ slot, name: slots.names[slot]!, vmas: p.vmas.map((v) => vmaObs(v, p)), pages: [] });
    raw.push(...rawPages(p, slot, folioAt));
  }
  const runs = normalisePages(raw);
  for (const p of procs) p.pages = runs.get(p.slot) ?? [];
  const now = engineCounters(after);
  const before = prev === null ? {} : engineCounters(prev);
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) counters[k] = d;
  }
  const events: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.ledger)) {
    const d = v - (prev?.ledger[k] ?? 0);
    if (d !== 0) events[k] = d;
  }
  return {
    step: c.step,
    kind: c.kind,
    events,
    outcome: c.outcome ?? 'ok',
    lost: lostOf(c.result),
    counters,
    processes: procs,
  };
}
