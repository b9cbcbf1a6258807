import { describe, expect, it } from 'vitest';
import { checkScenario, parseScenario, randomScenario, runScenario, scenarioYaml } from './index.js';

describe('randomScenario', () => {
  it('is a function of the seed', () => {
    expect(scenarioYaml(randomScenario(7))).toBe(scenarioYaml(randomScenario(7)));
    expect(scenarioYaml(randomScenario(7))).not.toBe(scenarioYaml(randomScenario(8)));
  });

  it('writes valid scenarios that round-trip through YAML', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const s = randomScenario(seed);
      expect(checkScenario(s), `seed ${seed}`).toEqual([]);
      expect(parseScenario(scenarioYaml(s), `r${seed}.yaml`)).toEqual(s);
    }
  });

  it('oracle scenarios contain only steps a real process can make', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const kinds = new Set(randomScenario(seed).steps.map((st) => Object.keys(st).find((k) => k !== 'name' && k !== 'when')));
      expect(kinds.has('inject') || kinds.has('deviceExclusive'), `seed ${seed}`).toBe(false);
    }
    const wide = Array.from({ length: 60 }, (_, i) => randomScenario(i, { oracle: false }).steps).flat();
    expect(wide.some((st) => 'inject' in st)).toBe(true);
  });

  it('most runs keep every invariant to their last step', () => {
    let full = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const r = runScenario(randomScenario(seed, { steps: 16 }));
      // a rejected step ends a run (bad input is recorded, not thrown); nothing else may fail
      expect(r.failures.filter((f) => r.error === undefined || !f.includes(r.error.message)), `seed ${seed}`).toEqual([]);
      if (r.error === undefined) full++;
    }
    expect(full).toBeGreaterThanOrEqual(8);
  }, 60_000);
});
