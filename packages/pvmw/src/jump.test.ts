import { measure, nonZero } from '@foliolab/ledger';
import { PAGE_SIZE, getAndClearPtes, pteBits, pteIndex } from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import { jumpWalk } from './jump.js';
import { folioVmaWalk, pageVmaMappedWalk, pageVmaMappedWalkDone, pageVmaMappedWalkJump, walkAndUnmap, type PvmwHitHandler } from './index.js';
import { lay } from './test-fixtures.js';

/*
 * page_vma_mapped_walk_jump (Dev Jain v1 5/9, seed 003; spec "Package pvmw"
 * §5): the five fields, the end invariant (pgoff + nr_pages), and what goes
 * wrong when pfn/pgoff move by n while the cursor moves by n − 1.
 */

const out = pteBits();

/** Clears the batch (lazyfree-like: entries become none) and records (page, k). */
function clearing(batches: number[], seen: [number, number][]): PvmwHitHandler {
  let i = 0;
  return (w, maxNr) => {
    const k = Math.min(batches[i++ % batches.length]!, maxNr);
    seen.push([pteIndex(w.address), k]);
    getAndClearPtes(w.pte!, w.pteIndex, k, out);
    return k;
  };
}

describe('page_vma_mapped_walk_jump(pvmw, nr)', () => {
  it('moves pte/address by nr slots, pfn/pgoff by nr, shrinks nr_pages by nr; end unchanged', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    expect(pageVmaMappedWalk(w)).toBe(true);
    const end = w.end;
    const c = measure(b.ledger, () => pageVmaMappedWalkJump(w, 5)).counts;
    expect(nonZero(c)).toEqual({}); // field arithmetic only
    expect([w.pteIndex, w.address, w.pfn, w.pgoff, w.nrPages]).toEqual([5, b.a0 + 5 * PAGE_SIZE, b.target.pfn + 5, b.target.pgoff + 5, 11]);
    expect(w.end).toBe(end);
    // the next NEXT lands on slot 6, which check_pte still matches (pfn 6 ≥ the moved pfn 5)
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.pteIndex).toBe(6);
    pageVmaMappedWalkDone(w);
  });

  it('refuses, changing nothing, when nr_pages would become 1 and end = address + 4K differs', () => {
    const b = lay('....PPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    pageVmaMappedWalk(w);
    expect(w.pteIndex).toBe(4);
    expect(() => pageVmaMappedWalkJump(w, 15)).toThrow(/vma_address_end would move/);
    expect([w.pteIndex, w.pfn, w.nrPages]).toEqual([4, b.target.pfn, 16]);
    // from page 0 the same jump keeps end: address + 15 pages + 4K is the folio's end
    const b0 = lay('PPPPPPPPPPPPPPPP');
    const w0 = folioVmaWalk(b0.pt, b0.target, b0.vma, b0.a0);
    pageVmaMappedWalk(w0);
    pageVmaMappedWalkJump(w0, 15);
    expect(w0.end).toBe(b0.a0 + 16 * PAGE_SIZE);
    pageVmaMappedWalkDone(w);
    pageVmaMappedWalkDone(w0);
  });

  it('preconditions: a held PTE hit, and a cursor that stays in the table', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { offset: 500 });
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    expect(() => pageVmaMappedWalkJump(w, 1)).toThrow(/needs a PTE hit/);
    pageVmaMappedWalk(w);
    expect(() => pageVmaMappedWalkJump(w, 12)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => pageVmaMappedWalkJump(w, -1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    pageVmaMappedWalkDone(w);
  });
});

describe('policy jump: page_vma_mapped_walk_jump(pvmw, n − 1) after a batch of n', () => {
  it('15 + 1: the last page is found; nr_pages stays ≥ 2 while pages remain', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const seen: [number, number][] = [];
    const r = walkAndUnmap(b.pt, b.target, b.vma, { policy: 'jump' }, clearing([15, 1], seen));
    expect(seen).toEqual([
      [0, 15],
      [15, 1],
    ]);
    expect(r.handled).toBe(16);
    expect(r.walk.nrPages).toBe(16 - 14);
    expect(b.ledger.locks.heldCount).toBe(0);
  });

  it("jumpFields 'nr' (pfn/pgoff by n, cursor by n − 1): 8 + 8 works (nr_pages 16 → 8 → 0) …", () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const seen: [number, number][] = [];
    walkAndUnmap(b.pt, b.target, b.vma, { policy: 'jump', jumpFields: 'nr' }, clearing([8], seen));
    expect(seen).toEqual([
      [0, 8],
      [8, 8],
    ]);
  });

  it("… but 15 + 1 trips the end-invariant assertion (nr_pages 16 → 1); the lock is released", () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    expect(() => walkAndUnmap(b.pt, b.target, b.vma, { policy: 'jump', jumpFields: 'nr' }, clearing([15, 1], []))).toThrow(/vma_address_end would move/);
    expect(b.ledger.locks.heldCount).toBe(0);
  });

  it('without the assertion the walk ends early and page 15 stays mapped: end collapsed onto the next entry', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    expect(pageVmaMappedWalk(w)).toBe(true);
    getAndClearPtes(w.pte!, 0, 15, out);
    jumpWalk(w, 14, 15, false, 'test');
    expect(w.nrPages).toBe(1);
    expect(w.end).toBe(b.a0 + 15 * PAGE_SIZE); // address (slot 14) + 4K
    expect(pageVmaMappedWalk(w)).toBe(false); // NEXT: address = slot 15 ≥ end → not_found
    expect(w.pte!.lo[15]).not.toBe(0); // still mapped: try_to_unmap would report the folio mapped
  });
});
