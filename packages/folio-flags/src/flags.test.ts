import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  FLAG,
  FLAGS,
  FOLIO_ORDER_MASK,
  Memmap,
  NR_PAGEFLAGS,
  PF_ANY_MASK,
  PF_SECOND_MASK,
  PG,
  PG_ALIASES,
  __folioClearFlag,
  __folioSetFlag,
  __folioSetPartiallyMapped,
  __pageSetFlag,
  clearPageAnonExclusive,
  describeFlagWord,
  folioClearFlag,
  folioClearPagesAnonExclusive,
  folioCountPagesAnonExclusive,
  folioSetFlag,
  folioSetLargeRmappable,
  folioSetPagesAnonExclusive,
  folioSetPartiallyMapped,
  folioSetSwapbacked,
  folioSetSwapcache,
  folioSubrange,
  folioTestClearFlag,
  folioTestFlag,
  folioTestHwpoison,
  folioTestPartiallyMapped,
  folioTestSetFlag,
  folioTestSwapcache,
  folioTrylock,
  folioUnlock,
  pageAnonExclusive,
  pageClearFlag,
  pageSetFlag,
  pageTestFlag,
  pageTestSetFlag,
  pgBit,
  plainFlagLoad,
  plainFlagStore,
  setPageAnonExclusive,
  testSetPageHWPoison,
  type FlagDesc,
  type Folio,
} from './index.js';

function throwsFoliolab(fn: () => unknown, code: string, text?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FoliolabError);
  expect((err as FoliolabError).code).toBe(code);
  if (text !== undefined) expect((err as Error).message).toContain(text);
}

function fresh(order: number, nrPages = 512): { mm: Memmap; f: Folio } {
  const mm = new Memmap({ nrPages });
  return { mm, f: mm.allocFolio(order)! };
}

/** The folio's flags words with the model-only bits masked off. */
function words(mm: Memmap, f: Folio): number[] {
  return Array.from(mm.flags.subarray(f.head, f.head + f.nr), (w) => w & 0x00ffffff);
}

const HEAD_FLAGS = FLAGS.filter((d) => d.placement === 'head');
const ANY_FLAGS = FLAGS.filter((d) => d.placement === 'any');
const SECOND_FLAGS = FLAGS.filter((d) => d.placement === 'second');

describe('§1.1 bit layout and aliases', () => {
  it('has the kernel bit positions of the version read', () => {
    expect(PG).toMatchObject({ locked: 0, writeback: 1, referenced: 2, uptodate: 3, dirty: 4, lru: 5, head: 6, waiters: 7 });
    expect(PG).toMatchObject({ active: 8, workingset: 9, owner_priv_1: 10, owner_2: 11, arch_1: 12, reserved: 13 });
    expect(PG).toMatchObject({ private: 14, private_2: 15, reclaim: 16, swapbacked: 17, unevictable: 18 });
    expect(PG).toMatchObject({ dropbehind: 19, mlocked: 20, hwpoison: 21 });
    expect(NR_PAGEFLAGS).toBe(22);
  });

  it('resolves the aliases of §1.1', () => {
    expect([pgBit('anon_exclusive'), pgBit('mappedtodisk'), pgBit('owner_2')]).toEqual([11, 11, 11]);
    expect([pgBit('swapcache'), pgBit('owner_priv_1')]).toEqual([10, 10]);
    expect([pgBit('readahead'), pgBit('reclaim')]).toEqual([16, 16]);
    expect(pgBit('has_hwpoisoned')).toBe(PG.active);
    expect(pgBit('large_rmappable')).toBe(PG.workingset);
    expect(pgBit('partially_mapped')).toBe(PG.reclaim);
    expect(pgBit('isolated')).toBe(-1); // removed from page flags in the version read
    for (const a of PG_ALIASES) expect(pgBit(a.alias)).toBe(PG[a.base]);
    for (const d of FLAGS) expect(pgBit(d.name)).toBe(d.bit);
  });

  it('obeys the header rule: second-page flags avoid bits 0..7 (the order) and every PF_ANY bit', () => {
    expect(PF_SECOND_MASK & FOLIO_ORDER_MASK).toBe(0);
    expect(PF_SECOND_MASK & PF_ANY_MASK).toBe(0);
    expect(PF_ANY_MASK).toBe((1 << PG.owner_2) | (1 << PG.private) | (1 << PG.hwpoison));
  });

  it('places flags as §1.1 says', () => {
    expect(HEAD_FLAGS.map((d) => d.name).sort()).toEqual(
      ['active', 'dirty', 'dropbehind', 'locked', 'lru', 'mlocked', 'reclaim', 'referenced', 'swapbacked', 'swapcache', 'unevictable', 'uptodate', 'workingset', 'writeback'].sort(),
    );
    expect(ANY_FLAGS.map((d) => d.name).sort()).toEqual(['anon_exclusive', 'hwpoison', 'private']);
    expect(SECOND_FLAGS.map((d) => d.name).sort()).toEqual(['has_hwpoisoned', 'large_rmappable', 'partially_mapped']);
  });
});

describe('§1.1 placement', () => {
  it('head flags: a subpage argument is redirected to the head (every head flag × every page of an order-3 folio)', () => {
    for (const d of HEAD_FLAGS) {
      for (let i = 0; i < 8; i++) {
        const { mm, f } = fresh(3);
        const before = words(mm, f);
        pageSetFlag(mm, f.head + i, d);
        const after = words(mm, f);
        expect(after[0]).toBe(before[0]! | d.mask);
        expect(after.slice(1)).toEqual(before.slice(1));
        expect(folioTestFlag(f, d)).toBe(true);
        expect(pageTestFlag(mm, f.head + 7 - i, d)).toBe(true);
        pageClearFlag(mm, f.head + i, d);
        expect(words(mm, f)).toEqual(before);
      }
    }
  });

  it('PF_ANY flags are per page; folio_*() variants use page[0]', () => {
    for (const d of ANY_FLAGS) {
      const { mm, f } = fresh(4);
      for (let i = 0; i < f.nr; i += 3) pageSetFlag(mm, f.head + i, d);
      for (let i = 0; i < f.nr; i++) {
        expect(pageTestFlag(mm, f.head + i, d)).toBe(i % 3 === 0);
        expect((mm.flags[f.head + i]! & d.mask) !== 0).toBe(i % 3 === 0);
      }
      expect(folioTestFlag(f, d)).toBe(true);
      pageClearFlag(mm, f.head, d);
      expect(folioTestFlag(f, d)).toBe(false);
      expect(pageTestFlag(mm, f.head + 3, d)).toBe(true);
    }
    const { mm, f } = fresh(2);
    setPageAnonExclusive(mm, f.head + 2);
    expect([0, 1, 2, 3].map((i) => pageAnonExclusive(mm, f.head + i))).toEqual([false, false, true, false]);
    testSetPageHWPoison(mm, f.head + 1);
    expect(folioTestHwpoison(f)).toBe(false); // folio_test_hwpoison reads page[0] only
  });

  it('second-page flags live in page[1] next to the order, for every large order, atomic or not', () => {
    for (let order = 1; order <= 9; order++) {
      for (const d of SECOND_FLAGS) {
        const { mm, f } = fresh(order);
        setPageAnonExclusive(mm, f.head + 1); // a PF_ANY bit of subpage 1 shares the word
        const head = mm.flags[f.head];
        folioSetFlag(f, d);
        expect(mm.flags[f.head + 1]! & FOLIO_ORDER_MASK).toBe(order);
        expect(mm.flags[f.head + 1]! & d.mask).toBe(d.mask);
        expect(mm.flags[f.head]).toBe(head);
        expect(pageAnonExclusive(mm, f.head + 1)).toBe(true);
        __folioClearFlag(f, d);
        __folioSetFlag(f, d);
        folioClearFlag(f, d);
        expect(mm.flags[f.head + 1]! & 0x00ffffff).toBe(order | (1 << PG.owner_2));
        expect(describeFlagWord(mm.flags[f.head + 1]!, 1)).toEqual(['anon_exclusive', `order=${order}`]);
      }
    }
  });

  it('order-0 folios have no second page: every second-page operation throws and changes nothing', () => {
    const { mm, f } = fresh(0);
    const before = mm.flags.slice();
    const charged = mm.ledger.snapshot();
    const ops = [folioSetFlag, folioClearFlag, folioTestFlag, folioTestSetFlag, folioTestClearFlag, __folioSetFlag, __folioClearFlag];
    for (const d of SECOND_FLAGS) for (const op of ops) throwsFoliolab(() => op(f, d), 'EINVAL', 'order 0');
    throwsFoliolab(() => folioSetPartiallyMapped(f), 'EINVAL', 'PG_partially_mapped');
    expect(mm.flags).toEqual(before);
    expect(mm.ledger.snapshot()).toEqual(charged);
  });

  it('page-level second-page ops need the head of a large folio (PF_SECOND)', () => {
    const { mm, f } = fresh(2);
    pageSetFlag(mm, f.head, FLAG.has_hwpoisoned);
    expect(mm.flags[f.head + 1]! & FLAG.has_hwpoisoned.mask).not.toBe(0);
    throwsFoliolab(() => pageSetFlag(mm, f.head + 1, FLAG.has_hwpoisoned), 'EINVAL', 'head of a large folio');
  });

  it('rejects PFNs outside the memmap, free pages, stale folios and home-made descriptors', () => {
    const { mm, f } = fresh(2);
    throwsFoliolab(() => pageSetFlag(mm, 512, FLAG.dirty), 'ERANGE', '512');
    throwsFoliolab(() => pageSetFlag(mm, 100, FLAG.dirty), 'EINVAL', 'pfn 100');
    const fake: FlagDesc = { ...FLAG.dirty, bit: PG.head, mask: 1 << PG.head };
    throwsFoliolab(() => folioSetFlag(f, fake), 'EINVAL', 'not a flag descriptor');
    f.mm.aux[f.head] = 0;
    mm.freeFolio(f);
    throwsFoliolab(() => folioSetFlag(f, FLAG.dirty), 'EINVAL', 'not an allocated folio');
  });
});

describe('§1.2 atomic vs non-atomic, and what they charge', () => {
  it('atomic ops are one ATOMIC_RMW, tests one FLAG_LOAD, __ ops one PLAIN_RMW', () => {
    const { mm, f } = fresh(4);
    const c = (fn: () => unknown) => nonZero(measure(mm.ledger, fn).counts);
    for (const d of [FLAG.dirty, FLAG.partially_mapped]) {
      expect(c(() => folioSetFlag(f, d))).toEqual({ ATOMIC_RMW: 1 });
      expect(c(() => folioClearFlag(f, d))).toEqual({ ATOMIC_RMW: 1 });
      expect(c(() => folioTestSetFlag(f, d))).toEqual({ ATOMIC_RMW: 1 });
      expect(c(() => folioTestClearFlag(f, d))).toEqual({ ATOMIC_RMW: 1 });
      expect(c(() => folioTestFlag(f, d))).toEqual({ FLAG_LOAD: 1 });
      expect(c(() => __folioSetFlag(f, d))).toEqual({ PLAIN_RMW: 1 });
      expect(c(() => __folioClearFlag(f, d))).toEqual({ PLAIN_RMW: 1 });
    }
    expect(c(() => clearPageAnonExclusive(mm, f.head + 3))).toEqual({ ATOMIC_RMW: 1 });
    expect(c(() => pageTestSetFlag(mm, f.head + 3, FLAG.hwpoison))).toEqual({ ATOMIC_RMW: 1 });
    expect(c(() => __pageSetFlag(mm, f.head + 3, FLAG.private))).toEqual({ PLAIN_RMW: 1 });
    expect(c(() => folioSetPagesAnonExclusive(folioSubrange(f, 2, 5)))).toEqual({ ATOMIC_RMW: 5 });
    expect(c(() => folioClearPagesAnonExclusive(folioSubrange(f, 3, 4)))).toEqual({ ATOMIC_RMW: 4 });
    expect(c(() => folioCountPagesAnonExclusive(folioSubrange(f, 0, 16)))).toEqual({ FLAG_LOAD: 16 });
  });

  it('test-and-set/clear return the old bit', () => {
    const { f } = fresh(1);
    expect(folioTestSetFlag(f, FLAG.lru)).toBe(false);
    expect(folioTestSetFlag(f, FLAG.lru)).toBe(true);
    expect(folioTestClearFlag(f, FLAG.lru)).toBe(true);
    expect(folioTestClearFlag(f, FLAG.lru)).toBe(false);
    expect(folioTrylock(f)).toBe(true);
    expect(folioTrylock(f)).toBe(false);
    folioUnlock(f);
    expect(folioTrylock(f)).toBe(true);
  });

  it('folio_test_swapcache needs PG_swapbacked too, and short-circuits (one or two loads)', () => {
    const { mm, f } = fresh(4);
    folioSetSwapcache(f);
    expect(nonZero(measure(mm.ledger, () => expect(folioTestSwapcache(f)).toBe(false)).counts)).toEqual({ FLAG_LOAD: 1 });
    folioSetSwapbacked(f);
    expect(nonZero(measure(mm.ledger, () => expect(folioTestSwapcache(f)).toBe(true)).counts)).toEqual({ FLAG_LOAD: 2 });
  });

  it('batched anon-exclusive helpers touch exactly the subrange', () => {
    const { mm, f } = fresh(4);
    folioSetPagesAnonExclusive(folioSubrange(f, 0, 16));
    folioClearPagesAnonExclusive(folioSubrange(f, 5, 3));
    const ex = Array.from({ length: 16 }, (_, i) => pageAnonExclusive(mm, f.head + i));
    expect(ex).toEqual(Array.from({ length: 16 }, (_, i) => i < 5 || i >= 8));
    expect(folioCountPagesAnonExclusive(folioSubrange(f, 4, 5))).toBe(2); // pages 4 and 8
  });

  it('split load/store steps lose an atomic update made between them (seed 004)', () => {
    // page[1]: PG_anon_exclusive set. CPU0 loads, CPU1 clears AE atomically, CPU0 stores.
    const { mm, f } = fresh(4);
    setPageAnonExclusive(mm, f.head + 1);
    folioSetLargeRmappable(f);
    const loaded = plainFlagLoad(f, FLAG.partially_mapped);
    clearPageAnonExclusive(mm, f.head + 1);
    plainFlagStore(f, FLAG.partially_mapped, loaded, true);
    expect(folioTestPartiallyMapped(f)).toBe(true);
    expect(pageAnonExclusive(mm, f.head + 1)).toBe(true); // the clear is lost
    // Straight through, the pre-fix helper is correct when nothing races.
    const { mm: mm2, f: g } = fresh(4);
    setPageAnonExclusive(mm2, g.head + 1);
    __folioSetPartiallyMapped(g);
    clearPageAnonExclusive(mm2, g.head + 1);
    expect(pageAnonExclusive(mm2, g.head + 1)).toBe(false);
    expect(mm2.flags[g.head + 1]! & FOLIO_ORDER_MASK).toBe(4);
  });
});
