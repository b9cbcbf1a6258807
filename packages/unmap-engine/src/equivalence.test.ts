import { describe, expect, it } from 'vitest';
import { ALLOWED_DIFFERENCES, BATCHING_ORDER, Engine, diffStates, isAllowedDifference, pathMatches, type Policy, type StateV1 } from './index.js';
import { A, K64, POLICIES } from './test-fixtures.js';

/*
 * DESIGN.md §Policies: the same scenario under per-pte, mainline and
 * batched ends in the same state, except for ALLOWED_DIFFERENCES.
 */

type Step = (e: Engine, pid: number) => void;

const SCENARIOS: Record<string, Step> = {
  'fault-in': (e, pid) => e.write(pid, A, 2 * K64),
  'pageout exclusive': (e, pid) => {
    e.write(pid, A, 2 * K64);
    e.madvise(pid, A, 2 * K64, 'pageout');
    e.read(pid, A, K64);
  },
  'pageout after fork': (e, pid) => {
    e.write(pid, A, K64);
    const c = e.fork(pid);
    e.madvise(pid, A, K64, 'pageout');
    e.reclaim({ kind: 'proactive' });
    e.read(c, A, K64);
    e.write(pid, A + 0x3000, 0x1000);
  },
  'partial munmap': (e, pid) => {
    e.write(pid, A, 2 * K64);
    e.munmap(pid, A + K64 / 2, K64);
    e.reclaim({ kind: 'proactive' });
  },
  lazyfree: (e, pid) => {
    e.write(pid, A, 2 * K64);
    e.madvise(pid, A, 2 * K64, 'free');
    e.write(pid, A + 0x3000, 0x1000);
    e.reclaim({ kind: 'proactive' });
  },
  'pinned abort': (e, pid) => {
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'pageout');
    e.read(pid, A, K64);
    const h = e.pin(pid, A + 0x5000, 0x1000, { write: true });
    e.reclaim({ kind: 'proactive' });
    e.unpin(h);
    e.reclaim({ kind: 'proactive' });
  },
  'injected dup failure': (e, pid) => {
    e.write(pid, A, K64);
    e.setInject('swapDupEnomem', 1);
    e.reclaim({ kind: 'proactive' });
    e.reclaim({ kind: 'proactive' });
  },
  'straddling folio': (e, pid) => {
    e.write(pid, A, K64);
    const dst = 0x8000_0000 - 5 * 4096;
    e.mmap(pid, { addr: dst, len: 2 * K64 });
    e.mremap(pid, A, K64, K64, { fixed: dst });
    e.madvise(pid, dst, K64, 'free');
    e.reclaim({ kind: 'proactive' });
  },
  'uffd-wp': (e, pid) => {
    e.write(pid, A, 2 * K64);
    e.uffdwp(pid, A, 4 * K64, 'register');
    e.uffdwp(pid, A, K64 + K64 / 2, 'protect');
    e.madvise(pid, A, 2 * K64, 'pageout');
    e.read(pid, A, 2 * K64);
    e.munmap(pid, A, K64);
  },
  'mprotect and mremap batches': (e, pid) => {
    e.write(pid, A, 2 * K64);
    e.mprotect(pid, A + 0x2000, K64, 'r');
    e.mprotect(pid, A, 2 * K64, 'rw');
    e.mremap(pid, A, 2 * K64, 2 * K64, { fixed: 0x5000_0000 + 0x3000 });
  },
};

/*
 * A folio whose PTEs differ in dirty/young (MADV_FREE, then a write to page 3), then a batching operation. Without
 * contpte (x86, arm64-nocont) the PTEs' own bits are visible: mprotect and mremap replicate the batch's OR
 * (per-pte keeps each PTE's own: the `batchSets` rows), fork respects dirty (FPB_RESPECT_DIRTY: no row needed).
 */
const MIXED_DIRTY: Record<string, Step> = {
  'mprotect of a mixed-dirty folio': (e, pid) => {
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'free');
    e.write(pid, A + 0x3000, 0x1000);
    e.mprotect(pid, A, K64, 'r');
  },
  'mremap of a mixed-dirty folio': (e, pid) => {
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'free');
    e.write(pid, A + 0x3000, 0x1000);
    e.mremap(pid, A, K64, K64, { fixed: 0x5000_0000 });
  },
  'fork of a mixed-dirty folio': (e, pid) => {
    e.write(pid, A, K64);
    e.madvise(pid, A, K64, 'free');
    e.write(pid, A + 0x3000, 0x1000);
    e.fork(pid);
  },
};

function runScenario(policy: Policy, step: Step, arch: 'arm64-contpte' | 'arm64-nocont' | 'x86' = 'arm64-contpte'): StateV1 {
  const e = new Engine({ policy, arch, mthp: { '64K': 'always' } });
  const pid = e.createProcess();
  e.mmap(pid, { addr: A, len: 4 * K64 });
  step(e, pid);
  return e.dump();
}

describe('differential: the three policies end in equal states up to ALLOWED_DIFFERENCES', () => {
  for (const [name, step] of Object.entries(SCENARIOS)) {
    it(name, () => {
      const dumps = POLICIES.map((p) => runScenario(p, step));
      for (const d of dumps) expect(d.invariants.violations).toEqual([]);
      for (let i = 0; i < 3; i++) {
        for (let j = i + 1; j < 3; j++) {
          expect(diffStates(dumps[i], dumps[j], [POLICIES[i]!, POLICIES[j]!]), `${POLICIES[i]} vs ${POLICIES[j]}`).toEqual([]);
        }
      }
    });
  }

  for (const arch of ['arm64-nocont', 'x86'] as const) {
    for (const [name, step] of Object.entries(MIXED_DIRTY)) {
      it(`${name} (${arch})`, () => {
        const dumps = POLICIES.map((p) => runScenario(p, step, arch));
        for (let i = 0; i < 3; i++) {
          for (let j = i + 1; j < 3; j++) {
            expect(diffStates(dumps[i], dumps[j], [POLICIES[i]!, POLICIES[j]!]), `${POLICIES[i]} vs ${POLICIES[j]}`).toEqual([]);
          }
        }
        // mainline and batched batch these alike; only per-pte keeps each PTE's own bits (mprotect, mremap).
        expect(diffStates(dumps[1], dumps[2])).toEqual([]);
        const raw = diffStates(dumps[0], dumps[1]);
        if (name.startsWith('fork')) expect(raw).toEqual([]);
        else {
          expect(raw.length).toBeGreaterThan(0);
          for (const d of raw) {
            expect(d.path).toMatch(/\.(dirty|young)$/);
            expect([d.a, d.b]).toEqual([false, true]);
          }
        }
      });
    }
  }

  it('the lazyfree abort really differs where the table says (merged dirty/young, cont)', () => {
    const a = runScenario('per-pte', SCENARIOS.lazyfree!);
    const b = runScenario('mainline', SCENARIOS.lazyfree!);
    const raw = diffStates(a, b);
    expect(raw.length).toBeGreaterThan(0);
    for (const d of raw) expect(isAllowedDifference(d.path, 'per-pte', 'mainline', d)).toBe(true);
  });

  it('the checker sees a dirty bit a batch lost: fork of cccDccc… with the child\'s page 3 made clean under mainline is reported', () => {
    // The shape of the FPB_RESPECT_DIRTY bug (mm/memory.c:copy_present_ptes, 7.2.13): a batch that copies its first,
    // clean PTE onto page 3. A batch can only add a young/dirty bit (OR), so the table never allows this direction.
    const run = (policy: Policy) => {
      const e = new Engine({ policy, arch: 'x86', mthp: { '64K': 'always' } });
      const pid = e.createProcess();
      e.mmap(pid, { addr: A, len: 4 * K64 });
      e.write(pid, A, K64);
      e.madvise(pid, A, K64, 'free');
      e.write(pid, A + 0x3000, 0x1000);
      e.fork(pid);
      return e.dump();
    };
    const perPte = run('per-pte');
    const mainline = run('mainline');
    expect(diffStates(perPte, mainline, ['per-pte', 'mainline'])).toEqual([]);
    const buggy = structuredClone(mainline);
    const child = buggy.processes[1]!;
    const i = child.ptes.findIndex((p) => p.addr === `0x${(A + 0x3000).toString(16)}`);
    expect(child.ptes[i]!.dirty).toBe(true);
    child.ptes[i]!.dirty = false;
    expect(diffStates(perPte, buggy, ['per-pte', 'mainline'])).toEqual([{ path: `processes.1.ptes.${i}.dirty`, a: true, b: false }]);
  });
});

describe('ALLOWED_DIFFERENCES', () => {
  it('every row has a pattern, policies and a reason', () => {
    for (const r of ALLOWED_DIFFERENCES) {
      expect(r.path).toMatch(/^[a-z]/);
      expect(r.policies.length).toBeGreaterThan(0);
      expect(r.reason.length).toBeGreaterThan(20);
    }
  });
  it('pathMatches: * matches exactly one segment', () => {
    expect(pathMatches('processes.*.ptes.*.dirty', 'processes.0.ptes.12.dirty')).toBe(true);
    expect(pathMatches('processes.*.ptes.*.dirty', 'processes.0.ptes.12.young')).toBe(false);
    expect(pathMatches('stats.mthp.*.split_deferred', 'stats.mthp.64K.split_deferred')).toBe(true);
  });
  it('rows excuse only the paths and policies they name', () => {
    expect(isAllowedDifference('stats.mthp.64K.split_deferred', 'per-pte', 'batched')).toBe(true);
    // mainline unmaps a lazyfree folio one PTE at a time in a uffd-wp VMA (folio_unmap_pte_batch returns 1), so it is in the row
    expect(isAllowedDifference('stats.mthp.64K.split_deferred', 'mainline', 'batched')).toBe(true);
    expect(isAllowedDifference('stats.mthp.64K.split_deferred', 'batched', 'batched')).toBe(false);
    expect(isAllowedDifference('folios.3.flags.lru', 'per-pte', 'batched')).toBe(false);
    expect(isAllowedDifference('processes.0.ptes.1.write', 'per-pte', 'batched')).toBe(false);
  });
  it('young/dirty rows allow only what a batch can do: set the bit in the policy that batches more', () => {
    const set = { a: false, b: true };
    const cleared = { a: true, b: false };
    for (const bit of ['dirty', 'young']) {
      const path = `processes.0.ptes.3.${bit}`;
      expect(isAllowedDifference(path, 'per-pte', 'mainline', set), `${bit} per-pte→mainline set`).toBe(true);
      expect(isAllowedDifference(path, 'per-pte', 'mainline', cleared), `${bit} per-pte→mainline cleared`).toBe(false);
      expect(isAllowedDifference(path, 'mainline', 'batched', set), `${bit} mainline→batched set`).toBe(true);
      expect(isAllowedDifference(path, 'mainline', 'batched', cleared), `${bit} mainline→batched cleared`).toBe(false);
      expect(isAllowedDifference(path, 'batched', 'per-pte', cleared), `${bit} batched→per-pte`).toBe(true);
      expect(isAllowedDifference(path, 'batched', 'per-pte', set), `${bit} batched→per-pte reversed`).toBe(false);
    }
    expect(isAllowedDifference('folios.3.flags.dirty', 'per-pte', 'batched', set)).toBe(true);
    expect(isAllowedDifference('folios.3.flags.dirty', 'per-pte', 'batched', cleared)).toBe(false);
    // No row excuses a value that is not a bit a batch ORs.
    expect(isAllowedDifference('processes.0.ptes.3.dirty', 'per-pte', 'mainline', { a: false, b: 'x' })).toBe(false);
    expect(BATCHING_ORDER).toEqual(['per-pte', 'mainline', 'batched']);
  });
});

describe('fork of clean writable PTEs (arm64 pte_mkwrite_novma since Oct 2025)', () => {
  for (const policy of POLICIES) {
    it(`${policy}: the child's PTEs stay clean, and a lazyfree folio shared after fork is discarded by reclaim`, () => {
      // 32K: not a contpte block, so folio_pte_batch walks entries 1..7 and merges their WRITE into the first
      const e = new Engine({ policy, mthp: { '32K': 'always' } });
      const pid = e.createProcess();
      e.mmap(pid, { addr: A, len: 4 * K64 });
      e.write(pid, A, K64);
      e.madvise(pid, A, K64, 'free'); // clean and lazyfree: PTEs WRITE|RDONLY, PG_dirty and PG_swapbacked clear
      const child = e.fork(pid);
      const ptes = (p: number) => e.dump().processes.find((x) => x.pid === p)!.ptes;
      expect(ptes(child).map((p) => [p.kind, p.dirty, p.write])).toEqual(Array(16).fill(['present', false, false]));
      // try_to_unmap_one: a clean lazyfree folio with refcount == 1 + mapcount is discarded from both mms.
      e.reclaim({ kind: 'proactive' });
      expect(ptes(pid)).toEqual([]);
      expect(ptes(child)).toEqual([]);
      expect(e.dump().stats.vmstat.pglazyfreed).toBe(16);
      expect(e.checkInvariants().violations).toEqual([]);
    });
  }
});
