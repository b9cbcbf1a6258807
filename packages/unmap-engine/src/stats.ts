import { EV, type Ledger } from '@foliolab/ledger';

/*
 * The engine's own event counters: vm events the engine's paths count
 * (/proc/vmstat names), reclaim statistics (struct reclaim_stat) and per-size
 * mTHP stats that no lower package owns. Every update site charges one
 * PCPU_COUNTER, as the per-CPU counters they model.
 */

/** vm events counted by the engine (lower case, as /proc/vmstat prints them). */
export const VM_EVENTS = [
  'pgfault',
  'pgmajfault',
  'pglazyfree',
  'pglazyfreed',
  'pgactivate',
  'pgdeactivate',
  'pgrefill',
  'pgrotated',
  'pgscan',
  'pgsteal',
  'thp_split_page',
  'thp_split_page_failed',
  'unevictable_pgmlocked',
  'unevictable_pgmunlocked',
  'cow_fault',
  'wp_reuse',
  'swap_ra',
  'swap_ra_hit',
  'workingset_refault_anon',
  'workingset_activate_anon',
  'workingset_restore_anon',
] as const;
export type VmEvent = (typeof VM_EVENTS)[number];

/** struct reclaim_stat-like totals over every shrink_folio_list call. */
export const RECLAIM_STATS = [
  'nr_scanned',
  'nr_reclaimed',
  'nr_unmap_fail',
  'nr_lazyfree_fail',
  'nr_activate',
  'nr_pageout',
  'nr_keep',
  'nr_ref_keep',
  'nr_pinned_keep',
  'nr_split',
] as const;
export type ReclaimStat = (typeof RECLAIM_STATS)[number];

/**
 * Per-order mTHP stats the engine counts. `swpout_fallback` here is only the
 * fallback of a reclaim without a swap device (reclaim.ts); the swap package
 * counts the others, and the dump adds the two.
 */
export const MTHP_EVENTS = ['anon_fault_alloc', 'anon_fault_fallback', 'swpin_fallback', 'split', 'split_failed', 'swpout_fallback'] as const;
export type MthpEvent = (typeof MTHP_EVENTS)[number];

const NR_ORDERS = 10;

function indexOf<const N extends readonly string[]>(names: N): { readonly [K in N[number]]: number } {
  return Object.freeze(Object.fromEntries(names.map((n, i) => [n, i]))) as { readonly [K in N[number]]: number };
}

/** Index of each vm event in `EngineStats` (call sites name the event: `VM.pgscan`). */
export const VM = indexOf(VM_EVENTS);
/** Index of each reclaim statistic (`RS.nr_pageout`). */
export const RS = indexOf(RECLAIM_STATS);
/** Index of each mTHP stat (`MTHP.split`). */
export const MTHP = indexOf(MTHP_EVENTS);

function recordOf<N extends string>(names: readonly N[], arr: Float64Array): Record<N, number> {
  const out = {} as Record<N, number>;
  for (let i = 0; i < names.length; i++) out[names[i]!] = arr[i]!;
  return out;
}

/**
 * The counters live in typed arrays indexed by the constants above: the
 * reclaim path updates several per folio, and a string-keyed store on a
 * record is a hash lookup each time. `vm`, `reclaim` and `mthp` are read-only
 * views built on demand for dumps.
 */
export class EngineStats {
  private readonly vmCounts = new Float64Array(VM_EVENTS.length);
  private readonly reclaimCounts = new Float64Array(RECLAIM_STATS.length);
  /** mthpCounts[ev * NR_ORDERS + order]. */
  private readonly mthpCounts = new Float64Array(MTHP_EVENTS.length * NR_ORDERS);

  constructor(private readonly ledger: Ledger) {}

  /** The vm events, by name (a copy). */
  get vm(): Record<VmEvent, number> {
    return recordOf(VM_EVENTS, this.vmCounts);
  }

  /** The reclaim statistics, by name (a copy). */
  get reclaim(): Record<ReclaimStat, number> {
    return recordOf(RECLAIM_STATS, this.reclaimCounts);
  }

  /** Per-order mTHP stats, by name (copies; index = order). */
  get mthp(): Record<MthpEvent, Float64Array> {
    const out = {} as Record<MthpEvent, Float64Array>;
    for (let e = 0; e < MTHP_EVENTS.length; e++) out[MTHP_EVENTS[e]!] = this.mthpCounts.slice(e * NR_ORDERS, (e + 1) * NR_ORDERS);
    return out;
  }

  /** count_vm_events(ev, n); `ev` is a `VM` index. */
  count(ev: number, n = 1): void {
    this.ledger.charge(EV.PCPU_COUNTER);
    this.vmCounts[ev]! += n;
  }

  /** count_mthp_stat(order, item): orders ≤ 0 are not counted, as in the kernel; `ev` is an `MTHP` index. */
  mthpCount(order: number, ev: number): void {
    if (order <= 0 || order >= NR_ORDERS) return;
    this.ledger.charge(EV.PCPU_COUNTER);
    this.mthpCounts[ev * NR_ORDERS + order]! += 1;
  }

  /** Reclaim statistics are local to shrink_folio_list in the kernel: not charged; `s` is an `RS` index. */
  addReclaim(s: number, n: number): void {
    this.reclaimCounts[s]! += n;
  }
}
