import { FoliolabError } from '@foliolab/ledger';
import { PAGE_SIZE, PTRS_PER_PTE } from '@foliolab/pagetable-arm64-contpte';
import type { PageVmaMappedWalk } from './state.js';
import { NO_LOCK } from './types.js';
import { vmaAddressEndOf } from './vma.js';

/*
 * page_vma_mapped_walk_jump (Dev Jain, "Optimize anonymous large folio
 * unmapping" v1 5/9, 10 Mar 2026; seed 003). Never merged. The posted helper
 * moves five fields by the same nr:
 *
 *   pfn += nr; nr_pages -= nr; pgoff += nr; pte += nr; address += nr * PAGE_SIZE;
 *
 * Because the next call starts with NEXT (address += 4K), a caller that has
 * handled a batch of `n` entries from the hit passes nr = n − 1: the cursor
 * rests on the batch's last entry and NEXT lands on the first unhandled one.
 * pgoff + nr_pages is invariant, so `end` does not move — provided
 * nr_pages never becomes 1, where vma_address_end switches to address + 4K.
 * With equal steps that cannot happen while target pages remain (each batch
 * of n ≥ 1 shrinks nr_pages by n − 1, so nr_pages ≥ 2); moving pfn/pgoff by
 * n while the cursor moves by n − 1 can reach nr_pages == 1 and then `end`
 * collapses onto the next entry, which is never visited (see jump.test.ts).
 */

function fail(w: PageVmaMappedWalk, fn: string, code: string, why: string): never {
  throw new FoliolabError(code, `${fn}: ${why}`, { pteIndex: w.pteIndex, nrPages: w.nrPages, address: w.address });
}

/**
 * Move the cursor by `cursorNr` slots and pfn/pgoff/nr_pages by `fieldNr`.
 * With `assertEnd`, refuse (before changing anything) a move that changes
 * `vma_address_end`. Requires a PTE hit whose lock is held and a cursor
 * that stays inside the PTE table.
 * @internal
 */
export function jumpWalk(w: PageVmaMappedWalk, cursorNr: number, fieldNr: number, assertEnd: boolean, fn: string): void {
  if (!Number.isInteger(cursorNr) || cursorNr < 0 || !Number.isInteger(fieldNr) || fieldNr < 0) fail(w, fn, 'EINVAL', `nr ${String(cursorNr)}/${String(fieldNr)} must be integers ≥ 0`);
  if (w.pte === null || w.ptl === NO_LOCK || !w.pt.ledger.locks.isHeld(w.ptl)) fail(w, fn, 'EINVAL', 'needs a PTE hit with its ptl held');
  if (w.pteIndex + cursorNr >= PTRS_PER_PTE) fail(w, fn, 'ERANGE', `pte index ${w.pteIndex} + ${cursorNr} leaves the PTE table`);
  if (fieldNr > w.nrPages) fail(w, fn, 'ERANGE', `nr ${fieldNr} exceeds nr_pages ${w.nrPages}`);
  const address = w.address + cursorNr * PAGE_SIZE;
  if (assertEnd) {
    const before = vmaAddressEndOf(w.vma, w.pgoff, w.nrPages, w.address);
    const after = vmaAddressEndOf(w.vma, w.pgoff + fieldNr, w.nrPages - fieldNr, address);
    if (after !== before) {
      fail(w, fn, 'EINVAL', `vma_address_end would move from 0x${before.toString(16)} to 0x${after.toString(16)} (nr_pages ${w.nrPages} → ${w.nrPages - fieldNr})`);
    }
  }
  w.pfn += fieldNr;
  w.nrPages -= fieldNr;
  w.pgoff += fieldNr;
  w.pteIndex += cursorNr;
  w.address = address;
}

/**
 * `page_vma_mapped_walk_jump(pvmw, nr)` (Dev Jain v1 5/9, unmerged): advance
 * pte and address by nr slots and pfn/pgoff by nr, shrink nr_pages by nr.
 * After handling a batch of n entries from the hit, call it with n − 1.
 * Throws (changing nothing) if `vma_address_end` would move.
 */
export function pageVmaMappedWalkJump(w: PageVmaMappedWalk, nr: number): void {
  jumpWalk(w, nr, nr, true, 'page_vma_mapped_walk_jump');
}
