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
  'pgscan',
  'pgsteal',
  'thp_split_page',
  'thp_split_page_failed',
  'unevictable_pgmlocked',
  'unevictable_pgmunlocked',
  'cow_fault',
  'wp_reuse',
  'swap_ra',
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
  'nr_pinned_keep',
  'nr_split',
] as const;
export type ReclaimStat = (typeof RECLAIM_STATS)[number];

/** Per-order mTHP stats the engine counts. */
export const MTHP_EVENTS = ['anon_fault_alloc', 'anon_fault_fallback', 'swpin_fallback', 'split', 'split_failed'] as const;
export type MthpEvent = (typeof MTHP_EVENTS)[number];

const NR_ORDERS = 10;

export class EngineStats {
  readonly vm: Record<VmEvent, number>;
  readonly reclaim: Record<ReclaimStat, number>;
  readonly mthp: Record<MthpEvent, Float64Array>;

  constructor(private readonly ledger: Ledger) {
    this.vm = Object.fromEntries(VM_EVENTS.map((n) => [n, 0])) as Record<VmEvent, number>;
    this.reclaim = Object.fromEntries(RECLAIM_STATS.map((n) => [n, 0])) as Record<ReclaimStat, number>;
    this.mthp = Object.fromEntries(MTHP_EVENTS.map((n) => [n, new Float64Array(NR_ORDERS)])) as Record<MthpEvent, Float64Array>;
  }

  /** count_vm_events(ev, n). */
  count(ev: VmEvent, n = 1): void {
    this.ledger.charge(EV.PCPU_COUNTER);
    this.vm[ev] += n;
  }

  /** count_mthp_stat(order, item): orders ≤ 0 are not counted, as in the kernel. */
  mthpCount(order: number, ev: MthpEvent): void {
    if (order <= 0 || order >= NR_ORDERS) return;
    this.ledger.charge(EV.PCPU_COUNTER);
    this.mthp[ev][order]! += 1;
  }

  /** Reclaim statistics are local to shrink_folio_list in the kernel: not charged. */
  addReclaim(s: ReclaimStat, n: number): void {
    this.reclaim[s] += n;
  }
}
