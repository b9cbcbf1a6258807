import { measure } from '@foliolab/ledger';
import { PAGE_SIZE, makeUserPte, pmdIndex, pmdMkhuge, pteBits, type PmdTable } from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import { NO_LOCK, PVMW_SYNC, folioVmaWalk, pageVmaMappedWalk, pageVmaMappedWalkDone, type PageVmaMappedWalk, type PvmwRaceSite } from './index.js';
import { lay, type Built } from './test-fixtures.js';

/*
 * The concurrency-only branches of spec §2/§3 (the PMD changes between a
 * lockless look and taking a lock). A single thread never reaches them; the
 * walk's `raceHook` plays the other CPU, writing the L2 entry directly
 * (uncharged: it is not this CPU's work).
 */

interface Saved {
  table: PmdTable;
  index: number;
  lo: number;
  hi: number;
}

function pmdSlot(b: Built, va: number): Saved {
  const table = b.pt.lookupPmdTable(va)!;
  const index = pmdIndex(va);
  return { table, index, lo: table.lo[index]!, hi: table.hi[index]! };
}

function write(s: Saved, lo: number, hi: number): void {
  s.table.lo[s.index] = lo;
  s.table.hi[s.index] = hi;
}

/** A hook that runs `fn` once, the first time the walk reaches `site`. */
function once(site: PvmwRaceSite, fn: () => void): (w: PageVmaMappedWalk, s: PvmwRaceSite) => void {
  let done = false;
  return (_w, s) => {
    if (s === site && !done) {
      done = true;
      fn();
    }
  };
}

describe('D.3: THP PMD split concurrently (seen trans-huge locklessly, a table under the lock)', () => {
  it('UNLOCK the PMD lock, ptl = NULL, fall through to the PTE level', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const slot = pmdSlot(b, b.a0);
    // Before the walk the PMD holds a THP block (another CPU is splitting it).
    const r = pteBits();
    const prot = makeUserPte(0x8_0000);
    pmdMkhuge(r, prot.lo, prot.hi, 0x8_0000);
    write(slot, r.lo, r.hi);
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    w.raceHook = once('pmdLock', () => write(slot, slot.lo, slot.hi)); // the split completes
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(w.pte).not.toBeNull();
    expect(w.ptl).toBe(w.pte!.ptl);
    // PMD lock taken and dropped, then the PTE path: map_pte's lockless get, LOCK ptl, PMD re-read, check_pte
    expect([c.LOCK, c.UNLOCK, c.PMD_READ, c.PTE_READ]).toEqual([2, 1, 3, 2]);
    pageVmaMappedWalkDone(w);
  });
});

describe('§2 map_pte: the PMD changed before the ptl was taken', () => {
  it('without SYNC: pte_unmap_unlock and retry; the retry finds no table → pte NULL → RESTART → step_forward', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const slot = pmdSlot(b, b.a0);
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    w.raceHook = once('ptl', () => write(slot, 0, 0)); // zapped and freed
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect([c.LOCK, c.UNLOCK, c.PVMW_RESTART, c.PVMW_STEP, c.PMD_READ]).toEqual([1, 1, 1, 1, 3]);
    expect(w.ptl).toBe(NO_LOCK);
  });

  it('with SYNC: the same retry after pte_offset_map_lock saw the PMD change', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const slot = pmdSlot(b, b.a0);
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_SYNC);
    w.raceHook = once('ptl', () => write(slot, 0, 0));
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect([c.LOCK, c.UNLOCK, c.PVMW_RESTART, c.PTE_READ]).toEqual([1, 1, 1, 0]);
  });

  it('retry onto a different table: the walk continues in the new table', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const slot = pmdSlot(b, b.a0);
    const t2 = b.pt.pteAlloc(b.a0 + 2 * 1024 * 1024); // a second table in this mm
    const slot2 = pmdSlot(b, t2.baseVa);
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    // the other CPU replaces this PMD's table by t2 (which maps nothing): no candidate there
    w.raceHook = once('ptl', () => write(slot, slot2.lo, slot2.hi));
    b.ledger.reset();
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    // LOCK old ptl, re-read differs, UNLOCK; map t2: its first entry is none → scan t2 locklessly to end
    expect([c.LOCK, c.UNLOCK]).toEqual([1, 1]);
    expect(c.PTE_READ).toBe(1 + 1 + 15);
  });
});

describe('§3 step 8: relock after a lockless NEXT scan finds the PMD changed', () => {
  it('UNLOCK, pte = NULL, RESTART', () => {
    const b = lay('....PPPPPPPPPPPP');
    const slot = pmdSlot(b, b.a0);
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0);
    w.raceHook = once('ptl', () => write(slot, 0, 0));
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    // map_pte: none → false (no lock); NEXT to page 4; LOCK, re-read differs, UNLOCK; RESTART: none PMD
    expect([c.LOCK, c.UNLOCK, c.PVMW_RESTART, c.PMD_READ]).toEqual([1, 1, 1, 3]);
    expect(w.address).toBe(b.a0 - (b.a0 % (2 * 1024 * 1024)) + 2 * 1024 * 1024);
    expect(w.address).toBeGreaterThan(b.a0 + 4 * PAGE_SIZE);
  });
});
