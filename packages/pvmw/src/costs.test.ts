import { describe, expect, it } from 'vitest';
import { SKIP_POLICIES, pickCounts, skipPolicyCosts, type BatchShape } from './index.js';

/*
 * The measured cost of the three skip policies (seed 003) on one PTE-mapped
 * anon folio at a 2M-aligned VA, for callers whose batches are the whole
 * folio, 8 entries (exclusivity sub-batches) or 1 entry (mainline anon).
 * Expected values are derived from spec §3's cost rules, not printed:
 *   first hit    lockless get + check_pte           (G+1) + G
 *   NEXT entry   one step, ptep_get under the ptl    G (1 once its block was unfolded)
 *   handled      none: walks each handled entry again (NEXT read + failed check_pte);
 *                jump / batchPresent: skip it without a step or a read
 *   batchPresent the walker measures the run once (one read per further
 *                entry, or per further contpte block), then reuses it
 * N = folio pages, b = batch, H = N / b hits.
 */

const SHAPES: BatchShape[] = ['folio', 8, 1];
const KEYS = ['PVMW_CALL', 'PVMW_STEP', 'PTE_READ', 'PMD_READ', 'LOCK', 'UNLOCK'] as const;

describe('skipPolicyCosts: no contpte (arm64-nocont, x86): G = 1', () => {
  for (const profile of ['arm64-nocont', 'x86'] as const) {
    for (const n of [16, 512]) {
      for (const shape of SHAPES) {
        it(`${profile}, ${n} pages, batch ${shape}`, () => {
          const b = shape === 'folio' ? n : shape;
          const h = n / b;
          const calls = b === n ? 1 : h + 1; // a whole-folio batch ends with walk_done
          const r = skipPolicyCosts({ folioPages: n, batch: shape, profile });
          const common = { PVMW_CALL: calls, PMD_READ: 2, LOCK: 1, UNLOCK: 1 };
          expect(pickCounts(r.none.walk, KEYS)).toEqual({ ...common, PVMW_STEP: b === n ? 0 : n, PTE_READ: b === n ? 2 : 2 * n });
          expect(pickCounts(r.jump.walk, KEYS)).toEqual({ ...common, PVMW_STEP: b === n ? 0 : h, PTE_READ: 2 * h });
          expect(pickCounts(r.batchPresent.walk, KEYS)).toEqual({ ...common, PVMW_STEP: b === n ? 0 : h, PTE_READ: 2 * h + (n - 1) });
          for (const p of SKIP_POLICIES) expect([r[p].hits, r[p].handled]).toEqual([h, n]);
        });
      }
    }
  }
});

describe('skipPolicyCosts: arm64-contpte (aligned blocks, young+dirty: G = 3)', () => {
  const G = 3;
  const first = G + 1 + G;
  it('64K: whole folio = the §8 batched row (walker 2G+1, total 3G+1); batch 1 = the one-by-one row (total 3G+62)', () => {
    const whole = skipPolicyCosts({ folioPages: 16, batch: 'folio' });
    for (const p of SKIP_POLICIES) {
      expect(pickCounts(whole[p].walk, KEYS)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 0, PTE_READ: first, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
      expect(whole[p].total.PTE_READ).toBe(3 * G + 1);
    }
    const one = skipPolicyCosts({ folioPages: 16, batch: 1 });
    for (const p of SKIP_POLICIES) {
      expect(pickCounts(one[p].walk, KEYS)).toEqual({ PVMW_CALL: 17, PVMW_STEP: 16, PTE_READ: first + 15 * 2, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
      expect(one[p].total.PTE_READ).toBe(3 * G + 62);
    }
  });

  it('64K, batch 8: none re-reads 7 handled entries twice; jump and batchPresent step once into the second half', () => {
    const r = skipPolicyCosts({ folioPages: 16, batch: 8 });
    expect(pickCounts(r.none.walk, ['PVMW_CALL', 'PVMW_STEP', 'PTE_READ'])).toEqual({ PVMW_CALL: 3, PVMW_STEP: 16, PTE_READ: first + 15 * 2 });
    for (const p of ['jump', 'batchPresent'] as const) {
      expect(pickCounts(r[p].walk, ['PVMW_CALL', 'PVMW_STEP', 'PTE_READ'])).toEqual({ PVMW_CALL: 3, PVMW_STEP: 2, PTE_READ: first + 2 });
    }
  });

  it('2M (32 blocks): per later block none pays 6 (CONT entry) + 15 × 2; batchPresent adds one run scan of 31 × G', () => {
    const b8 = skipPolicyCosts({ folioPages: 512, batch: 8 });
    expect(b8.none.walk.PTE_READ).toBe(first + 15 * 2 + 31 * (2 * G + 15 * 2));
    expect(b8.jump.walk.PTE_READ).toBe(first + 2 + 31 * (2 * G + 2));
    expect(b8.batchPresent.walk.PTE_READ).toBe(b8.jump.walk.PTE_READ + 31 * G);
    const b1 = skipPolicyCosts({ folioPages: 512, batch: 1 });
    expect(b1.jump.walk.PTE_READ).toBe(b1.none.walk.PTE_READ);
    expect(b1.batchPresent.walk.PTE_READ).toBe(b1.none.walk.PTE_READ + 31 * G);
    const whole = skipPolicyCosts({ folioPages: 512, batch: 'folio' });
    expect(whole.batchPresent.walk.PTE_READ).toBe(first + 31 * G);
  });
});

describe('relations the spec implies (every profile, size and shape)', () => {
  for (const profile of ['arm64-contpte', 'arm64-nocont', 'x86'] as const) {
    for (const n of [16, 512]) {
      it(`${profile}, ${n} pages`, () => {
        for (const shape of SHAPES) {
          const r = skipPolicyCosts({ folioPages: n, batch: shape, profile });
          const { none, jump, batchPresent: bp } = r;
          const h = none.hits;
          // the same hits, calls and locks under every policy
          for (const p of [jump, bp]) expect([p.hits, p.walk.PVMW_CALL, p.walk.LOCK, p.walk.UNLOCK]).toEqual([h, none.walk.PVMW_CALL, 1, 1]);
          // none pays ≥ 1 read per already-handled entry it walks over again (n − h of them, when walking on)
          const rewalked = shape === 'folio' ? 0 : n - h;
          expect(none.walk.PTE_READ - jump.walk.PTE_READ).toBeGreaterThanOrEqual(rewalked);
          // jump and batchPresent take no step over handled entries: one step per later batch, plus the last
          const steps = shape === 'folio' ? 0 : h;
          expect([jump.walk.PVMW_STEP, bp.walk.PVMW_STEP]).toEqual([steps, steps]);
          expect(none.walk.PVMW_STEP).toBe(shape === 'folio' ? 0 : n);
          // whole-folio batches: everything equal in total (batchPresent only moves the scan into the walker)
          if (shape === 'folio') {
            expect(jump.total).toEqual(none.total);
            expect(bp.total).toEqual(none.total);
          }
        }
      });
    }
  }

  it('rejects bad options', () => {
    expect(() => skipPolicyCosts({ folioPages: 12, batch: 1 })).toThrow(/power of two/);
    expect(() => skipPolicyCosts({ folioPages: 16, batch: 0 })).toThrow(/batch/);
  });
});
