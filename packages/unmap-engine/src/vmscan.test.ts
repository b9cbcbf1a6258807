import { describe, expect, it } from 'vitest';
import { A, K64, POLICIES, costs, dumpOk, folioMappedAt, ptesIn, setup } from './test-fixtures.js';

/*
 * memory.reclaim over the classic LRU (7.2.13 mm/vmscan.c
 * user_proactive_reclaim … shrink_folio_list with folio_check_references,
 * shrink_active_list). Expected values from the kernel oracle's records
 * (packages/kernel-oracle/recorded/<arch>/…; the call counts are compared
 * under mainline).
 */

describe('memory.reclaim asks folio_check_references', () => {
  it.each(POLICIES)('%s: a written folio is kept once for its young PTEs, then swapped out', (policy) => {
    // recorded: oracle-reclaim-referenced.json step 2: 2 shrink_folio_list, folio_referenced_one ×2 + try_to_unmap_one ×1, 19 page_vma_mapped_walk
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    let r = { reclaimed: 0 };
    const c = costs(e, () => {
      r = e.reclaim({ kind: 'proactive' });
    });
    expect(r.reclaimed).toBe(16);
    expect(c.RMAP_ONE).toBe(3);
    if (policy === 'mainline') expect(c.PVMW_CALL).toBe(19);
    const d = dumpOk(e);
    expect(ptesIn(d, pid, A, 16).every((p) => p?.kind === 'swap')).toBe(true);
    expect(d.stats.reclaim.nr_ref_keep).toBe(16);
    expect(d.stats.vmstat.pgactivate).toBe(0);
  });

  it.each(POLICIES)('%s: after fork the child\'s PTEs are old and the parent\'s young: one mapping referenced, kept, then reclaimed', (policy) => {
    // recorded: 05-fork-proactive-reclaim.json step 3: RMAP_ONE 6 (folio_referenced_one ×4, try_to_unmap_one ×2), PVMW 38
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    e.fork(pid);
    const c = costs(e, () => expect(e.reclaim({ kind: 'proactive' }).reclaimed).toBe(16));
    expect(c.RMAP_ONE).toBe(6);
    if (policy === 'mainline') expect(c.PVMW_CALL).toBe(38);
  });

  it.each(POLICIES)('%s: PG_referenced and young PTEs together activate; with the active list unaged nothing is reclaimed (EAGAIN)', (policy) => {
    // recorded: oracle-reclaim-referenced.json step 8: pgactivate 16, one shrink_folio_list, one folio_referenced_one, EAGAIN
    const { e, pid } = setup(policy);
    e.mlock(pid, A, K64);
    e.munlock(pid, A, K64);
    const c = costs(e, () => expect(e.reclaim({ kind: 'proactive' })).toMatchObject({ reclaimed: 0, activated: 16 }));
    expect(c.RMAP_ONE).toBe(1);
    if (policy === 'mainline') expect(c.PVMW_CALL).toBe(1);
    const d = dumpOk(e);
    expect(folioMappedAt(d, pid, A).flags).toEqual(expect.arrayContaining(['active', 'referenced']));
    expect(d.stats.vmstat).toMatchObject({ pgactivate: 16, pgdeactivate: 0 });
  });
});

describe('the priority loop and the active list', () => {
  it.each(POLICIES)('%s: a folio half in a VM_LOCKED VMA is scanned 69 times, activated each time and deactivated 70 times', (policy) => {
    // recorded: 21-vm-locked.json step 4: shrink_folio_list ×69, pgactivate 1104, pgrefill/pgdeactivate 1120,
    // RMAP_ONE 416 (folio_referenced_one 278 + try_to_unmap_one 138), PVMW 2090; the folio ends inactive.
    const { e, pid } = setup(policy);
    e.write(pid, A, K64);
    e.mlock(pid, A + K64 / 2, K64 / 2);
    const before = dumpOk(e).stats.vmstat;
    const c = costs(e, () => expect(e.reclaim({ kind: 'proactive' }).reclaimed).toBe(0));
    const v = dumpOk(e).stats.vmstat;
    const delta = (name: string): number => (v[name] ?? 0) - (before[name] ?? 0);
    expect(delta('pgactivate')).toBe(1104);
    expect(delta('pgdeactivate')).toBe(1120);
    expect(delta('pgrefill')).toBe(1120);
    expect(c.RMAP_ONE).toBe(416);
    if (policy === 'mainline') expect(c.PVMW_CALL).toBe(2090);
    expect(folioMappedAt(dumpOk(e), pid, A + K64 / 2).flags).not.toContain('active');
  });

  it('node reclaim never reaches the LRU (no page cache to pass min_unmapped_pages)', () => {
    // recorded: oracle-node-reclaim.json steps 2 and 4: EAGAIN, no call traced
    const { e, pid } = setup('mainline');
    e.write(pid, A, K64);
    const c = costs(e, () => expect(e.reclaim({ kind: 'node' }).reclaimed).toBe(0));
    expect(c.RMAP_ONE ?? 0).toBe(0);
  });
});

describe('a swap device without SWP_SYNCHRONOUS_IO', () => {
  it.each(POLICIES)('%s: MADV_PAGEOUT leaves the written folio in the swap cache; a read maps the 64K folio again; memory.reclaim frees it unwritten', (policy) => {
    // recorded: oracle-swap-async-writeback.json steps 3, 5 and 7 (nr_swapcached +16; no pswpin, no major fault; freed, pswpout unchanged)
    const { e, pid } = setup(policy, 4 * K64, { swapSynchronousIo: false });
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'pageout');
    let d = dumpOk(e);
    expect(d.swap.swapCache).toHaveLength(1);
    expect(d.stats.vmstat).toMatchObject({ pswpout: 16, nr_swapcache: 16 });
    expect(d.folios[0]!.flags).not.toContain('writeback'); // the write has ended by the next operation
    expect(d.folios[0]!.flags).not.toContain('reclaim');
    e.read(pid, A, K64);
    d = dumpOk(e);
    const f = folioMappedAt(d, pid, A);
    expect(f.order).toBe(4);
    expect(f.flags).toContain('swapcache');
    expect(d.stats.vmstat).toMatchObject({ pswpin: 0, pgmajfault: 0 });
    expect(e.reclaim({ kind: 'proactive' }).reclaimed).toBe(16);
    d = dumpOk(e);
    expect(d.swap.swapCache).toHaveLength(0);
    expect(d.stats.vmstat.pswpout).toBe(16);
  });

  it('zram (SWP_SYNCHRONOUS_IO) still frees the folio inside pageout', () => {
    const { e, pid } = setup('mainline');
    e.write(pid, A, K64);
    expect(e.madvise(pid, A, K64, 'pageout')!.reclaimed).toBe(16);
    expect(dumpOk(e).folios).toEqual([]);
  });
});
