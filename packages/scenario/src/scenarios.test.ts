import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineAvailable, loadScenarioFile, POLICIES, runScenario, specScenarioFiles, stepKind, type ExpectArgs, type Scenario } from './index.js';

/*
 * scenarios/spec/: the 26 scenarios of unmap-engine.md §7, one file each.
 * They must load and validate now; running them needs @foliolab/unmap-engine
 * (see default-engine.ts), so the run test is skipped until it is bound.
 */

const files = specScenarioFiles();
const loaded = files.map((f) => [basename(f), loadScenarioFile(f)] as const);

describe('spec scenarios load and validate', () => {
  it('one file per §7 scenario, numbered 01–26', () => {
    expect(files.map((f) => basename(f).slice(0, 3))).toEqual(Array.from({ length: 26 }, (_, i) => `${String(i + 1).padStart(2, '0')}-`));
  });

  it.each(loaded)('%s: title, spec reference, ASCII map, at least one expectation', (file, s) => {
    const n = Number(file.slice(0, 2));
    expect(s.name).toMatch(new RegExp(`^§7\\.${n} `));
    expect(s.spec).toMatch(new RegExp(`^unmap-engine §7\\.${n} \\[[KI]`));
    const text = readFileSync(files.find((f) => basename(f) === file)!, 'utf8');
    expect(text).toMatch(/^# unmap-engine §7\.\d+/);
    expect(text).toContain('#   0123456789abcdef');
    const expects = s.steps.filter((st) => stepKind(st) === 'expect');
    expect(expects.length).toBeGreaterThan(0);
    expect(expects.some((st) => (st as { expect: ExpectArgs }).expect.invariants === 'ok')).toBe(true);
  });

  it('§7.2 and §7.3 carry the §8 worked example’s page-table counts (one-by-one vs batched)', () => {
    const events = (s: Scenario, policy: string): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      for (const st of s.steps) {
        if (stepKind(st) === 'expect' && st.when?.policy?.includes(policy as 'batched') && st.when.arch !== undefined) Object.assign(out, (st as { expect: ExpectArgs }).expect.events);
      }
      return out;
    };
    const today = loaded.find(([f]) => f.startsWith('02-'))![1];
    const batched = loaded.find(([f]) => f.startsWith('03-'))![1];
    // The pageout step's madvise walk changes no PTE: madvise_cold_or_pageout_pte_range clears young only for
    // MADV_COLD (mm/madvise.c, 7.2.13: `if (!pageout && pte_young(ptent))`), so its mmu_gather flushes nothing
    // and the step's page-table events are §8's try_to_unmap columns alone, without any CMPXCHG.
    expect(events(today, 'mainline')).toEqual({
      PTE_XCHG: 32, PTE_WRITE: 32, PTE_CMPXCHG: 0, CONTPTE_UNFOLD: 1, PVMW_STEP: 16, TLBI_VA: 32, DSB_ISHST: 17, DSB_ISH: 2,
    });
    expect(events(batched, 'batched')).toEqual({
      PTE_XCHG: 16, PTE_WRITE: 16, PTE_CMPXCHG: 0, CONTPTE_UNFOLD: 0, TLBI_VA: 16, DSB_ISHST: 1, DSB_ISH: 1,
    });
  });
});

describe('spec scenarios hold under every policy (needs the engine)', () => {
  for (const [file, s] of loaded) {
    for (const policy of POLICIES) {
      it.skipIf(!engineAvailable)(`${file} under ${policy}: every expectation and invariant holds`, () => {
        const r = runScenario(s, { policy });
        expect(r.failures).toEqual([]);
        expect(r.ok).toBe(true);
      });
    }
  }
});
