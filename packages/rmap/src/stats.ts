import { MAX_FOLIO_ORDER } from '@foliolab/folio-flags';

/** Orders with a slot in the per-order (mTHP) stats arrays: 0..MAX_FOLIO_ORDER (0 is never counted). */
export const NR_STAT_ORDERS = MAX_FOLIO_ORDER + 1;

/** Plain-data copy of RmapStats (what `snapshot()` returns). */
export interface RmapStatsSnapshot {
  /** lruvec NR_ANON_MAPPED: anon pages with ≥ 1 mapping (whole folios under NO_PAGE_MAPCOUNT). */
  readonly NR_ANON_MAPPED: number;
  /** lruvec NR_ANON_THPS: pages of PMD-mapped anon THPs. */
  readonly NR_ANON_THPS: number;
  /** lruvec NR_FILE_MAPPED. */
  readonly NR_FILE_MAPPED: number;
  /** node NR_FILE_PMDMAPPED. */
  readonly NR_FILE_PMDMAPPED: number;
  /** node NR_SHMEM_PMDMAPPED (swapbacked file folios). */
  readonly NR_SHMEM_PMDMAPPED: number;
  /** node NR_FOLL_PIN_ACQUIRED / NR_FOLL_PIN_RELEASED. */
  readonly NR_FOLL_PIN_ACQUIRED: number;
  readonly NR_FOLL_PIN_RELEASED: number;
  /** vm events. */
  readonly thp_deferred_split_page: number;
  readonly thp_underused_split_page: number;
  /** Per-order mTHP stats (index = order): gauges nr_anon, nr_anon_partially_mapped; event split_deferred. */
  readonly nr_anon: readonly number[];
  readonly split_deferred: readonly number[];
  readonly nr_anon_partially_mapped: readonly number[];
}

/**
 * The vmstat-like counters the rmap maintains (one node, one lruvec): the
 * lruvec/node stats of __folio_mod_stat, GUP pin stats, the THP vm events
 * and the per-size mTHP stats of /sys/kernel/mm/transparent_hugepage/
 * hugepages-<size>kB/stats. Every update site charges one PCPU_COUNTER
 * (they are per-CPU counters in the kernel); the object itself is plain data.
 */
export class RmapStats {
  NR_ANON_MAPPED = 0;
  NR_ANON_THPS = 0;
  NR_FILE_MAPPED = 0;
  NR_FILE_PMDMAPPED = 0;
  NR_SHMEM_PMDMAPPED = 0;
  NR_FOLL_PIN_ACQUIRED = 0;
  NR_FOLL_PIN_RELEASED = 0;
  thp_deferred_split_page = 0;
  thp_underused_split_page = 0;
  readonly nr_anon = new Float64Array(NR_STAT_ORDERS);
  readonly split_deferred = new Float64Array(NR_STAT_ORDERS);
  readonly nr_anon_partially_mapped = new Float64Array(NR_STAT_ORDERS);

  /** A plain-data copy, safe to keep and compare. */
  snapshot(): RmapStatsSnapshot {
    return {
      NR_ANON_MAPPED: this.NR_ANON_MAPPED,
      NR_ANON_THPS: this.NR_ANON_THPS,
      NR_FILE_MAPPED: this.NR_FILE_MAPPED,
      NR_FILE_PMDMAPPED: this.NR_FILE_PMDMAPPED,
      NR_SHMEM_PMDMAPPED: this.NR_SHMEM_PMDMAPPED,
      NR_FOLL_PIN_ACQUIRED: this.NR_FOLL_PIN_ACQUIRED,
      NR_FOLL_PIN_RELEASED: this.NR_FOLL_PIN_RELEASED,
      thp_deferred_split_page: this.thp_deferred_split_page,
      thp_underused_split_page: this.thp_underused_split_page,
      nr_anon: Array.from(this.nr_anon),
      split_deferred: Array.from(this.split_deferred),
      nr_anon_partially_mapped: Array.from(this.nr_anon_partially_mapped),
    };
  }
}
