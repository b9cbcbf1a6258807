import { describe, expect, it } from 'vitest';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, LRU_UNEVICTABLE, lruListOf } from './lru.js';
import { A, K64, POLICIES, costs, dumpOk, folioMappedAt, setup } from './test-fixtures.js';

/*
 * The LRU lists, folio_mark_accessed and GUP's touch (7.2.13 mm/swap.c,
 * mm/gup.c). Expected values from the kernel oracle's records.
 */

const B = A + K64;
const C = A + 2 * K64;

describe('LRU lists (folio_lru_list)', () => {
  it('a new anon folio joins the inactive anon list; MADV_FREE moves it to the inactive file list; mlock to the unevictable one', () => {
    const { e, pid } = setup('mainline');
    e.write(pid, A, 3 * K64);
    const k = e.kernel;
    const f = (a: number) => k.memmap.folioAt(folioMappedAt(e.dump(), pid, a).pfn);
    expect(lruListOf(f(A))).toBe(LRU_INACTIVE_ANON);
    e.madvise(pid, B, K64, 'free');
    expect(lruListOf(f(B))).toBe(LRU_INACTIVE_FILE);
    e.mlock(pid, C, K64);
    expect(lruListOf(f(C))).toBe(LRU_UNEVICTABLE);
    expect(Array.from(k.lruvec.pages)).toEqual([16, 0, 16, 0, 16]);
    e.munlock(pid, C, K64);
    expect(lruListOf(f(C))).toBe(LRU_INACTIVE_ANON);
    dumpOk(e);
  });
});

describe('GUP touches the folios it takes (gup_fast_pte_range, follow_page_pte FOLL_TOUCH)', () => {
  it.each(POLICIES)('%s: an io_uring pin of an unpopulated 64K range faults it and touches it 16 times: active, referenced, PGACTIVATE 16', (policy) => {
    // recorded: packages/kernel-oracle/recorded/arm64/oracle-gup-touch.json step 3 (x86 the same)
    const { e, pid } = setup(policy);
    e.pin(pid, A, K64, { kind: 'pin', write: true });
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A).flags).toEqual(expect.arrayContaining(['active', 'referenced']));
    expect(d.stats.vmstat.pgactivate).toBe(16);
    expect(lruListOf(e.kernel.memmap.folioAt(folioMappedAt(d, pid, A).pfn))).toBe(LRU_ACTIVE_ANON);
  });

  it.each(POLICIES)('%s: GUP-fast takes a populated range as it is: PG_referenced only, for a pin and for a vmsplice reference', (policy) => {
    // recorded: oracle-gup-touch.json step 6 (vmsplice), 09-pinned-not-in-swapcache.json step 2 (io_uring pin)
    for (const kind of ['pin', 'get'] as const) {
      const { e, pid } = setup(policy);
      e.write(pid, A, K64);
      e.pin(pid, A, K64, { kind, write: kind === 'pin' });
      const d = dumpOk(e);
      expect(folioMappedAt(d, pid, A).flags).toContain('referenced');
      expect(folioMappedAt(d, pid, A).flags).not.toContain('active');
      expect(d.stats.vmstat.pgactivate).toBe(0);
    }
  });

  it.each(POLICIES)('%s: mlock populates after mlocking: the touches of an unevictable folio stop at PG_referenced', (policy) => {
    // recorded: oracle-gup-touch.json step 9
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    e.mlock(pid, A, K64);
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A).flags).toEqual(expect.arrayContaining(['mlocked', 'unevictable', 'referenced']));
    expect(d.stats.vmstat.pgactivate).toBe(0);
  });

  it.each(POLICIES)('%s: mlock of half a folio touches its 8 present PTEs: referenced, active, referenced again; no PTE becomes young', (policy) => {
    // recorded: packages/kernel-oracle/recorded/arm64/21-vm-locked.json step 2: pgactivate 16, active + referenced
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'cold'); // clears the young bits
    e.mlock(pid, A + K64 / 2, K64 / 2);
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A).flags).toEqual(expect.arrayContaining(['active', 'referenced']));
    expect(d.stats.vmstat.pgactivate).toBe(16);
    // follow_page_pte does not access the page: the populate leaves the PTEs old
    expect(d.processes[0]!.ptes.every((p) => p.young === false)).toBe(true);
  });

  it('a pin costs no fault when GUP-fast takes every page', () => {
    const { e, pid } = setup('mainline');
    e.write(pid, A, K64);
    const c = costs(e, () => e.pin(pid, A, K64, { kind: 'pin', write: true }));
    expect(c.LOCK ?? 0).toBe(0);
  });
});
