import { EVENT_NAMES, FoliolabError, NR_EVENTS, measure, type EventCounts } from '@foliolab/ledger';
import {
  Machine,
  PMD_SIZE,
  PageTables,
  __setPte,
  archProfile,
  fixedSizeFolios,
  getAndClearPtes,
  makeUserPte,
  mkSwapPte,
  ptePfn,
  pteBits,
  ptepGet,
  setPtes,
  type ArchName,
  type ArchProfileOptions,
} from '@foliolab/pagetable-arm64-contpte';
import { FPB_RESPECT_SOFT_DIRTY, FPB_RESPECT_WRITE, folioPteBatchFlags } from './batch.js';
import { SKIP_POLICIES, walkAndUnmap, type SkipPolicy } from './driver.js';
import type { PvmwTarget, PvmwVma } from './types.js';

/*
 * Seed 003 answered by measurement: what each skip policy costs the walk
 * when try_to_unmap_one handles a PTE-mapped anon folio in batches.
 *
 *   0123456789abcdef…   one char per 4K page; the folio is mapped at a
 *   CCCCCCCCCCCCCCCC…   2M-aligned VA with one set_ptes (contpte blocks on
 *                       arm64-contpte), young+dirty+writable (after memset)
 *
 * Per hit the caller does what try_to_unmap_one does on the page-table side:
 * ptep_get (pteval), the batch (folio_pte_batch_flags with RESPECT_WRITE |
 * RESPECT_SOFT_DIRTY capped at its batch size, or nothing for a batch of 1
 * — mainline's early return — or, under batchPresent, the walker's run),
 * get_and_clear_ptes(nr), nr swap-PTE stores. TLB flushing, rmap and swap
 * accounting are identical under every policy and left out.
 */

/** A caller's batch shape: at most `n` PTEs per hit, or the whole run ('folio'). */
export type BatchShape = number | 'folio';

/** Options of `skipPolicyCosts`. */
export interface SkipPolicyCostOptions {
  /** Folio size in 4K pages: a power of two, 2..512 (16 = 64K, 512 = 2M). */
  folioPages: number;
  /** Entries the caller handles per hit (1 = mainline anon; 8 = exclusivity sub-batches; 'folio' = everything it can). */
  batch: BatchShape;
  /** Default 'arm64-contpte'. */
  profile?: ArchName;
  profileOptions?: ArchProfileOptions;
  /** TTU_SYNC / PVMW_SYNC (reclaim sets it for large folios). Default false, as in spec §8. */
  sync?: boolean;
}

/** Costs of one policy. */
export interface PolicyCost {
  hits: number;
  handled: number;
  /** Charged by page_vma_mapped_walk calls and the policy's skip (everything but the handler). */
  walk: EventCounts;
  /** Walk plus the caller's page-table work. */
  total: EventCounts;
}

const VA = 0x4000_0000;
const PFN = 0x8_0000;
const SWAP_BASE = 0x100;

function checkOptions(o: SkipPolicyCostOptions): void {
  const n = o.folioPages;
  if (!Number.isInteger(n) || n < 2 || n > 512 || (n & (n - 1)) !== 0) {
    throw new FoliolabError('EINVAL', `skipPolicyCosts: folioPages ${String(n)} is not a power of two in 2..512`, { folioPages: n });
  }
  if (o.batch !== 'folio' && (!Number.isInteger(o.batch) || o.batch < 1)) {
    throw new FoliolabError('EINVAL', `skipPolicyCosts: batch ${String(o.batch)} must be an integer ≥ 1 or 'folio'`, { batch: o.batch });
  }
}

function runPolicy(o: SkipPolicyCostOptions, policy: SkipPolicy): PolicyCost {
  const machine = new Machine({ profile: archProfile(o.profile ?? 'arm64-contpte', o.profileOptions) });
  const pt = new PageTables(machine, { folios: fixedSizeFolios(o.folioPages) });
  const table = pt.pteAlloc(VA);
  const p = makeUserPte(PFN, { write: true, young: true, dirty: true });
  setPtes(table, 0, p.lo, p.hi, o.folioPages);
  const target: PvmwTarget = { pfn: PFN, nrPages: o.folioPages, pgoff: VA / 4096 };
  const vma: PvmwVma = { vmStart: VA, vmEnd: VA + PMD_SIZE, vmPgoff: VA / 4096 };
  const ledger = machine.ledger;
  const handlerCounts = new Float64Array(NR_EVENTS);
  const before = new Float64Array(NR_EVENTS);
  const pteval = pteBits();
  const swp = pteBits();
  const out = measure(ledger, () =>
    walkAndUnmap(pt, target, vma, { policy, sync: o.sync === true }, (w, maxNr) => {
      before.set(ledger.counts);
      const t = w.pte!;
      const i = w.pteIndex;
      ptepGet(t, i, pteval);
      const want = o.batch === 'folio' || o.batch > maxNr ? maxNr : o.batch;
      const k = policy === 'batchPresent' || want === 1 ? want : folioPteBatchFlags(target, t, i, pteval, want, FPB_RESPECT_WRITE | FPB_RESPECT_SOFT_DIRTY);
      const page = ptePfn(pteval.lo, pteval.hi) - PFN;
      getAndClearPtes(t, i, k, pteval);
      for (let j = 0; j < k; j++) {
        mkSwapPte(swp, 0, SWAP_BASE + page + j, true);
        __setPte(t, i + j, swp.lo, swp.hi);
      }
      for (let e = 0; e < NR_EVENTS; e++) handlerCounts[e]! += ledger.counts[e]! - before[e]!;
      return k;
    }),
  );
  const walk = {} as EventCounts;
  EVENT_NAMES.forEach((n, e) => (walk[n] = out.counts[n] - handlerCounts[e]!));
  if (out.result.handled !== o.folioPages) {
    throw new FoliolabError('EFAULT', `skipPolicyCosts: ${policy} handled ${out.result.handled} of ${o.folioPages} pages`, { policy });
  }
  return { hits: out.result.hits, handled: out.result.handled, walk, total: out.counts };
}

/**
 * Event counts of unmapping one PTE-mapped anon folio (at a 2M-aligned VA,
 * one PTE table) under each skip policy, for a caller whose batches have the
 * given shape. `walk` isolates the walker's share; `total` adds the caller's
 * ptep_get / batch scan / clear / swap-PTE stores.
 */
export function skipPolicyCosts(o: SkipPolicyCostOptions): Record<SkipPolicy, PolicyCost> {
  checkOptions(o);
  const res = {} as Record<SkipPolicy, PolicyCost>;
  for (const policy of SKIP_POLICIES) res[policy] = runPolicy(o, policy);
  return res;
}

/** The counts of `counts` named in `names` (for compact tables). */
export function pickCounts<K extends keyof EventCounts>(counts: EventCounts, names: readonly K[]): Pick<EventCounts, K> {
  const out = {} as Pick<EventCounts, K>;
  for (const n of names) out[n] = counts[n];
  return out;
}
