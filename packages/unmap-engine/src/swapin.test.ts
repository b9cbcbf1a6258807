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
  e.write(parent, at(16), PAGE, 0); // one 32K folio at pages 16..23, zero-filled
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
