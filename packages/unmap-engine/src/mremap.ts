import {
  flushTlbBatchedPending,
  flushTlbRange,
  getAndClearPtes,
  pteBits,
  ptePfn,
  ptePresent,
  ptepGet,
  setPteAt,
  setPtes,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { EV } from '@foliolab/ledger';
import { FPB_RESPECT_WRITE, folioPteBatchFlags } from '@foliolab/pvmw';
import { anonVmaClone } from '@foliolab/rmap';
import { PAGE_SIZE, PMD_SIZE } from './consts.js';
import type { Kernel } from './kernel.js';
import { doMunmap, getUnmappedArea } from './mmap.js';
import { isSpecial, noCont, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { Vma, vmaAdjust, vmaInsert, vmaLookup, vmaMergeAround, vmaRemove, vmaSplitRange, vmasInRange } from './vma.js';

/*
 * mremap (mm/mremap.c, 2026 with Dev Jain's B7 fix): shrink in place,
 * expand in place when the following range is free, else move
 * (MREMAP_MAYMOVE implied; `fixed` = MREMAP_FIXED). move_page_tables moves
 * PTEs in extents bounded by both the old and the new PMD; present runs of a
 * large folio move as one batch (mremap_folio_pte_batch:
 * folio_pte_batch_flags(FPB_RESPECT_WRITE), so a batch never widens write —
 * B7), get_and_clear_ptes + set_ptes (young/dirty merged over the batch),
 * one PTE under `per-pte`. [I] move_normal_pmd (moving a whole PTE table) is
 * not modelled: PTEs always move one batch at a time (a cost difference only).
 */

const pte = pteBits();

/** Validated mremap arguments. */
export interface MremapArgs {
  addr: number;
  oldLen: number;
  newLen: number;
  fixed: number | null;
}

/** mremap(); returns the new address. The caller validated everything. */
export function doMremap(k: Kernel, p: Proc, a: MremapArgs): number {
  const { addr, oldLen, newLen, fixed } = a;
  if (fixed !== null) {
    doMunmap(k, p, fixed, fixed + newLen);
    if (newLen < oldLen) doMunmap(k, p, addr + newLen, addr + oldLen);
    moveVma(k, p, addr, Math.min(oldLen, newLen), newLen, fixed);
    return fixed;
  }
  if (newLen <= oldLen) {
    if (newLen < oldLen) doMunmap(k, p, addr + newLen, addr + oldLen);
    return addr;
  }
  const vma = vmaLookup(p, addr)!;
  if (addr + oldLen === vma.vmEnd && vmasInRange(p, vma.vmEnd, addr + newLen).length === 0) {
    vmaAdjust(vma, vma.vmStart, addr + newLen, vma.vmPgoff);
    vmaMergeAround(p, vma);
    return addr;
  }
  const dest = getUnmappedArea(p, newLen);
  if (dest < 0) throw new Error('unreachable: validated');
  moveVma(k, p, addr, oldLen, newLen, dest);
  return dest;
}

/** move_vma(): copy_vma at `to` (same anon_vma chains, pgoff kept), move_page_tables, unmap the old range. */
function moveVma(k: Kernel, p: Proc, from: number, len: number, newLen: number, to: number): void {
  const [old] = vmaSplitRange(p, from, from + len);
  const nv = new Vma(p, to, to + newLen, old!.vmPgoff, old!.flags, old!.anonVma, old!.uffdAsync, old!.uffdUnpopulated);
  anonVmaClone(nv, old!);
  vmaInsert(p, nv);
  movePageTables(k, p, from, to, len);
  vmaRemove(p, old!);
  vmaMergeAround(p, nv);
}

/** get_extent(): the bytes until the next PMD boundary of either side, at most `left`. */
function extent(from: number, to: number, left: number): number {
  const a = PMD_SIZE - (from % PMD_SIZE);
  const b = PMD_SIZE - (to % PMD_SIZE);
  return Math.min(a, b, left);
}

/** move_page_tables(): per extent, move_ptes between the two PTE tables. */
function movePageTables(k: Kernel, p: Proc, from: number, to: number, len: number): void {
  for (let off = 0; off < len; ) {
    const ext = extent(from + off, to + off, len - off);
    const ot = p.pt.pteTableOf(from + off);
    if (ot !== null) {
      const nt = p.pt.pteAlloc(to + off);
      movePtes(k, p, ot, nt, from + off, to + off, ext);
    }
    off += ext;
  }
}

function movePtes(k: Kernel, p: Proc, ot: PteTable, nt: PteTable, from: number, to: number, ext: number): void {
  const l = k.ledger;
  l.lock(ot.ptl);
  if (nt.ptl !== ot.ptl) l.lock(nt.ptl);
  flushTlbBatchedPending(p.pt);
  let forceFlush = false;
  const n = ext / PAGE_SIZE;
  const oi = pteIdx(from);
  const ni = pteIdx(to);
  for (let j = 0; j < n; ) {
    ptepGet(ot, oi + j, pte);
    if ((pte.lo | pte.hi) === 0) {
      j++;
      continue;
    }
    let nr = 1;
    if (ptePresent(pte.lo, pte.hi)) {
      if (!isSpecial(pte.hi) && k.batchPtes && n - j > 1) {
        const f = k.folioOf(ptePfn(pte.lo, pte.hi));
        if (f.order > 0) nr = folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, ot, oi + j, pte, n - j, FPB_RESPECT_WRITE);
      }
      forceFlush = true;
    }
    getAndClearPtes(ot, oi + j, nr, pte);
    if (ptePresent(pte.lo, pte.hi)) {
      noCont(pte);
      setPtes(nt, ni + j, pte.lo, pte.hi, nr);
    } else {
      setPteAt(nt, ni + j, pte.lo, pte.hi);
    }
    j += nr;
  }
  if (forceFlush) {
    l.charge(EV.TLB_FLUSH_RANGE);
    flushTlbRange(p.pt, from, from + ext);
  }
  if (nt.ptl !== ot.ptl) l.unlock(nt.ptl);
  l.unlock(ot.ptl);
}
