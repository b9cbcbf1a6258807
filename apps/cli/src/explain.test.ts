import type { FolioDump, ProcessDump, PteDump, StateV1 } from '@foliolab/scenario';
import { describe, expect, it } from 'vitest';
import { describePte, explainDiff, renderExplain } from './explain.js';
import { styleFor } from './io.js';

/*
 * explain is a pure function of two foliolab.state/v1 dumps. The dumps here
 * are written by hand after the kernel answers of unmap-engine.md §7 (the
 * states before and after the step), so the tests check the words, not an
 * engine.
 */

const BASE = 0x4000_0000;
const hex = (n: number): string => `0x${n.toString(16)}`;

function present(i: number, o: Partial<PteDump> = {}): PteDump {
  return { addr: hex(BASE + i * 4096), kind: 'present', pfn: 4096 + i, write: true, dirty: true, young: true, cont: true, uffdWp: false, ...o };
}
function swapPte(i: number, o: Partial<PteDump> = {}): PteDump {
  return { addr: hex(BASE + i * 4096), kind: 'swap', type: 0, offset: 16 + i, exclusive: true, uffdWp: false, ...o };
}
function folio(o: Partial<FolioDump> = {}): FolioDump {
  return {
    pfn: 4096,
    order: 4,
    refcount: 16,
    mapcount: 16,
    entireMapcount: 0,
    pincount: 0,
    flags: ['anon', 'swapbacked', 'dirty', 'lru'],
    anonExclusive: '1'.repeat(16),
    swap: null,
    deferredSplit: false,
    partiallyMapped: false,
    ...o,
  };
}
function proc(o: Partial<ProcessDump> = {}): ProcessDump {
  return {
    pid: 1,
    name: 'parent',
    parent: null,
    exited: false,
    rss: { anon: 16, file: 0, shmem: 0, swapents: 0 },
    hasPinned: false,
    onMmlist: false,
    vmas: [{ start: hex(BASE), end: hex(BASE + 0x10000), pgoff: BASE / 4096, flags: ['read', 'write', 'anon', 'private'], anonVma: 1 }],
    ptes: Array.from({ length: 16 }, (_, i) => present(i)),
    ...o,
  };
}
function state(o: Partial<StateV1> = {}): StateV1 {
  return {
    schema: 'foliolab.state/v1',
    config: { arch: 'arm64-contpte', policy: 'mainline' },
    processes: [proc()],
    folios: [folio()],
    swap: { slots: [], swapCache: [] },
    stats: { vmstat: { pswpout: 0 }, mthp: { '64K': { swpout: 0 } } },
    ledger: {},
    invariants: { ok: true, violations: [] },
    ...o,
  };
}

const texts = (items: { area: string; where: string; text: string }[], area: string): string[] =>
  items.filter((i) => i.area === area).map((i) => `${i.where}: ${i.text}`);

describe('explainDiff (unmap-engine §7 before/after states)', () => {
  it('§7.2 MADV_PAGEOUT of an exclusive 64K folio: one run of 16 PTEs, the folio freed, 16 slots, RSS moved', () => {
    const before = state();
    const after = state({
      processes: [proc({ rss: { anon: 0, file: 0, shmem: 0, swapents: 16 }, onMmlist: true, ptes: Array.from({ length: 16 }, (_, i) => swapPte(i)) })],
      folios: [],
      swap: { slots: Array.from({ length: 16 }, (_, i) => ({ offset: 16 + i, count: 1, cached: null })), swapCache: [] },
      stats: { vmstat: { pswpout: 16 }, mthp: { '64K': { swpout: 1 } } },
    });
    const items = explainDiff(before, after);
    expect(texts(items, 'process')).toEqual([
      'pid 1 (parent): MM_ANONPAGES 16 → 0 (−16)',
      'pid 1 (parent): MM_SWAPENTS 0 → 16 (+16)',
      'pid 1 (parent): added to mmlist (it now has swap entries)',
    ]);
    expect(texts(items, 'pte')).toEqual([
      'pid 1 (parent) 0x40000000–0x4000ffff (16 PTEs): unmapped: swap entry at offset 16–31 (type 0, swp-exclusive) replaces pfn 4096–4111 (writable, dirty, young, PTE_CONT)',
    ]);
    expect(texts(items, 'folio')).toEqual(['folio pfn 4096–4111 (order 4, 64K): freed (was _refcount 16, mapcount 16)']);
    expect(texts(items, 'swap')).toEqual(['swap offsets 16–31 (16 slots): allocated: count 1, not in the swap cache']);
    expect(texts(items, 'stats')).toEqual(['vmstat.pswpout: +16', 'mthp.64K.swpout: +1']);
  });

  it('§7.24 fork of an exclusive 64K folio: parent write-protected, child mapped read-only and old, counters doubled, exclusivity cleared', () => {
    const before = state();
    const parent = proc({ ptes: Array.from({ length: 16 }, (_, i) => present(i, { write: false })) });
    const child = proc({ pid: 2, name: 'child', parent: 1, ptes: Array.from({ length: 16 }, (_, i) => present(i, { write: false, young: false, dirty: false })) });
    const after = state({ processes: [parent, child], folios: [folio({ refcount: 32, mapcount: 32, anonExclusive: '0'.repeat(16) })] });
    const items = explainDiff(before, after);
    expect(texts(items, 'process')).toEqual(['pid 2 (child): forked from pid 1', 'pid 2 (child): MM_ANONPAGES 16']);
    expect(texts(items, 'pte')).toEqual([
      'pid 1 (parent) 0x40000000–0x4000ffff (16 PTEs): pfn 4096–4111: write-protected',
      'pid 2 (child) 0x40000000–0x4000ffff (16 PTEs): copied by fork: maps pfn 4096–4111 (read-only, PTE_CONT)',
    ]);
    expect(texts(items, 'folio')).toEqual([
      'folio pfn 4096–4111 (order 4, 64K): _refcount 16 → 32 (+16); mapcount 16 → 32 (+16); PageAnonExclusive cleared on page(s) 0–15',
    ]);
  });

  it('§7.14 munmap of the second half: 8 PTEs zapped, mapcount 16 → 8, deferred split queued, partially mapped', () => {
    const before = state();
    const after = state({
      processes: [proc({ rss: { anon: 8, file: 0, shmem: 0, swapents: 0 }, ptes: Array.from({ length: 8 }, (_, i) => present(i, { cont: false })) })],
      folios: [folio({ refcount: 8, mapcount: 8, deferredSplit: true, partiallyMapped: true, flags: ['anon', 'swapbacked', 'dirty', 'lru', 'partially_mapped'] })],
    });
    const items = explainDiff(before, after);
    expect(texts(items, 'pte')).toEqual([
      'pid 1 (parent) 0x40000000–0x40007fff (8 PTEs): pfn 4096–4103: PTE_CONT cleared (contpte block unfolded)',
      'pid 1 (parent) 0x40008000–0x4000ffff (8 PTEs): zapped to pte_none (was pfn 4104–4111, writable, dirty, young, PTE_CONT)',
    ]);
    expect(texts(items, 'folio')).toEqual([
      'folio pfn 4096–4111 (order 4, 64K): _refcount 16 → 8 (−8); mapcount 16 → 8 (−8); PG_partially_mapped set; queued for deferred split; now partially mapped',
    ]);
  });

  it('§7.5 after fork, reclaim: swap entries lose swp-exclusive and slot counts go to 2', () => {
    const before = state({
      processes: [proc({ ptes: Array.from({ length: 16 }, (_, i) => swapPte(i)) })],
      folios: [],
      swap: { slots: Array.from({ length: 16 }, (_, i) => ({ offset: 16 + i, count: 1, cached: null })), swapCache: [] },
    });
    const after = state({
      processes: [proc({ ptes: Array.from({ length: 16 }, (_, i) => swapPte(i, { exclusive: false })) })],
      folios: [],
      swap: { slots: Array.from({ length: 16 }, (_, i) => ({ offset: 16 + i, count: 2, cached: null })), swapCache: [] },
    });
    const items = explainDiff(before, after);
    expect(texts(items, 'pte')).toEqual([
      'pid 1 (parent) 0x40000000–0x4000ffff (16 PTEs): swap entry at offset 16–31: swp-exclusive cleared (the swap entry may be shared now)',
    ]);
    expect(texts(items, 'swap')).toEqual(['swap offsets 16–31 (16 slots): count 1 → 2 (+1)']);
  });

  it('runs break where the numbers do not advance by one (COW copies to scattered pfns)', () => {
    const before = state();
    const after = state({ processes: [proc({ ptes: Array.from({ length: 16 }, (_, i) => (i < 2 ? present(i, { pfn: 9000 + 2 * i, cont: false }) : present(i))) })] });
    expect(texts(explainDiff(before, after), 'pte')).toEqual([
      'pid 1 (parent) 0x40000000: now maps pfn 9000 (was 4096: a COW copy or migration), PTE_CONT cleared (contpte block unfolded)',
      'pid 1 (parent) 0x40001000: now maps pfn 9002 (was 4097: a COW copy or migration), PTE_CONT cleared (contpte block unfolded)',
    ]);
  });

  it('--pte: only that address, its folio and its swap slot; an unchanged PTE is said to be unchanged', () => {
    const before = state();
    const after = state({
      processes: [proc({ ptes: Array.from({ length: 16 }, (_, i) => (i === 1 ? swapPte(i) : present(i))) })],
      swap: { slots: [{ offset: 17, count: 1, cached: null }, { offset: 99, count: 1, cached: null }], swapCache: [] },
      folios: [folio({ refcount: 15, mapcount: 15 }), folio({ pfn: 8192, order: 0 })],
    });
    const items = explainDiff(before, after, { pte: BASE + 0x1000 });
    expect(items.map((i) => i.area)).toEqual(['pte', 'folio', 'swap']);
    expect(texts(items, 'pte')).toEqual(['pid 1 (parent) 0x40001000: unmapped: swap entry at offset 17 (type 0, swp-exclusive) replaces pfn 4097 (writable, dirty, young, PTE_CONT)']);
    expect(texts(items, 'swap')).toEqual(['swap offset 17: allocated: count 1, not in the swap cache']);
    const same = explainDiff(before, before, { pte: BASE });
    expect(texts(same, 'pte')).toEqual(['pid 1 (parent) 0x40000000: unchanged: present, pfn 4096 (writable, dirty, young, PTE_CONT)']);
  });

  it('no change at all renders as such; invariant violations that appear are reported', () => {
    const st = styleFor({ write: () => true }, {});
    expect(explainDiff(state(), state())).toEqual([]);
    expect(renderExplain([], st)).toBe('no change to any PTE, folio counter or swap slot');
    const bad = state({ invariants: { ok: false, violations: [{ rule: 'rss-census', where: 'pid 1', detail: 'MM_ANONPAGES 16 but 15 anon PTEs' }] } });
    const items = explainDiff(state(), bad);
    expect(items).toEqual([{ area: 'invariants', where: 'pid 1', text: 'VIOLATED: rss-census: MM_ANONPAGES 16 but 15 anon PTEs' }]);
    expect(renderExplain(items, st)).toBe('invariants\n  pid 1: VIOLATED: rss-census: MM_ANONPAGES 16 but 15 anon PTEs');
  });
});

describe('describePte', () => {
  it('names every transition of unmap-engine §7 in kernel words', () => {
    const p = present(0);
    const s = swapPte(0);
    expect(describePte(undefined, undefined)).toBeNull();
    expect(describePte(p, { ...p })).toBeNull();
    expect(describePte(s, p)?.text).toBe('swapped in: maps pfn \u0001 (writable, dirty, young, PTE_CONT), was swap offset \u0001');
    expect(describePte(s, undefined)?.text).toBe('swap entry at offset \u0001 zapped to pte_none (its slot reference is dropped)');
    expect(describePte(p, { addr: p.addr, kind: 'hwpoison' })?.text).toBe('replaced by a hwpoison entry; was pfn \u0001 (writable, dirty, young, PTE_CONT)');
    expect(describePte(p, { addr: p.addr, kind: 'marker', uffdWp: true })?.text).toBe(
      'replaced by a PTE marker (the page is gone; the marker keeps the uffd-wp state); was pfn \u0001 (writable, dirty, young, PTE_CONT)',
    );
    expect(describePte(present(0, { write: false, young: false }), p)?.text).toBe('pfn \u0001: made writable, marked young (accessed)');
  });
});
