import { EV, FoliolabError } from '@foliolab/ledger';
import { CONT_PTES, CONT_PTE_SIZE, PAGE_SIZE } from './geometry.js';
import {
  PTE_AF,
  PTE_HI_CONT,
  PTE_HI_DIRTY,
  PTE_HI_PFN_MASK,
  PTE_HI_SPECIAL,
  PTE_HI_WRITE,
  PTE_LO_PFN_MASK,
  PTE_RDONLY,
  PTE_VALID,
  pfnHi,
  pfnLo,
  pteDirty,
  ptePfn,
  pteSame,
  type PteBits,
} from './pte.js';
import type { PteTable } from './tables.js';
import { tlbMarkChanged } from './tlbtrack.js';
import { doFlushTlbRange } from './tlb.js';

/*
 * arch/arm64/mm/contpte.c (v6.9–6.15, plus the ≈v6.17 BBML2 TLBI elision and
 * early-exit A/D gather), spec §5. Unchecked internals: the public ptep API
 * validates and dispatches here only on the arm64-contpte profile.
 */

const CONT_MASK = CONT_PTES - 1;

/**
 * `contpte_convert`: break-before-make repaint of the block holding slot `i`
 * with prototype (lo, hi) — CONT set folds, CONT clear unfolds. 16 XCHG OR-ing
 * each old entry's dirty/young into the prototype, then (unless
 * bbml2NoAbort) `__flush_tlb_range` over 64K, then 16 WRITEs. Also charges
 * CONTPTE_FOLD or CONTPTE_UNFOLD.
 */
export function contpteConvert(t: PteTable, i: number, lo: number, hi: number): void {
  const mm = t.mm;
  const l = mm.ledger;
  l.begin('contpte_convert');
  const base = i - (i & CONT_MASK);
  // The prototype for the block's first PFN: PFN bits 0–3 are lo bits 12–15 (2^20 is a multiple of 16).
  let plo = lo & ~(CONT_MASK << 12);
  let phi = hi;
  l.charge(EV.PTE_XCHG, CONT_PTES);
  const los = t.lo;
  const his = t.hi;
  const track = mm.trackTlb;
  let dirty = 0;
  let young = 0;
  for (let k = base; k < base + CONT_PTES; k++) {
    const ol = los[k]!;
    const oh = his[k]!;
    // storePte(t, k, 0, 0): a valid old entry is non-zero, so clearing it changes it
    if (track && (ol & PTE_VALID) !== 0) tlbMarkChanged(t, k);
    los[k] = 0;
    his[k] = 0;
    // pte_dirty(old)
    dirty |= (oh & PTE_HI_DIRTY) | ((oh & PTE_HI_WRITE) !== 0 && (ol & PTE_RDONLY) === 0 ? PTE_HI_DIRTY : 0);
    young |= ol;
  }
  // OR-ing dirty and young into the prototype once is the same as once per entry
  if (dirty !== 0) {
    phi |= PTE_HI_DIRTY;
    if ((phi & PTE_HI_WRITE) !== 0) plo &= ~PTE_RDONLY;
  }
  if ((young & PTE_AF) !== 0) plo |= PTE_AF;
  const start = t.vaOf(base);
  if (!mm.profile.bbml2NoAbort) doFlushTlbRange(mm, start, start + CONT_PTE_SIZE);
  // __set_ptes(base, proto, 16) into the slots just cleared (so no store changes a valid entry): the
  // PFN advances in bits 0–3 only, which are clear in the prototype.
  l.charge(EV.PTE_WRITE, CONT_PTES);
  phi >>>= 0;
  for (let k = 0; k < CONT_PTES; k++) {
    los[base + k] = (plo | (k << 12)) >>> 0;
    his[base + k] = phi;
  }
  l.charge((hi & PTE_HI_CONT) !== 0 ? EV.CONTPTE_FOLD : EV.CONTPTE_UNFOLD);
  l.end();
}

/** `contpte_try_unfold` + `__contpte_try_unfold`: if (lo, hi) is valid-CONT and the mm is a user mm, unfold the block. */
export function contpteTryUnfold(t: PteTable, i: number, lo: number, hi: number): void {
  if ((lo & PTE_VALID) !== 0 && (hi & PTE_HI_CONT) !== 0 && t.mm.userMm) contpteConvert(t, i, lo, hi & ~PTE_HI_CONT);
}

/**
 * `contpte_try_fold` + `__contpte_try_fold`, after a single-entry set of
 * (lo, hi) at slot `i`. Cheap filter (slot and PFN both last-in-block, valid,
 * not CONT, not special); then user mm, one folio over the block (VA math as
 * the kernel does it), then up to 16 reads comparing mkold(mkclean(entry))
 * with the expected PFN-advanced value, stopping at the first mismatch
 * (7.2.13 arch/arm64/include/asm/pgtable.h:contpte_try_fold,
 * arch/arm64/mm/contpte.c:__contpte_try_fold). The kernel always has the
 * folio (page_folio(pte_page(pte)); special entries never get here); a
 * PageTables without FolioBounds has no folios to ask, so it never folds —
 * a model limit, not kernel behaviour.
 */
export function contpteTryFold(t: PteTable, i: number, lo: number, hi: number): void {
  if ((i & CONT_MASK) !== CONT_MASK) return;
  // PFN bits 0–3 are lo bits 12–15 (as `ptePfn(lo, hi) % CONT_PTES`, without the float math).
  if (((lo >>> 12) & CONT_MASK) !== CONT_MASK) return;
  if ((lo & PTE_VALID) === 0 || (hi & (PTE_HI_CONT | PTE_HI_SPECIAL)) !== 0) return;
  const pfn = ptePfn(lo, hi);
  const mm = t.mm;
  if (!mm.userMm || mm.folios === null) return;
  const head = mm.folios.folioHead(pfn);
  const addr = t.vaOf(i);
  const folioStart = addr - (pfn - head) * PAGE_SIZE;
  const folioEnd = folioStart + mm.folios.folioNrPages(pfn) * PAGE_SIZE;
  const base = i - CONT_MASK;
  const contStart = t.vaOf(base);
  if (folioStart > contStart || folioEnd < contStart + CONT_PTE_SIZE) return;
  // expected = pfn_pte(ALIGN_DOWN(pfn), pte_pgprot(pte_mkold(pte_mkclean(pte))))
  const eLo = ((lo & ~PTE_AF) | PTE_RDONLY) & ~PTE_LO_PFN_MASK;
  const eHi = hi & ~PTE_HI_DIRTY & ~PTE_HI_PFN_MASK;
  let epfn = pfn - CONT_MASK;
  let reads = 0;
  let ok = true;
  for (let k = base; k < base + CONT_PTES; k++, epfn++) {
    reads++;
    const sLo = (t.lo[k]! & ~PTE_AF) | PTE_RDONLY;
    const sHi = t.hi[k]! & ~PTE_HI_DIRTY;
    if (!pteSame(sLo, sHi, eLo | pfnLo(epfn), eHi | pfnHi(epfn))) {
      ok = false;
      break;
    }
  }
  mm.ledger.charge(EV.PTE_READ, reads);
  if (ok) contpteConvert(t, i, lo, hi | PTE_HI_CONT);
}

/**
 * `contpte_try_unfold_partial`: unfold a block only partly covered by
 * [i, i + nr): read and try-unfold the first entry if the range is unaligned
 * or shorter than a block, and the last entry if the end is unaligned. An
 * aligned whole-block range costs nothing.
 */
export function contpteTryUnfoldPartial(t: PteTable, i: number, nr: number): void {
  const l = t.mm.ledger;
  if ((i & CONT_MASK) !== 0 || nr < CONT_PTES) {
    l.charge(EV.PTE_READ);
    contpteTryUnfold(t, i, t.lo[i]!, t.hi[i]!);
  }
  if (((i + nr) & CONT_MASK) !== 0) {
    const last = i + nr - 1;
    l.charge(EV.PTE_READ);
    contpteTryUnfold(t, last, t.lo[last]!, t.hi[last]!);
  }
}

function mkdirtyOut(out: PteBits): void {
  out.hi = (out.hi | PTE_HI_DIRTY) >>> 0;
  if ((out.hi & PTE_HI_WRITE) !== 0) out.lo = (out.lo & ~PTE_RDONLY) >>> 0;
}

/**
 * `contpte_ptep_get(ptep, orig_pte)`: OR the block's young/dirty into `out`
 * (which holds orig_pte). `old17` reads all 16 entries; `earlyExit` scans
 * from index 0 until dirty or young, then re-scans from that same index for
 * young (if dirty came first) or from the next one for dirty. Returns reads.
 */
export function contpteGather(t: PteTable, i: number, out: PteBits): number {
  const base = i - (i & CONT_MASK);
  const end = base + CONT_PTES;
  const los = t.lo;
  const his = t.hi;
  let reads = 0;
  let young = false;
  let dirty = false;
  if (t.mm.profile.gatherVariant === 'old17') {
    for (let k = base; k < end; k++) {
      reads++;
      if (pteDirty(los[k]!, his[k]!)) dirty = true;
      if ((los[k]! & PTE_AF) !== 0) young = true;
    }
  } else {
    for (let k = base; k < end; k++) {
      reads++;
      if (pteDirty(los[k]!, his[k]!)) {
        dirty = true;
        for (; k < end; k++) {
          reads++;
          if ((los[k]! & PTE_AF) !== 0) {
            young = true;
            break;
          }
        }
        break;
      }
      if ((los[k]! & PTE_AF) !== 0) {
        young = true;
        for (k++; k < end; k++) {
          reads++;
          if (pteDirty(los[k]!, his[k]!)) {
            dirty = true;
            break;
          }
        }
        break;
      }
    }
  }
  if (dirty) mkdirtyOut(out);
  if (young) out.lo = (out.lo | PTE_AF) >>> 0;
  return reads;
}

/**
 * `contpte_ptep_get_lockless` after the caller's first read: re-read the
 * target (1) and gather as `contpte_ptep_get` does, checking that every
 * scanned entry is valid-CONT with PFN base+k and the same prot ignoring A/D.
 * A mismatch means a racing update and the kernel retries; this model is
 * single-threaded, so it can only be a broken block: an invariant error.
 */
export function contpteGatherLockless(t: PteTable, i: number, out: PteBits): number {
  out.lo = t.lo[i]!;
  out.hi = t.hi[i]!;
  if ((out.lo & PTE_VALID) === 0 || (out.hi & PTE_HI_CONT) === 0) return 1;
  const base = i - (i & CONT_MASK);
  const pfn0 = ptePfn(out.lo, out.hi) - (i - base);
  const pLo = ((out.lo & ~PTE_AF) | PTE_RDONLY) & ~PTE_LO_PFN_MASK;
  const pHi = out.hi & ~PTE_HI_DIRTY & ~PTE_HI_PFN_MASK;
  for (let k = base; k < base + CONT_PTES; k++) {
    const l = t.lo[k]!;
    const h = t.hi[k]!;
    const ok =
      (l & PTE_VALID) !== 0 &&
      (h & PTE_HI_CONT) !== 0 &&
      ptePfn(l, h) === pfn0 + (k - base) &&
      ((((l & ~PTE_AF) | PTE_RDONLY) & ~PTE_LO_PFN_MASK) ^ pLo) === 0 &&
      (((h & ~PTE_HI_DIRTY & ~PTE_HI_PFN_MASK) ^ pHi) === 0);
    if (!ok) {
      throw new FoliolabError('EFAULT', `ptep_get_lockless: inconsistent contpte block at slot ${base} of table ${t.id} (would retry forever)`, { table: t.id, slot: k });
    }
  }
  return 1 + contpteGather(t, i, out);
}

/** `pte_batch_hint(ptep, pte)`: 16 − (slot % 16) for a valid-CONT value, else 1. */
export function contpteBatchHint(i: number, lo: number, hi: number): number {
  return (lo & PTE_VALID) !== 0 && (hi & PTE_HI_CONT) !== 0 ? CONT_PTES - (i & CONT_MASK) : 1;
}
