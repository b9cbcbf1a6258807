import { describe, expect, it } from 'vitest';
import { evaluateExpect, matchValue, parsePath, resolvePath, type StateV1 } from './index.js';

/*
 * A hand-made foliolab.state/v1 dump: the parent (pid 1) maps a 64K folio at
 * 0x40000000 with PTEs 0–7 present and 8–15 swapped out; the child (pid 2,
 * dumped as "p2") maps an order-0 copy of page 0.
 */
const BUF = 0x4000_0000;
const hex = (n: number): string => `0x${n.toString(16)}`;
const present = (i: number): StateV1['processes'][number]['ptes'][number] => ({ addr: hex(BUF + i * 4096), kind: 'present', pfn: 0x1000 + i, write: i < 4, dirty: true, young: true, cont: false, uffdWp: false });
const swp = (i: number): StateV1['processes'][number]['ptes'][number] => ({ addr: hex(BUF + i * 4096), kind: 'swap', type: 0, offset: 16 + i, exclusive: true, uffdWp: false });

const DUMP: StateV1 = {
  schema: 'foliolab.state/v1',
  config: { arch: 'arm64-contpte', policy: 'mainline', mapcountMode: 'legacy' },
  processes: [
    {
      pid: 1,
      name: 'p1',
      parent: null,
      exited: false,
      rss: { anon: 8, file: 0, shmem: 0, swapents: 8 },
      hasPinned: false,
      onMmlist: true,
      vmas: [{ start: hex(BUF), end: hex(BUF + 65536), pgoff: 0x40000, flags: ['read', 'write', 'anon', 'private'], anonVma: 1 }],
      ptes: [...Array.from({ length: 8 }, (_, i) => present(i)), ...Array.from({ length: 8 }, (_, i) => swp(i + 8))],
    },
    {
      pid: 2,
      name: 'p2',
      parent: 1,
      exited: false,
      rss: { anon: 1, file: 0, shmem: 0, swapents: 0 },
      hasPinned: false,
      onMmlist: false,
      vmas: [],
      ptes: [{ addr: hex(BUF), kind: 'present', pfn: 0x2000, write: true, dirty: true, young: true, cont: false, uffdWp: false }],
    },
  ],
  folios: [
    { pfn: 0x1000, order: 4, refcount: 24, mapcount: 8, entireMapcount: 0, pincount: 0, flags: ['anon', 'swapbacked', 'swapcache', 'active'], anonExclusive: '1111000011110000', swap: { type: 0, offset: 16 }, deferredSplit: false, partiallyMapped: false, pageMapcounts: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0] },
    { pfn: 0x2000, order: 0, refcount: 1, mapcount: 1, entireMapcount: 0, pincount: 0, flags: ['anon', 'swapbacked'], anonExclusive: '1', swap: null, deferredSplit: false, partiallyMapped: false },
  ],
  swap: {
    slots: Array.from({ length: 16 }, (_, i) => ({ offset: 16 + i, count: i < 8 ? 0 : 1, cached: 0x1000 })),
    swapCache: [{ pfn: 0x1000, offset: 16, nr: 16 }],
  },
  stats: { vmstat: { pglazyfreed: 0 }, mthp: { '64K': { anon_fault_alloc: 1, swpout: 0, split_deferred: 0 } } },
  ledger: { PTE_READ: 71 },
  invariants: { ok: true, violations: [] },
};

const ctx = { processes: new Map([['parent', 1], ['child', 2]]), names: new Map([['buf', BUF]]) };
const at = (path: string): unknown => resolvePath(DUMP, path, ctx).value;

describe('paths into the state dump', () => {
  it('processes by scenario name (through the runner pid map), by index and by field', () => {
    expect(at('processes[parent].rss.anon')).toBe(8);
    expect(at('processes[child].parent')).toBe(1);
    expect(at('processes[1].pid')).toBe(2);
    expect(at('processes[pid=2].rss.anon')).toBe(1);
    expect(resolvePath(DUMP, 'processes[p2].pid').value).toBe(2); // no context: the dump's own name
  });

  it('folios, slots, [*] and [-1]', () => {
    expect(at('folios[0].refcount')).toBe(24);
    expect(at('folios[-1].order')).toBe(0);
    expect(at('swap.slots[*].count')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(at('swap.slots[offset=20].count')).toBe(0);
    expect(at('swap.slots[offset=0x18].count')).toBe(1);
    expect(at('stats.mthp.64K.anon_fault_alloc')).toBe(1);
    expect(at('stats.mthp[*].swpout')).toEqual([0]);
    expect(at('ledger.PTE_READ')).toBe(71);
  });

  it('ptes[proc][addr]: one PTE; a missing one reads as kind none', () => {
    expect(at('ptes[parent][buf+4K].pfn')).toBe(0x1001);
    expect(at('ptes[parent][buf+32K]')).toEqual(swp(8));
    expect(at('ptes[parent][buf+64K]')).toEqual({ addr: hex(BUF + 65536), kind: 'none' });
    expect(at('ptes[parent][0x40000000].kind')).toBe('present');
    expect((at('ptes[parent]') as unknown[]).length).toBe(16);
  });

  it('ptes[proc][a..b]: one entry per page, half open', () => {
    expect(at('ptes[parent][buf..buf+64K].kind')).toEqual([...Array<string>(8).fill('present'), ...Array<string>(8).fill('swap')]);
    expect(at('ptes[parent][buf+28K..buf+36K].kind')).toEqual(['present', 'swap']);
    expect(at('ptes[parent][buf..buf]')).toEqual([]);
  });

  it('folioAt and pageAt follow the PTE pfn into the folio list', () => {
    expect(at('folioAt[parent][buf+12K].pfn')).toBe(0x1000);
    expect(at('folioAt[child][buf].order')).toBe(0);
    expect(at('folioAt[parent][buf+32K]')).toBeNull(); // a swap PTE maps no folio
    expect(at('pageAt[parent][buf+4K]')).toEqual({ pfn: 0x1001, folio: 0x1000, index: 1, anonExclusive: true, mapcount: 1 });
    expect(at('pageAt[parent][buf..buf+32K].anonExclusive')).toEqual([true, true, true, true, false, false, false, false]);
  });

  it('a process missing from the dump is reported, not thrown', () => {
    expect(resolvePath(DUMP, 'ptes[ghost][buf]', ctx)).toEqual({ value: undefined, multi: false, missing: 'no process `ghost` in the dump' });
  });

  it.each([
    ['proceses[parent]', 'unknown root `proceses`; did you mean `processes`?'],
    ['ptes', 'ptes needs a process first'],
    ['folioAt[parent]', 'folioAt[parent] needs an address or a range next'],
    ['ptes[parent][buf+64Q]', '"64Q" is neither a name nor a size'],
    ['folios[0', '"[" at column 7 is not closed'],
    ['folios.', 'expected a key after "."'],
    ['folios[0]x', 'unexpected "x" at column 10'],
  ])('parsePath(%j) explains the problem', (path, why) => {
    expect(() => parsePath(path)).toThrow(why);
  });
});

describe('matchers', () => {
  it.each([
    [16, 16, true],
    [16, 15, false],
    [[1, 2], [1, 2], true],
    [{ type: 0, offset: 16 }, { equals: { type: 0, offset: 16 } }, true],
    ['0x40001000', { equals: 'buf+4K' }, true],
    ['0x40001000', 0x4000_1000, true],
    ['0x40001000', 'buf+8K', false],
    [16, { not: 15 }, true],
    [16, { not: 16 }, false],
    [['anon', 'dirty'], { not: { contains: 'swapbacked' } }, true],
    [['anon', 'dirty'], { contains: 'dirty' }, true],
    ['abcdef', { contains: 'cde' }, true],
    [['anon', 'dirty'], { containsAll: ['anon', 'dirty'] }, true],
    [['anon'], { containsAll: ['anon', 'dirty'] }, false],
    [['anon'], { containsNone: ['dirty', 'lru'] }, true],
    [['anon', 'lru'], { containsNone: ['dirty', 'lru'] }, false],
    [[1, 2, 3], { lengthOf: 3 }, true],
    ['1111', { lengthOf: 4 }, true],
    [5, { gte: 5, lte: 5 }, true],
    [5, { gte: 6 }, false],
    [[1, 1, 1], { all: 1 }, true],
    [[1, 2, 1], { all: 1 }, false],
    [[], { all: 1 }, true],
    [[3, 4, 5], { all: { gte: 3 } }, true],
    [[16, 17, 18], { consecutive: true }, true],
    [[16, 18], { consecutive: true }, false],
    [32, { multipleOf: 16 }, true],
    [null, null, true],
    [undefined, null, false],
  ])('%j against %j → %s', (actual, expected, ok) => {
    expect(matchValue(actual, expected, ctx) === null).toBe(ok);
  });

  it('explains a failure with expected and actual', () => {
    expect(matchValue([1, 2, 1], { all: 1 })).toBe('expected every element to be 1, element 1 is 2: [1,2,1]');
    expect(matchValue(16, 0)).toBe('expected 0, got 16');
    expect(matchValue(undefined, 3)).toBe('expected 3, got (missing)');
  });
});

describe('evaluateExpect', () => {
  it('state, events (absent event = 0) and invariants, each with path, expected, actual, message', () => {
    const rs = evaluateExpect(
      {
        state: { 'processes[parent].rss.anon': 8, 'ptes[parent][buf..buf+64K].kind': { all: 'swap' }, 'ptes[ghost][buf].kind': 'present' },
        events: { PTE_READ: 71, PTE_XCHG: { gte: 16 }, TLBI_VA: 0 },
        invariants: 'ok',
      },
      { dump: DUMP, ctx, delta: { PTE_READ: 71, PTE_XCHG: 8 }, invariants: { ok: false, violations: [{ rule: 'swap-count', where: 'slot 16', detail: 'count 0 but 1 swap PTE' }] } },
    );
    expect(rs.map((r) => [r.ok, r.path])).toEqual([
      [true, 'processes[parent].rss.anon'],
      [false, 'ptes[parent][buf..buf+64K].kind'],
      [false, 'ptes[ghost][buf].kind'],
      [true, 'events.PTE_READ'],
      [false, 'events.PTE_XCHG'],
      [true, 'events.TLBI_VA'],
      [false, 'invariants'],
    ]);
    expect(rs[1]!.message).toBe('ptes[parent][buf..buf+64K].kind: expected every element to be "swap", element 0 is "present": ["present","present","present","present","present","present","present","present","swap","swap","swap","swap","swap","swap","swap","swap"]');
    expect(rs[2]!.message).toBe('ptes[ghost][buf].kind: no process `ghost` in the dump');
    expect(rs[4]).toMatchObject({ expected: { gte: 16 }, actual: 8, message: 'events.PTE_XCHG: expected ≥ 16, got 8' });
    expect(rs[6]!.message).toBe('invariants: expected ok, got 1 violation(s): swap-count at slot 16: count 0 but 1 swap PTE');
  });
});
