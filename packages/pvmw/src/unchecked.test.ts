import { FoliolabError, measure } from '@foliolab/ledger';
import { PAGE_SIZE, pteBits, pteIndex, ptePfn, ptePresent, ptepGet, type PteTable } from '@foliolab/pagetable-arm64-contpte';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FPB_MERGE_WRITE,
  FPB_MERGE_YOUNG_DIRTY,
  FPB_RESPECT_DIRTY,
  FPB_RESPECT_SOFT_DIRTY,
  FPB_RESPECT_WRITE,
  PVMW_BATCH_PRESENT,
  PVMW_MIGRATION,
  PVMW_SYNC,
  PageVmaMappedWalk,
  folioPteBatchFlags,
  folioPteBatchFlagsUnchecked,
  pageVmaMappedWalk,
  vmaAddress,
} from './index.js';
import { build, lay, layoutArb, type Built, type Kind } from './test-fixtures.js';

/*
 * The engine's hot path re-arms the walk with `initUnchecked` and scans
 * batches with `folioPteBatchFlagsUnchecked`. On the inputs the checked entry
 * points accept, both must behave exactly like them (spec "Package pvmw" §1,
 * §3, §4): same walk, same hits, same events.
 */

const ALL_KINDS: readonly Kind[] = ['present', 'none', 'swap', 'marker', 'foreign', 'hwpoison', 'migration', 'devPrivate', 'devExclusive'];
const FLAGS = [0, PVMW_SYNC, PVMW_MIGRATION, PVMW_BATCH_PRESENT, PVMW_SYNC | PVMW_MIGRATION, PVMW_SYNC | PVMW_BATCH_PRESENT] as const;

/** Walk to the end; one record per hit (position, table, run), counts included. */
function drain(w: PageVmaMappedWalk): number[][] {
  const hits: number[][] = [];
  while (pageVmaMappedWalk(w)) hits.push([w.address, w.pte?.id ?? -1, w.pteIndex, w.pmdIndex, w.nr, w.ptl]);
  return hits;
}

/** The fields `init` sets (inputs, outputs, walker state). */
function fields(w: PageVmaMappedWalk): unknown[] {
  return [w.pfn, w.nrPages, w.pgoff, w.vma, w.address, w.flags, w.pmd, w.pmdIndex, w.pte, w.pteIndex, w.hugePte, w.hugePteIndex, w.ptl, w.nr, w.lastRun, w.savedPtl, w.runTable];
}

describe('PageVmaMappedWalk.initUnchecked ≡ init on valid input (spec "Package pvmw" §1, §3)', () => {
  it('re-arming a used walk either way gives the same fields, hits and events', () => {
    fc.assert(
      fc.property(layoutArb(ALL_KINDS), fc.constantFrom(...FLAGS), (layout, flags) => {
        const a = build(layout);
        const b = build(layout);
        const start = vmaAddress(a.vma, a.target.pgoff, a.target.nrPages);
        if (start < 0) return;
        const wa = new PageVmaMappedWalk(a.pt, a.target, a.vma, start, flags);
        const wb = new PageVmaMappedWalk(b.pt, b.target, b.vma, start, flags);
        // leave both walks used (pmd/pte/flags set), then re-arm
        drain(wa);
        drain(wb);
        wa.init(a.target, a.vma, start, flags);
        wb.initUnchecked(b.target.pfn, b.target.nrPages, b.target.pgoff, b.vma, start, flags);
        const fa = fields(wa);
        const fb = fields(wb);
        fa[3] = fb[3] = null; // the vma objects are per world
        expect(fb).toEqual(fa);
        const ca = measure(a.ledger, () => drain(wa));
        const cb = measure(b.ledger, () => drain(wb));
        expect(cb.result).toEqual(ca.result);
        expect(cb.counts).toEqual(ca.counts);
      }),
      { numRuns: 120 },
    );
  });

  it('init still validates (EINVAL before anything changes)', () => {
    const b = lay('PPPP');
    const w = new PageVmaMappedWalk(b.pt, b.target, b.vma, b.vma.vmStart);
    expect(() => w.init({ ...b.target, nrPages: 0 }, b.vma, b.vma.vmStart)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => w.init(b.target, b.vma, b.vma.vmStart + 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(w.nrPages).toBe(4);
  });

  it('a cursor moved outside the user VA range fails in the lookup, as before (ERANGE)', () => {
    const b = lay('PPPP');
    for (const bad of [-PAGE_SIZE, 0.5]) {
      const w = new PageVmaMappedWalk(b.pt, b.target, b.vma, b.vma.vmStart);
      w.address = bad;
      expect(() => pageVmaMappedWalk(w)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
      expect(() => pageVmaMappedWalk(w)).toThrow(/^lookupPud: /);
    }
  });
});

const FPB_FLAGS = fc.integer({ min: 0, max: 31 }).map(
  (m) => (m & 1 ? FPB_RESPECT_DIRTY : 0) | (m & 2 ? FPB_RESPECT_SOFT_DIRTY : 0) | (m & 4 ? FPB_RESPECT_WRITE : 0) | (m & 8 ? FPB_MERGE_WRITE : 0) | (m & 16 ? FPB_MERGE_YOUNG_DIRTY : 0),
);

/** Present slots of the folio (table, index, the gathered entry) in `b`. */
function presentSlots(b: Built): [PteTable, number][] {
  const out: [PteTable, number][] = [];
  const v = pteBits();
  for (let j = 0; j < b.target.nrPages; j++) {
    const va = b.a0 + j * PAGE_SIZE;
    const t = b.pt.pteTableOf(va);
    if (t === null) continue;
    const i = pteIndex(va);
    ptepGet(t, i, v);
    const pfn = ptePfn(v.lo, v.hi);
    if (ptePresent(v.lo, v.hi) && pfn >= b.target.pfn && pfn < b.target.pfn + b.target.nrPages) out.push([t, i]);
  }
  return out;
}

describe('folioPteBatchFlagsUnchecked ≡ folioPteBatchFlags on valid input (spec "Package pvmw" §4)', () => {
  it('same result, same merged pte, same reads', () => {
    fc.assert(
      fc.property(layoutArb(['present', 'present', 'none', 'foreign', 'swap']), fc.nat(), fc.integer({ min: 1, max: 512 }), FPB_FLAGS, (layout, pick, n, flags) => {
        const a = build(layout);
        const slots = presentSlots(a);
        if (slots.length === 0) return;
        const [t, i] = slots[pick % slots.length]!;
        const maxNr = Math.min(n, 512 - i);
        const pa = ptepGet(t, i, pteBits());
        const pb = pteBits(pa.lo, pa.hi);
        const ra = measure(a.ledger, () => folioPteBatchFlags(a.target, t, i, pa, maxNr, flags));
        const rb = measure(a.ledger, () => folioPteBatchFlagsUnchecked(a.target.pfn, a.target.nrPages, t, i, pb, maxNr, flags));
        expect(rb.result).toBe(ra.result);
        expect(pb).toEqual(pa);
        expect(rb.counts).toEqual(ra.counts);
      }),
      { numRuns: 150 },
    );
  });

  it('the checked scan still rejects bad input with the same errors', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { profile: 'arm64-contpte' });
    const t = b.pt.pteTableOf(b.a0)!;
    const i = pteIndex(b.a0);
    const v = ptepGet(t, i, pteBits());
    expect(() => folioPteBatchFlags(b.target, t, 1.5, v, 4, 0)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => folioPteBatchFlags(b.target, t, 2 ** 40, v, 4, 0)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => folioPteBatchFlags(b.target, t, i, v, 0, 0)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => folioPteBatchFlags(b.target, t, i, v, 4, 0.5)).toThrow(/unknown flags/);
    // Not a table: the scan fails where it always did, at the first read of the table.
    const fake = { mm: { profile: { contpte: false } } } as unknown as PteTable;
    expect(() => folioPteBatchFlags(b.target, fake, i, v, 4, 0)).toThrow(FoliolabError);
    expect(() => folioPteBatchFlags(b.target, fake, i, v, 4, 0)).toThrow(/not a PTE table/);
    expect(folioPteBatchFlags(b.target, fake, i, v, 1, 0)).toBe(1);
  });
});
