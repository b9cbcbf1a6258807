/**
 * Cost events. One id per kind of work a primitive does; counts are exact and
 * deterministic. Names follow the specs in shared/kernel/ (pagetable §"Cost
 * events", folio-rmap-swap §"Cost events", unmap-engine §6).
 *
 * The numeric ids are an implementation detail: code uses `EV.X`, output uses
 * the names. New events are appended, never renumbered.
 */
export const EVENT_NAMES = [
  // page-table entries and tables
  'PTE_READ', // one raw PTE load
  'PTE_WRITE', // one plain PTE store
  'PTE_XCHG', // atomic get-and-zero (or x86 non-atomic full clear)
  'PTE_CMPXCHG', // one compare-and-swap attempt
  'PMD_READ', // one PMD load
  'PMD_WRITE', // one PMD store
  'PGTABLE_ALLOC', // a page-table page allocated on demand
  'CONTPTE_FOLD', // contpte_convert with CONT set (its PTE/TLB work is counted separately)
  'CONTPTE_UNFOLD', // contpte_convert with CONT cleared
  // arm64 TLB maintenance and barriers
  'TLBI_VA', // single-page TLBI (KPTI doubles it)
  'TLBI_RANGE', // FEAT_TLBIRANGE range TLBI
  'TLBI_ASID', // whole-ASID TLBI
  'DSB_ISHST',
  'DSB_ISH',
  'ISB',
  // x86 contrast
  'X86_INVLPG',
  'X86_FLUSH_ALL',
  'X86_IPI',
  // reclaim TLB batching (set_tlb_ubc_flush_pending / arch_tlbbatch_flush)
  'TLB_PENDING_ADD',
  'TLB_BATCH_FLUSH',
  'TLB_FLUSH_RANGE',
  // locks (per-lock counts are kept by the lock table too)
  'LOCK',
  'UNLOCK',
  // atomics and barriers on struct page / folio words
  'ATOMIC_RMW', // atomic bit op on a flags word (set/clear/test_and_set/test_and_clear)
  'PLAIN_RMW', // non-atomic __set/__clear: a load and a store
  'FLAG_LOAD', // plain load of a flags word (folio_test_X)
  'ATOMIC_REF', // refcount RMW
  'ATOMIC_MAPCOUNT', // _mapcount / _large_mapcount / _nr_pages_mapped / _entire_mapcount RMW
  'ATOMIC_READ', // atomic_read, e.g. of _pincount
  'ATOMIC_TLBBATCH', // mm->tlb_flush_batched
  'MB_FULL', // smp_mb
  'MB_RMB', // smp_rmb
  'MB_AFTER_ATOMIC', // smp_mb__after_atomic
  'PCPU_COUNTER', // per-CPU counter update (mm counters, lruvec, mTHP stats)
  'LOOP_ITER', // per-page iteration inside a batched helper
  // walkers and rmap
  'PVMW_CALL',
  'PVMW_STEP',
  'PVMW_RESTART',
  'PGTABLE_CROSSED',
  'RMAP_CALL',
  'RMAP_ONE',
  'DEFERRED_SPLIT_CALL', // deferred_split_folio entered (counted even on early return)
  'DEFERRED_SPLIT_ENQUEUE',
  'FOLIO_LOOKUP', // cold struct-page access (vm_normal_folio)
  'MMU_NOTIFIER',
  // swap
  'SWAP_CLUSTER_OP', // one cluster lock round trip
  'SWAP_SLOT_UPDATE', // one slot count/table-word update
  'SWAP_ALLOC_ATOMIC', // continuation / extend-table allocation attempt
] as const;

export type EventName = (typeof EVENT_NAMES)[number];

/** `EV.PTE_READ` etc.: the numeric id of each event. */
export const EV: { readonly [K in EventName]: number } = Object.freeze(
  Object.fromEntries(EVENT_NAMES.map((n, i) => [n, i])) as { [K in EventName]: number },
);

export const NR_EVENTS = EVENT_NAMES.length;

/** Name of an event id; throws on an id that is not an event. */
export function eventName(id: number): EventName {
  const n = EVENT_NAMES[id];
  if (n === undefined) throw new RangeError(`eventName: ${id} is not an event id (0..${NR_EVENTS - 1})`);
  return n;
}
