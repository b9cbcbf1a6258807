import { describe, expect, it } from 'vitest';
import { folioTrylock, folioUnlock } from '@foliolab/folio-flags';
import { tryToUnmapFlush } from '@foliolab/pagetable-arm64-contpte';
import { folioAllocSwap } from '@foliolab/swap';
import { TTU_BATCH_FLUSH, diffStates } from './index.js';
import { A, K64, POLICIES, costs, dumpOk, folioMappedAt, proc, ptesIn, setup } from './test-fixtures.js';
import { tryToUnmap } from './ttu.js';
import { VM_LOCKED } from './consts.js';
import type { Engine } from './engine.js';

/*
 * unmap-engine.md §7 test scenarios ("today" = mainline 2026, "batched" =
 * Dev Jain v4), one 64K folio = 16 × 4K at A (2M aligned):
 *
 *   0123456789abcdef   one char per 4K page of the folio
 */

/** A mapped 64K folio written in full. */
function faulted(policy: (typeof POLICIES)[number], cfg = {}) {
  const f = setup(policy, 4 * K64, cfg);
  f.e.write(f.pid, A, K64);
  return f;
}

/** The folio (kernel handle) mapped at `addr`. */
function kfolio(e: Engine, pid: number, addr: number) {
  const k = e.kernel;
  const t = k.procs.get(pid)!.pt.pteTableOf(addr)!;
  const i = (addr / 4096) % 512;
  return k.folioOf((t.lo[i]! >>> 12) + (t.hi[i]! & 0xffff) * 2 ** 20);
}

describe('§7.1 fault-in of an aligned 64K with hugepages-64kB always', () => {
  it.each(POLICIES)('%s: one order-4 folio, 16 present writable dirty young PTEs, refcount 16, mapcount 16, all exclusive, ANON 16', (policy) => {
    const { e, pid } = faulted(policy);
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    for (const [i, p] of ptes.entries()) {
      expect(p, `page ${i}`).toMatchObject({ kind: 'present', write: true, dirty: true, young: true, cont: true });
      expect(p!.pfn).toBe(ptes[0]!.pfn! + i);
    }
    const f = folioMappedAt(d, pid, A);
    expect(f).toMatchObject({ order: 4, refcount: 16, mapcount: 16, anonExclusive: '1'.repeat(16), swap: null, deferredSplit: false });
    expect(f.flags).toEqual(expect.arrayContaining(['anon', 'swapbacked', 'lru', 'uptodate', 'large_rmappable']));
    expect(proc(d, pid).rss.anon).toBe(16);
    expect(d.stats.mthp['64K']!.anon_fault_alloc).toBe(1);
  });
});

describe('§7.2 / §7.3 MADV_PAGEOUT of an exclusive 64K folio', () => {
  it.each(POLICIES)('%s: 16 aligned slots with count 1, 16 exclusive swap PTEs, ANON −16, SWAPENTS +16, folio freed, no deferred split', (policy) => {
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64, 'pageout');
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    const base = ptes[0]!.offset!;
    expect(base % 16).toBe(0);
    for (const [i, p] of ptes.entries()) expect(p).toMatchObject({ kind: 'swap', offset: base + i, exclusive: true, uffdWp: false });
    expect(d.swap.slots.filter((s) => s.offset >= base && s.offset < base + 16).map((s) => s.count)).toEqual(Array(16).fill(1));
    expect(d.swap.swapCache).toEqual([]);
    expect(d.folios).toEqual([]);
    expect(proc(d, pid).rss).toMatchObject({ anon: 0, swapents: 16 });
    expect(proc(d, pid).onMmlist).toBe(true);
    expect(d.stats.mthp['64K']!.split_deferred).toBe(0);
  });

  it('§7.2 today (mainline): 16 rmap calls, 16 dup cluster ops, 16 TLB pending adds, 17 pvmw calls', () => {
    const { e, pid } = faulted('mainline');
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout'));
    expect(c.RMAP_CALL).toBe(16);
    expect(c.SWAP_CLUSTER_OP).toBe(16 + 2); // + folio_alloc_swap + __remove_mapping
    expect(c.TLB_PENDING_ADD).toBe(16);
    expect(c.PVMW_CALL).toBe(17);
    expect(c.MB_FULL).toBe(16);
  });

  it('§7.3 batched: 1 batch, 1 SWAP_CLUSTER_OP(16) for the dup, 1 try-share, 1 rmap call, 1 TLB_PENDING_ADD(16)', () => {
    const { e, pid } = faulted('batched');
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout'));
    expect(c.RMAP_CALL).toBe(1);
    expect(c.SWAP_CLUSTER_OP).toBe(1 + 2);
    expect(c.TLB_PENDING_ADD).toBe(1);
    expect(c.PVMW_CALL).toBe(1);
    expect(c.MB_FULL).toBe(1);
    expect(c.CONTPTE_UNFOLD ?? 0).toBe(0);
  });
});

describe('§8 worked example: the try_to_unmap page-table events of a valid-CONT 64K block', () => {
  // §8 predates MM_ID: its lock counts are the legacy mapcount's (no folio_lock_large_mapcount)
  function ttuCosts(policy: 'mainline' | 'batched', mapcountMode: 'legacy' | 'page_mapcount_mm_id' = 'legacy') {
    const { e, pid } = faulted(policy, { mapcountMode });
    const k = e.kernel;
    const f = kfolio(e, pid, A);
    folioTrylock(f);
    folioAllocSwap(k.si!, f);
    const c = costs(e, () => tryToUnmap(k, f, TTU_BATCH_FLUSH));
    tryToUnmapFlush(k.tlb);
    folioUnlock(f);
    return c;
  }
  it('7.2.13 (MM_ID on): the batched rmap removal also takes the folio\'s large-mapcount bit lock once (mm/rmap.c __folio_remove_rmap → folio_lock_large_mapcount)', () => {
    const legacy = ttuCosts('batched', 'legacy');
    const mmid = ttuCosts('batched', 'page_mapcount_mm_id');
    expect([mmid.LOCK, mmid.UNLOCK]).toEqual([legacy.LOCK! + 1, legacy.UNLOCK! + 1]);
  });
  it('one-by-one (mainline): 3G + 62 reads + 16 set_pte_at reads, 32 XCHG, 32 WRITE, 32 TLBI, 17 DSB_ISHST, 17 pvmw calls (G = 3)', () => {
    const c = ttuCosts('mainline');
    // set_pte_at = set_ptes(…, 1), which reads the old entry first (7.2.13 arch/arm64/include/asm/pgtable.h:set_ptes:
    // contpte_try_unfold(mm, addr, ptep, __ptep_get(ptep))): +1 read per swap PTE over the §8 table.
    expect(c).toMatchObject({ PTE_READ: 3 * 3 + 62 + 16, PTE_XCHG: 32, PTE_WRITE: 32, TLBI_VA: 32, DSB_ISHST: 17, DSB_ISH: 1, PVMW_CALL: 17, CONTPTE_UNFOLD: 1 });
  });
  it('batched: 3G + 1 reads + 16, 16 XCHG, 16 WRITE, 16 TLBI, 1 DSB_ISHST, no unfold, 1 pvmw call', () => {
    const c = ttuCosts('batched');
    expect(c).toMatchObject({ PTE_READ: 3 * 3 + 1 + 16, PTE_XCHG: 16, PTE_WRITE: 16, TLBI_VA: 16, DSB_ISHST: 1, PVMW_CALL: 1, LOCK: 4, UNLOCK: 4 });
    expect(c.CONTPTE_UNFOLD ?? 0).toBe(0);
  });
});

describe('§7.4 / §7.5 after fork', () => {
  it.each(POLICIES)('%s §7.4: MADV_PAGEOUT in the parent skips the folio (mapcount 32 ≠ 16): nothing changes', (policy) => {
    const { e, pid } = faulted(policy);
    e.fork(pid);
    const before = dumpOk(e);
    e.madvise(pid, A, K64, 'pageout');
    const after = dumpOk(e);
    expect(diffStates(before, after).filter((x) => !x.path.startsWith('stats.vmstat.pg'))).toEqual([]);
  });

  it.each(POLICIES)('%s §7.5: proactive reclaim unmaps both mms: 32 swap PTEs without swp-exclusive, slot counts 2, folio freed', (policy) => {
    const { e, pid } = faulted(policy);
    const child = e.fork(pid);
    const c = costs(e, () => e.reclaim({ kind: 'proactive' }));
    // memory.reclaim asks folio_check_references first: priority 2 finds the parent's PTEs young (the child's
    // are old since copy_present_ptes' pte_mkold): FOLIOREF_KEEP; priority 1 reclaims. folio_referenced_one ×4
    // + try_to_unmap_one ×2 (recorded: packages/kernel-oracle/recorded/arm64/05-fork-proactive-reclaim.json step 3).
    expect(c.RMAP_ONE).toBe(6);
    if (policy === 'mainline') expect(c.PVMW_CALL).toBe(38);
    const d = dumpOk(e);
    for (const q of [pid, child]) {
      for (const p of ptesIn(d, q, A, 16)) expect(p).toMatchObject({ kind: 'swap', exclusive: false });
      expect(proc(d, q).rss).toMatchObject({ anon: 0, swapents: 16 });
    }
    expect(d.swap.slots.map((s) => s.count)).toEqual(Array(16).fill(2));
    expect(d.folios).toEqual([]);
  });
});

describe('§7.6 / §7.7 swap-in', () => {
  it.each(POLICIES)('%s §7.6: a read fault after pageout on zram swaps in one 64K folio: 16 writable clean PTEs, all exclusive, PG_dirty, swap cache freed', (policy) => {
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64, 'pageout');
    expect(e.read(pid, A, 4096).lost).toEqual([]);
    const d = dumpOk(e);
    for (const p of ptesIn(d, pid, A, 16)) expect(p).toMatchObject({ kind: 'present', write: true, dirty: false });
    const f = folioMappedAt(d, pid, A);
    // mm/memory.c:should_try_to_free_swap (7.2.13) is true for every SWP_SYNCHRONOUS_IO device; folio_free_swap
    // (mm/swapfile.c) then deletes the folio from the swap cache (its 16 cache references go: refcount 32 → 16),
    // frees the 16 slots (counts 0 since folio_put_swap) and folio_set_dirty marks it dirty.
    expect(f).toMatchObject({ order: 4, anonExclusive: '1'.repeat(16), mapcount: 16, refcount: 16, swap: null });
    expect(f.flags).toContain('dirty');
    expect(f.flags).not.toContain('swapcache');
    expect(d.swap.slots).toEqual([]);
    expect(d.swap.swapCache).toEqual([]);
    expect(proc(d, pid).rss).toMatchObject({ anon: 16, swapents: 0 });
  });

  it.each(POLICIES)('%s §7.7: the child swaps in after §7.5: not exclusive, read-only, slot counts 2 → 1', (policy) => {
    const { e, pid } = faulted(policy);
    const child = e.fork(pid);
    e.reclaim({ kind: 'proactive' });
    expect(e.read(child, A, K64).lost).toEqual([]);
    const d = dumpOk(e);
    for (const p of ptesIn(d, child, A, 16)) expect(p).toMatchObject({ kind: 'present', write: false });
    expect(folioMappedAt(d, child, A).anonExclusive).toBe('0'.repeat(16));
    expect(d.swap.slots.map((s) => s.count)).toEqual(Array(16).fill(1));
  });
});

/**
 * A 64K folio mapped, exclusive and writable, and in the swap cache: a first pageout whose
 * folio_dup_swap fails (injected, as in §7.10) after folio_alloc_swap. On zram a swap-in never leaves a
 * folio in the swap cache (mm/memory.c:should_try_to_free_swap, 7.2.13), so §7.6 no longer gives this.
 */
function inSwapCacheMapped(policy: (typeof POLICIES)[number]) {
  const f = faulted(policy);
  f.e.setInject('swapDupEnomem', 1);
  f.e.madvise(f.pid, A, K64, 'pageout');
  const d = dumpOk(f.e);
  expect(folioMappedAt(d, f.pid, A).flags).toEqual(expect.arrayContaining(['swapcache', 'active']));
  expect(ptesIn(d, f.pid, A, 16).every((p) => p?.kind === 'present' && p.write)).toBe(true);
  return f;
}

describe('§7.8 / §7.9 pinned folios', () => {
  it.each(POLICIES)('%s §7.8: pinned folio in the swap cache: unmap aborts, PTEs/counters/slots/exclusive bits unchanged, folio activated', (policy) => {
    const { e, pid } = inSwapCacheMapped(policy);
    e.pin(pid, A, 4096, { kind: 'pin', write: true });
    const before = dumpOk(e);
    const r = e.madvise(pid, A, K64, 'pageout')!;
    expect(r.unmapFail).toBe(16);
    const after = dumpOk(e);
    const diff = diffStates(before, after).filter((x) => !x.path.startsWith('stats.'));
    // Only PTE A/D/cont may move: mainline's one-PTE clear unfolds the block first, which repaints all 16 with the
    // ORed young/dirty and no CONT (7.2.13 arch/arm64/mm/contpte.c:contpte_convert); batched clears and restores all 16
    // with the merged young/dirty (§7.8, [I]: Dev Jain v4's rollback, reconstructed, see ttu.ts). The folio
    // is activated again (it already was, by the failed first pageout); MADV_PAGEOUT clears the PG_referenced the
    // pin's GUP-fast set and marks the active folio PG_workingset (madvise_cold_or_pageout_pte_range).
    for (const x of diff) expect(x.path).toMatch(/ptes\.\d+\.(dirty|young|cont)$|folios\.0\.flags\.(active|referenced|workingset)$/);
    expect(folioMappedAt(after, pid, A).flags).toEqual(expect.arrayContaining(['active', 'swapcache']));
    expect(ptesIn(after, pid, A, 16).every((p) => p?.kind === 'present' && p.write)).toBe(true);
  });

  it.each(POLICIES)('%s §7.8 on a non-synchronous device: the folio stays in the swap cache, a read maps it again; pinned, it aborts the unmap', (policy) => {
    // The write to a device without SWP_SYNCHRONOUS_IO completes later (swap_writepage_bdev_async): pageout keeps
    // the 64K folio in the swap cache, the read maps it back (no swap-in I/O), should_try_to_free_swap is false
    // (not synchronous, swap not full, no VM_LOCKED/mlock, a read fault). Pinned, MADV_PAGEOUT's try_to_unmap
    // aborts on PTE 0: one walk, one try_to_unmap_one (recorded: packages/kernel-oracle/recorded/arm64/08-pinned-in-swapcache.json steps 3-7).
    const { e, pid } = setup(policy, 4 * K64, { swapSynchronousIo: false });
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'pageout');
    e.read(pid, A, K64);
    expect(dumpOk(e).stats.vmstat).toMatchObject({ pswpin: 0, pgmajfault: 0 });
    e.pin(pid, A, 4096, { kind: 'pin', write: true });
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout'));
    expect(c).toMatchObject({ PVMW_CALL: 1, RMAP_ONE: 1 });
    const d = dumpOk(e);
    const f = folioMappedAt(d, pid, A);
    expect(f).toMatchObject({ order: 4, mapcount: 16, pincount: 1, anonExclusive: '1'.repeat(16) });
    expect(f.flags).toEqual(expect.arrayContaining(['active', 'swapcache']));
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present' && p.write)).toBe(true);
  });

  it.each(POLICIES)('%s §7.9: pinned folio not in the swap cache is kept before swap allocation; try_to_unmap never runs', (policy) => {
    const { e, pid } = faulted(policy);
    e.pin(pid, A, 4096);
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout')); // as 09-pinned-not-in-swapcache.yaml
    expect(c.PVMW_CALL ?? 0).toBe(0);
    const d = dumpOk(e);
    expect(d.swap.slots).toEqual([]);
    expect(folioMappedAt(d, pid, A).flags).not.toContain('active');
    expect(d.stats.reclaim.nr_pinned_keep).toBe(16);
  });
});

/** Pages 0–7 not exclusive, 8–15 exclusive, all read-only, mapcount 16 (fork with DONTFORK on the upper half, then exit). */
function mixedExclusive(policy: (typeof POLICIES)[number], cfg = {}) {
  const f = faulted(policy, cfg);
  const { e, pid } = f;
  e.madvise(pid, A + K64 / 2, K64 / 2, 'dontfork');
  const child = e.fork(pid);
  e.madvise(pid, A + K64 / 2, K64 / 2, 'dofork');
  e.exit(child);
  e.mprotect(pid, A, 4 * K64, 'r');
  return f;
}

describe('§7.10 injected folio_dup_swap failure', () => {
  it('mainline (today): PTE 0 restored, abort', () => {
    const { e, pid } = faulted('mainline', { inject: { swapDupEnomem: 1 } });
    const before = dumpOk(e);
    e.reclaim({ kind: 'proactive' });
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present')).toBe(true);
    expect(folioMappedAt(d, pid, A).mapcount).toBe(16);
    expect(d.swap.slots.filter((s) => s.count > 0)).toEqual([]);
    expect(proc(d, pid).rss).toEqual(proc(before, pid).rss);
  });

  it('batched, runs [0–7] non-exclusive + [8–15] exclusive, failure on run 2: 0–7 stay swap PTEs and are accounted, 8–15 restored', () => {
    //  0123456789abcdef
    //  ssssssssPPPPPPPP   s = swap PTE (converted by run 1), P = restored present PTE
    const { e, pid } = mixedExclusive('batched');
    const d0 = dumpOk(e);
    expect(folioMappedAt(d0, pid, A).anonExclusive).toBe('0'.repeat(8) + '1'.repeat(8));
    e.setInject('swapDupEnomem', 2);
    const r = e.reclaim({ kind: 'proactive' });
    expect(r.unmapFail).toBe(16);
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    for (let i = 0; i < 8; i++) expect(ptes[i]).toMatchObject({ kind: 'swap', exclusive: false });
    for (let i = 8; i < 16; i++) expect(ptes[i]).toMatchObject({ kind: 'present', write: false });
    const f = d.folios.find((x) => x.order === 4)!;
    expect(f).toMatchObject({ mapcount: 8, refcount: 8 + 16, anonExclusive: '0'.repeat(8) + '1'.repeat(8) });
    expect(proc(d, pid).rss).toMatchObject({ anon: 8, swapents: 8 });
    expect(d.swap.slots.map((s) => s.count)).toEqual([...Array<number>(8).fill(1), ...Array<number>(8).fill(0)]);
  });
});

describe('§7.11 arch_unmap_one failure (sparc64-style profile)', () => {
  it.each(POLICIES)('%s: put_swap, restore, abort; the batched series never batches this arch', (policy) => {
    const { e, pid } = faulted(policy, { archOptions: { archUnmapOne: true }, inject: { archUnmapOneFail: 1 } });
    const c = costs(e, () => e.madvise(pid, A, K64, 'pageout')); // as 11-arch-unmap-one-fail.yaml
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present')).toBe(true);
    expect(d.swap.slots.every((s) => s.count === 0)).toBe(true);
    expect(c.PVMW_CALL).toBe(1);
  });
});

describe('§7.12 uffd-wp anonymous VMA', () => {
  it.each(POLICIES)('%s: swap PTEs carry swp-uffd-wp; swap-in restores uffd-wp and keeps the PTEs read-only although exclusive', (policy) => {
    const { e, pid } = faulted(policy);
    e.uffdwp(pid, A, 4 * K64, 'register');
    e.uffdwp(pid, A, K64, 'protect');
    e.madvise(pid, A, K64, 'pageout');
    let d = dumpOk(e);
    for (const p of ptesIn(d, pid, A, 16)) expect(p).toMatchObject({ kind: 'swap', uffdWp: true, exclusive: true });
    expect(e.read(pid, A, K64).lost).toEqual([]);
    d = dumpOk(e);
    for (const p of ptesIn(d, pid, A, 16)) expect(p).toMatchObject({ kind: 'present', uffdWp: true, write: false });
    expect(e.dump().folios.find((f) => f.order === 0 || f.order === 4)!.anonExclusive).toMatch(/^1+$/);
  });
});

describe('§7.14 – §7.16 zap', () => {
  it.each(POLICIES)('%s §7.14: munmap of the second half: mapcount 8, deferred split, ANON −8, refcount 8', (policy) => {
    const { e, pid } = faulted(policy);
    e.munmap(pid, A + K64 / 2, K64 / 2);
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A)).toMatchObject({ mapcount: 8, refcount: 8, deferredSplit: true, partiallyMapped: true });
    expect(d.stats.mthp['64K']).toMatchObject({ split_deferred: 1, nr_anon_partially_mapped: 1 });
    expect(proc(d, pid).rss.anon).toBe(8);
  });

  it.each(POLICIES)('%s §7.15: full munmap / MADV_DONTNEED frees the folio; only per-pte queues it on the way', (policy) => {
    for (const how of ['munmap', 'dontneed'] as const) {
      const { e, pid } = faulted(policy);
      const c = costs(e, () => (how === 'munmap' ? e.munmap(pid, A, K64) : e.madvise(pid, A, K64, 'dontneed')));
      const d = dumpOk(e);
      expect(d.folios).toEqual([]);
      expect(d.stats.mthp['64K']!.split_deferred).toBe(policy === 'per-pte' ? 1 : 0); // seed 001
      expect(c.RMAP_CALL).toBe(policy === 'per-pte' ? 16 : 1);
      expect(d.stats.vmstat.split_queue_len).toBe(0);
    }
  });

  it.each(POLICIES)('%s §7.16: PTEs 0–7 vs 8–15 differing in uffd-wp zap in two batches: spurious enqueue, unqueued at free', (policy) => {
    const { e, pid } = faulted(policy);
    e.uffdwp(pid, A, 4 * K64, 'register');
    e.uffdwp(pid, A, K64 / 2, 'protect');
    const c = costs(e, () => e.munmap(pid, A, K64));
    const d = dumpOk(e);
    expect(d.folios).toEqual([]);
    expect(d.stats.mthp['64K']!.split_deferred).toBe(1);
    expect(c.RMAP_CALL).toBe(policy === 'per-pte' ? 16 : 2);
  });
});

describe('§7.17 – §7.20 lazyfree (MADV_FREE)', () => {
  it.each(POLICIES)('%s §7.17: clean reclaim discards: ANON −16, PGLAZYFREED +16, no slots', (policy) => {
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64, 'free');
    e.reclaim({ kind: 'proactive' });
    const d = dumpOk(e);
    expect(d.folios).toEqual([]);
    expect(proc(d, pid).rss.anon).toBe(0);
    expect(d.stats.vmstat.pglazyfreed).toBe(16);
    expect(d.swap.slots).toEqual([]);
    expect(ptesIn(d, pid, A, 16).every((p) => p === undefined)).toBe(true);
    expect(d.stats.mthp['64K']!.split_deferred).toBe(policy === 'per-pte' ? 1 : 0);
    expect(e.read(pid, A, K64).lost).toEqual([]); // MADV_FREE'd and not rewritten: zeros are legitimate
  });

  it.each(POLICIES)('%s §7.18: write page 3 after MADV_FREE: dirty → restored, swapbacked again, abort, nr_lazyfree_fail 16, activated', (policy) => {
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64, 'free');
    e.write(pid, A + 3 * 4096, 1);
    e.madvise(pid, A, K64, 'pageout'); // as 18-madv-free-redirtied.yaml
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    expect(ptes.every((p) => p?.kind === 'present' && p.write)).toBe(true);
    if (policy !== 'per-pte') expect(ptes.every((p) => p!.dirty && p!.young)).toBe(true); // merged pteval
    const f = folioMappedAt(d, pid, A);
    expect(f.flags).toEqual(expect.arrayContaining(['swapbacked', 'active']));
    expect(d.stats.reclaim.nr_lazyfree_fail).toBe(16);
    expect(e.read(pid, A, K64).lost).toEqual([]);
  });

  it.each(POLICIES)('%s §7.19: an extra FOLL_GET reference: restore, abort, still lazyfree', (policy) => {
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64, 'free');
    e.pin(pid, A, 4096, { kind: 'get' });
    e.reclaim({ kind: 'proactive' });
    const d = dumpOk(e);
    const f = folioMappedAt(d, pid, A);
    expect(f.flags).not.toContain('swapbacked');
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present')).toBe(true);
  });

  it.each(POLICIES)('%s §7.20 (B2): lazyfree with PTEs 0–7 writable and 8–15 read-only: restored PTEs keep their own write bit', (policy) => {
    //  0123456789abcdef
    //  WWWWWWWWrrrrrrrr   after DONTFORK(0–7), fork, DOFORK (Dev Jain's reproducer), child exit
    const { e, pid } = faulted(policy);
    e.madvise(pid, A, K64 / 2, 'dontfork');
    const child = e.fork(pid);
    e.madvise(pid, A, K64 / 2, 'dofork');
    e.exit(child);
    let d = dumpOk(e);
    expect(proc(d, pid).vmas).toHaveLength(1);
    e.madvise(pid, A, K64, 'free');
    e.write(pid, A, 1);
    e.reclaim({ kind: 'proactive' });
    d = dumpOk(e);
    const w = ptesIn(d, pid, A, 16).map((p) => (p?.write === true ? 'W' : 'r')).join('');
    expect(w).toBe('WWWWWWWWrrrrrrrr');
  });
});

describe('§7.21 VM_LOCKED', () => {
  it.each(POLICIES)('%s: no PTE changes, ret false; with 8 PTEs in the locked VMA the folio is not mlocked', (policy) => {
    const { e, pid } = faulted(policy);
    e.mlock(pid, A, K64 / 2);
    const before = dumpOk(e);
    expect(folioMappedAt(before, pid, A).flags).not.toContain('mlocked');
    e.reclaim({ kind: 'proactive' });
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present')).toBe(true);
    expect(folioMappedAt(d, pid, A).flags).not.toContain('mlocked');
  });

  it.each(POLICIES)('%s: all 16 PTEs seen in one locked VMA without crossing a table → mlock_vma_folio', (policy) => {
    const { e, pid } = faulted(policy);
    const k = e.kernel;
    const vma = k.procs.get(pid)!.vmas[0]!;
    vma.flags |= VM_LOCKED; // white-box: a locked VMA whose folio was not mlocked yet
    const f = kfolio(e, pid, A);
    folioTrylock(f);
    tryToUnmap(k, f, TTU_BATCH_FLUSH);
    folioUnlock(f);
    const d = e.dump();
    expect(folioMappedAt(d, pid, A).flags).toContain('mlocked');
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'present')).toBe(true);
  });
});

describe('§7.22 / §7.23 a folio straddling a PMD after an unaligned mremap', () => {
  const DST = 0x8000_0000 - 5 * 4096; // 5 pages below a 2M boundary
  function straddle(policy: (typeof POLICIES)[number], cfg = {}) {
    const f = faulted(policy, cfg);
    f.e.mmap(f.pid, { addr: DST, len: 2 * K64 });
    f.e.mremap(f.pid, A, K64, K64, { fixed: DST });
    return f;
  }
  it('batched: batches capped at the PMD boundary (5 + 11), two rmap calls', () => {
    const { e, pid } = straddle('batched');
    const c = costs(e, () => e.reclaim({ kind: 'proactive' }));
    expect(c.RMAP_CALL).toBe(2);
    // Three walks cross the table: folio_referenced twice (kept young, then old), try_to_unmap once
    // (recorded: packages/kernel-oracle/recorded/arm64/22-pmd-straddle-mremap.json step 4: 3 rmap_one calls, 21 page_vma_mapped_walk).
    expect(c.PGTABLE_CROSSED).toBe(3);
    const d = dumpOk(e);
    expect(ptesIn(d, pid, DST, 16).every((p) => p?.kind === 'swap')).toBe(true);
    expect(e.read(pid, DST, K64).lost).toEqual([]);
  });
  it.each(POLICIES)('%s: end state equal under every policy and skip policy; the data survives', (policy) => {
    const base = straddle('batched');
    base.e.reclaim({ kind: 'proactive' });
    const x = straddle(policy);
    x.e.reclaim({ kind: 'proactive' });
    expect(diffStates(base.e.dump(), x.e.dump(), ['batched', policy])).toEqual([]);
    const y = straddle('batched', { pvmwSkip: 'none' });
    y.e.reclaim({ kind: 'proactive' });
    expect(diffStates(base.e.dump(), y.e.dump()).filter((q) => q.path !== 'config.pvmwSkip')).toEqual([]);
    expect(x.e.read(x.pid, DST, K64).lost).toEqual([]);
  });
  it.each(POLICIES)('%s: table crossing blocks the mlock of a fully mapped folio', (policy) => {
    const { e, pid } = straddle(policy);
    const k = e.kernel;
    for (const v of k.procs.get(pid)!.vmas) v.flags |= VM_LOCKED;
    const f = kfolio(e, pid, DST);
    folioTrylock(f);
    tryToUnmap(k, f, TTU_BATCH_FLUSH);
    folioUnlock(f);
    expect(folioMappedAt(e.dump(), pid, DST).flags).not.toContain('mlocked');
  });
});

describe('§7.24 fork of an exclusive 64K folio', () => {
  it.each(POLICIES)('%s: refcount 32, mapcount 32, exclusive bits cleared, parent write-protected, child read-only and old, child ANON 16', (policy) => {
    const { e, pid } = faulted(policy);
    const child = e.fork(pid);
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A)).toMatchObject({ refcount: 32, mapcount: 32, anonExclusive: '0'.repeat(16) });
    for (const p of ptesIn(d, pid, A, 16)) expect(p).toMatchObject({ kind: 'present', write: false });
    for (const p of ptesIn(d, child, A, 16)) expect(p).toMatchObject({ kind: 'present', write: false, young: false });
    expect(proc(d, child).rss.anon).toBe(16);
  });

  it('batched fork is one batch: one rmap dup call', () => {
    const { e, pid } = faulted('mainline');
    const c = costs(e, () => e.fork(pid));
    expect(c.RMAP_CALL).toBe(1);
  });

  it.each(POLICIES)('%s: pinned + MMF_HAS_PINNED → the child gets 16 order-0 copies, the parent keeps exclusive writable PTEs', (policy) => {
    const { e, pid } = faulted(policy);
    e.pin(pid, A, 4096);
    const child = e.fork(pid);
    const d = dumpOk(e);
    for (const p of ptesIn(d, pid, A, 16)) expect(p).toMatchObject({ kind: 'present', write: true });
    expect(folioMappedAt(d, pid, A)).toMatchObject({ mapcount: 16, anonExclusive: '1'.repeat(16) });
    const childFolios = ptesIn(d, child, A, 16).map((p) => folioMappedAt(d, child, Number.parseInt(p!.addr, 16)));
    expect(childFolios.every((f) => f.order === 0 && f.anonExclusive === '1')).toBe(true);
    expect(e.read(child, A, K64).lost).toEqual([]);
  });
});

describe('§7.25 TTU_HWPOISON', () => {
  it.each(POLICIES)('%s: page 7 poisoned in a swap-cache folio: nr 1 everywhere, page 7 → hwpoison entry (ANON −1), the others → swap PTEs', (policy) => {
    const { e, pid } = inSwapCacheMapped(policy);
    const c = costs(e, () => e.poison(pid, A + 7 * 4096, { ttuHwpoison: true, split: false }));
    // 16 hits of nr 1 and the walk's final not_found, after collect_procs_anon's page_mapped_in_vma walk (7.2.13
    // mm/memory-failure.c; recorded for an order-0 page: kernel-oracle/recorded/*/oracle-poison-collect.json, 2 = 1 + 1)
    expect(c.PVMW_CALL).toBe(18);
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    for (let i = 0; i < 16; i++) expect(ptes[i]!.kind).toBe(i === 7 ? 'hwpoison' : 'swap');
    expect(proc(d, pid).rss).toMatchObject({ anon: 0, swapents: 15 });
    const r = e.read(pid, A, K64);
    expect(r.lost.map((x) => x.addr)).toEqual([A + 7 * 4096]);
  });

  it.each(POLICIES)('%s: the kernel default splits the folio first and unmaps only the poisoned page', (policy) => {
    const { e, pid } = faulted(policy);
    e.poison(pid, A + 7 * 4096);
    const d = dumpOk(e);
    const ptes = ptesIn(d, pid, A, 16);
    for (let i = 0; i < 16; i++) expect(ptes[i]!.kind).toBe(i === 7 ? 'hwpoison' : 'present');
    expect(d.folios.every((f) => f.order === 0)).toBe(true);
    expect(d.stats.mthp['64K']!.split).toBe(1);
  });
});

describe('§7.26 try_to_unmap without TTU_BATCH_FLUSH', () => {
  it.each(['mainline', 'batched'] as const)('%s: one TLB_FLUSH_RANGE per batch, no pending state', (policy) => {
    const { e, pid } = faulted(policy);
    const k = e.kernel;
    const f = kfolio(e, pid, A);
    folioTrylock(f);
    folioAllocSwap(k.si!, f);
    const c = costs(e, () => tryToUnmap(k, f, 0));
    folioUnlock(f);
    expect(c.TLB_PENDING_ADD ?? 0).toBe(0);
    expect(c.TLB_FLUSH_RANGE).toBe(policy === 'batched' ? 1 : 16);
    expect(k.tlb.flushRequired).toBe(false);
  });
});
