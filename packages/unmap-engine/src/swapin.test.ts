import { describe, expect, it } from 'vitest';
import { Engine, type Policy } from './index.js';

/*
 * can_swapin_thp() / alloc_swap_folio() (unmap-engine spec §5, swap-in) at
 * the start of the swap device. Slot 0 holds the swap header. An mTHP range
 * whose aligned first slot would be slot 0 is never swapped in as a large
 * folio. Both checks fail:
 *   - the head PTE is not the moved swap entry (or, on arm64, it is none);
 *   - swap_pte_batch() stops.
 * So the fault swaps in order 0.
 *
 * This is the random-sequence counterexample (seed 784) that made the model
 * refuse to encode the moved entry (type 0, offset 0), which on arm64 is
 * pte_none.
 */

const MB = 1 << 20;
const BASE = 0x4000_0000 + 2 * 2 * MB;
const PAGE = 4096;
const at = (page: number): number => BASE + page * PAGE;

function setUp(policy: Policy): { e: Engine; parent: number } {
  const e = new Engine({ policy, arch: 'arm64-contpte', mapcountMode: 'legacy', mthp: { '16K': 'always', '32K': 'always' }, memory: 16 * MB, swap: 16 * MB });
  const parent = e.createProcess();
  e.mmap(parent, { addr: BASE, len: 64 * PAGE });
  // One 32K folio at pages 16..23, written with a non-zero token: a zero-filled page would be mapped to
  // the shared zero page by the split below (7.2.13 mm/migrate.c try_to_map_unused_to_zeropage).
  e.write(parent, at(16), 8 * PAGE, 7);
  e.madvise(parent, at(10), 7 * PAGE, 'free'); // page 16 lazyfree: split off and later discarded
  e.fork(parent);
  e.reclaim({ kind: 'proactive', nrToReclaim: 16 });
  return { e, parent };
}

describe('swap-in next to the swap header (slot 0)', () => {
  for (const policy of ['per-pte', 'mainline', 'batched'] as const) {
    it(`${policy}: pages 17..23 in slots 7..1, page 16 none; faults swap in order 0`, () => {
      const { e, parent } = setUp(policy);
      const ptes = (pid: number) => e.dump().processes.find((p) => p.pid === pid)!.ptes;
      const before = ptes(parent).filter((p) => parseInt(p.addr, 16) >= at(16) && parseInt(p.addr, 16) < at(24));
      // The setting the fault meets: page 16 none, pages 17..23 shared swap entries at offsets 7..1.
      expect(before.map((p) => [parseInt(p.addr, 16), p.kind, p.offset, p.exclusive])).toEqual(
        [17, 18, 19, 20, 21, 22, 23].map((pg) => [at(pg), 'swap', 24 - pg, false]),
      );
      // Page 20 (offset 4) is 32K-aligned like its offset; its 32K range would start at slot 0.
      e.write(parent, at(17), 4 * PAGE, 0);
      const after = ptes(parent).filter((p) => parseInt(p.addr, 16) >= at(17) && parseInt(p.addr, 16) < at(21));
      expect(after.map((p) => p.kind)).toEqual(['present', 'present', 'present', 'present']);
      const orders = after.map((p) => e.dump().folios.find((f) => f.pfn <= p.pfn! && p.pfn! < f.pfn + (1 << f.order))!.order);
      expect(orders).toEqual([0, 0, 0, 0]);
      expect(e.read(parent, at(17), 7 * PAGE).lost).toEqual([]);
      expect(e.checkInvariants().violations).toEqual([]);
    });
  }
});

/*
 * should_try_to_free_swap() + folio_free_swap() after a swap-in (mm/memory.c:do_swap_page and
 * should_try_to_free_swap, mm/swapfile.c:folio_free_swap, Linux 7.2.13).
 */
describe('do_swap_page frees the swap cache as 7.2.13 decides', () => {
  const A = 0x4000_0000;
  const K64 = 0x10000;
  const folioAtA = (e: Engine, pid: number) => {
    const d = e.dump();
    const pte = d.processes.find((p) => p.pid === pid)!.ptes.find((p) => parseInt(p.addr, 16) === A)!;
    return { d, f: d.folios.find((f) => f.pfn <= pte.pfn! && pte.pfn! < f.pfn + (1 << f.order))!, pte };
  };
  const setUpAt = (policy: Policy, swapSynchronousIo: boolean) => {
    const e = new Engine({ policy, mthp: { '64K': 'always' }, swapSynchronousIo });
    const pid = e.createProcess();
    e.mmap(pid, { addr: A, len: 4 * K64 });
    e.write(pid, A, K64);
    return { e, pid };
  };

  for (const policy of ['per-pte', 'mainline', 'batched'] as const) {
    it(`${policy}: SWP_SYNCHRONOUS_IO, read fault: folio_free_swap runs — out of the swap cache, slots freed, PG_dirty, PTEs clean`, () => {
      // should_try_to_free_swap: `if (data_race(si->flags & SWP_SYNCHRONOUS_IO)) return true;` — for a read fault
      // too. folio_free_swap: not under writeback, every slot's count 0 after folio_put_swap → swap_cache_del_folio
      // (the 16 cache references go) and folio_set_dirty.
      const { e, pid } = setUpAt(policy, true);
      e.madvise(pid, A, K64, 'pageout');
      e.read(pid, A, 4096);
      const { d, f, pte } = folioAtA(e, pid);
      expect(f).toMatchObject({ order: 4, refcount: 16, mapcount: 16, swap: null });
      expect(f.flags).toContain('dirty');
      expect(f.flags).not.toContain('swapcache');
      expect(pte).toMatchObject({ write: true, dirty: false });
      expect(d.swap.slots).toEqual([]);
      expect(d.swap.swapCache).toEqual([]);
      expect(e.checkInvariants().violations).toEqual([]);
    });

    it(`${policy}: SWP_SYNCHRONOUS_IO, but another mm still holds the slots: folio_free_swap refuses (folio_maybe_swapped), no PG_dirty`, () => {
      // §7.5 then §7.7: the child's swap-in drops its 16 counts 2 → 1; the parent's swap PTEs keep them at 1, so
      // folio_maybe_swapped() is true and folio_free_swap returns false before folio_set_dirty.
      const { e, pid } = setUpAt(policy, true);
      const child = e.fork(pid);
      e.reclaim({ kind: 'proactive' });
      e.read(child, A, 4096);
      const { d, f } = folioAtA(e, child);
      expect(f.flags).toContain('swapcache');
      expect(f.flags).not.toContain('dirty');
      expect(d.swap.slots.map((s) => s.count)).toEqual(Array(16).fill(1));
    });

    it(`${policy}: no SWP_SYNCHRONOUS_IO, read fault: the order-0 folio stays in the swap cache, clean`, () => {
      // Not synchronous; vm_swap_full() false (16 of 16383 slots); no VM_LOCKED/mlock; no FAULT_FLAG_WRITE → false.
      // The asynchronous write leaves the 64K folio in the swap cache; memory.reclaim frees it (clean, unmapped),
      // so the read swaps in (recorded: packages/kernel-oracle/recorded/arm64/oracle-swap-async-writeback.json).
      const { e, pid } = setUpAt(policy, false);
      e.madvise(pid, A, K64, 'pageout');
      e.reclaim({ kind: 'proactive' });
      e.read(pid, A, 4096);
      const { d, f } = folioAtA(e, pid);
      expect(f.order).toBe(0); // swapin_readahead: order 0
      expect(f.flags).toContain('swapcache');
      expect(f.flags).not.toContain('dirty');
      expect(d.swap.slots.find((s) => s.offset === f.swap!.offset)).toMatchObject({ count: 0 });
    });

    it(`${policy}: no SWP_SYNCHRONOUS_IO, write fault with no other reference: folio_free_swap runs`, () => {
      // FAULT_FLAG_WRITE and folio_ref_count == extra_refs (1 mapped) + folio_nr_pages (1 cache reference).
      const { e, pid } = setUpAt(policy, false);
      e.madvise(pid, A, K64, 'pageout');
      e.write(pid, A, 4096);
      const { f } = folioAtA(e, pid);
      expect(f.flags).not.toContain('swapcache');
      expect(f.flags).toContain('dirty');
    });
  }
});
