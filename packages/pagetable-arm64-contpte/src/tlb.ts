import { EV, FoliolabError } from '@foliolab/ledger';
import { PAGE_SIZE, PTRS_PER_TABLE, checkVa, checkVaRange } from './geometry.js';
import type { Machine } from './profile.js';
import { PageTables } from './tables.js';
import { tlbMarkAll, tlbMarkRange } from './tlbtrack.js';

/*
 * TLB maintenance (spec §4, §7): arm64 arch/arm64/include/asm/tlbflush.h
 * ≈v6.12–6.15 and x86 arch/x86/mm/tlb.c for contrast. Every function charges
 * the machine's ledger and updates TLB-visibility tracking.
 */

/** `MAX_DVM_OPS` = PTRS_PER_PTE: without range TLBI, this many pages or more flush the ASID. */
export const MAX_DVM_OPS = PTRS_PER_TABLE;
/** `MAX_TLBI_RANGE_PAGES` = __TLBI_RANGE_PAGES(31, 3) = 32 << 16. */
export const MAX_TLBI_RANGE_PAGES = 32 * 2 ** 16;
/** x86 `tlb_single_page_flush_ceiling`. */
export const X86_SINGLE_PAGE_FLUSH_CEILING = 33;

// Result registers of rangeOps (no allocation on the hot path).
let opsVa = 0;
let opsRange = 0;

/**
 * The `__flush_tlb_range_op` loop for `pages` 4K pages: sets opsVa/opsRange.
 * With range support: scale 3 down to 0; a single remaining page gets a
 * TLBI_VA; otherwise num = min(pages, 32 << (5s+1)) >> (5s+1), minus 1, and
 * num ≥ 0 emits one range op of (num+1) << (5s+1) pages.
 */
function rangeOps(pages: number, hasRange: boolean): void {
  opsVa = 0;
  opsRange = 0;
  if (!hasRange) {
    opsVa = pages;
    return;
  }
  let scale = 3;
  while (pages > 0) {
    if (pages === 1) {
      opsVa++;
      break;
    }
    if (scale < 0) throw new FoliolabError('EFAULT', `__flush_tlb_range_op: ${pages} pages left after scale 0`);
    const unit = 2 ** (5 * scale + 1);
    const num = Math.floor(Math.min(pages, 32 * unit) / unit) - 1;
    if (num >= 0) {
      opsRange++;
      pages -= (num + 1) * unit;
    }
    scale--;
  }
}

/**
 * TLBI instructions `__flush_tlb_range_op` issues for `pages` pages (before
 * KPTI doubling): e.g. 16 → 1 range op, 15 → 1 range + 1 VA, 512 → 1 range.
 * Pure math, for tests and documentation.
 */
export function tlbiOpsForRange(pages: number, hasTlbiRange: boolean): { va: number; range: number } {
  if (!Number.isInteger(pages) || pages < 1 || pages > MAX_TLBI_RANGE_PAGES) {
    throw new FoliolabError('ERANGE', `tlbiOpsForRange: pages ${String(pages)} outside 1..${MAX_TLBI_RANGE_PAGES}`, { pages });
  }
  rangeOps(pages, hasTlbiRange);
  return { va: opsVa, range: opsRange };
}

/** `dsb(ish)`: one DSB_ISH; completes every TLBI issued before it. */
export function dsbIsh(machine: Machine): void {
  machine.ledger.charge(EV.DSB_ISH);
  machine.dsbGen++;
}

/**
 * @internal `__tlbi_sync_s1ish(mm)` / `__tlbi_sync_s1ish_batch()` (7.2.13
 * arch/arm64/include/asm/tlbflush.h): the DSB ISH that completes broadcast
 * TLBIs, then `__repeat_tlbi_sync`: on the REPEAT_TLBI erratum one more
 * `TLBI VALE1IS, 0` (no user-ASID copy) and DSB ISH.
 */
export function tlbiSyncS1ish(machine: Machine): void {
  dsbIsh(machine);
  if (machine.profile.repeatTlbiErratum) {
    machine.ledger.charge(EV.TLBI_VA);
    dsbIsh(machine);
  }
}

function checkMm(fn: string, mm: PageTables): void {
  if (!(mm instanceof PageTables)) throw new FoliolabError('EINVAL', `${fn}: not a PageTables`, { mm: String(mm) });
}

function tlbiTimes(mm: PageTables): number {
  return mm.profile.kpti ? 2 : 1;
}

/** x86 `flush_tlb_mm_range`: INVLPG per page up to the ceiling, else a full flush; IPIs to remote CPUs. Synchronous. */
function x86FlushMmRange(mm: PageTables, start: number, end: number, all: boolean): void {
  const l = mm.ledger;
  const remote = mm.profile.x86OtherCpus;
  const pages = (end - start) / PAGE_SIZE;
  const full = all || pages > X86_SINGLE_PAGE_FLUSH_CEILING;
  // 7.2.13 arch/x86/mm/tlb.c:flush_tlb_mm_range: flush_tlb_func runs on every CPU of mm_cpumask
  // (flush_tlb_multi IPIs the remote ones; the local one flushes when the mm is loaded there) and
  // issues one INVLPG per page, or a full flush above tlb_single_page_flush_ceiling (get_flush_tlb_info).
  // Counted per CPU that executes it: the local CPU (the model's mm runs there) plus each remote one.
  if (full) l.charge(EV.X86_FLUSH_ALL, 1 + remote);
  else l.charge(EV.X86_INVLPG, pages * (1 + remote));
  if (remote > 0) l.charge(EV.X86_IPI, remote);
  if (full) tlbMarkAll(mm);
  else tlbMarkRange(mm, start, end);
  mm.machine.dsbGen++; // x86 flushes complete before returning
}

/** @internal arm64 `flush_tlb_mm` (x86: full flush). Unchecked. */
export function doFlushTlbMm(mm: PageTables): void {
  if (mm.x86) {
    x86FlushMmRange(mm, 0, 0, true);
    return;
  }
  const l = mm.ledger;
  l.charge(EV.DSB_ISHST);
  l.charge(EV.TLBI_ASID, tlbiTimes(mm));
  tlbMarkAll(mm);
  tlbiSyncS1ish(mm.machine);
}

/** @internal arm64 `flush_tlb_page_nosync`. Unchecked. */
export function doFlushTlbPageNosync(mm: PageTables, va: number): void {
  if (mm.x86) {
    x86FlushMmRange(mm, va, va + PAGE_SIZE, false);
    return;
  }
  const l = mm.ledger;
  l.charge(EV.DSB_ISHST);
  l.charge(EV.TLBI_VA, tlbiTimes(mm));
  tlbMarkRange(mm, va, va + PAGE_SIZE);
}

/** @internal `flush_tlb_page`: nosync + DSB_ISH on arm64. Unchecked. */
export function doFlushTlbPage(mm: PageTables, va: number): void {
  doFlushTlbPageNosync(mm, va);
  if (!mm.x86) tlbiSyncS1ish(mm.machine);
}

/** @internal arm64 `__flush_tlb_range_nosync(mm, start, end, PAGE_SIZE, …)`. Unchecked. */
export function doFlushTlbRangeNosync(mm: PageTables, start: number, end: number): void {
  if (mm.x86) {
    x86FlushMmRange(mm, start, end, false);
    return;
  }
  const p = mm.profile;
  const pages = (end - start) / PAGE_SIZE;
  const l = mm.ledger;
  const k = p.kpti ? 2 : 1;
  if (!p.hasTlbiRange) {
    // Without range TLBI the op loop is one TLBI_VA per page (rangeOps), so it is done inline.
    if (pages >= MAX_DVM_OPS) {
      doFlushTlbMm(mm);
      return;
    }
    l.charge(EV.DSB_ISHST);
    if (pages > 0) l.charge(EV.TLBI_VA, pages * k);
  } else {
    if (pages > MAX_TLBI_RANGE_PAGES) {
      doFlushTlbMm(mm);
      return;
    }
    l.charge(EV.DSB_ISHST);
    rangeOps(pages, true);
    if (opsVa > 0) l.charge(EV.TLBI_VA, opsVa * k);
    if (opsRange > 0) l.charge(EV.TLBI_RANGE, opsRange * k);
  }
  if (mm.trackTlb) tlbMarkRange(mm, start, end);
}

/** @internal arm64 `__flush_tlb_range`: the nosync version plus DSB_ISH. Unchecked. */
export function doFlushTlbRange(mm: PageTables, start: number, end: number): void {
  doFlushTlbRangeNosync(mm, start, end);
  if (!mm.x86) tlbiSyncS1ish(mm.machine);
}

/** `flush_tlb_page_nosync` (arm64 ≈v6.12): DSB_ISHST, TLBI_VA (×2 with KPTI). x86: `flush_tlb_page`. */
export function flushTlbPageNosync(mm: PageTables, va: number): void {
  checkMm('flushTlbPageNosync', mm);
  checkVa('flushTlbPageNosync', va);
  doFlushTlbPageNosync(mm, va);
}

/** `flush_tlb_page` (arm64): the nosync version plus DSB_ISH. x86: one-page `flush_tlb_mm_range`. */
export function flushTlbPage(mm: PageTables, va: number): void {
  checkMm('flushTlbPage', mm);
  checkVa('flushTlbPage', va);
  doFlushTlbPage(mm, va);
}

/**
 * `__flush_tlb_range_nosync(mm, start, end, PAGE_SIZE, last_level, 3)`
 * (arm64 ≈v6.12): falls back to `flush_tlb_mm` without range support at
 * ≥ MAX_DVM_OPS pages or above MAX_TLBI_RANGE_PAGES; else DSB_ISHST and the
 * range-op loop. No trailing DSB. x86: `flush_tlb_mm_range`.
 */
export function __flushTlbRangeNosync(mm: PageTables, start: number, end: number): void {
  checkMm('__flushTlbRangeNosync', mm);
  checkVaRange('__flushTlbRangeNosync', start, end);
  doFlushTlbRangeNosync(mm, start, end);
}

/** `__flush_tlb_range` (arm64): `__flush_tlb_range_nosync` + DSB_ISH. */
export function __flushTlbRange(mm: PageTables, start: number, end: number): void {
  checkMm('__flushTlbRange', mm);
  checkVaRange('__flushTlbRange', start, end);
  doFlushTlbRange(mm, start, end);
}

/** `flush_tlb_range(vma, start, end)`: arm64 `__flush_tlb_range` with last_level false (same counts); x86 `flush_tlb_mm_range`. */
export function flushTlbRange(mm: PageTables, start: number, end: number): void {
  checkMm('flushTlbRange', mm);
  checkVaRange('flushTlbRange', start, end);
  doFlushTlbRange(mm, start, end);
}

/** `flush_tlb_mm` (arm64): DSB_ISHST, TLBI_ASID (×2 with KPTI), DSB_ISH. x86: full flush on every CPU of the mm. */
export function flushTlbMm(mm: PageTables): void {
  checkMm('flushTlbMm', mm);
  doFlushTlbMm(mm);
}
