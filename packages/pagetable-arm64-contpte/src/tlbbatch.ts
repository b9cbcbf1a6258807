import { EV, FoliolabError } from '@foliolab/ledger';
import { checkVaRange } from './geometry.js';
import type { Machine } from './profile.js';
import { PTE_HI_DIRTY, PTE_HI_WRITE, PTE_PRESENT_INVALID, PTE_RDONLY, PTE_VALID } from './pte.js';
import { PageTables } from './tables.js';
import { doFlushTlbMm, doFlushTlbRangeNosync, tlbiSyncS1ish } from './tlb.js';
import { tlbMarkAll } from './tlbtrack.js';

/*
 * Deferred TLB flushing in reclaim (spec §7): mm/rmap.c
 * set_tlb_ubc_flush_pending / try_to_unmap_flush{,_dirty} /
 * flush_tlb_batched_pending (7.2.13), with the arm64 and x86
 * arch_tlbbatch_* hooks.
 */

/** `struct tlbflush_unmap_batch` (current->tlb_ubc). */
export class TlbUnmapBatch {
  /** `flush_required`. */
  flushRequired = false;
  /** `writable`: some deferred PTE was dirty; flush before writeback. */
  writable = false;
  /** x86 `arch.cpumask` as the mms whose CPUs must be flushed (arm64 keeps no state). */
  readonly mms: PageTables[] = [];
  constructor(readonly machine: Machine) {}
}

function checkBatch(fn: string, batch: TlbUnmapBatch, mm?: PageTables): void {
  if (!(batch instanceof TlbUnmapBatch)) throw new FoliolabError('EINVAL', `${fn}: not a TlbUnmapBatch`, {});
  if (mm !== undefined && (!(mm instanceof PageTables) || mm.machine !== batch.machine)) {
    throw new FoliolabError('EINVAL', `${fn}: the mm is not on the batch's machine`, {});
  }
}

/**
 * `arch_tlbbatch_should_defer(mm)`. arm64: true (7.2.13
 * arch/arm64/include/asm/tlbflush.h: unconditional; the REPEAT_TLBI erratum
 * is handled at each TLBI completion instead, see `tlbiSyncS1ish`). x86:
 * only if another CPU is in mm_cpumask (arch/x86/include/asm/tlbflush.h).
 */
export function archTlbbatchShouldDefer(mm: PageTables): boolean {
  if (mm.x86) return mm.profile.x86OtherCpus > 0;
  return true;
}

/**
 * `set_tlb_ubc_flush_pending(mm, pteval, start, end)`: returns at once if
 * `!pte_accessible(pteval)`. Else TLB_PENDING_ADD, `arch_tlbbatch_add_pending`
 * (arm64: `__flush_tlb_range_nosync` — the TLBIs are issued now, only the
 * DSB_ISH is deferred; x86: no instruction, the mm's CPUs join the batch),
 * `flush_required`, ATOMIC_TLBBATCH for `mm->tlb_flush_batched`, and
 * `writable` if the merged pteval is dirty.
 */
export function setTlbUbcFlushPending(batch: TlbUnmapBatch, mm: PageTables, pteLo: number, pteHi: number, start: number, end: number): void {
  checkBatch('setTlbUbcFlushPending', batch, mm);
  checkVaRange('setTlbUbcFlushPending', start, end);
  doSetTlbUbcFlushPending(batch, mm, pteLo, pteHi, start, end);
}

/**
 * @internal `set_tlb_ubc_flush_pending`, unchecked: the caller guarantees a
 * batch of mm's machine and a non-empty, 4K-aligned user range (same events
 * as `setTlbUbcFlushPending`).
 */
export function doSetTlbUbcFlushPending(batch: TlbUnmapBatch, mm: PageTables, pteLo: number, pteHi: number, start: number, end: number): void {
  // pte_accessible(): valid, or present while a flush is pending (as `pteAccessible`, inline).
  if ((pteLo & (mm.tlbFlushPending > 0 ? PTE_VALID | PTE_PRESENT_INVALID : PTE_VALID)) === 0) return;
  const l = mm.ledger;
  l.charge(EV.TLB_PENDING_ADD);
  if (mm.x86) x86TlbbatchAddPending(batch, mm);
  else doFlushTlbRangeNosync(mm, start, end);
  batch.flushRequired = true;
  l.charge(EV.ATOMIC_TLBBATCH);
  mm.tlbFlushBatchedPending++;
  // pte_dirty(), inline
  if ((pteHi & PTE_HI_DIRTY) !== 0 || ((pteHi & PTE_HI_WRITE) !== 0 && (pteLo & PTE_RDONLY) === 0)) batch.writable = true;
}

/** x86 `arch_tlbbatch_add_pending`: no instruction; the mm's CPUs join the batch. */
function x86TlbbatchAddPending(batch: TlbUnmapBatch, mm: PageTables): void {
  if (batch.mms[batch.mms.length - 1] !== mm && !batch.mms.includes(mm)) batch.mms.push(mm);
}

/**
 * `arch_tlbbatch_flush`. arm64 (7.2.13 arch/arm64/include/asm/tlbflush.h):
 * `__tlbi_sync_s1ish_batch()`, one DSB_ISH completing the TLBIs issued by
 * add_pending (plus the REPEAT_TLBI repeat). x86 (7.2.13
 * arch/x86/mm/tlb.c:arch_tlbbatch_flush): a TLB_FLUSH_ALL flush_tlb_info run
 * by flush_tlb_func on every CPU of the batch's cpumask — flush_tlb_multi
 * IPIs the remote ones, the local CPU flushes itself when it is in the mask.
 * Counted as one X86_FLUSH_ALL per CPU (the local one + x86OtherCpus: the
 * model's mm runs on the local CPU) and one X86_IPI per remote CPU; without
 * INVLPGB.
 */
function archTlbbatchFlush(batch: TlbUnmapBatch): void {
  const m = batch.machine;
  if (m.profile.arch === 'arm64') {
    tlbiSyncS1ish(m);
    return;
  }
  const remote = m.profile.x86OtherCpus;
  m.ledger.charge(EV.X86_FLUSH_ALL, 1 + remote);
  if (remote > 0) m.ledger.charge(EV.X86_IPI, remote);
  for (const mm of batch.mms) tlbMarkAll(mm);
  batch.mms.length = 0;
  m.dsbGen++;
}

/** `try_to_unmap_flush`: if a flush is required, TLB_BATCH_FLUSH + `arch_tlbbatch_flush`; clears the batch. */
export function tryToUnmapFlush(batch: TlbUnmapBatch): void {
  checkBatch('tryToUnmapFlush', batch);
  if (!batch.flushRequired) return;
  batch.machine.ledger.charge(EV.TLB_BATCH_FLUSH);
  archTlbbatchFlush(batch);
  batch.flushRequired = false;
  batch.writable = false;
}

/** `try_to_unmap_flush_dirty`: flush only if a deferred PTE was dirty. */
export function tryToUnmapFlushDirty(batch: TlbUnmapBatch): void {
  checkBatch('tryToUnmapFlushDirty', batch);
  if (batch.writable) tryToUnmapFlush(batch);
}

/**
 * `flush_tlb_batched_pending(mm)` (7.2.13 mm/rmap.c; called under the PTL
 * before zap/mprotect/mremap/madvise touch PTEs): if batched flushes are
 * pending on the mm (pending != flushed generation), `flush_tlb_mm(mm)` on
 * every arch (arm64: DSB_ISHST, TLBI_ASID ×(1 + KPTI), DSB_ISH; x86: a full
 * flush of the mm's CPUs) and one ATOMIC_TLBBATCH cmpxchg. 7.2.13 has no
 * arch_flush_tlb_batched_pending hook (older kernels issued only a DSB ISH
 * on arm64).
 */
export function flushTlbBatchedPending(mm: PageTables): void {
  if (!(mm instanceof PageTables)) throw new FoliolabError('EINVAL', 'flushTlbBatchedPending: not a PageTables', {});
  if (mm.tlbFlushBatchedPending === mm.tlbFlushBatchedFlushed) return;
  doFlushTlbMm(mm);
  mm.ledger.charge(EV.ATOMIC_TLBBATCH);
  mm.tlbFlushBatchedFlushed = mm.tlbFlushBatchedPending;
}

/** `inc_tlb_flush_pending(mm)`: makes `pte_accessible` count present-invalid entries. */
export function incTlbFlushPending(mm: PageTables): void {
  mm.tlbFlushPending++;
}

/** `dec_tlb_flush_pending(mm)`. */
export function decTlbFlushPending(mm: PageTables): void {
  if (mm.tlbFlushPending === 0) throw new FoliolabError('EINVAL', 'decTlbFlushPending: no flush pending', {});
  mm.tlbFlushPending--;
}
