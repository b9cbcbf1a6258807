import { FoliolabError } from '@foliolab/ledger';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE, ptePfn, type PageTables } from '@foliolab/pagetable-arm64-contpte';
import { jumpWalk } from './jump.js';
import { PageVmaMappedWalk } from './state.js';
import { PVMW_BATCH_PRESENT, PVMW_PGTABLE_CROSSED, PVMW_SYNC, type PvmwTarget, type PvmwVma } from './types.js';
import { vmaAddress } from './vma.js';
import { pageVmaMappedWalk, pageVmaMappedWalkDone } from './walk.js';

/*
 * The try_to_unmap_one loop shape (spec "Package pvmw" §4, unmap-engine §2.3
 * and §3.3 step 7) with the caller's work left to a handler, and the three
 * ways to resume after a partial batch (seed 003):
 *   none          today: the next call resumes NEXT from the batch's first entry
 *   jump          page_vma_mapped_walk_jump(pvmw, n − 1) (Dev Jain v1 5/9)
 *   batchPresent  PVMW_BATCH_PRESENT: the walker reports the run and skips it
 */

/** How the caller resumes the walk after handling a batch. */
export type SkipPolicy = 'none' | 'jump' | 'batchPresent';

/** All skip policies, in a stable order. */
export const SKIP_POLICIES: readonly SkipPolicy[] = Object.freeze(['none', 'jump', 'batchPresent'] as const);

/** Handler result: it called `pageVmaMappedWalkRestart` (e.g. after splitting a PMD); keep walking. */
export const HANDLER_RESTARTED = -1;

/**
 * Called at every hit with the lock held. For a PTE hit `maxNr` is the most
 * entries a batch from the hit may cover (batchPresent: the walker's run
 * `walk.nr`; otherwise the PMD / VMA end (`pmd_addr_end`) and the target's
 * last PFN); for a PMD or hugetlb hit it is 512. Returns how many entries
 * from the hit it handled (1..maxNr), 0 to abort the walk (walk_done), or
 * HANDLER_RESTARTED. It must change only the entries it reports handled.
 */
export type PvmwHitHandler = (walk: PageVmaMappedWalk, maxNr: number) => number;

/** Options of `walkAndUnmap`. */
export interface WalkAndUnmapOptions {
  policy: SkipPolicy;
  /** TTU_SYNC → PVMW_SYNC. Default false. */
  sync?: boolean;
  /**
   * `jump` only: how far pfn/pgoff/nr_pages move after a batch of n.
   * 'nrMinus1' (default): with the cursor, as the posted helper does when
   * called with n − 1. 'nr': by n while the cursor moves n − 1 (the spec's
   * "optionally by nr"); the end-invariant assertion then throws when
   * nr_pages would reach 1.
   */
  jumpFields?: 'nrMinus1' | 'nr';
  /** Reuse this walk object (re-initialised). */
  walk?: PageVmaMappedWalk;
}

/** What `walkAndUnmap` did. */
export interface WalkAndUnmapResult {
  /** True returns of page_vma_mapped_walk. */
  hits: number;
  /** Sum of the handler's results (entries or pages handled). */
  handled: number;
  /** The handler returned 0 (walk_done, ret = false in try_to_unmap_one). */
  aborted: boolean;
  /** One batch covered the whole target (nr == folio_nr_pages): walk_done without a final call. */
  walkDone: boolean;
  /** PVMW_PGTABLE_CROSSED at the end. */
  crossed: boolean;
  /** The walk object (its ptl is released). */
  walk: PageVmaMappedWalk;
}

function checkOptions(o: WalkAndUnmapOptions): void {
  if (!SKIP_POLICIES.includes(o.policy)) throw new FoliolabError('EINVAL', `walkAndUnmap: unknown policy ${String(o.policy)}`, { policy: o.policy });
  if (o.jumpFields !== undefined && o.jumpFields !== 'nr' && o.jumpFields !== 'nrMinus1') {
    throw new FoliolabError('EINVAL', `walkAndUnmap: jumpFields ${String(o.jumpFields)}`, { jumpFields: o.jumpFields });
  }
}

/** `max_nr` for a batch from the current PTE hit: PMD end, VMA end (pmd_addr_end) and the target's last PFN. */
function geometricMax(w: PageVmaMappedWalk, target: PvmwTarget): number {
  const a = w.address;
  let end = a - (a % PMD_SIZE) + PMD_SIZE;
  if (w.vma.vmEnd < end) end = w.vma.vmEnd;
  const n = (end - a) / PAGE_SIZE;
  const left = target.pfn + target.nrPages - ptePfn(w.pteval.lo, w.pteval.hi);
  return left < n ? left : n;
}

/**
 * The try_to_unmap_one walk loop for one (target, vma): call
 * `page_vma_mapped_walk` until false; at each hit ask `handler` how many
 * entries it handled; stop with walk_done when one batch covered the whole
 * target or the handler aborts; otherwise resume according to the policy.
 */
export function walkAndUnmap(pt: PageTables, target: PvmwTarget, vma: PvmwVma, options: WalkAndUnmapOptions, handler: PvmwHitHandler): WalkAndUnmapResult {
  checkOptions(options);
  const policy = options.policy;
  const flags = (options.sync === true ? PVMW_SYNC : 0) | (policy === 'batchPresent' ? PVMW_BATCH_PRESENT : 0);
  const address = vmaAddress(vma, target.pgoff, target.nrPages);
  // -EFAULT: the target is not inside this VMA; try_to_unmap_one is never called (the walk stays unused).
  const start = address < 0 ? vma.vmStart : address;
  const w = options.walk !== undefined ? options.walk.init(target, vma, start, flags) : new PageVmaMappedWalk(pt, target, vma, start, flags);
  const res: WalkAndUnmapResult = { hits: 0, handled: 0, aborted: false, walkDone: false, crossed: false, walk: w };
  if (address < 0) return res;
  const fieldsByNr = options.jumpFields === 'nr';
  while (pageVmaMappedWalk(w)) {
    res.hits++;
    const pteHit = w.pte !== null;
    const maxNr = !pteHit ? HPAGE_PMD_NR : policy === 'batchPresent' ? w.nr : geometricMax(w, target);
    const k = handler(w, maxNr);
    if (k === HANDLER_RESTARTED) continue;
    if (!Number.isInteger(k) || k < 0 || k > maxNr) {
      pageVmaMappedWalkDone(w);
      throw new FoliolabError('ERANGE', `walkAndUnmap: handler returned ${String(k)}, not within 0..${maxNr}`, { k, maxNr });
    }
    if (k === 0) {
      res.aborted = true;
      pageVmaMappedWalkDone(w);
      break;
    }
    res.handled += k;
    if (k === target.nrPages) {
      res.walkDone = true;
      pageVmaMappedWalkDone(w);
      break;
    }
    if (!pteHit) continue; // the next call reports not_found
    if (policy === 'jump') {
      try {
        jumpWalk(w, k - 1, fieldsByNr ? k : k - 1, true, 'page_vma_mapped_walk_jump');
      } catch (e) {
        pageVmaMappedWalkDone(w); // leave no lock behind
        throw e;
      }
    } else if (policy === 'batchPresent') {
      w.nr = k;
    }
  }
  res.crossed = (w.flags & PVMW_PGTABLE_CROSSED) !== 0;
  return res;
}
