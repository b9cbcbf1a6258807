import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario, ScenarioError, type Scenario } from './index.js';
import { FakeEngine, fakeFactory } from './test-fixtures.js';

const K = 1024;

function run(text: string, opts: Parameters<typeof runScenario>[1] = {}): { r: ReturnType<typeof runScenario>; e: FakeEngine } {
  const { factory, built } = fakeFactory();
  const r = runScenario(parseScenario(text, 'r.yaml'), { engineFactory: factory, ...opts });
  return { r, e: built[0]! };
}

describe('step → engine method, 1:1, names resolved', () => {
  const EVERY_STEP = `name: every step
config: { policy: batched, arch: x86, mthp: { 64K: always } }
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, len: 64K, prot: rw, locked: false, as: buf }
  - write: { process: parent, addr: buf, len: 64K, token: 7 }
  - read: { process: parent, addr: buf+4K }
  - fork: { process: parent, child: kid }
  - mprotect: { process: kid, addr: buf, len: 64K, prot: r }
  - madvise: { process: parent, addr: buf, len: 64K, advice: cold }
  - pageout: { process: parent, addr: buf+32K, len: 32K }
  - reclaim: { kind: node, nrToReclaim: 32 }
  - reclaim: { process: kid, addr: buf, len: 64K }
  - pin: { process: parent, addr: buf, kind: pin, write: true, as: h }
  - unpin: { handle: h }
  - uffdwp: { process: parent, addr: buf, len: 64K, op: register }
  - mlock: { process: parent, addr: buf, len: 4K }
  - munlock: { process: parent, addr: buf, len: 4K }
  - deviceExclusive: { process: parent, addr: buf+8K }
  - inject: { swapDupEnomem: 2, archUnmapOneFail: true }
  - mremap: { process: parent, addr: buf, oldLen: 64K, newLen: 64K, fixed: 0x40000000, as: moved }
  - munmap: { process: parent, addr: moved, len: 64K }
  - poison: { process: kid, addr: buf, ttuHwpoison: true }
  - exit: { process: kid }
`;

  it('calls the contract method for each step with resolved pids, addresses and sizes', () => {
    const { r, e } = run(EVERY_STEP);
    const buf = 0x7f00_0000_0000;
    expect(r.error).toBeUndefined();
    expect(e.config).toMatchObject({ policy: 'batched', arch: 'x86', mthp: { '64K': 'always' } });
    expect(e.calls).toEqual([
      ['createProcess', 'parent'],
      ['mmap', 1, { len: 64 * K, prot: 'rw', anon: true, locked: false }],
      ['write', 1, buf, 64 * K, 7],
      ['read', 1, buf + 4 * K, 4 * K],
      ['fork', 1],
      ['mprotect', 2, buf, 64 * K, 'r'],
      ['madvise', 1, buf, 64 * K, 'cold'],
      ['madvise', 1, buf + 32 * K, 32 * K, 'pageout'],
      ['reclaim', { kind: 'node', nrToReclaim: 32 }],
      ['reclaim', { kind: 'proactive', pid: 2, addr: buf, len: 64 * K }],
      ['pin', 1, buf, 4 * K, { kind: 'pin', write: true }],
      ['unpin', 1],
      ['uffdwp', 1, buf, 64 * K, 'register'],
      ['mlock', 1, buf, 4 * K],
      ['munlock', 1, buf, 4 * K],
      ['makeDeviceExclusive', 1, buf + 8 * K],
      ['setInject', 'swapDupEnomem', 2],
      ['setInject', 'archUnmapOneFail', true],
      ['mremap', 1, buf, 64 * K, 64 * K, { fixed: 0x4000_0000 }],
      ['munmap', 1, 0x4000_0000, 64 * K],
      ['poison', 2, buf, { ttuHwpoison: true }],
      ['exit', 2],
    ]);
    expect(r.steps.map((s) => s.result)).toEqual([buf, undefined, { pages: 1, lost: [] }, 2, undefined, undefined, undefined, { nrReclaimed: 0 }, { nrReclaimed: 0 }, 1, ...Array<undefined>(6).fill(undefined), 0x4000_0000, undefined, undefined, undefined]);
  });

  it('records each step’s non-zero ledger delta, its position, and a default name', () => {
    const { r } = run(EVERY_STEP);
    expect(r.steps[1]).toMatchObject({ index: 1, kind: 'write', name: 'write parent buf 64K', ledgerDelta: { PTE_WRITE: 16 }, location: { file: 'r.yaml', line: 6, col: 5 } });
    expect(r.steps[6]!.ledgerDelta).toEqual({ PTE_XCHG: 8, RMAP_CALL: 1 });
    expect(r.steps[0]!.ledgerDelta).toEqual({});
    expect(r.events).toEqual({ PTE_WRITE: 16, PTE_XCHG: 8, RMAP_CALL: 1 });
  });
});

describe('expectations and invariants', () => {
  const S = `name: s
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, addr: 0x40000000, len: 16K, as: buf }
  - write: { process: parent, addr: buf, len: 16K }
  - name: wrote four pages
    expect:
      events: { PTE_WRITE: 4, PTE_READ: 0 }
      state:
        ptes[parent][buf..buf+16K].kind: { all: present }
        processes[parent].rss.anon: 4
      invariants: ok
  - expect:
      events: { PTE_WRITE: 4 }
  - pageout: { process: parent, addr: buf, len: 8K }
  - name: wrong on purpose
    expect:
      events: { RMAP_CALL: 3 }
      state:
        processes[parent].rss.swapents: 3
`;

  it('evaluates expect steps against the dump and the previous non-expect step’s delta', () => {
    const { r } = run(S);
    expect(r.steps[2]!.expectations.map((x) => x.ok)).toEqual([true, true, true, true, true]);
    expect(r.steps[3]!.expectations.map((x) => x.ok)).toEqual([true]);
    expect(r.ok).toBe(false);
    expect(r.failures).toEqual([
      'r.yaml:16:5: step 5 (wrong on purpose): processes[parent].rss.swapents: expected 3, got 2',
      'r.yaml:16:5: step 5 (wrong on purpose): events.RMAP_CALL: expected 3, got 2',
    ]);
    expect(r.steps[5]!.expectations[0]).toMatchObject({ ok: false, path: 'processes[parent].rss.swapents', expected: 3, actual: 2, location: { file: 'r.yaml', line: 20, col: 9 } });
  });

  it('records an invariant violation with the step that caused it, and keeps going', () => {
    const { r } = run(`name: v
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, len: 4K, as: buf }
  - poison: { process: parent, addr: buf }
  - write: { process: parent, addr: buf }
`);
    expect(r.steps.map((s) => s.invariants.ok)).toEqual([true, false, false]);
    expect(r.steps[1]!.newViolations).toEqual([{ rule: 'rss-census', where: 'pid 1', detail: 'MM_ANONPAGES 16 but 15 present PTEs' }]);
    expect(r.steps[2]!.newViolations).toEqual([]);
    expect(r.ok).toBe(false);
    expect(r.failures).toEqual(['r.yaml:5:5: step 1 (poison parent buf): invariant rss-census violated at pid 1: MM_ANONPAGES 16 but 15 present PTEs']);
  });

  it('a read that reports lost data fails the run', () => {
    const { factory } = fakeFactory();
    const f = (c: Parameters<typeof factory>[0]): FakeEngine => {
      const e = factory(c);
      e.lostOnRead = [{ addr: '0x40000000', expected: 5, actual: 0 }];
      return e;
    };
    const r = runScenario(parseScenario(`name: l\nprocesses: [{ name: p }]\nsteps:\n  - mmap: { process: p, len: 4K, as: b }\n  - read: { process: p, addr: b }\n`), { engineFactory: f });
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatch(/step 1 \(read p b\): read\.lost: 1 page\(s\) did not read back what was written/);
  });

  it('`when` skips steps whose condition does not hold; --policy/--arch replace the config', () => {
    const text = `name: w
config: { policy: mainline }
processes: [{ name: p }]
steps:
  - mmap: { process: p, len: 4K, as: b }
  - when: { policy: [batched] }
    write: { process: p, addr: b }
  - when: { policy: [mainline], arch: [x86] }
    expect:
      state:
        processes[p].rss.anon: 0
`;
    const a = run(text);
    expect(a.r.steps.map((s) => s.skipped)).toEqual([false, true, true]);
    const b = run(text, { policy: 'batched', arch: 'x86' });
    expect([b.r.policy, b.r.arch, b.e.config.policy, b.e.config.arch]).toEqual(['batched', 'x86', 'batched', 'x86']);
    expect(b.r.steps.map((s) => s.skipped)).toEqual([false, false, true]);
  });
});

describe('bad input and limits', () => {
  it('stops at a step the engine rejects, naming the step, its position and the reason', () => {
    const { r, e } = run(`name: b
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, addr: 0x40000000, len: 16K, as: buf }
  - munmap: { process: parent, addr: buf+64K, len: 4K }
  - write: { process: parent, addr: buf }
`);
    expect(r.ok).toBe(false);
    expect(r.error).toEqual({
      kind: 'bad-input',
      step: 1,
      stepKind: 'munmap',
      name: 'munmap parent buf+64K 4K',
      code: 'EINVAL',
      message: 'r.yaml:5:5: step 1 (munmap parent buf+64K 4K): munmap: range 0x40010000+4096 is outside any VMA of pid 1',
      location: { file: 'r.yaml', line: 5, col: 5 },
    });
    expect(r.steps).toHaveLength(2);
    expect(e.calls.map((c) => c[0])).toEqual(['createProcess', 'mmap', 'munmap']);
    expect(r.finalState?.processes[0]?.vmas).toHaveLength(1);
  });

  it('a non-FoliolabError from the engine is recorded as a crash, not swallowed silently', () => {
    const { factory } = fakeFactory();
    const f = (c: Parameters<typeof factory>[0]): FakeEngine => {
      const e = factory(c);
      e.exit = () => {
        throw new TypeError('boom');
      };
      return e;
    };
    const r = runScenario(parseScenario(`name: c\nprocesses: [{ name: p }]\nsteps:\n  - exit: { process: p }\n`), { engineFactory: f });
    expect(r.error).toMatchObject({ kind: 'crash', step: 0, message: '<scenario>:4:5: step 0 (exit p): boom' });
  });

  const BIG = `name: big
config: { memory: 8G, limits: { maxSteps: 1 } }
processes: [{ name: p }]
steps:
  - exit: { process: p }
`;

  it('enforces the memory limit before building the engine, with a clear message and position', () => {
    const { factory, built } = fakeFactory();
    expect(() => runScenario(parseScenario(BIG, 'big.yaml'), { engineFactory: factory })).toThrow(ScenarioError);
    expect(() => runScenario(parseScenario(BIG, 'big.yaml'), { engineFactory: factory })).toThrow(
      ['big.yaml:2:11: config.memory: 8G of simulated memory exceeds the memory limit of 4G (raise limits.maxMemory)', 'big.yaml:2:9: config.swap: 8G of swap exceeds the memory limit of 4G (raise limits.maxMemory)'].join('\n'),
    );
    expect(built).toHaveLength(0);
    expect(() => runScenario(parseScenario(BIG, 'big.yaml'), { engineFactory: factory, limits: { maxMemory: 16 * 2 ** 30 } })).not.toThrow();
  });

  it('enforces the step limit (options override the scenario’s config)', () => {
    const two = BIG.replace('memory: 8G, ', '') + '  - expect: { invariants: ok }\n';
    expect(() => parseScenario(two, 's.yaml')).toThrow('s.yaml:4:1: steps: 2 steps, more than config.limits.maxSteps = 1');
    const ok = parseScenario(two.replace('maxSteps: 1', 'maxSteps: 5'), 's.yaml');
    expect(() => runScenario(ok, { engineFactory: fakeFactory().factory, limits: { maxSteps: 1 } })).toThrow('s.yaml:4:1: steps: 2 steps exceed the step limit of 1 (raise limits.maxSteps)');
  });

  it('validates scenarios built in code before running them', () => {
    const bad = { name: 'x', processes: [{ name: 'p' }], steps: [{ exit: { process: 'q' } }] } as Scenario;
    expect(() => runScenario(bad, { engineFactory: fakeFactory().factory })).toThrow('<scenario>: steps[0].exit.process: unknown process `q`');
  });

  it('without an engine factory, runs on the real @foliolab/unmap-engine (§7.1 fault-in: one order-4 folio, mapcount 16)', () => {
    const s = parseScenario(
      `name: n\nconfig: { mthp: { 64K: always } }\nprocesses: [{ name: p }]\nsteps:\n` +
        `  - mmap: { process: p, addr: 0x40000000, len: 64K, as: buf }\n  - write: { process: p, addr: buf, len: 64K }\n`,
    );
    const r = runScenario(s);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    // Only the real engine faults in a 64K folio and charges the ledger; the fake engine does neither.
    expect(r.finalState?.schema).toBe('foliolab.state/v1');
    expect(r.finalState?.folios.map((f) => [f.order, f.mapcount])).toEqual([[4, 16]]);
    expect(r.finalState?.processes[0]?.rss.anon).toBe(16);
    expect(r.events.PTE_WRITE).toBe(16);
  });
});
