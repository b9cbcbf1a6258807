import { describe, expect, it } from 'vitest';
import { ABSENT, compare, diffStates, formatCompare, parseScenario, pathMatches, type AllowedDifference } from './index.js';
import { fakeFactory } from './test-fixtures.js';

/* Hand-made end states (a reduced foliolab.state/v1 shape is enough for the diff). */
function state(o: { policy: string; dirty0?: boolean; extraPte?: boolean; splitDeferred?: number; read?: number }): Record<string, unknown> {
  const ptes = [
    { addr: '0x40000000', kind: 'present', pfn: 4096, dirty: o.dirty0 ?? true },
    { addr: '0x40001000', kind: 'present', pfn: 4097, dirty: true },
  ];
  if (o.extraPte === true) ptes.push({ addr: '0x40002000', kind: 'swap', pfn: 0, dirty: false });
  return {
    schema: 'foliolab.state/v1',
    config: { arch: 'arm64-contpte', policy: o.policy },
    processes: [{ pid: 1, name: 'p1', rss: { anon: 2 }, ptes }],
    folios: [{ pfn: 4096, order: 4, flags: ['anon', 'lru'] }],
    stats: { mthp: { '64K': { split_deferred: o.splitDeferred ?? 0 } } },
    ledger: { PTE_READ: o.read ?? 71 },
  };
}

describe('diffStates', () => {
  it('identical states are equivalent; ledger and config.policy are ignored', () => {
    const d = diffStates({ 'per-pte': state({ policy: 'per-pte', read: 71 }), mainline: state({ policy: 'mainline', read: 71 }), batched: state({ policy: 'batched', read: 10 }) });
    expect(d).toEqual({ equivalent: true, diffs: [], totalDiffs: 0, notAllowed: 0, truncated: false });
  });

  it('names a differing leaf by identity path, with the value under each policy', () => {
    const d = diffStates({ 'per-pte': state({ policy: 'per-pte' }), mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched', dirty0: false }) });
    expect(d.equivalent).toBe(false);
    expect(d.diffs).toEqual([{ path: 'processes[pid=1].ptes[addr=0x40000000].dirty', values: { 'per-pte': true, mainline: true, batched: false } }]);
  });

  it('an entry present under one policy only is one difference, not a cascade', () => {
    const d = diffStates({ mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched', extraPte: true }) });
    expect(d.diffs).toEqual([{ path: 'processes[pid=1].ptes[addr=0x40002000]', values: { mainline: ABSENT, batched: { addr: '0x40002000', kind: 'swap', pfn: 0, dirty: false } } }]);
  });

  it('rows of the allowed table excuse matching differences, with their reason', () => {
    const allowed: AllowedDifference[] = [
      { path: 'stats.mthp.*.split_deferred', policies: ['per-pte'], reason: 'per-PTE removal queues a deferred split spuriously' },
      { path: 'processes[*].ptes[*].dirty', policies: ['batched'], reason: 'merged young/dirty after an aborted batch' },
    ];
    const d = diffStates(
      { 'per-pte': state({ policy: 'per-pte', splitDeferred: 1 }), mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched', dirty0: false }) },
      { allowedDifferences: allowed },
    );
    expect(d.equivalent).toBe(true);
    expect(d.notAllowed).toBe(0);
    expect(d.diffs.map((x) => [x.path, x.allowed])).toEqual([
      ['processes[pid=1].ptes[addr=0x40000000].dirty', 'merged young/dirty after an aborted batch'],
      ['stats.mthp.64K.split_deferred', 'per-PTE removal queues a deferred split spuriously'],
    ]);
  });

  it('a row covers only the policies it lists: per-pte ≠ mainline is not excused by a batched row', () => {
    const allowed: AllowedDifference[] = [{ path: 'stats.mthp.*.split_deferred', policies: ['batched'], reason: 'r' }];
    const d = diffStates({ 'per-pte': state({ policy: 'per-pte', splitDeferred: 1 }), mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched' }) }, { allowedDifferences: allowed });
    expect(d.equivalent).toBe(false);
    expect(d.diffs[0]!.allowed).toBeUndefined();
  });

  it('a batchSets row excuses a bit only where the policy that batches more has it set', () => {
    const allowed: AllowedDifference[] = [{ path: 'processes.*.ptes.*.dirty', policies: ['per-pte'], batchSets: true, reason: 'merged dirty' }];
    // per-pte clean, mainline and batched dirty: a batch's OR set it — allowed.
    const set = diffStates({ 'per-pte': state({ policy: 'per-pte', dirty0: false }), mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched' }) }, { allowedDifferences: allowed });
    expect(set.equivalent).toBe(true);
    // per-pte dirty, mainline clean: a batch lost a dirty bit — an engine bug, not excused.
    const lost = diffStates({ 'per-pte': state({ policy: 'per-pte' }), mainline: state({ policy: 'mainline', dirty0: false }) }, { allowedDifferences: allowed });
    expect(lost.equivalent).toBe(false);
    expect(lost.diffs[0]!.allowed).toBeUndefined();
  });

  it('keeps the first N differences, not-allowed ones first', () => {
    const a = { x: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])) };
    const b = { x: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i + 1])) };
    const d = diffStates({ mainline: a, batched: b }, { maxDiffs: 3, allowedDifferences: [{ path: 'x.k0', policies: ['batched'], reason: 'r' }] });
    expect(d.totalDiffs).toBe(10);
    expect(d.notAllowed).toBe(9);
    expect(d.truncated).toBe(true);
    expect(d.diffs.map((x) => x.path)).toEqual(['x.k1', 'x.k2', 'x.k3']);
  });

  it.each([
    ['stats.mthp.*.split_deferred', 'stats.mthp.64K.split_deferred', true],
    ['stats.mthp.*.split_deferred', 'stats.mthp.64K.nr_anon', false],
    ['processes[*].ptes[*].dirty', 'processes[pid=1].ptes[addr=0x40000000].dirty', true],
    ['processes.*.ptes.*.dirty', 'processes[pid=1].ptes[addr=0x40000000].dirty', true],
    ['processes.*.ptes.*.dirty', 'processes[pid=1].ptes[addr=0x40000000]', false],
    ['stats', 'stats.mthp.64K.split_deferred', true],
    ['**.young', 'processes[pid=1].ptes[addr=0x40000000].young', true],
    ['folios[pfn=4096].flags', 'folios[pfn=4097].flags', false],
  ])('pathMatches(%j, %j) = %s', (pattern, path, ok) => {
    expect(pathMatches(pattern, path)).toBe(ok);
  });

  it('formats a readable report', () => {
    const d = diffStates({ mainline: state({ policy: 'mainline' }), batched: state({ policy: 'batched', dirty0: false }) });
    expect(formatCompare({ ...d, scenario: 's' })).toBe(['s: NOT equivalent: 1 difference(s)', '  processes[pid=1].ptes[addr=0x40000000].dirty', '    mainline: true   batched: false'].join('\n'));
  });
});

describe('compare (runs the scenario under all three policies)', () => {
  const s = parseScenario(`name: two pages
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, addr: 0x40000000, len: 8K, as: buf }
  - write: { process: parent, addr: buf, len: 8K }
  - pageout: { process: parent, addr: buf+4K, len: 4K }
`);

  it('reports the fake engine’s batched-only dirty difference, and per-policy events', () => {
    const { factory, built } = fakeFactory();
    const r = compare(s, { engineFactory: factory });
    expect(built.map((e) => e.config.policy)).toEqual(['per-pte', 'mainline', 'batched']);
    expect(r.equivalent).toBe(false);
    expect(r.diffs).toEqual([{ path: 'processes[pid=1].ptes[addr=0x40000000].dirty', values: { 'per-pte': true, mainline: true, batched: false } }]);
    expect(r.perPolicy.mainline).toMatchObject({ events: { PTE_WRITE: 2, PTE_XCHG: 1, RMAP_CALL: 1 }, invariantsOk: true, ok: true });
    expect(r.perPolicy.batched.events).toEqual({ PTE_WRITE: 2, PTE_XCHG: 1, RMAP_CALL: 1 });
  });

  it('is equivalent once the difference is in the allowed table', () => {
    const r = compare(s, { engineFactory: fakeFactory().factory, allowedDifferences: [{ path: 'processes.*.ptes.*.dirty', policies: ['batched'], reason: 'merged dirty' }] });
    expect(r.equivalent).toBe(true);
    expect(r.diffs[0]!.allowed).toBe('merged dirty');
    expect(formatCompare(r)).toMatch(/^two pages: equivalent \(1 allowed difference\(s\)\)/);
  });
});
