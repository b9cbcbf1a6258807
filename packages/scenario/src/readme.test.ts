import { expect, it } from 'vitest';
import { loadScenarioFile, parseScenario, ScenarioError, specScenarioFiles } from './index.js';

it('the README example runs and prints what it says', () => {
  const s = parseScenario(
    `
name: pageout one 64K folio
config: { policy: batched, mthp: { 64K: always } }
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, addr: 0x40000000, len: 64K, as: buf }
  - write: { process: parent, addr: buf, len: 64K }
  - pageout: { process: parent, addr: buf, len: 64K }
  - expect:
      state:
        ptes[parent][buf..buf+64K].kind: { all: swap }
        swap.slots[*].count: { all: 1 }
      events: { RMAP_CALL: 1 }
      invariants: ok
`,
    'demo.yaml',
  );
  expect(s.steps.length).toBe(4);
  let message = '';
  try {
    parseScenario('name: x\nprocesses: [{ name: p }]\nsteps:\n  - mmap: { process: p, len: 64Q }\n', 'bad.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) message = e.message;
  }
  expect(message).toBe('bad.yaml:4:30: steps[0].mmap.len: bad size "64Q": expected bytes, or a number with a K, M, G or T suffix (e.g. 64K) or hex (0x10000)');
  expect(specScenarioFiles().map((f) => loadScenarioFile(f).name).length).toBe(26);
});
