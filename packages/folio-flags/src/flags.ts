import { EV, FoliolabError } from '@foliolab/ledger';
import type { Folio } from './folio.js';
import type { Memmap } from './memmap.js';
import { FLAG_DESC_BRAND, type FlagDesc } from './pageflags.js';

/*
 * Generic flag operations over flag descriptors (spec §1.1–§1.2; models the
 * FOLIO_FLAG / PAGEFLAG / TESTSCFLAG / __SETPAGEFLAG families of
 * include/linux/page-flags.h, v6.15).
 *
 * Placement (which page's word holds the bit):
 *   head   (PF_HEAD / PF_NO_TAIL): the folio head; a subpage is redirected to it.
 *   any    (PF_ANY): the page itself; folio_*() variants use page[0].
 *   second (FOLIO_SECOND_PAGE): page[1]; large folios only.
 *
 * Cost (spec §1.2 "Cost events"): every atomic set/clear/test-and-set/
 * test-and-clear is one ATOMIC_RMW; a plain test is one FLAG_LOAD; a
 * non-atomic __set/__clear is one PLAIN_RMW (its load and store steps; see
 * plainFlagLoad/plainFlagStore for running them as two scheduler steps).
 */

/** Throw unless `flag` is one of FLAG's descriptors (a look-alike object is refused). */
function checkFlag(fn: string, flag: FlagDesc): void {
  // only FLAG's descriptors carry the brand (see FLAG_DESC_BRAND)
  if (typeof flag !== 'object' || flag === null || (flag as unknown as Record<symbol, unknown>)[FLAG_DESC_BRAND] !== true) {
    throw new FoliolabError('EINVAL', `${fn}: ${String((flag as FlagDesc | null)?.name)} is not a flag descriptor from FLAG`, {
      flag: (flag as FlagDesc | null)?.name,
    });
  }
}

/** PFN whose flags word holds `flag` for folio-level operations. */
function folioWord(fn: string, folio: Folio, flag: FlagDesc): number {
  folio.mm.assertLive(fn, folio);
  checkFlag(fn, flag);
  return placedWord(fn, folio, flag);
}

function placedWord(fn: string, folio: Folio, flag: FlagDesc): number {
  if (flag.placement !== 'second') return folio.head;
  if (folio.order === 0) secondOnSmall(fn, folio, flag);
  return folio.head + 1;
}

function secondOnSmall(fn: string, folio: Folio, flag: FlagDesc): never {
  throw new FoliolabError('EINVAL', `${fn}: ${flag.kernelName} is a second-page flag; folio ${folio.head} is order 0`, {
    head: folio.head,
    flag: flag.name,
  });
}

/** PFN whose flags word holds `flag` for page-level operations on `pfn`. */
function pageWord(fn: string, mm: Memmap, pfn: number, flag: FlagDesc): number {
  mm.checkPfn(fn, pfn);
  checkFlag(fn, flag);
  const head = mm.probeHead(pfn);
  if (head < 0) throw new FoliolabError('EINVAL', `${fn}: pfn ${pfn} is not in an allocated folio`, { pfn });
  if (flag.placement === 'head') return head; // PF_HEAD / PF_NO_TAIL: compound_head()
  if (flag.placement === 'any') return pfn;
  if (pfn !== head || mm.orderAt(head) === 0) {
    // PF_SECOND: VM_BUG_ON_PGFLAGS(!PageHead(page))
    throw new FoliolabError('EINVAL', `${fn}: ${flag.kernelName} needs the head of a large folio; pfn ${pfn} is not`, {
      pfn,
      head,
      flag: flag.name,
    });
  }
  return head + 1;
}

function load(mm: Memmap, w: number, mask: number): boolean {
  mm.ledger.charge(EV.FLAG_LOAD);
  return (mm.flags[w]! & mask) !== 0;
}

function atomicSet(mm: Memmap, w: number, mask: number): boolean {
  mm.ledger.charge(EV.ATOMIC_RMW);
  const old = mm.flags[w]!;
  mm.flags[w] = old | mask;
  return (old & mask) !== 0;
}

function atomicClear(mm: Memmap, w: number, mask: number): boolean {
  mm.ledger.charge(EV.ATOMIC_RMW);
  const old = mm.flags[w]!;
  mm.flags[w] = old & ~mask;
  return (old & mask) !== 0;
}

function plainStore(mm: Memmap, w: number, loaded: number, mask: number, set: boolean): void {
  mm.ledger.charge(EV.PLAIN_RMW);
  mm.flags[w] = set ? loaded | mask : loaded & ~mask;
}

/** folio_test_X(): plain load of the bit. */
export function folioTestFlag(folio: Folio, flag: FlagDesc): boolean {
  return load(folio.mm, folioWord('folioTestFlag', folio, flag), flag.mask);
}

/** folio_set_X(): atomic set_bit. */
export function folioSetFlag(folio: Folio, flag: FlagDesc): void {
  atomicSet(folio.mm, folioWord('folioSetFlag', folio, flag), flag.mask);
}

/** folio_clear_X(): atomic clear_bit. */
export function folioClearFlag(folio: Folio, flag: FlagDesc): void {
  atomicClear(folio.mm, folioWord('folioClearFlag', folio, flag), flag.mask);
}

/** folio_test_set_X(): atomic test_and_set_bit; returns the old bit. */
export function folioTestSetFlag(folio: Folio, flag: FlagDesc): boolean {
  return atomicSet(folio.mm, folioWord('folioTestSetFlag', folio, flag), flag.mask);
}

/** folio_test_clear_X(): atomic test_and_clear_bit; returns the old bit. */
export function folioTestClearFlag(folio: Folio, flag: FlagDesc): boolean {
  return atomicClear(folio.mm, folioWord('folioTestClearFlag', folio, flag), flag.mask);
}

/** __folio_set_X(): non-atomic __set_bit (load, modify, store), run straight through. */
export function __folioSetFlag(folio: Folio, flag: FlagDesc): void {
  const w = folioWord('__folioSetFlag', folio, flag);
  plainStore(folio.mm, w, folio.mm.flags[w]!, flag.mask, true);
}

/** __folio_clear_X(): non-atomic __clear_bit, run straight through. */
export function __folioClearFlag(folio: Folio, flag: FlagDesc): void {
  const w = folioWord('__folioClearFlag', folio, flag);
  plainStore(folio.mm, w, folio.mm.flags[w]!, flag.mask, false);
}

/**
 * The load step of __folio_set_X / __folio_clear_X: the whole word the later
 * store will write back. Charges nothing; plainFlagStore charges the PLAIN_RMW.
 */
export function plainFlagLoad(folio: Folio, flag: FlagDesc): number {
  return folio.mm.flags[folioWord('plainFlagLoad', folio, flag)]!;
}

/**
 * The store step of __folio_set_X (`set`) / __folio_clear_X (`!set`): writes
 * `loaded` with the bit changed, overwriting whatever other CPUs did to the
 * word since the load — the lost update of spec §1.2. One PLAIN_RMW.
 */
export function plainFlagStore(folio: Folio, flag: FlagDesc, loaded: number, set: boolean): void {
  plainStore(folio.mm, folioWord('plainFlagStore', folio, flag), loaded >>> 0, flag.mask, set);
}

/** PageX(page): plain load; head flags redirect to the head, PF_ANY use the page, PF_SECOND need a head. */
export function pageTestFlag(mm: Memmap, pfn: number, flag: FlagDesc): boolean {
  return load(mm, pageWord('pageTestFlag', mm, pfn, flag), flag.mask);
}

/** SetPageX(page): atomic set_bit. */
export function pageSetFlag(mm: Memmap, pfn: number, flag: FlagDesc): void {
  atomicSet(mm, pageWord('pageSetFlag', mm, pfn, flag), flag.mask);
}

/** ClearPageX(page): atomic clear_bit. */
export function pageClearFlag(mm: Memmap, pfn: number, flag: FlagDesc): void {
  atomicClear(mm, pageWord('pageClearFlag', mm, pfn, flag), flag.mask);
}

/** TestSetPageX(page): atomic test_and_set_bit; returns the old bit. */
export function pageTestSetFlag(mm: Memmap, pfn: number, flag: FlagDesc): boolean {
  return atomicSet(mm, pageWord('pageTestSetFlag', mm, pfn, flag), flag.mask);
}

/** TestClearPageX(page): atomic test_and_clear_bit; returns the old bit. */
export function pageTestClearFlag(mm: Memmap, pfn: number, flag: FlagDesc): boolean {
  return atomicClear(mm, pageWord('pageTestClearFlag', mm, pfn, flag), flag.mask);
}

/** __SetPageX(page): non-atomic, run straight through. */
export function __pageSetFlag(mm: Memmap, pfn: number, flag: FlagDesc): void {
  const w = pageWord('__pageSetFlag', mm, pfn, flag);
  plainStore(mm, w, mm.flags[w]!, flag.mask, true);
}

/** __ClearPageX(page): non-atomic, run straight through. */
export function __pageClearFlag(mm: Memmap, pfn: number, flag: FlagDesc): void {
  const w = pageWord('__pageClearFlag', mm, pfn, flag);
  plainStore(mm, w, mm.flags[w]!, flag.mask, false);
}

/** @internal Unchecked atomic ops for batched helpers that validated their range once. */
export const atomicSetAt = atomicSet;
/** @internal */
export const atomicClearAt = atomicClear;

/**
 * @internal folioTestFlag for a FLAG constant on a folio the caller has
 * already checked live (and large, for a second-page flag): the same one
 * FLAG_LOAD, no liveness or placement check. For validated hot paths.
 */
export function folioTestFlagUnchecked(folio: Folio, flag: FlagDesc): boolean {
  const mm = folio.mm;
  mm.ledger.charge(EV.FLAG_LOAD);
  return (mm.flags[flag.placement === 'second' ? folio.head + 1 : folio.head]! & flag.mask) !== 0;
}

/**
 * @internal `nr` atomic set_bits of `mask` on the words of pages
 * [firstPfn, firstPfn + nr), nr ≥ 1, for a caller that validated the range:
 * nr × ATOMIC_RMW. Without a trace sink nobody can see the order of the
 * charges, so they are one charge(ATOMIC_RMW, nr) (the same counts); with a
 * sink, one charge per page as the kernel's loop does.
 */
export function pagesAtomicSet(mm: Memmap, firstPfn: number, nr: number, mask: number): void {
  const ledger = mm.ledger;
  if (ledger.tracing) {
    for (let p = firstPfn; p < firstPfn + nr; p++) atomicSet(mm, p, mask);
    return;
  }
  ledger.charge(EV.ATOMIC_RMW, nr);
  const flags = mm.flags;
  for (let p = firstPfn; p < firstPfn + nr; p++) flags[p] = flags[p]! | mask;
}

/** @internal `nr` atomic clear_bits, as pagesAtomicSet. */
export function pagesAtomicClear(mm: Memmap, firstPfn: number, nr: number, mask: number): void {
  const ledger = mm.ledger;
  if (ledger.tracing) {
    for (let p = firstPfn; p < firstPfn + nr; p++) atomicClear(mm, p, mask);
    return;
  }
  ledger.charge(EV.ATOMIC_RMW, nr);
  const flags = mm.flags;
  const keep = ~mask;
  for (let p = firstPfn; p < firstPfn + nr; p++) flags[p] = flags[p]! & keep;
}
