import { FoliolabError } from '@foliolab/ledger';
import {
  CONT_PTES,
  PTRS_PER_PTE,
  pteValidCont,
  pteBits,
  pteDirty,
  pteMkclean,
  pteMkdirty,
  pteMkold,
  pteMkwriteNovma,
  pteMkyoung,
  ptePfn,
  ptePresent,
  pteSame,
  pteSetPfn,
  ptepGet,
  internalPtepGet,
  PteTable,
  pteWrite,
  pteWrprotect,
  pteYoung,
  type PteBits,
} from '@foliolab/pagetable-arm64-contpte';
import { batchHint } from './run.js';

/*
 * folio_pte_batch_flags (mm/internal.h, 2026; spec "Package pvmw" §4 and
 * unmap-engine §2.4) — the batch scan try_to_unmap_one runs after a pvmw hit.
 */

/** Compare the dirty bit. */
export const FPB_RESPECT_DIRTY = 1 << 0;
/** Compare the soft-dirty bit (a no-op on arm64: no soft-dirty). */
export const FPB_RESPECT_SOFT_DIRTY = 1 << 1;
/** Compare the write bit. */
export const FPB_RESPECT_WRITE = 1 << 2;
/** Make the returned first-PTE copy writable if any entry is. */
export const FPB_MERGE_WRITE = 1 << 3;
/** OR young/dirty of all entries into the returned copy. */
export const FPB_MERGE_YOUNG_DIRTY = 1 << 4;

const FPB_ALL = FPB_RESPECT_DIRTY | FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE | FPB_MERGE_WRITE | FPB_MERGE_YOUNG_DIRTY;

// Scratch registers (the scan allocates nothing).
const expected = pteBits();
const cur = pteBits();

/** `__pte_batch_clear_ignored(pte, flags)`: mkclean / wrprotect unless respected, then mkold. */
function clearIgnored(p: PteBits, flags: number): void {
  if ((flags & FPB_RESPECT_DIRTY) === 0) pteMkclean(p);
  // pte_clear_soft_dirty: arm64 has no soft-dirty bit.
  if ((flags & FPB_RESPECT_WRITE) === 0) pteWrprotect(p);
  pteMkold(p);
}

/**
 * `folio_pte_batch_flags(folio, vma, ptep, &pte, max_nr, flags)`: the number
 * of PTEs from `index` that map consecutive pages of `folio` with the same
 * bits as `pte` (young always ignored; dirty and write unless RESPECTed),
 * at most `maxNr` and never past the folio's end. `pte` is the caller's
 * gathered copy of the first entry (its CONT bit gives the first hint); it
 * receives the MERGE_* results. Cost: one `ptep_get` per examined slot,
 * stepping by `pte_batch_hint` (one per contpte block).
 */
export function folioPteBatchFlags(
  folio: { readonly pfn: number; readonly nrPages: number },
  table: PteTable,
  index: number,
  pte: PteBits,
  maxNr: number,
  flags: number,
): number {
  const folioPfn = folio.pfn;
  const folioNrPages = folio.nrPages;
  const pfn0 = ptePfn(pte.lo, pte.hi);
  if (!ptePresent(pte.lo, pte.hi) || pfn0 < folioPfn || pfn0 >= folioPfn + folioNrPages) {
    throw new FoliolabError('EINVAL', `folioPteBatchFlags: pte (pfn ${pfn0}) is not a present mapping of folio ${folioPfn}+${folioNrPages}`, { pfn: pfn0 });
  }
  // isInt32 accepts exactly the integers Number.isInteger did here: every accepted value lies in 0..512.
  if (!isInt32(index) || index < 0 || !isInt32(maxNr) || maxNr < 1 || index + maxNr > PTRS_PER_PTE) {
    throw new FoliolabError('ERANGE', `folioPteBatchFlags: [${String(index)}, +${String(maxNr)}) is not a range inside one PTE table`, { index, maxNr });
  }
  if (!Number.isInteger(flags) || (flags & ~FPB_ALL) !== 0) throw new FoliolabError('EINVAL', `folioPteBatchFlags: unknown flags 0x${Number(flags).toString(16)}`, { flags });
  if (!(table instanceof PteTable)) {
    // Not a table: fail exactly where the scan used to (the hint reads table.mm; the first read checks the table).
    if (maxNr > folioPfn + folioNrPages - pfn0) maxNr = folioPfn + folioNrPages - pfn0;
    const t = table as PteTable;
    const nr = t.mm.profile.contpte && pteValidCont(pte.lo, pte.hi) ? CONT_PTES - (index % CONT_PTES) : 1;
    if (nr < maxNr) ptepGet(t, index + nr, cur);
    return maxNr;
  }
  return folioPteBatchFlagsUnchecked(folioPfn, folioNrPages, table, index, pte, maxNr, flags);
}

/** A number in the int32 range with no fraction. */
function isInt32(x: number): boolean {
  return typeof x === 'number' && (x | 0) === x;
}

/**
 * @internal `folio_pte_batch_flags` without validation, the folio as scalars
 * (no object per call), for the engine's hot paths. The caller guarantees
 * what `folioPteBatchFlags` checks: `pte` is a present mapping of a page of
 * [folioPfn, folioPfn + folioNrPages); `table` is a PTE table; index and
 * maxNr are integers with index ≥ 0, maxNr ≥ 1, index + maxNr ≤ 512;
 * `flags` holds only FPB_* bits. Same reads, events and result.
 */
export function folioPteBatchFlagsUnchecked(
  folioPfn: number,
  folioNrPages: number,
  table: PteTable,
  index: number,
  pte: PteBits,
  maxNr: number,
  flags: number,
): number {
  const pfn0 = ptePfn(pte.lo, pte.hi);
  if (maxNr > folioPfn + folioNrPages - pfn0) maxNr = folioPfn + folioNrPages - pfn0;
  let nr = batchHint(table, index, pte.lo, pte.hi);
  // A contpte block covering the whole folio ends the scan here, before any read.
  if (nr >= maxNr) return maxNr;
  expected.lo = pte.lo;
  expected.hi = pte.hi;
  pteSetPfn(expected, pfn0 + nr);
  clearIgnored(expected, flags);
  let anyWritable = false;
  let anyYoung = false;
  let anyDirty = false;
  while (nr < maxNr) {
    internalPtepGet(table, index + nr, cur); // index + nr < index + maxNr ≤ 512
    const lo = cur.lo;
    const hi = cur.hi;
    clearIgnored(cur, flags);
    if (!pteSame(cur.lo, cur.hi, expected.lo, expected.hi)) break;
    if ((flags & FPB_MERGE_WRITE) !== 0) anyWritable ||= pteWrite(lo, hi);
    if ((flags & FPB_MERGE_YOUNG_DIRTY) !== 0) {
      anyYoung ||= pteYoung(lo, hi);
      anyDirty ||= pteDirty(lo, hi);
    }
    const c = batchHint(table, index + nr, lo, hi);
    pteSetPfn(expected, pfn0 + nr + c);
    nr += c;
  }
  if (anyWritable) pteMkwriteNovma(pte);
  if (anyYoung) pteMkyoung(pte);
  if (anyDirty) pteMkdirty(pte);
  return nr < maxNr ? nr : maxNr;
}
