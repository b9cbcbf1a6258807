import { FLAG } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, makeRig } from './test-fixtures.js';
import { checkSwapInvariants, folioAllocSwap, folioDupSwap, folioSwapEntry, swapCacheDelFolio, swpOffset } from './index.js';

/** A device with one cached order-2 folio (counts 1) and one swapped-out order-2 folio (counts 1). */
function rig() {
  const r = makeRig();
  const a = anonFolio(r.mm, 2);
  const b = anonFolio(r.mm, 2);
  folioAllocSwap(r.si, a);
  folioAllocSwap(r.si, b);
  folioDupSwap(r.si, all(a));
  folioDupSwap(r.si, all(b));
  swapCacheDelFolio(r.si, b, 3);
  const oa = swpOffset(folioSwapEntry(a));
  return { ...r, a, oa, ob: oa + 4 };
}

describe('checkSwapInvariants reports each kind of corruption (folio-rmap-swap.md §3 Invariants)', () => {
  it('a consistent device has no violations; counts are compared with the swap-PTE census', () => {
    const r = rig();
    expect(checkSwapInvariants(r.si)).toEqual([]);
    const refs = new Map<number, number>();
    for (let s = r.oa; s < r.ob + 4; s++) refs.set(s, 1);
    expect(checkSwapInvariants(r.si, { swapPteRefs: refs })).toEqual([]);
    refs.set(r.oa + 1, 2);
    expect(checkSwapInvariants(r.si, { swapPteRefs: refs })).toEqual([`slot ${r.oa + 1}: count 1 but 2 external references`]);
  });

  it('an exclusive swap PTE needs count 1', () => {
    const r = rig();
    r.si.map[r.ob] = 2;
    expect(checkSwapInvariants(r.si, { swapPteExclusive: (e) => e === r.ob }).join()).toMatch(/exclusive swap PTE/);
  });

  const cases: [string, (r: ReturnType<typeof rig>) => void, RegExp][] = [
    ['a table word that is both a folio and a shadow', (r) => (r.si.shadow[r.oa] = 9), /both folio/],
    ['a free slot keeping its zeromap bit', (r) => (r.si.zeromap[1000] = 1), /free but keeps/],
    ['a cached slot whose folio lost PG_swapcache', (r) => (r.mm.flags[r.a.head]! &= ~FLAG.swapcache.mask), /no PG_swapcache|swap cache/],
    ['a folio slot pointing elsewhere (contiguity)', (r) => (r.si.cached[r.oa + 3] = -1), /does not point|NR_SWAPCACHE|inuse/],
    ['ci->count off by one', (r) => r.si.ciCount[1]!++, /ci->count/],
    ['an orphan extend_table', (r) => (r.si.ext[1] = new Uint32Array(512)), /extend_table with no slot|extension tables/],
    ['a cluster on the wrong list', (r) => (r.si.ciList[1] = 0), /broken link|free with count/],
    ['the usage counters', (r) => r.si.inusePages++, /inuse_pages/],
  ];
  for (const [what, corrupt, msg] of cases) {
    it(`reports ${what}`, () => {
      const r = rig();
      corrupt(r);
      const v = checkSwapInvariants(r.si);
      expect(v.length).toBeGreaterThan(0);
      expect(v.join('\n')).toMatch(msg);
    });
  }
});
