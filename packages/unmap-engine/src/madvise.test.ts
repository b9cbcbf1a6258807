import { describe, expect, it } from 'vitest';
import { lruOldestFirst } from './lru.js';
import { A, K64, POLICIES, costs, dumpOk, folioMappedAt, ptesIn, setup } from './test-fixtures.js';

/*
 * madvise_cold_or_pageout_pte_range() and folio_deactivate() as Linux 7.2.13
 * has them (mm/madvise.c, mm/swap.c). Every expected value below is read off
 * that source, not off the engine.
 */

const ARM64 = { arch: 'arm64-contpte', archOptions: { hasTlbiRange: false, kpti: false, bbml2NoAbort: false, gatherVariant: 'earlyExit' } } as const;
const M2 = 2 * 1024 * 1024;

describe('MADV_PAGEOUT leaves PTE young bits alone (mm/madvise.c:madvise_cold_or_pageout_pte_range, 7.2.13)', () => {
  it.each(POLICIES)('%s: a pinned folio (reclaim keeps it before swap allocation) keeps 16 young PTEs; the walk writes no PTE and flushes nothing', (policy) => {
    // `if (!pageout && pte_young(ptent))` guards clear_young_dirty_ptes + tlb_remove_tlb_entries: PAGEOUT
    // clears nothing (reclaim_pages ignores references anyway), so its mmu_gather stays empty. Reclaim
    // keeps the pinned folio at folio_maybe_dma_pinned (mm/vmscan.c:shrink_folio_list) before any unmap,
    // so everything this step does to the page tables is the madvise walk's: nothing.
    const { e, pid } = setup(policy, 4 * K64, ARM64);
    e.write(pid, A, K64);
    e.pin(pid, A, 4096);
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout'));
    expect(c.PTE_CMPXCHG ?? 0).toBe(0);
    expect(c.PTE_WRITE ?? 0).toBe(0);
    expect(c.TLB_FLUSH_RANGE ?? 0).toBe(0);
    expect((c.TLBI_VA ?? 0) + (c.TLBI_ASID ?? 0)).toBe(0);
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A, 16).map((p) => p?.young)).toEqual(Array(16).fill(true));
    expect(d.stats.reclaim.nr_pinned_keep).toBe(16);
  });

  it('mainline, arm64 contpte: the whole pageout step charges §8 one-by-one column only — 32 TLBI_VA, 17 DSB_ISHST, 2 DSB_ISH, no CMPXCHG', () => {
    // pagetable-contpte-pvmw.md §8 (no TLBI range): unfold 16 TLBI_VA + DSB_ISHST + DSB_ISH, then 16 ×
    // (DSB_ISHST + TLBI_VA) from arch_tlbbatch_add_pending; try_to_unmap_flush_dirty before the writeout is
    // the second DSB_ISH. The madvise walk adds nothing (see above), so no PTE_CMPXCHG anywhere.
    const { e, pid } = setup('mainline', 4 * K64, ARM64);
    e.write(pid, A, K64);
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout'));
    expect(c).toMatchObject({ TLBI_VA: 32, DSB_ISHST: 17, DSB_ISH: 2, PTE_XCHG: 32, PTE_WRITE: 32, CONTPTE_UNFOLD: 1 });
    expect(c.PTE_CMPXCHG ?? 0).toBe(0);
    expect(c.TLB_FLUSH_RANGE ?? 0).toBe(0);
  });
});

describe('MADV_COLD (mm/madvise.c:madvise_cold, 7.2.13)', () => {
  it.each(['mainline', 'batched'] as const)('%s: young PTEs in two PTE tables of one VMA: clear_young_dirty_ptes per block, one flush_tlb_range over the gathered 128K', (policy) => {
    // madvise_cold: tlb_gather_mmu; the walk calls madvise_cold_or_pageout_pte_range per PMD extent, each young
    // batch gets clear_young_dirty_ptes(CYDP_CLEAR_YOUNG) (contpte: 16 × read + CMPXCHG, no unfold, no TLBI)
    // and tlb_remove_tlb_entries (the range grows to [A+2M−64K, A+2M+64K)); tlb_end_vma flushes it once:
    // flush_tlb_range of 32 pages < MAX_DVM_OPS = DSB_ISHST + 32 TLBI_VA + DSB_ISH (no TLBI range).
    const { e, pid } = setup(policy, 2 * M2, ARM64);
    e.write(pid, A + M2 - K64, 2 * K64);
    const c = costs(e, () => e.madvise(pid, A, 2 * M2, 'cold'));
    expect(c).toMatchObject({ PTE_CMPXCHG: 32, TLB_FLUSH_RANGE: 1, TLBI_VA: 32, DSB_ISHST: 1, DSB_ISH: 1 });
    expect(c.TLBI_ASID ?? 0).toBe(0);
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A + M2 - K64, 32).every((p) => p?.kind === 'present' && p.young === false)).toBe(true);
  });

  it.each(POLICIES)('%s: an inactive folio stays where it is on the LRU (mm/swap.c:folio_deactivate returns for !folio_test_active)', (policy) => {
    const { e, pid } = setup(policy);
    e.write(pid, A, K64); // older
    e.write(pid, A + K64, K64); // newer
    const k = e.kernel;
    const older = folioMappedAt(dumpOk(e), pid, A).pfn;
    const before = lruOldestFirst(k);
    expect(before[0]).toBe(older);
    e.madvise(pid, A, K64, 'cold');
    expect(lruOldestFirst(k)).toEqual(before);
    expect(dumpOk(e).stats.vmstat.pgdeactivate ?? 0).toBe(0);
  });

  it.each(POLICIES)('%s: an active folio loses PG_active and PG_referenced, PGDEACTIVATE += 16 (mm/swap.c:lru_deactivate)', (policy) => {
    // Activated by a failed lazyfree reclaim (§7.19: an extra FOLL_GET makes try_to_unmap_one restore and abort).
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'free');
    const h = e.pin(pid, A, 4096, { kind: 'get' });
    e.madvise(pid, A, K64, 'pageout');
    e.unpin(h);
    expect(folioMappedAt(dumpOk(e), pid, A).flags).toContain('active');
    e.madvise(pid, A, K64, 'cold');
    const d = dumpOk(e);
    const f = folioMappedAt(d, pid, A);
    expect(f.flags).not.toContain('active');
    expect(f.flags).not.toContain('referenced');
    expect(f.flags).toContain('workingset'); // folio_set_workingset while it was still active
    expect(d.stats.vmstat.pgdeactivate).toBe(16);
  });
});
