import { EVENT_NAMES, measure, type Ledger, type TraceSink } from '@foliolab/ledger';
import { folioSubrange, type Folio } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, makeRig } from './test-fixtures.js';
import {
  __swapCacheDelFolio,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioDupSwapUnchecked,
  folioSwapEntry,
  swapCacheFolioAt,
  swapCountAt,
  swapMemoryBytes,
  swapPutEntriesDirect,
  swpEntry,
  swpOffset,
} from './index.js';

/*
 * The reclaim path's fast paths (the per-CPU-hint allocation done inline,
 * the inline sub-batch folio_dup_swap, tables whose views are made at first
 * use) charge what the kernel code paths of the spec do, in the order a
 * trace sees (folio-rmap-swap.md §3.1–§3.2).
 */

/** Records every charge and lock operation in order, by name. */
class Recorder implements TraceSink {
  readonly log: string[] = [];
  private ledger: Ledger | null = null;
  attach(ledger: Ledger): void {
    this.ledger = ledger;
  }
  onCharge(ev: number, n: number): void {
    this.log.push(`${EVENT_NAMES[ev]!}×${n}`);
  }
  onLock(id: number, acquire: boolean): void {
    this.log.push(`${acquire ? 'lock' : 'unlock'} ${this.ledger!.locks.name(id)}`);
  }
  onBegin(): void {}
  onEnd(): void {}
}

const offsetOf = (f: Folio): number => swpOffset(folioSwapEntry(f));

describe('folio_alloc_swap through the per-CPU hint (swap_alloc_fast → alloc_swap_scan_cluster, v7.0)', () => {
  it('locks the cluster, binds the folio, counts the usage, relocates, unlocks: in this order', () => {
    const { mm, si } = makeRig({ nrSlots: 512 * 4 });
    const rec = new Recorder();
    mm.ledger.setTrace(rec);
    const first = anonFolio(mm, 4);
    expect(folioAllocSwap(si, first)).toBe(0); // a free cluster (the slow path) sets the hint
    const c = offsetOf(first) >>> si.clusterShift;
    // cluster_alloc_range → __swap_cache_add_folio (nr table words, folio_ref_add,
    // folio_set_swapcache, NR_FILE_PAGES + NR_SWAPCACHE) → swap_range_alloc (two
    // atomics); relocate_cluster: already on frag[4]; unlock.
    const bind = ['SWAP_SLOT_UPDATE×16', 'ATOMIC_REF×1', 'ATOMIC_RMW×1', 'PCPU_COUNTER×2', 'ATOMIC_RMW×2'];
    for (let k = 1; k < 31; k++) {
      const f = anonFolio(mm, 4);
      rec.log.length = 0;
      expect(folioAllocSwap(si, f)).toBe(0);
      expect(offsetOf(f)).toBe(offsetOf(first) + 16 * k);
      expect(rec.log).toEqual([`lock swap_cluster:0:${c}`, 'SWAP_CLUSTER_OP×1', ...bind, `unlock swap_cluster:0:${c}`]);
      expect(si.pcpOffset[4]).toBe(offsetOf(f) + 16);
    }
    // The 32nd folio fills the cluster: relocate_cluster moves it to the full
    // list under si->lock before ci->lock is dropped, and the hint is invalid.
    const last = anonFolio(mm, 4);
    rec.log.length = 0;
    expect(folioAllocSwap(si, last)).toBe(0);
    expect(offsetOf(last)).toBe(offsetOf(first) + 16 * 31);
    expect(rec.log).toEqual([
      `lock swap_cluster:0:${c}`,
      'SWAP_CLUSTER_OP×1',
      ...bind,
      'lock swap_info:0',
      'unlock swap_info:0',
      `unlock swap_cluster:0:${c}`,
    ]);
    expect(si.pcpOffset[4]).toBe(0);
    expect(si.snapshot().clusters.full).toBe(1);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('a hint whose range is not free falls back to the scan, which takes the next free range', () => {
    const { mm, si } = makeRig({ nrSlots: 512 * 4 });
    const a = anonFolio(mm, 4);
    expect(folioAllocSwap(si, a)).toBe(0);
    const b = anonFolio(mm, 4);
    expect(folioAllocSwap(si, b)).toBe(0);
    // Free a's slots (counts 0: they leave with the cache), then point the
    // hint at b's range, which is busy: the scan steps on from there.
    __swapCacheDelFolio(si, a);
    si.pcpOffset[4] = offsetOf(b);
    const f = anonFolio(mm, 4);
    const { counts } = measure(mm.ledger, () => folioAllocSwap(si, f));
    expect(offsetOf(f)).toBe(offsetOf(b) + 16);
    // ci->lock, and si->lock for relocate_cluster: nonfull[4] (after the free) → frag[4]
    expect(counts.LOCK).toBe(2);
    expect(counts.SWAP_SLOT_UPDATE).toBe(16);
    expect(si.pcpOffset[4]).toBe(offsetOf(f) + 16);
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});

describe('folio_dup_swap of a sub-batch ([PATCH 6/9]): the inline path charges what swap_dup_entries_cluster does', () => {
  it('the same counts and the same traced order as folioDupSwap, past the inline limit too', () => {
    const a = makeRig();
    const b = makeRig();
    const ra = new Recorder();
    const rb = new Recorder();
    a.mm.ledger.setTrace(ra);
    b.mm.ledger.setTrace(rb);
    const fa = anonFolio(a.mm, 4, 100);
    const fb = anonFolio(b.mm, 4, 100);
    expect(folioAllocSwap(a.si, fa)).toBe(0);
    expect(folioAllocSwap(b.si, fb)).toBe(0);
    for (let round = 0; round < 17; round++) {
      ra.log.length = 0;
      rb.log.length = 0;
      // pages 2..11 (10 slots); the count passes countMax − 1 = 14 at round 14
      const ma = measure(a.mm.ledger, () => folioDupSwapUnchecked(a.si, fa, 2, 10));
      const mb = measure(b.mm.ledger, () => folioDupSwap(b.si, folioSubrange(fb, 2, 10)));
      expect(ma.result).toBe(0);
      expect(mb.result).toBe(0);
      expect(ma.counts).toEqual(mb.counts);
      expect(ra.log).toEqual(rb.log);
      for (let i = 2; i < 12; i++) expect(swapCountAt(a.si, offsetOf(fa) + i)).toBe(round + 1);
      expect(swapCountAt(a.si, offsetOf(fa) + 1)).toBe(0);
    }
    expect(checkSwapInvariants(a.si)).toEqual([]);
  });
});

describe('swap tables made at first use (swap_cluster_alloc_table)', () => {
  it('a table handed out for the first time is clean; the pool accounting is unchanged', () => {
    const { mm, si } = makeRig({ nrPages: 16384, nrSlots: 512 * 40 });
    const folios: Folio[] = [];
    for (let k = 0; k < 17; k++) {
      const f = anonFolio(mm, 9, 1000 * (k + 1));
      expect(folioAllocSwap(si, f)).toBe(0);
      folios.push(f);
      // every slot of the new table: bound to f, count 0, no data yet
      const off = offsetOf(f);
      for (let i = 0; i < 512; i += 31) {
        expect(swapCacheFolioAt(si, off + i)).toBe(f.head);
        expect(swapCountAt(si, off + i)).toBe(0);
      }
      expect(checkSwapInvariants(si)).toEqual([]);
    }
    // 18 tables in use (the header's too) in a pool of 32: 4.5 KiB per pooled table
    expect(si.tbInUse).toBe(18);
    expect(si.tbCapacity).toBe(32);
    const m = swapMemoryBytes(si);
    expect(m.tables + m.counts + m.data).toBe(32 * 512 * 9);
    // Swap them out and drop every reference: the clusters empty, their
    // tables go back (the pool halves), and new allocations take them again.
    const offs = folios.map(offsetOf);
    for (const f of folios) {
      folioDupSwap(si, all(f));
      __swapCacheDelFolio(si, f);
    }
    for (const off of offs) swapPutEntriesDirect(si, swpEntry(si.type, off), 512);
    expect(si.tbInUse).toBe(1);
    expect(si.tbCapacity).toBe(8);
    expect(checkSwapInvariants(si)).toEqual([]);
    for (let k = 0; k < 10; k++) {
      const f = anonFolio(mm, 9, 0);
      expect(folioAllocSwap(si, f)).toBe(0);
      expect(swapCacheFolioAt(si, offsetOf(f) + 511)).toBe(f.head);
      expect(swapCountAt(si, offsetOf(f) + 511)).toBe(0);
    }
    expect(si.tbCapacity).toBe(16);
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});
