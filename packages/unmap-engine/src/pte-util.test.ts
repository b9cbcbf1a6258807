import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkSwapPte, pteBits } from '@foliolab/pagetable-arm64-contpte';
import { swapPteInto } from './pte-util.js';

describe('swapPteInto (the unmap hot path encoder)', () => {
  it('encodes exactly as the page-table package mkSwapPte (pagetable spec §3 swap layout)', () => {
    const a = pteBits();
    const b = pteBits();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.boolean(), fc.boolean(), (type, off, ex, wp) => {
        mkSwapPte(a, type, off, ex, wp);
        swapPteInto(b, type, off, ex, wp);
        expect([b.lo, b.hi]).toEqual([a.lo, a.hi]);
      }),
      { numRuns: 300 },
    );
  });

  it('takes the int32 path for offsets below 2^31 and the float path above, both as mkSwapPte', () => {
    const a = pteBits();
    const b = pteBits();
    const offsets = fc.oneof(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.constantFrom(1, 2 ** 20 - 1, 2 ** 20, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 36 - 1),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 23 }), offsets, fc.boolean(), fc.boolean(), (type, off, ex, wp) => {
        mkSwapPte(a, type, off, ex, wp);
        swapPteInto(b, type, off, ex, wp);
        expect([b.lo, b.hi]).toEqual([a.lo, a.hi]);
      }),
      { numRuns: 500 },
    );
  });
});
