import { describe, expect, it } from 'vitest';
import {
  PTE_AF,
  PTE_HI_CONT,
  PTE_HI_DIRTY,
  PTE_HI_SPECIAL,
  PTE_HI_UFFD_WP,
  PTE_HI_UXN,
  PTE_HI_WRITE,
  PTE_NG,
  PTE_RDONLY,
  PTE_TYPE_PAGE,
  PTE_USER,
  PTE_VALID,
  makeUserPte,
  pteBits,
  pteDirty,
  pteFromBigInt,
  pteHwDirty,
  pteMkclean,
  pteMkdirty,
  pteMkold,
  pteMkuffdWp,
  pteMkwrite,
  pteMkwriteNovma,
  pteMkyoung,
  pteNone,
  ptePfn,
  ptePresent,
  pteProtnone,
  pteSame,
  pteSetPfn,
  pteToBigInt,
  pteValidCont,
  pteWrite,
  pteWrprotect,
  pteYoung,
  type PteBits,
} from './index.js';

const bit = (n: number): bigint => 1n << BigInt(n);
const raw = (p: PteBits): bigint => pteToBigInt(p.lo, p.hi);

describe('§2 present PTE bit layout', () => {
  it('named constants sit at the spec bit positions', () => {
    const lo: [number, number][] = [
      [PTE_VALID, 0],
      [PTE_TYPE_PAGE, 1],
      [PTE_USER, 6],
      [PTE_RDONLY, 7],
      [PTE_AF, 10],
      [PTE_NG, 11],
    ];
    for (const [mask, n] of lo) expect(pteToBigInt(mask, 0)).toBe(bit(n));
    const hi: [number, number][] = [
      [PTE_HI_WRITE, 51],
      [PTE_HI_CONT, 52],
      [PTE_HI_UXN, 54],
      [PTE_HI_DIRTY, 55],
      [PTE_HI_SPECIAL, 56],
      [PTE_HI_UFFD_WP, 58],
    ];
    for (const [mask, n] of hi) expect(pteToBigInt(0, mask)).toBe(bit(n));
  });

  it('PFN occupies bits 12–47 across both halves', () => {
    const p = pteSetPfn(pteBits(), 2 ** 36 - 1);
    expect(raw(p)).toBe(((1n << 36n) - 1n) << 12n);
    const q = pteSetPfn(pteBits(), 0x12345678);
    expect(ptePfn(q.lo, q.hi)).toBe(0x12345678);
    expect(raw(q) >> 12n).toBe(0x12345678n);
  });

  it('bigint helpers round-trip', () => {
    for (const v of [0n, 1n, bit(63), 0xdead_beef_cafe_f00dn]) {
      const p = pteFromBigInt(v);
      expect(pteToBigInt(p.lo, p.hi)).toBe(v);
    }
  });
});

describe('§2 predicates', () => {
  it('none, present, present-invalid and protnone', () => {
    expect(pteNone(0, 0)).toBe(true);
    const v = makeUserPte(5);
    expect(ptePresent(v.lo, v.hi)).toBe(true);
    const pn = makeUserPte(5, { protNone: true });
    expect(pn.lo & PTE_VALID).toBe(0);
    expect(ptePresent(pn.lo, pn.hi)).toBe(true);
    expect(pteProtnone(pn.lo, pn.hi)).toBe(true);
    // a valid entry is not protnone; neither is present-invalid user memory (NUMA hint on a user page)
    expect(pteProtnone(v.lo, v.hi)).toBe(false);
    expect(pteProtnone(pn.lo | PTE_USER, pn.hi)).toBe(false);
  });

  it('valid_cont ignores CONT on an entry that is not valid', () => {
    const v = makeUserPte(5);
    expect(pteValidCont(v.lo, v.hi | PTE_HI_CONT)).toBe(true);
    const pn = makeUserPte(5, { protNone: true });
    expect(pteValidCont(pn.lo, pn.hi | PTE_HI_CONT)).toBe(false);
  });

  it('write/dirty truth table: write = WRITE, hwDirty = WRITE && !RDONLY, dirty = DIRTY || hwDirty', () => {
    for (const w of [0, 1])
      for (const r of [0, 1])
        for (const d of [0, 1]) {
          const lo = r ? PTE_RDONLY : 0;
          const hi = (w ? PTE_HI_WRITE : 0) | (d ? PTE_HI_DIRTY : 0);
          expect(pteWrite(lo, hi)).toBe(w === 1);
          expect(pteHwDirty(lo, hi)).toBe(w === 1 && r === 0);
          expect(pteDirty(lo, hi)).toBe(d === 1 || (w === 1 && r === 0));
        }
  });

  it('pte_same masks RDONLY out of present operands only', () => {
    const a = makeUserPte(7, { write: true });
    expect(pteSame(a.lo, a.hi, a.lo & ~PTE_RDONLY, a.hi)).toBe(true);
    expect(pteSame(a.lo, a.hi, a.lo, a.hi ^ PTE_HI_DIRTY)).toBe(false);
    // non-present operands (a swap-like value with bit 7 in its type field) are compared raw
    expect(pteSame(0x80, 0, 0, 0)).toBe(false);
  });
});

describe('§2 bit operations', () => {
  it('mkclean clears DIRTY and sets RDONLY; mkdirty sets DIRTY and clears RDONLY only if WRITE', () => {
    const p = makeUserPte(1, { write: true, dirty: true });
    expect(p.lo & PTE_RDONLY).toBe(0);
    pteMkclean(p);
    expect(p.hi & PTE_HI_DIRTY).toBe(0);
    expect(p.lo & PTE_RDONLY).toBe(PTE_RDONLY);
    expect(pteDirty(p.lo, p.hi)).toBe(false);
    const ro = makeUserPte(1);
    pteMkdirty(ro);
    expect(ro.hi & PTE_HI_DIRTY).toBe(PTE_HI_DIRTY);
    expect(ro.lo & PTE_RDONLY).toBe(PTE_RDONLY);
  });

  it('wrprotect moves hardware dirtiness into DIRTY first', () => {
    const p = makeUserPte(1, { write: true });
    p.lo &= ~PTE_RDONLY; // hardware DBM write
    expect(p.hi & PTE_HI_DIRTY).toBe(0);
    pteWrprotect(p);
    expect(pteWrite(p.lo, p.hi)).toBe(false);
    expect(p.lo & PTE_RDONLY).toBe(PTE_RDONLY);
    expect(p.hi & PTE_HI_DIRTY).toBe(PTE_HI_DIRTY);
    const clean = pteWrprotect(makeUserPte(1, { write: true }));
    expect(pteDirty(clean.lo, clean.hi)).toBe(false);
  });

  it('mkwrite sets WRITE and clears RDONLY; mkold/mkyoung toggle AF; mkuffd_wp sets bit 58 and wrprotects', () => {
    const p = pteMkwrite(makeUserPte(1));
    expect(pteWrite(p.lo, p.hi) && (p.lo & PTE_RDONLY) === 0).toBe(true);
    expect(pteYoung(pteMkold(p).lo, p.hi)).toBe(false);
    expect(pteYoung(pteMkyoung(p).lo, p.hi)).toBe(true);
    pteMkuffdWp(p);
    expect(p.hi & PTE_HI_UFFD_WP).toBe(PTE_HI_UFFD_WP);
    expect(pteWrite(p.lo, p.hi)).toBe(false);
    // it was hw-dirty (WRITE && !RDONLY), so wrprotect kept it dirty
    expect(pteDirty(p.lo, p.hi)).toBe(true);
  });

  it('pte_mkwrite_novma (arm64 since Oct 2025) keeps a clean entry clean and makes a sw-dirty one hw-writable', () => {
    const clean = pteMkwriteNovma(pteWrprotect(makeUserPte(1, { write: true })));
    expect(pteWrite(clean.lo, clean.hi)).toBe(true);
    expect(clean.lo & PTE_RDONLY).toBe(PTE_RDONLY);
    expect(pteDirty(clean.lo, clean.hi)).toBe(false);
    const dirty = pteMkwriteNovma(pteWrprotect(makeUserPte(1, { write: true, dirty: true })));
    expect(pteWrite(dirty.lo, dirty.hi) && (dirty.lo & PTE_RDONLY) === 0).toBe(true);
    expect(pteDirty(dirty.lo, dirty.hi)).toBe(true);
  });
});
