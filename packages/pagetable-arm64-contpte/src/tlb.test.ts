import { describe, expect, it } from 'vitest';
import {
  MAX_TLBI_RANGE_PAGES,
  TlbUnmapBatch,
  __flushTlbRange,
  __flushTlbRangeNosync,
  archTlbbatchShouldDefer,
  decTlbFlushPending,
  dsbIsh,
  flushTlbBatchedPending,
  flushTlbMm,
  flushTlbPage,
  flushTlbPageNosync,
  flushTlbRange,
  getAndClearPtes,
  incTlbFlushPending,
  makeUserPte,
  pteBits,
  setTlbUbcFlushPending,
  tlbMayHoldStale,
  tlbStaleCount,
  tlbStaleVas,
  tlbiOpsForRange,
  tryToUnmapFlush,
  tryToUnmapFlushDirty,
} from './index.js';
import { PFN0, VA0, cost, makeMm, mapBlock } from './test-fixtures.js';

const K = 4096;

describe('§4 range TLBI math (__flush_tlb_range_op)', () => {
  it('16 pages → 1 TLBI, 15 → 2, 512 → 1 with FEAT_TLBIRANGE', () => {
    expect(tlbiOpsForRange(16, true)).toEqual({ va: 0, range: 1 });
    expect(tlbiOpsForRange(15, true)).toEqual({ va: 1, range: 1 });
    expect(tlbiOpsForRange(512, true)).toEqual({ va: 0, range: 1 });
    expect(tlbiOpsForRange(1, true)).toEqual({ va: 1, range: 0 });
    expect(tlbiOpsForRange(3, true)).toEqual({ va: 1, range: 1 });
  });

  it('covers exactly `pages` for every size (exhaustive up to 4096, plus the maximum)', () => {
    for (let pages = 1; pages <= 4096; pages++) {
      const { va, range } = tlbiOpsForRange(pages, true);
      expect(va).toBeLessThanOrEqual(1);
      // at most one range op per scale (4) plus one single-page op
      expect(range).toBeLessThanOrEqual(4);
      expect(va === 1).toBe(pages % 2 === 1);
    }
    expect(tlbiOpsForRange(MAX_TLBI_RANGE_PAGES, true)).toEqual({ va: 0, range: 1 });
  });

  it('without range support: one TLBI_VA per page', () => {
    expect(tlbiOpsForRange(15, false)).toEqual({ va: 15, range: 0 });
  });
});

describe('§4 flush primitives (arm64)', () => {
  it('flush_tlb_page_nosync = DSB_ISHST + TLBI_VA; flush_tlb_page adds DSB_ISH', () => {
    const { mm, ledger } = makeMm();
    expect(cost(ledger, () => flushTlbPageNosync(mm, VA0))).toEqual({ DSB_ISHST: 1, TLBI_VA: 1 });
    expect(cost(ledger, () => flushTlbPage(mm, VA0))).toEqual({ DSB_ISHST: 1, TLBI_VA: 1, DSB_ISH: 1 });
  });

  it('__flush_tlb_range_nosync: per-page TLBIs, fallback to flush_tlb_mm at 512 pages without range', () => {
    const { mm, ledger } = makeMm();
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, VA0, VA0 + 16 * K))).toEqual({ DSB_ISHST: 1, TLBI_VA: 16 });
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, VA0, VA0 + 511 * K))).toEqual({ DSB_ISHST: 1, TLBI_VA: 511 });
    // flush_tlb_mm carries its own DSB_ISH
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, VA0, VA0 + 512 * K))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 1, DSB_ISH: 1 });
    // __flush_tlb_range = nosync + DSB_ISH, so its fallback has two DSB_ISH
    expect(cost(ledger, () => __flushTlbRange(mm, VA0, VA0 + 512 * K))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 1, DSB_ISH: 2 });
    expect(cost(ledger, () => flushTlbRange(mm, VA0, VA0 + 15 * K))).toEqual({ DSB_ISHST: 1, TLBI_VA: 15, DSB_ISH: 1 });
  });

  it('with FEAT_TLBIRANGE: range ops; fallback only above MAX_TLBI_RANGE_PAGES', () => {
    const { mm, ledger } = makeMm('arm64-contpte', { hasTlbiRange: true });
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, VA0, VA0 + 15 * K))).toEqual({ DSB_ISHST: 1, TLBI_RANGE: 1, TLBI_VA: 1 });
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, VA0, VA0 + 512 * K))).toEqual({ DSB_ISHST: 1, TLBI_RANGE: 1 });
    const big = (MAX_TLBI_RANGE_PAGES + 1) * K;
    expect(cost(ledger, () => __flushTlbRangeNosync(mm, 0, big))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 1, DSB_ISH: 1 });
  });

  it('KPTI issues every TLBI twice (barriers unchanged)', () => {
    const { mm, ledger } = makeMm('arm64-contpte', { kpti: true });
    expect(cost(ledger, () => flushTlbPage(mm, VA0))).toEqual({ DSB_ISHST: 1, TLBI_VA: 2, DSB_ISH: 1 });
    expect(cost(ledger, () => flushTlbMm(mm))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 2, DSB_ISH: 1 });
    const r = makeMm('arm64-contpte', { kpti: true, hasTlbiRange: true });
    expect(cost(r.ledger, () => __flushTlbRangeNosync(r.mm, VA0, VA0 + 15 * K))).toEqual({ DSB_ISHST: 1, TLBI_RANGE: 2, TLBI_VA: 2 });
  });

  it('rejects empty or unaligned ranges', () => {
    const { mm } = makeMm();
    expect(() => flushTlbRange(mm, VA0, VA0)).toThrow(/bad range/);
    expect(() => flushTlbRange(mm, VA0, VA0 + 100)).toThrow(/bad range/);
  });
});

describe('§7 x86 contrast', () => {
  it('flush_tlb_range: INVLPG per page up to 33 pages, else a full flush; IPIs to remote CPUs', () => {
    const { mm, ledger } = makeMm('x86');
    expect(cost(ledger, () => flushTlbRange(mm, VA0, VA0 + 33 * K))).toEqual({ X86_INVLPG: 33 });
    expect(cost(ledger, () => flushTlbRange(mm, VA0, VA0 + 34 * K))).toEqual({ X86_FLUSH_ALL: 1 });
    const r = makeMm('x86', { x86OtherCpus: 2 });
    expect(cost(r.ledger, () => flushTlbPage(r.mm, VA0))).toEqual({ X86_INVLPG: 3, X86_IPI: 2 });
  });

  it('defers only when another CPU is in mm_cpumask; add_pending issues no TLB instruction; flush = FLUSH_ALL + IPIs', () => {
    const solo = makeMm('x86');
    expect(archTlbbatchShouldDefer(solo.mm)).toBe(false);
    const { mm, ledger, machine } = makeMm('x86', { x86OtherCpus: 1 });
    expect(archTlbbatchShouldDefer(mm)).toBe(true);
    const batch = new TlbUnmapBatch(machine);
    const v = makeUserPte(PFN0);
    expect(cost(ledger, () => setTlbUbcFlushPending(batch, mm, v.lo, v.hi, VA0, VA0 + 16 * K))).toEqual({ TLB_PENDING_ADD: 1, ATOMIC_TLBBATCH: 1 });
    expect(cost(ledger, () => tryToUnmapFlush(batch))).toEqual({ TLB_BATCH_FLUSH: 1, X86_FLUSH_ALL: 2, X86_IPI: 1 });
  });
});

describe('§7 deferred reclaim flush (arm64)', () => {
  it('set_tlb_ubc_flush_pending returns at once when !pte_accessible', () => {
    const { mm, ledger, machine } = makeMm();
    const batch = new TlbUnmapBatch(machine);
    const pn = makeUserPte(PFN0, { protNone: true });
    expect(cost(ledger, () => setTlbUbcFlushPending(batch, mm, pn.lo, pn.hi, VA0, VA0 + K))).toEqual({});
    expect(batch.flushRequired).toBe(false);
    // with a flush pending on the mm, present-invalid entries are accessible
    incTlbFlushPending(mm);
    expect(cost(ledger, () => setTlbUbcFlushPending(batch, mm, pn.lo, pn.hi, VA0, VA0 + K)).TLB_PENDING_ADD).toBe(1);
    decTlbFlushPending(mm);
  });

  it('add_pending issues the TLBIs immediately (nosync); try_to_unmap_flush is one DSB_ISH', () => {
    const { mm, ledger, machine } = makeMm();
    const batch = new TlbUnmapBatch(machine);
    const clean = makeUserPte(PFN0);
    expect(cost(ledger, () => setTlbUbcFlushPending(batch, mm, clean.lo, clean.hi, VA0, VA0 + 16 * K))).toEqual({
      TLB_PENDING_ADD: 1,
      DSB_ISHST: 1,
      TLBI_VA: 16,
      ATOMIC_TLBBATCH: 1,
    });
    expect(batch.flushRequired).toBe(true);
    expect(batch.writable).toBe(false);
    // not dirty: try_to_unmap_flush_dirty does nothing
    expect(cost(ledger, () => tryToUnmapFlushDirty(batch))).toEqual({});
    expect(cost(ledger, () => tryToUnmapFlush(batch))).toEqual({ TLB_BATCH_FLUSH: 1, DSB_ISH: 1 });
    expect(cost(ledger, () => tryToUnmapFlush(batch))).toEqual({});
    const dirty = makeUserPte(PFN0, { write: true, dirty: true });
    setTlbUbcFlushPending(batch, mm, dirty.lo, dirty.hi, VA0, VA0 + K);
    expect(batch.writable).toBe(true);
    expect(cost(ledger, () => tryToUnmapFlushDirty(batch))).toEqual({ TLB_BATCH_FLUSH: 1, DSB_ISH: 1 });
    expect(batch.flushRequired).toBe(false);
  });

  it('the REPEAT_TLBI erratum keeps deferral and repeats a TLBI + DSB ISH at each completion', () => {
    // 7.2.13 arch/arm64/include/asm/tlbflush.h:arch_tlbbatch_should_defer returns true unconditionally;
    // __tlbi_sync_s1ish{,_batch} → __repeat_tlbi_sync: `tlbi vale1is, 0; dsb ish` on the erratum.
    const e = makeMm('arm64-contpte', { repeatTlbiErratum: true });
    expect(archTlbbatchShouldDefer(e.mm)).toBe(true);
    expect(archTlbbatchShouldDefer(makeMm().mm)).toBe(true);
    expect(cost(e.ledger, () => flushTlbPage(e.mm, VA0))).toEqual({ DSB_ISHST: 1, TLBI_VA: 1 + 1, DSB_ISH: 2 });
    expect(cost(e.ledger, () => flushTlbMm(e.mm))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 1, TLBI_VA: 1, DSB_ISH: 2 });
    const batch = new TlbUnmapBatch(e.machine);
    const v = makeUserPte(PFN0);
    setTlbUbcFlushPending(batch, e.mm, v.lo, v.hi, VA0, VA0 + K);
    expect(cost(e.ledger, () => tryToUnmapFlush(batch))).toEqual({ TLB_BATCH_FLUSH: 1, TLBI_VA: 1, DSB_ISH: 2 });
  });

  it('flush_tlb_batched_pending: a flush_tlb_mm once per batched generation', () => {
    // 7.2.13 mm/rmap.c:flush_tlb_batched_pending: pending != flushed → flush_tlb_mm(mm) (arm64:
    // dsb(ishst), TLBI ASIDE1IS, __tlbi_sync_s1ish) and an atomic_cmpxchg of mm->tlb_flush_batched.
    const { mm, ledger, machine } = makeMm();
    const batch = new TlbUnmapBatch(machine);
    const v = makeUserPte(PFN0);
    expect(cost(ledger, () => flushTlbBatchedPending(mm))).toEqual({});
    setTlbUbcFlushPending(batch, mm, v.lo, v.hi, VA0, VA0 + K);
    expect(cost(ledger, () => flushTlbBatchedPending(mm))).toEqual({ DSB_ISHST: 1, TLBI_ASID: 1, DSB_ISH: 1, ATOMIC_TLBBATCH: 1 });
    expect(cost(ledger, () => flushTlbBatchedPending(mm))).toEqual({});
  });
});

describe('§9.7 TLB visibility', () => {
  it('a cleared VA stays visible until a covering TLBI and a later DSB_ISH', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    const out = pteBits();
    getAndClearPtes(f.table, 0, 16, out);
    expect(tlbStaleCount(f.mm)).toBe(16);
    // DSB alone does not help: no TLBI yet
    dsbIsh(f.machine);
    expect(tlbMayHoldStale(f.mm, VA0)).toBe(true);
    // TLBI issued (deferred batch): still visible until the DSB
    const batch = new TlbUnmapBatch(f.machine);
    setTlbUbcFlushPending(batch, f.mm, out.lo, out.hi, VA0, VA0 + 8 * K);
    expect(tlbMayHoldStale(f.mm, VA0)).toBe(true);
    tryToUnmapFlush(batch);
    expect(tlbMayHoldStale(f.mm, VA0)).toBe(false);
    expect(tlbStaleVas(f.mm)).toEqual(Array.from({ length: 8 }, (_, i) => VA0 + (8 + i) * K));
    flushTlbMm(f.mm);
    expect(tlbStaleCount(f.mm)).toBe(0);
  });

  it('a TLBI issued before the change does not cover it', () => {
    const f = makeMm('arm64-nocont');
    mapBlock(f, 0, PFN0);
    flushTlbPageNosync(f.mm, VA0);
    getAndClearPtes(f.table, 0, 1, pteBits());
    dsbIsh(f.machine);
    expect(tlbMayHoldStale(f.mm, VA0)).toBe(true);
    flushTlbPage(f.mm, VA0);
    expect(tlbMayHoldStale(f.mm, VA0)).toBe(false);
  });

  it('x86 flushes complete synchronously; a full flush (> 33 pages) covers every VA of the mm', () => {
    const f = makeMm('x86');
    mapBlock(f, 0, PFN0);
    mapBlock(f, 96, PFN0 + 96);
    getAndClearPtes(f.table, 0, 16, pteBits());
    getAndClearPtes(f.table, 96, 16, pteBits());
    flushTlbRange(f.mm, VA0, VA0 + 16 * K);
    expect(tlbStaleCount(f.mm)).toBe(16);
    flushTlbRange(f.mm, VA0, VA0 + 34 * K);
    expect(tlbStaleCount(f.mm)).toBe(0);
  });
});
