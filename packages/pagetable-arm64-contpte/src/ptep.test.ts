import { describe, expect, it } from 'vitest';
import {
  clearFlushYoungPtes,
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  PTE_HI_CONT,
  clearFullPtes,
  clearYoungDirtyPtes,
  contpteBlockState,
  fixedSizeFolios,
  getAndClearFullPtes,
  hwAccess,
  incTlbFlushPending,
  makeUserPte,
  mkSwapPte,
  peekPte,
  pokePte,
  pteAccessible,
  pteBatchHint,
  pteBits,
  pteClear,
  pteCont,
  pteDirty,
  ptePfn,
  pteValidCont,
  pteWrite,
  pteYoung,
  ptepClearFlush,
  ptepClearFlushYoung,
  ptepGet,
  ptepGetAndClear,
  ptepGetLockless,
  ptepSetAccessFlags,
  ptepSetWrprotect,
  ptepTestAndClearYoung,
  setPtes,
  wrprotectPtes,
} from './index.js';
import { PFN0, cost, makeMm, mapBlock, type Fixture } from './test-fixtures.js';

/** Costs of contpte_convert with 4K TLBIs (spec §5): 16 XCHG, DSB_ISHST, 16 TLBI_VA, DSB_ISH, 16 WRITE. */
const UNFOLD = { PTE_XCHG: 16, DSB_ISHST: 1, TLBI_VA: 16, DSB_ISH: 1, PTE_WRITE: 16, CONTPTE_UNFOLD: 1 };

/** A CONT block at slots 0..15 (young+dirty, writable) and a plain 4K page at slot 100. */
function contFixture(): Fixture {
  const f = makeMm();
  mapBlock(f, 0, PFN0);
  const p = makeUserPte(0x9000, { write: true });
  setPtes(f.table, 100, p.lo, p.hi, 1);
  f.ledger.reset();
  return f;
}

describe('§6 getters', () => {
  it('ptep_get: 1 read on a plain entry; G on valid-CONT (earlyExit: 3 when entry 0 is young+dirty)', () => {
    const f = contFixture();
    const out = pteBits();
    expect(cost(f.ledger, () => ptepGet(f.table, 100, out))).toEqual({ PTE_READ: 1 });
    expect(cost(f.ledger, () => ptepGet(f.table, 7, out))).toEqual({ PTE_READ: 3 });
    expect(ptePfn(out.lo, out.hi)).toBe(PFN0 + 7);
    expect(pteCont(out.lo, out.hi)).toBe(true); // the CONT bit leaks into the copy
  });

  it('ptep_get old17: always 17 reads on valid-CONT', () => {
    const f = makeMm('arm64-contpte', { gatherVariant: 'old17' });
    mapBlock(f, 0, PFN0);
    expect(cost(f.ledger, () => ptepGet(f.table, 3, pteBits()))).toEqual({ PTE_READ: 17 });
  });

  it('earlyExit G depends on where young and dirty first appear (spec §5 scan)', () => {
    // [A/D layout, expected G]
    const cases: [string, (f: Fixture) => void, number][] = [
      ['clean and old block', () => undefined, 17],
      ['entry 5 written (young+dirty)', (f) => hwAccess(f.table, 5, true), 1 + 6 + 1],
      [
        'entry 2 read (young), entry 9 written',
        (f) => {
          hwAccess(f.table, 2, false);
          hwAccess(f.table, 9, true);
        },
        1 + 3 + 7,
      ],
    ];
    for (const [, prep, g] of cases) {
      const f = makeMm();
      mapBlock(f, 0, PFN0, { write: true, young: false });
      prep(f);
      const out = pteBits();
      expect(cost(f.ledger, () => ptepGet(f.table, 0, out)).PTE_READ).toBe(g);
    }
    // dirty without young anywhere: the young re-scan runs to the end, G = 18
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false, dirty: false });
    const raw = peekPte(f.table, 2, pteBits());
    f.table.hi[2] = raw.hi | (1 << 23); // software DIRTY on entry 2 only (fixture)
    const out = pteBits();
    expect(cost(f.ledger, () => ptepGet(f.table, 0, out)).PTE_READ).toBe(18);
    expect(pteDirty(out.lo, out.hi)).toBe(true);
    expect(pteYoung(out.lo, out.hi)).toBe(false);
  });

  it('gathered reads return the own PFN and A/D OR-ed over the block (§9.4)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false });
    hwAccess(f.table, 11, true);
    for (let i = 0; i < 16; i++) {
      const out = ptepGet(f.table, i, pteBits());
      expect(ptePfn(out.lo, out.hi)).toBe(PFN0 + i);
      expect(pteYoung(out.lo, out.hi) && pteDirty(out.lo, out.hi)).toBe(true);
    }
  });

  it('ptep_get_lockless: 1 read, or G+1 on valid-CONT', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => ptepGetLockless(f.table, 100, pteBits()))).toEqual({ PTE_READ: 1 });
    expect(cost(f.ledger, () => ptepGetLockless(f.table, 0, pteBits()))).toEqual({ PTE_READ: 4 });
    const o = makeMm('arm64-contpte', { gatherVariant: 'old17' });
    mapBlock(o, 0, PFN0);
    expect(cost(o.ledger, () => ptepGetLockless(o.table, 0, pteBits()))).toEqual({ PTE_READ: 18 });
  });

  it('pte_batch_hint: 16 − (index % 16) on a valid-CONT copy, 1 otherwise', () => {
    const f = contFixture();
    const out = pteBits();
    for (let i = 0; i < 16; i++) {
      ptepGet(f.table, i, out);
      expect(pteBatchHint(f.table, i, out.lo, out.hi)).toBe(16 - i);
    }
    ptepGet(f.table, 100, out);
    expect(pteBatchHint(f.table, 100, out.lo, out.hi)).toBe(1);
  });
});

describe('§6 set_ptes', () => {
  it('nr == 1 on a plain slot: read + write', () => {
    const f = contFixture();
    const p = makeUserPte(0x9001);
    expect(cost(f.ledger, () => setPtes(f.table, 101, p.lo, p.hi, 1))).toEqual({ PTE_READ: 1, PTE_WRITE: 1 });
  });

  it('nr == 1 on a CONT block unfolds it first (§9.3)', () => {
    const f = contFixture();
    const p = makeUserPte(0x9001);
    expect(cost(f.ledger, () => setPtes(f.table, 3, p.lo, p.hi, 1))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_WRITE: 17 });
    expect(contpteBlockState(f.table, 0)).toBe('noncont');
  });

  it('folds on the 16th single set_ptes of a folio (cheap filter, 16 compares, convert)', () => {
    const f = makeMm();
    for (let i = 0; i < 15; i++) {
      const p = makeUserPte(PFN0 + i, { write: true, young: i === 3, dirty: i === 6 });
      expect(cost(f.ledger, () => setPtes(f.table, i, p.lo, p.hi, 1))).toEqual({ PTE_READ: 1, PTE_WRITE: 1 });
    }
    const last = makeUserPte(PFN0 + 15, { write: true, young: false });
    expect(cost(f.ledger, () => setPtes(f.table, 15, last.lo, last.hi, 1))).toEqual({
      PTE_READ: 1 + 16,
      PTE_WRITE: 1 + 16,
      PTE_XCHG: 16,
      DSB_ISHST: 1,
      TLBI_VA: 16,
      DSB_ISH: 1,
      CONTPTE_FOLD: 1,
    });
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    // A/D of the constituents are OR-ed into every entry
    const e = peekPte(f.table, 0, pteBits());
    expect(pteYoung(e.lo, e.hi) && pteDirty(e.lo, e.hi)).toBe(true);
  });

  it('no fold when the compare fails (stops at the first mismatch) or the folio is smaller than the block', () => {
    const f = makeMm();
    for (let i = 0; i < 15; i++) {
      const p = makeUserPte(PFN0 + i, { write: i !== 4 });
      setPtes(f.table, i, p.lo, p.hi, 1);
    }
    const last = makeUserPte(PFN0 + 15, { write: true });
    expect(cost(f.ledger, () => setPtes(f.table, 15, last.lo, last.hi, 1))).toEqual({ PTE_READ: 1 + 5, PTE_WRITE: 1 });
    const g = makeMm('arm64-contpte', {}, { folios: { folioHead: (p) => p - (p % 8), folioNrPages: () => 8 } });
    for (let i = 0; i < 16; i++) {
      const p = makeUserPte(PFN0 + i);
      setPtes(g.table, i, p.lo, p.hi, 1);
    }
    expect(contpteBlockState(g.table, 0)).toBe('noncont');
  });

  it('nr > 1: nr writes, no reads, no TLBI; CONT only on fully aligned 64K chunks (§9.5)', () => {
    const f = makeMm('arm64-contpte', {}, { folios: fixedSizeFolios(64) });
    const p = makeUserPte(PFN0 + 8, { write: true });
    expect(cost(f.ledger, () => setPtes(f.table, 8, p.lo, p.hi, 40))).toEqual({ PTE_WRITE: 40 });
    expect([0, 1, 2].map((b) => contpteBlockState(f.table, b))).toEqual(['noncont', 'cont', 'cont']);
    expect(pteValidCont(f.table.lo[8]!, f.table.hi[8]!)).toBe(false);
    // PA misaligned with VA: no CONT at all
    const q = makeUserPte(PFN0 + 0x103, { write: true });
    setPtes(f.table, 64, q.lo, q.hi, 32);
    expect([4, 5].map((b) => contpteBlockState(f.table, b))).toEqual(['noncont', 'noncont']);
  });

  it('nr > 1 may replace non-present entries (the swap PTEs of a large swap-in), never present ones', () => {
    // 7.2.13 include/linux/pgtable.h:set_ptes: "When nr>1, initial state of all ptes must be not
    // present"; mm/memory.c:do_swap_page maps a large swap-cache folio over its nr swap PTEs in one call.
    const f = makeMm();
    for (let k = 0; k < 16; k++) {
      const sw = mkSwapPte(pteBits(), 0, 512 + k);
      pokePte(f.table, k, sw.lo, sw.hi);
    }
    const p = makeUserPte(PFN0, { write: true });
    expect(cost(f.ledger, () => setPtes(f.table, 0, p.lo, p.hi, 16))).toEqual({ PTE_WRITE: 16 });
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    const q = makeUserPte(PFN0 + 16, { write: true });
    setPtes(f.table, 17, q.lo, q.hi, 1);
    expect(() => setPtes(f.table, 16, q.lo, q.hi, 16)).toThrow(/target 17 is present/);
  });

  it('strips an input CONT bit', () => {
    const f = makeMm();
    const p = makeUserPte(PFN0);
    setPtes(f.table, 0, p.lo, p.hi | PTE_HI_CONT, 1);
    expect(pteCont(f.table.lo[0]!, f.table.hi[0]!)).toBe(false);
  });
});

describe('§6 clears', () => {
  it('pte_clear: read + unfold + WRITE 0', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => pteClear(f.table, 4))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_WRITE: 17 });
    expect(cost(f.ledger, () => pteClear(f.table, 100))).toEqual({ PTE_READ: 1, PTE_WRITE: 1 });
  });

  it('ptep_get_and_clear (single) unfolds the whole block, then 1 XCHG', () => {
    const f = contFixture();
    const out = pteBits();
    expect(cost(f.ledger, () => ptepGetAndClear(f.table, 4, out))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_XCHG: 17 });
    expect(ptePfn(out.lo, out.hi)).toBe(PFN0 + 4);
    expect(pteCont(out.lo, out.hi)).toBe(false);
    expect([0, 1, 2, 3, 5].every((i) => !pteValidCont(f.table.lo[i]!, f.table.hi[i]!))).toBe(true);
  });

  it('get_and_clear_full_ptes(nr == 1) on CONT: read + unfold + XCHG', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => getAndClearFullPtes(f.table, 0, 1, false, pteBits()))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_XCHG: 17 });
  });

  it('an aligned whole-block clear never unfolds: 16 XCHG, A/D OR-ed into the first value (§9.6)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false });
    hwAccess(f.table, 9, true);
    const out = pteBits();
    expect(cost(f.ledger, () => getAndClearFullPtes(f.table, 0, 16, true, out))).toEqual({ PTE_XCHG: 16 });
    expect(ptePfn(out.lo, out.hi)).toBe(PFN0);
    expect(pteCont(out.lo, out.hi)).toBe(true);
    expect(pteYoung(out.lo, out.hi) && pteDirty(out.lo, out.hi)).toBe(true);
    // two whole blocks
    mapBlock(f, 16, PFN0 + 16);
    mapBlock(f, 32, PFN0 + 32);
    expect(cost(f.ledger, () => clearFullPtes(f.table, 16, 32, true))).toEqual({ PTE_XCHG: 32 });
  });

  it('partial ranges unfold only the partly covered blocks (0–2 reads and unfolds)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    mapBlock(f, 16, PFN0 + 16);
    // [4, 12): first read unfolds block 0, the last read finds it already unfolded
    expect(cost(f.ledger, () => getAndClearFullPtes(f.table, 4, 8, false, pteBits()))).toEqual({ ...UNFOLD, PTE_READ: 2, PTE_XCHG: 24 });
    const g = makeMm();
    mapBlock(g, 0, PFN0);
    mapBlock(g, 16, PFN0 + 16);
    // [8, 24): unfolds both blocks
    const c = cost(g.ledger, () => clearFullPtes(g.table, 8, 16, false));
    expect(c).toEqual({ PTE_READ: 2, PTE_XCHG: 32 + 16, DSB_ISHST: 2, TLBI_VA: 32, DSB_ISH: 2, PTE_WRITE: 32, CONTPTE_UNFOLD: 2 });
    // [16, 36) on a fresh block 1 + 2: aligned start, unaligned end → only the last read
    const h = makeMm();
    mapBlock(h, 16, PFN0 + 16);
    mapBlock(h, 32, PFN0 + 32);
    expect(cost(h.ledger, () => clearFullPtes(h.table, 16, 20, false))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_XCHG: 36 });
  });
});

describe('§6 write protect', () => {
  it('nr == 1 on CONT: read, unfold, CMPXCHG', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => ptepSetWrprotect(f.table, 5))).toEqual({ ...UNFOLD, PTE_READ: 1, PTE_CMPXCHG: 1 });
    expect(pteWrite(f.table.lo[5]!, f.table.hi[5]!)).toBe(false);
    expect(pteWrite(f.table.lo[6]!, f.table.hi[6]!)).toBe(true);
  });

  it('nr == 1 retries the CMPXCHG when the unfold changed the entry (stale expected value)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false });
    hwAccess(f.table, 0, true); // only entry 0 young+dirty: the repaint changes entry 5
    expect(cost(f.ledger, () => wrprotectPtes(f.table, 5, 1)).PTE_CMPXCHG).toBe(2);
  });

  it('nr > 1 over an aligned block: no unfold, nr × (read + CMPXCHG), no TLBI; the block stays CONT', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => wrprotectPtes(f.table, 0, 16))).toEqual({ PTE_READ: 16, PTE_CMPXCHG: 16 });
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    expect(pteWrite(f.table.lo[9]!, f.table.hi[9]!)).toBe(false);
    expect(pteDirty(f.table.lo[9]!, f.table.hi[9]!)).toBe(true);
  });

  it('nr > 1 over part of a block: unfold_partial first', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => wrprotectPtes(f.table, 2, 4))).toEqual({ ...UNFOLD, PTE_READ: 2 + 4, PTE_CMPXCHG: 4 });
  });
});

describe('§6 young / dirty', () => {
  it('clear_young_dirty_ptes nr == 1 on a plain entry: check read, read, WRITE (both bits) or CMPXCHG', () => {
    const f = contFixture();
    const both = CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY;
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 100, 1, both))).toEqual({ PTE_READ: 2, PTE_WRITE: 1 });
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 100, 1, CYDP_CLEAR_YOUNG))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1 });
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 100, 1, CYDP_CLEAR_DIRTY))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1 });
  });

  it('clear_young_dirty_ptes on part of a CONT block widens to the block: no unfold, no TLBI', () => {
    const f = contFixture();
    const both = CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY;
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 4, 4, both))).toEqual({ PTE_READ: 2 + 16, PTE_WRITE: 16 });
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    const out = ptepGet(f.table, 0, pteBits());
    expect(pteYoung(out.lo, out.hi) || pteDirty(out.lo, out.hi)).toBe(false);
    // nr == 1 on CONT: the check read, then last + first, then the whole block
    const g = contFixture();
    expect(cost(g.ledger, () => clearYoungDirtyPtes(g.table, 4, 1, CYDP_CLEAR_YOUNG))).toEqual({ PTE_READ: 3 + 16, PTE_CMPXCHG: 16 });
  });

  it('ptep_test_and_clear_young on CONT: read, last + first, 16 × (read + CMPXCHG), no unfold', () => {
    const f = contFixture();
    let young = false;
    // 7.2.13 arch/arm64/include/asm/pgtable.h:test_and_clear_young_ptes reads the entry (1); CONT →
    // arch/arm64/mm/contpte.c:contpte_test_and_clear_young_ptes: contpte_align_addr_ptep reads the
    // last and the first entry (2), then __ptep_test_and_clear_young × 16 (read + CMPXCHG each).
    expect(cost(f.ledger, () => (young = ptepTestAndClearYoung(f.table, 3)))).toEqual({ PTE_READ: 1 + 2 + 16, PTE_CMPXCHG: 16 });
    expect(young).toBe(true);
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    expect(cost(f.ledger, () => ptepTestAndClearYoung(f.table, 100))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1 });
  });

  it('ptep_clear_flush_young on CONT: + a 64K nosync range flush only if young (no DSB_ISH)', () => {
    const f = contFixture();
    // 7.2.13 contpte.c:contpte_clear_flush_young_ptes: the test-and-clear above (1 + 2 + 16 reads), and
    // when young contpte_align_addr_ptep again (2 reads) + __flush_tlb_range(64K, NOWALKCACHE | NOSYNC).
    expect(cost(f.ledger, () => ptepClearFlushYoung(f.table, 3))).toEqual({ PTE_READ: 1 + 2 + 16 + 2, PTE_CMPXCHG: 16, DSB_ISHST: 1, TLBI_VA: 16 });
    expect(cost(f.ledger, () => ptepClearFlushYoung(f.table, 3))).toEqual({ PTE_READ: 1 + 2 + 16, PTE_CMPXCHG: 16 });
    expect(cost(f.ledger, () => ptepClearFlushYoung(f.table, 100))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1, DSB_ISHST: 1, TLBI_VA: 1 });
  });
});

describe('clear_flush_young_ptes (folio_referenced_one)', () => {
  it('a batch inside a CONT block widens to the block: last + first reads, 16 test-and-clears, one 64K nosync flush if young', () => {
    const f = contFixture();
    // 7.2.13 arch/arm64/include/asm/pgtable.h:clear_flush_young_ptes (nr > 1) → contpte.c:contpte_clear_flush_young_ptes:
    // contpte_align_addr_ptep (2 reads), __ptep_test_and_clear_young × 16 (read + CMPXCHG), then, young, the
    // alignment again (2 reads) and __flush_tlb_range(64K, NOWALKCACHE | NOSYNC).
    let young = false;
    expect(cost(f.ledger, () => (young = clearFlushYoungPtes(f.table, 2, 8)))).toEqual({ PTE_READ: 2 + 16 + 2, PTE_CMPXCHG: 16, DSB_ISHST: 1, TLBI_VA: 16 });
    expect(young).toBe(true);
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    for (let i = 0; i < 16; i++) expect(pteYoung(f.table.lo[i]!, f.table.hi[i]!)).toBe(false);
    // old now: no flush
    expect(cost(f.ledger, () => (young = clearFlushYoungPtes(f.table, 0, 16)))).toEqual({ PTE_READ: 2 + 16, PTE_CMPXCHG: 16 });
    expect(young).toBe(false);
  });

  it('nr 1 on a plain entry is __ptep_clear_flush_young (1 check read); x86 and arm64-nocont loop ptep_clear_flush_young', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => clearFlushYoungPtes(f.table, 100, 1))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1, DSB_ISHST: 1, TLBI_VA: 1 });
    const x = makeMm('x86');
    mapBlock(x, 0, PFN0);
    x.ledger.reset();
    // x86 ptep_clear_flush_young = ptep_test_and_clear_young: read, then a locked bit clear if young; no flush
    expect(cost(x.ledger, () => clearFlushYoungPtes(x.table, 0, 4))).toEqual({ PTE_READ: 4, PTE_CMPXCHG: 4 });
  });
});

describe('§6 access flags', () => {
  it('on CONT with WRITE unchanged: sub-PTE check, raw target, 16 updates, a 64K flush only if dirty', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false });
    const entry = makeUserPte(PFN0 + 2, { write: true, young: true, dirty: true });
    let changed = false;
    const c = cost(f.ledger, () => (changed = ptepSetAccessFlags(f.table, 2, entry.lo, entry.hi, true)));
    // 7.2.13 pgtable.h:ptep_set_access_flags reads the target (1); contpte.c:contpte_ptep_set_access_flags:
    // contpte_all_subptes_match_access_flags stops at entry 0 (AF differs: 1 read), the raw target (1 read),
    // 16 × __ptep_set_access_flags(entry, 0) (read + CMPXCHG), __flush_tlb_range(64K, NOWALKCACHE | NOBROADCAST)
    // (DSB NSHST, 16 TLBI VALE1, DSB NSH, charged as the ISH events).
    expect(c).toEqual({ PTE_READ: 1 + 1 + 1 + 16, PTE_CMPXCHG: 16, DSB_ISHST: 1, TLBI_VA: 16, DSB_ISH: 1 });
    expect(changed).toBe(true);
    expect(contpteBlockState(f.table, 0)).toBe('cont');
    // nothing to change now: every sub-PTE matches in RDONLY/AF/WRITE/DIRTY → 0 after 16 reads, no writes
    const same = ptepGet(f.table, 2, pteBits());
    expect(cost(f.ledger, () => (changed = ptepSetAccessFlags(f.table, 2, same.lo, same.hi, false)))).toEqual({ PTE_READ: 1 + 16 });
    expect(changed).toBe(false);
  });

  it('on CONT, a young sibling does not make an old target look up to date (raw sub-PTEs, not the gathered view)', () => {
    // 7.2.13 contpte.c:contpte_ptep_set_access_flags compares every raw sub-PTE with the entry
    // (contpte_all_subptes_match_access_flags); only entry 15 is young, so the read fault's entry
    // (the gathered, young value) still changes the block: 1, and AF on all 16 entries.
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: false, young: false });
    f.table.lo[15] = (f.table.lo[15]! | (1 << 10)) >>> 0; // hardware sets AF on entry 15 only
    const entry = ptepGet(f.table, 2, pteBits()); // gathered: young
    expect(pteYoung(entry.lo, entry.hi)).toBe(true);
    let changed = false;
    const c = cost(f.ledger, () => (changed = ptepSetAccessFlags(f.table, 2, entry.lo, entry.hi, false)));
    expect(changed).toBe(true);
    expect(c).toEqual({ PTE_READ: 1 + 1 + 1 + 16, PTE_CMPXCHG: 16 });
    for (let k = 0; k < 16; k++) expect(pteYoung(f.table.lo[k]!, f.table.hi[k]!)).toBe(true);
    expect(contpteBlockState(f.table, 0)).toBe('cont');
  });

  it('on CONT with WRITE changing: unfold, then a single-entry update (+ flush_tlb_page if dirty)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: false, young: true });
    const entry = makeUserPte(PFN0 + 2, { write: true, young: true, dirty: true });
    const c = cost(f.ledger, () => ptepSetAccessFlags(f.table, 2, entry.lo, entry.hi, true));
    // 7.2.13: target read (1), sub-PTE check stops at entry 0 (WRITE differs: 1), raw target (1), unfold,
    // __ptep_set_access_flags(entry, 1): read + CMPXCHG + a local one-page flush (charged as the ISH events).
    expect(c).toEqual({
      PTE_READ: 1 + 1 + 1 + 1,
      PTE_XCHG: 16,
      PTE_WRITE: 16,
      CONTPTE_UNFOLD: 1,
      PTE_CMPXCHG: 1,
      DSB_ISHST: 2,
      TLBI_VA: 17,
      DSB_ISH: 2,
    });
    expect(pteWrite(f.table.lo[2]!, f.table.hi[2]!)).toBe(true);
    expect(pteWrite(f.table.lo[3]!, f.table.hi[3]!)).toBe(false);
  });

  it('on a plain entry: read, read, CMPXCHG (+ flush_tlb_page if dirty)', () => {
    const f = contFixture();
    const entry = makeUserPte(0x9000, { write: true, dirty: true });
    expect(cost(f.ledger, () => ptepSetAccessFlags(f.table, 100, entry.lo, entry.hi, false))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 1 });
  });
});

describe('§6 ptep_clear_flush and pte_accessible', () => {
  it('ptep_clear_flush on CONT: unfold, XCHG, then flush_tlb_page (the entry was valid)', () => {
    const f = contFixture();
    expect(cost(f.ledger, () => ptepClearFlush(f.table, 1, pteBits()))).toEqual({
      PTE_READ: 1,
      PTE_XCHG: 17,
      PTE_WRITE: 16,
      CONTPTE_UNFOLD: 1,
      DSB_ISHST: 2,
      TLBI_VA: 17,
      DSB_ISH: 2,
    });
  });

  it('pte_accessible = tlb flush pending ? present : valid', () => {
    const f = makeMm();
    const pn = makeUserPte(PFN0, { protNone: true });
    const v = makeUserPte(PFN0);
    expect(pteAccessible(f.mm, pn.lo, pn.hi)).toBe(false);
    expect(pteAccessible(f.mm, v.lo, v.hi)).toBe(true);
    incTlbFlushPending(f.mm);
    expect(pteAccessible(f.mm, pn.lo, pn.hi)).toBe(true);
    expect(pteAccessible(f.mm, 0, 0)).toBe(false);
    // a present-invalid entry is cleared without a flush unless one is pending
    const g = makeMm();
    setPtes(g.table, 0, pn.lo, pn.hi, 1);
    expect(cost(g.ledger, () => ptepClearFlush(g.table, 0, pteBits()))).toEqual({ PTE_READ: 1, PTE_XCHG: 1 });
  });
});
