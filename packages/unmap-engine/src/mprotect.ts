import { FLAG } from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import {
  flushTlbBatchedPending,
  flushTlbRange,
  getAndClearPtes,
  mkMarkerPte,
  pteBits,
  pteClear,
  pteClearUffdWp,
  pteMarkerBits,
  pteMkuffdWp,
  ptePfn,
  ptePresent,
  pteProtnone,
  pteSwpClearUffdWp,
  pteSwpMkuffdWp,
  pteSwpUffdWp,
  pteUffdWp,
  pteWrite,
  ptepGet,
  setPteAt,
  setPtes,
  softleafIsMarker,
  softleafIsSwap,
  PTE_MARKER_UFFD_WP,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { FPB_RESPECT_SOFT_DIRTY, FPB_RESPECT_WRITE, folioPteBatchFlags } from '@foliolab/pvmw';
import { PAGE_SIZE, VM_ACCOUNT, VM_LOCKED, VM_NORESERVE, VM_READ, VM_WRITE } from './consts.js';
import type { Kernel } from './kernel.js';
import { populate } from './mlock.js';
import { isSpecial, noCont, pmdAddrEnd, pteIdx, pteModify, mkwrite } from './pte-util.js';
import type { Proc } from './proc.js';
import { vmaModify, type Vma } from './vma.js';

/*
 * change_protection() (mm/mprotect.c, 2026 with Dev Jain's PTE batching
 * cac1db8c3aad): per PTE table under the PTL, present runs of one large folio
 * are batched with folio_pte_batch_flags(RESPECT_SOFT_DIRTY | RESPECT_WRITE)
 * (one PTE under `per-pte`), cleared with modify_prot_start_ptes (young/dirty
 * merged over the batch), pte_modify'd, and committed with set_ptes; with
 * MM_CP_TRY_CHANGE_WRITABLE the commit is split into sub-batches of equal
 * PageAnonExclusive and exclusive ones become writable
 * (can_change_pte_writable). Swap PTEs only change uffd-wp; none PTEs get
 * uffd-wp markers when the VMA uses markers (WP_UNPOPULATED).
 */

/** MM_CP_TRY_CHANGE_WRITABLE. */
export const CP_TRY_CHANGE_WRITABLE = 1;
/** MM_CP_UFFD_WP. */
export const CP_UFFD_WP = 2;
/** MM_CP_UFFD_WP_RESOLVE. */
export const CP_UFFD_WP_RESOLVE = 4;

const pte = pteBits();
const ptent = pteBits();

/**
 * mprotect(2) over a covered range (7.2.13 mm/mprotect.c do_mprotect_pkey →
 * mprotect_fixup per VMA): the new flags replace VM_READ/VM_WRITE; a VMA whose
 * flags stay the same is skipped. Becoming writable charges the mapping
 * (VM_ACCOUNT unless already charged, writable or VM_NORESERVE); becoming
 * read-only uncharges it only while it has no anon_vma. Then vma_modify_flags
 * (merge or split), change_protection with MM_CP_TRY_CHANGE_WRITABLE for a
 * writable VMA, and a private VM_LOCKED VMA that becomes writable is populated
 * (populate_vma_page_range: the write faults break COW now).
 */
export function doMprotect(k: Kernel, p: Proc, start: number, end: number, prot: number): void {
  vmaModify(
    p,
    start,
    end,
    (a, v) => {
      const nf = (v.flags & ~(VM_READ | VM_WRITE)) | prot;
      if (nf === v.flags) return;
      a.flags = nf;
      if ((nf & VM_WRITE) !== 0) {
        if ((v.flags & (VM_ACCOUNT | VM_WRITE | VM_NORESERVE)) === 0) a.flags |= VM_ACCOUNT;
      } else if ((v.flags & VM_ACCOUNT) !== 0 && v.anonVma === null) {
        a.flags &= ~VM_ACCOUNT;
      }
    },
    (r, s, e, oldFlags) => {
      const cp = (r.flags & VM_WRITE) !== 0 ? CP_TRY_CHANGE_WRITABLE : 0;
      changeProtection(k, p, r, s, e, cp);
      if ((r.flags & VM_WRITE) !== 0 && (oldFlags & (VM_LOCKED | VM_WRITE)) === VM_LOCKED) populate(k, p, s, e);
    },
  );
}
const tmp = pteBits();

/** change_protection(vma, start, end, cp_flags); returns the pages changed. Flushes the range if any. */
export function changeProtection(k: Kernel, p: Proc, vma: Vma, start: number, end: number, cpFlags: number): number {
  let pages = 0;
  k.ledger.charge(EV.MMU_NOTIFIER);
  for (let a = start; a < end; ) {
    const next = pmdAddrEnd(a, end);
    // change_pmd_prepare(): uffd-wp protection of a VMA that uses markers allocates missing tables.
    const t = (cpFlags & CP_UFFD_WP) !== 0 && vma.uffdUnpopulated ? p.pt.pteAlloc(a) : p.pt.pteTableOf(a);
    if (t !== null) pages += changePteRange(k, p, vma, t, a, next, cpFlags);
    a = next;
  }
  k.ledger.charge(EV.MMU_NOTIFIER);
  if (pages > 0) {
    k.ledger.charge(EV.TLB_FLUSH_RANGE);
    flushTlbRange(p.pt, start, end);
  }
  return pages;
}

function changePteRange(k: Kernel, p: Proc, vma: Vma, t: PteTable, start: number, end: number, cp: number): number {
  const l = k.ledger;
  l.lock(t.ptl);
  flushTlbBatchedPending(p.pt);
  let pages = 0;
  let i = pteIdx(start);
  const iEnd = i + (end - start) / PAGE_SIZE;
  while (i < iEnd) {
    ptepGet(t, i, pte);
    let nr = 1;
    if (ptePresent(pte.lo, pte.hi)) {
      nr = changePresent(k, vma, t, i, iEnd - i, cp);
      pages += nr;
    } else if ((pte.lo | pte.hi) === 0) {
      if ((cp & CP_UFFD_WP) !== 0 && vma.uffdUnpopulated) {
        mkMarkerPte(tmp, PTE_MARKER_UFFD_WP);
        setPteAt(t, i, tmp.lo, tmp.hi);
        pages++;
      }
    } else if (softleafIsSwap(pte.lo, pte.hi)) {
      const wp = pteSwpUffdWp(pte.lo, pte.hi);
      if ((cp & CP_UFFD_WP) !== 0 && !wp) pteSwpMkuffdWp(pte);
      else if ((cp & CP_UFFD_WP_RESOLVE) !== 0 && wp) pteSwpClearUffdWp(pte);
      else {
        i++;
        continue;
      }
      setPteAt(t, i, pte.lo, pte.hi);
      pages++;
    } else if (softleafIsMarker(pte.lo, pte.hi)) {
      if ((cp & CP_UFFD_WP_RESOLVE) !== 0 && (pteMarkerBits(pte.lo, pte.hi) & PTE_MARKER_UFFD_WP) !== 0) {
        pteClear(t, i);
        pages++;
      }
    }
    i += nr;
  }
  l.unlock(t.ptl);
  return pages;
}

/** The present-run part of change_pte_range; returns the batch length. */
function changePresent(k: Kernel, vma: Vma, t: PteTable, i: number, maxNr: number, cp: number): number {
  const special = isSpecial(pte.hi);
  const pfn = ptePfn(pte.lo, pte.hi);
  const f = special ? null : k.folioOf(pfn);
  let nr = 1;
  if (f !== null && f.order > 0 && maxNr > 1 && k.batchPtes) {
    nr = folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, t, i, pte, maxNr, FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE);
  }
  getAndClearPtes(t, i, nr, ptent);
  noCont(ptent);
  pteModify(ptent, vma.flags);
  if ((cp & CP_UFFD_WP) !== 0) pteMkuffdWp(ptent);
  else if ((cp & CP_UFFD_WP_RESOLVE) !== 0) pteClearUffdWp(ptent);
  if ((cp & CP_TRY_CHANGE_WRITABLE) === 0 || pteWrite(ptent.lo, ptent.hi) || f === null || !canChangeWritableBase(vma, ptent)) {
    setPtes(t, i, ptent.lo, ptent.hi, nr);
    return nr;
  }
  // set_write_prot_commit_flush_ptes: sub-batches of equal PageAnonExclusive.
  const flags = k.memmap.flags;
  const AE = FLAG.anon_exclusive.mask;
  const base = ptent.lo;
  const baseHi = ptent.hi;
  for (let s = 0; s < nr; ) {
    const ex = (flags[pfn + s]! & AE) !== 0;
    let len = 1;
    while (s + len < nr && ((flags[pfn + s + len]! & AE) !== 0) === ex) len++;
    k.ledger.charge(EV.FLAG_LOAD, len);
    tmp.lo = base;
    tmp.hi = baseHi;
    if (ex) mkwrite(tmp);
    // pfn advanced to the sub-batch start
    const adv = pfn + s;
    tmp.lo = ((tmp.lo & 0xfff) | ((adv % (1 << 20)) << 12)) >>> 0;
    tmp.hi = ((tmp.hi & ~0xffff) | (Math.floor(adv / (1 << 20)) & 0xffff)) >>> 0;
    setPtes(t, i + s, tmp.lo, tmp.hi, len);
    s += len;
  }
  return nr;
}

/** can_change_pte_writable() without the per-page test: VM_WRITE, not protnone, not uffd-wp. */
function canChangeWritableBase(vma: Vma, p: { lo: number; hi: number }): boolean {
  return (vma.flags & VM_WRITE) !== 0 && !pteProtnone(p.lo, p.hi) && !pteUffdWp(p.lo, p.hi);
}
