import { measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  GUP_PIN_COUNTING_BIAS,
  folioMaybeDmaPinned,
  folioPinCount,
  folioPutRefs,
  folioRefCount,
  tryGrabFolio,
  unpinFolio,
} from './index.js';
import { MODES, folioCounters, makeMm, makeWorld } from './test-fixtures.js';

describe('FOLL_PIN / FOLL_GET (unmap-engine §1 "Refcount", spec §2.1)', () => {
  for (const mode of MODES) {
    it(`${mode}: a large folio pin is +1 ref and +1 _pincount and sets MMF_HAS_PINNED`, () => {
      const w = makeWorld(mode);
      const f = w.memmap.allocFolio(4)!;
      const mm = makeMm(5);
      expect(folioMaybeDmaPinned(f)).toBe(false);
      const { counts } = measure(w.ledger, () => tryGrabFolio(f, 2, 'pin', mm));
      expect([folioRefCount(f), folioPinCount(f), mm.hasPinned]).toEqual([3, 2, true]);
      expect(nonZero(counts)).toEqual({ ATOMIC_REF: 2, PCPU_COUNTER: 1 });
      expect(folioMaybeDmaPinned(f)).toBe(true);
      expect(w.rmap.stats.NR_FOLL_PIN_ACQUIRED).toBe(2);
      expect(unpinFolio(f, 2)).toBe(false);
      expect([folioRefCount(f), folioPinCount(f)]).toEqual([1, 0]);
      expect(w.rmap.stats.NR_FOLL_PIN_RELEASED).toBe(2);
      expect(mm.hasPinned).toBe(true); // MMF_HAS_PINNED is never cleared
    });

    it(`${mode}: a small folio pin is +1024 refs; maybe-pinned at refcount ≥ 1024`, () => {
      const w = makeWorld(mode);
      const f = w.memmap.allocFolio(0)!;
      const { counts } = measure(w.ledger, () => tryGrabFolio(f, 1, 'pin'));
      expect(folioRefCount(f)).toBe(1 + GUP_PIN_COUNTING_BIAS);
      expect(nonZero(counts)).toEqual({ ATOMIC_REF: 1, PCPU_COUNTER: 1 });
      expect(folioMaybeDmaPinned(f)).toBe(true);
      expect(unpinFolio(f)).toBe(false);
      expect(folioRefCount(f)).toBe(1);
      expect(folioMaybeDmaPinned(f)).toBe(false);
    });

    it(`${mode}: FOLL_GET is plain references; unpinning an unpinned folio is rejected, nothing changed`, () => {
      const w = makeWorld(mode);
      const f = w.memmap.allocFolio(2)!;
      const mm = makeMm(5);
      tryGrabFolio(f, 3, 'get', mm);
      expect([folioRefCount(f), folioPinCount(f), mm.hasPinned]).toEqual([4, 0, false]);
      const before = folioCounters(f);
      expect(() => unpinFolio(f)).toThrow(/holds 0 pin/);
      expect(folioCounters(f)).toEqual(before);
      const small = w.memmap.allocFolio(0)!;
      tryGrabFolio(small, 1000, 'get');
      expect(() => unpinFolio(small)).toThrow(/holds 0 pin/); // 1001 refs < 1024: no pin
      expect(() => tryGrabFolio(f, 0, 'pin')).toThrow(/refs 0/);
    });

    it(`${mode}: the last unpin reports refcount 0; grabbing a folio at refcount 0 is rejected`, () => {
      const w = makeWorld(mode);
      const f = w.memmap.allocFolio(3)!;
      tryGrabFolio(f, 1, 'pin');
      folioPutRefs(f, 1); // the allocation reference
      expect(unpinFolio(f)).toBe(true);
      expect(() => tryGrabFolio(f, 1, 'get')).toThrow(/refcount 0/);
    });
  }
});
