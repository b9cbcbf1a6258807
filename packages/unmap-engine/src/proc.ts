import type { PageTables } from '@foliolab/pagetable-arm64-contpte';
import type { PageVmaMappedWalk } from '@foliolab/pvmw';
import type { RmapMm } from '@foliolab/rmap';
import { NR_MM_COUNTERS } from './consts.js';
import type { Vma } from './vma.js';

/**
 * A process: its `mm_struct` (page tables, VMAs, RSS counters,
 * MMF_HAS_PINNED, mmlist membership, an MM_ID) plus its pid and name.
 * Satisfies the rmap package's RmapMm.
 */
export class Proc implements RmapMm {
  exited = false;
  /** MMF_HAS_PINNED: set by FOLL_PIN, never cleared. */
  hasPinned = false;
  /** On swapoff's mmlist (added on the first swap-out or when fork copies a swap PTE). */
  onMmlist = false;
  /** mm->rss_stat[] (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES). */
  readonly rss = new Float64Array(NR_MM_COUNTERS);
  /** mm->hiwater_rss. */
  hiwaterRss = 0;
  /** VMAs sorted by vmStart, non-overlapping. */
  vmas: Vma[] = [];
  /** The reusable page_vma_mapped_walk of this mm (created on first use). */
  walk: PageVmaMappedWalk | null = null;

  constructor(
    readonly pid: number,
    readonly name: string,
    readonly parent: number | null,
    /** The rmap MM_ID (1..). */
    readonly mmId: number,
    readonly pt: PageTables,
  ) {}

  /** get_mm_rss(): file + anon + shmem pages. */
  get rssPages(): number {
    return this.rss[0]! + this.rss[1]! + this.rss[3]!;
  }
}
