import { EV, measure, type EventCounts } from '@foliolab/ledger';
import { CONT_PTES, PAGE_SIZE, PMD_SIZE, pmdAddrEnd, pmdIndex, pteIndex } from './geometry.js';
import { pmdpGet } from './pmdops.js';
import { Machine, archProfile, type ArchName, type ArchProfileOptions } from './profile.js';
import { makeUserPte, pteBits, pteMkclean, pteMkold, ptePfn, pteSame, pteSetPfn, type PteBits } from './pte.js';
import { __setPte, doGetAndClearFullPtes, doPtepGet, doPtepGetLockless, pteBatchHint, setPteAt, setPtes } from './ptep.js';
import { mkSwapPte } from './softleaf.js';
import { PageTables, fixedSizeFolios, type PteTable } from './tables.js';
import { flushTlbRange } from './tlb.js';
import { TlbUnmapBatch, archTlbbatchShouldDefer, setTlbUbcFlushPending, tryToUnmapFlush } from './tlbbatch.js';
import { tlbStaleCount } from './tlbtrack.js';

/*
 * Spec §8: a 64K anon folio, aligned, mapped by one valid-CONT block (all
 * entries young+dirty, as after memset), unmapped for swap-out by
 * try_to_unmap_one — mainline one PTE per walk step versus batched (nr = 16)
 * — then the shared try_to_unmap_flush. Only the page-table side is modeled,
 * with this package's primitives in the order pvmw and try_to_unmap_one call
 * them (pvmw and the engine live in later packages).
 */

/** Options of `workedExample64K`. */
export interface WorkedExampleOptions extends ArchProfileOptions {
  /** Default 'arm64-contpte'. */
  profile?: ArchName;
  /** TTU_BATCH_FLUSH (reclaim): defer the flush if the arch agrees. Default true. */
  batchFlush?: boolean;
  /**
   * How the swap PTE is installed. 'store' (default) counts one plain
   * PTE_WRITE, as the §8 table does. 'setPteAt' uses the real arm64
   * set_pte_at = set_ptes(…, 1), which also reads the old entry first
   * (+1 PTE_READ per swap PTE on arm64).
   */
  swapPteWrite?: 'store' | 'setPteAt';
}

/** Counts of one unmap: inside the folio walk, the final try_to_unmap_flush, and both. */
export interface UnmapCounts {
  folio: EventCounts;
  flush: EventCounts;
  total: EventCounts;
  /** PTEs still possibly TLB-visible after the walk, and after the final flush. */
  staleAfterWalk: number;
  staleAfterFlush: number;
}

/** Result of `workedExample64K`. */
export interface WorkedExampleResult {
  profile: ArchName;
  /** Raw reads of one gathering `ptep_get` on the fresh block (G of spec §8). */
  g: number;
  oneByOne: UnmapCounts;
  batched: UnmapCounts;
}

/** 0x40000000: a 2M-aligned user VA; the folio sits at the start of a PTE table. */
const VA = 0x4000_0000;
/** A 16-aligned PFN, so the block is PA-aligned too. */
const PFN = 0x8_0000;
const SWAP_OFFSET = 0x100;

interface Setup {
  mm: PageTables;
  table: PteTable;
  batch: TlbUnmapBatch;
}

function setup(o: WorkedExampleOptions): Setup {
  const { profile: name = 'arm64-contpte', batchFlush: _b, swapPteWrite: _s, ...switches } = o;
  const machine = new Machine({ profile: archProfile(name, switches) });
  const mm = new PageTables(machine, { folios: fixedSizeFolios(CONT_PTES) });
  const table = mm.pteAlloc(VA);
  const pte = makeUserPte(PFN, { write: true, young: true, dirty: true });
  setPtes(table, pteIndex(VA), pte.lo, pte.hi, CONT_PTES);
  return { mm, table, batch: new TlbUnmapBatch(machine) };
}

/** G: the reads of one `ptep_get` on the first entry of the fresh block. */
function measureG(o: WorkedExampleOptions): number {
  const { mm, table } = setup(o);
  return measure(mm.ledger, () => doPtepGet(table, pteIndex(VA), pteBits())).counts.PTE_READ;
}

/** The flush try_to_unmap_one does after clearing [va, va + nr·4K). */
function flushAfterClear(s: Setup, o: WorkedExampleOptions, pteval: PteBits, va: number, nr: number): void {
  if ((o.batchFlush ?? true) && archTlbbatchShouldDefer(s.mm)) setTlbUbcFlushPending(s.batch, s.mm, pteval.lo, pteval.hi, va, va + nr * PAGE_SIZE);
  else flushTlbRange(s.mm, va, va + nr * PAGE_SIZE);
}

function installSwapPte(s: Setup, o: WorkedExampleOptions, i: number, k: number, swp: PteBits): void {
  mkSwapPte(swp, 0, SWAP_OFFSET + k, true);
  if (o.swapPteWrite === 'setPteAt') setPteAt(s.table, i, swp.lo, swp.hi);
  else __setPte(s.table, i, swp.lo, swp.hi);
}

/**
 * pvmw's first call up to the first match: lockless PMD read (D.2),
 * `map_pte` (lockless get, LOCK, PMD re-read), `check_pte` (a gathering
 * `ptep_get`). Returns the slot index.
 */
function pvmwFirstHit(s: Setup, tmp: PteBits): number {
  const l = s.mm.ledger;
  const pmdTable = s.table.pmdTable;
  l.charge(EV.PVMW_CALL);
  pmdpGet(pmdTable, pmdIndex(VA), tmp);
  const i = pteIndex(VA);
  doPtepGetLockless(s.table, i, tmp);
  l.lock(s.table.ptl);
  pmdpGet(pmdTable, pmdIndex(VA), tmp);
  doPtepGet(s.table, i, tmp); // check_pte
  return i;
}

/** Mainline anon swap-backed unmap: one PTE per pvmw call (spec §8 "one-by-one"). */
function unmapOneByOne(s: Setup, o: WorkedExampleOptions): void {
  const l = s.mm.ledger;
  const tmp = pteBits();
  const pteval = pteBits();
  const swp = pteBits();
  const i0 = pvmwFirstHit(s, tmp);
  for (let k = 0; k < CONT_PTES; k++) {
    const i = i0 + k;
    if (k > 0) {
      l.charge(EV.PVMW_CALL);
      l.charge(EV.PVMW_STEP);
      doPtepGet(s.table, i, tmp); // NEXT, ptl held: not none
      doPtepGet(s.table, i, tmp); // THIS: check_pte
    }
    doPtepGet(s.table, i, tmp); // try_to_unmap_one: pteval = ptep_get(pvmw.pte)
    doGetAndClearFullPtes(s.table, i, 1, pteval); // get_and_clear_ptes(mm, address, pvmw.pte, 1)
    flushAfterClear(s, o, pteval, s.table.vaOf(i), 1);
    installSwapPte(s, o, i, k, swp);
  }
  // call 17: NEXT steps past `end`: not_found → page_vma_mapped_walk_done
  l.charge(EV.PVMW_CALL);
  l.charge(EV.PVMW_STEP);
  l.unlock(s.table.ptl);
}

/**
 * `folio_pte_batch_flags(…, FPB_RESPECT_WRITE | FPB_RESPECT_SOFT_DIRTY)` for
 * the example (the pvmw package owns the real one): nr starts at the hint of
 * the gathered copy; then read the next slot while mkold(mkclean(entry))
 * matches the PFN-advanced expected value, advancing by each slot's hint.
 */
function folioPteBatch(t: PteTable, i: number, pte: PteBits, maxNr: number): number {
  const cur = pteBits();
  const expected = pteBits();
  let nr = pteBatchHint(t, i, pte.lo, pte.hi);
  const pfn0 = ptePfn(pte.lo, pte.hi);
  while (nr < maxNr) {
    doPtepGet(t, i + nr, cur);
    pteMkold(pteMkclean(cur));
    expected.lo = pte.lo;
    expected.hi = pte.hi;
    pteMkold(pteMkclean(pteSetPfn(expected, pfn0 + nr)));
    if (!pteSame(cur.lo, cur.hi, expected.lo, expected.hi)) break;
    nr += pteBatchHint(t, i + nr, cur.lo, cur.hi);
  }
  return Math.min(nr, maxNr);
}

/** The batched unmap: one pvmw hit, `folio_pte_batch`, one clear, one flush, nr swap PTEs, walk_done. */
function unmapBatched(s: Setup, o: WorkedExampleOptions): void {
  const tmp = pteBits();
  const pteval = pteBits();
  const swp = pteBits();
  const i = pvmwFirstHit(s, tmp);
  doPtepGet(s.table, i, pteval); // try_to_unmap_one's ptep_get
  const va = s.table.vaOf(i);
  const maxNr = Math.min((pmdAddrEnd(va, VA + PMD_SIZE) - va) / PAGE_SIZE, CONT_PTES);
  const nr = folioPteBatch(s.table, i, pteval, maxNr);
  doGetAndClearFullPtes(s.table, i, nr, pteval);
  flushAfterClear(s, o, pteval, va, nr);
  for (let k = 0; k < nr; k++) installSwapPte(s, o, i + k, k, swp);
  s.mm.ledger.unlock(s.table.ptl); // nr == folio_nr_pages: walk_done
}

function run(o: WorkedExampleOptions, unmap: (s: Setup, o: WorkedExampleOptions) => void): UnmapCounts {
  const s = setup(o);
  const folio = measure(s.mm.ledger, () => unmap(s, o)).counts;
  const staleAfterWalk = tlbStaleCount(s.mm);
  const flush = measure(s.mm.ledger, () => tryToUnmapFlush(s.batch)).counts;
  const total = { ...folio };
  for (const k of Object.keys(total) as (keyof EventCounts)[]) total[k] += flush[k];
  return { folio, flush, total, staleAfterWalk, staleAfterFlush: tlbStaleCount(s.mm) };
}

/**
 * The §8 worked example: event counts of the page-table side of unmapping
 * one aligned 64K contpte folio one PTE at a time (mainline) and batched.
 */
export function workedExample64K(options: WorkedExampleOptions = {}): WorkedExampleResult {
  return {
    profile: options.profile ?? 'arm64-contpte',
    g: measureG(options),
    oneByOne: run(options, unmapOneByOne),
    batched: run(options, unmapBatched),
  };
}
