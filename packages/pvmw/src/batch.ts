import { FoliolabError } from '@foliolab/ledger';
import {
  PTRS_PER_PTE,
  pteBits,
  pteDirty,
  pteMkclean,
  pteMkdirty,
  pteMkold,
  pteMkwrite,
  pteMkyoung,
  ptePfn,
  ptePresent,
  pteSame,
  pteSetPfn,
  ptepGet,
  pteWrite,
  pteWrprotect,
  pteYoung,
  type PteBits,
  type PteTable,
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
  const pfn0 = ptePfn(pte.lo, pte.hi);
  if (!ptePresent(pte.lo, pte.hi) || pfn0 < folio.pfn || pfn0 >= folio.pfn + folio.nrPages) {
    throw new FoliolabError('EINVAL', `folioPteBatchFlags: pte (pfn ${pfn0}) is not a present mapping of folio ${folio.pfn}+${folio.nrPages}`, { pfn: pfn0 });
  }
  if (!Number.isInteger(index) || index < 0 || !Number.isInteger(maxNr) || maxNr < 1 || index + maxNr > PTRS_PER_PTE) {
    throw new FoliolabError('ERANGE', `folioPteBatchFlags: [${String(index)}, +${String(maxNr)}) is not a range inside one PTE table`, { index, maxNr });
  }
  if (!Number.isInteger(flags) || (flags & ~FPB_ALL) !== 0) throw new FoliolabError('EINVAL', `folioPteBatchFlags: unknown flags 0x${Number(flags).toString(16)}`, { flags });
  if (maxNr > folio.pfn + folio.nrPages - pfn0) maxNr = folio.pfn + folio.nrPages - pfn0;
  let nr = batchHint(table, index, pte.lo, pte.hi);
  expected.lo = pte.lo;
  expected.hi = pte.hi;
  pteSetPfn(expected, pfn0 + nr);
  clearIgnored(expected, flags);
  let anyWritable = false;
  let anyYoung = false;
  let anyDirty = false;
  while (nr < maxNr) {
    ptepGet(table, index + nr, cur);
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
  if (anyWritable) pteMkwrite(pte);
  if (anyYoung) pteMkyoung(pte);
  if (anyDirty) pteMkdirty(pte);
  return nr < maxNr ? nr : maxNr;
}
