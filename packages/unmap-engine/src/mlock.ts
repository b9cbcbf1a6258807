import { F_INDEX, type Folio } from '@foliolab/folio-flags';
import { pteBits, ptePfn, ptePresent, ptepGet } from '@foliolab/pagetable-arm64-contpte';
import { folioPteBatchFlags } from '@foliolab/pvmw';
import { PAGE_SIZE, VM_LOCKED, VM_READ } from './consts.js';
import { populateVmaPageRange } from './gup.js';
import { mlockFolio, munlockFolio } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { isSpecial, pmdAddrEnd, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { vmaModify, vmasInRange, type Vma } from './vma.js';

/*
 * mlock / munlock (mm/mlock.c, 6.9+): mlock_fixup (VM_LOCKED with
 * split/merge), mlock_vma_pages_range → mlock_pte_range (mlock_folio for
 * folios fully mapped inside the range — allow_mlock_munlock — and
 * munlock_folio for any folio on munlock), then __mm_populate (GUP with
 * FOLL_TOUCH: write faults for writable private VMAs) on mlock.
 */

const pte = pteBits();

/** folio_within_range(folio, vma, start, end): every page's address inside [start, end). */
function folioWithinRange(f: Folio, vma: Vma, start: number, end: number): boolean {
  const idx = f.fa[f.fb + F_INDEX]!;
  const addr = vma.vmStart + (idx - vma.vmPgoff) * PAGE_SIZE;
  return addr >= Math.max(start, vma.vmStart) && addr + f.nr * PAGE_SIZE <= Math.min(end, vma.vmEnd);
}

/** mlock_pte_range() over [start, end) of `vma` (its VM_LOCKED already updated). */
function mlockPteRange(k: Kernel, p: Proc, vma: Vma, start: number, end: number): void {
  for (let a = start; a < end; ) {
    const next = pmdAddrEnd(a, end);
    const t = p.pt.pteTableOf(a);
    if (t === null) {
      a = next;
      continue;
    }
    k.ledger.lock(t.ptl);
    for (let i = pteIdx(a), e = i + (next - a) / PAGE_SIZE; i < e; ) {
      ptepGet(t, i, pte);
      if (!ptePresent(pte.lo, pte.hi) || isSpecial(pte.hi)) {
        i++;
        continue;
      }
      const f = k.folioOf(ptePfn(pte.lo, pte.hi));
      const step = f.order > 0 && e - i > 1 ? folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, t, i, pte, e - i, 0) : 1;
      const locked = (vma.flags & VM_LOCKED) !== 0;
      const allow = !locked || f.order === 0 || (folioWithinRange(f, vma, start, end) && step === f.nr);
      if (allow) {
        if (locked) mlockFolio(k, f);
        else munlockFolio(k, f);
      }
      i += step;
    }
    k.ledger.unlock(t.ptl);
    a = next;
  }
}

/**
 * mlock(2): VM_LOCKED, mlock present folios, populate. The caller validated
 * coverage and capacity. mlock_fixup (7.2.13 mm/mlock.c) walks the pages
 * (mlock_vma_pages_range) only of a VMA whose flags change: mlocking a range
 * already VM_LOCKED again counts no folio twice ("mlocking twice would be
 * wrong"), so vmaModify's fixup, which runs only then, does it.
 */
export function doMlock(k: Kernel, p: Proc, start: number, end: number): void {
  vmaModify(
    p,
    start,
    end,
    (v) => (v.flags |= VM_LOCKED),
    (v, s, e) => mlockPteRange(k, p, v, s, e),
  );
  populate(k, p, start, end);
}

/** munlock(2): clear VM_LOCKED and munlock the present folios of each VMA that was locked (mlock_fixup, as above). */
export function doMunlock(k: Kernel, p: Proc, start: number, end: number): void {
  vmaModify(
    p,
    start,
    end,
    (v) => (v.flags &= ~VM_LOCKED),
    (v, s, e) => mlockPteRange(k, p, v, s, e),
  );
}

/** __mm_populate(): populate_vma_page_range per VMA (gup.ts); PROT_NONE VMAs are not faulted in (vma_is_accessible). */
export function populate(k: Kernel, p: Proc, start: number, end: number): void {
  for (const v of vmasInRange(p, start, end)) {
    if ((v.flags & VM_READ) === 0) continue;
    populateVmaPageRange(k, p, v, Math.max(start, v.vmStart), Math.min(end, v.vmEnd));
  }
}
