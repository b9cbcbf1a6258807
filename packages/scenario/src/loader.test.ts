import { describe, expect, it } from 'vitest';
import { checkScenario, loadScenarioFile, parseScenario, ScenarioError, scenarioSource, validateScenario } from './index.js';

/** The message lines of a ScenarioError (what the CLI prints, exit code 2). */
function errorsOf(text: string, file = 's.yaml'): string[] {
  try {
    parseScenario(text, file);
  } catch (e) {
    if (e instanceof ScenarioError) return e.message.split('\n');
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

const HEAD = `name: t
processes:
  - name: parent
steps:
`;

/*
 * Malformed scenarios, each with the exact diagnostics it must produce.
 * Line/col are 1-based and point at the offending key (unknown keys) or value.
 */
const CASES: [string, string, string[]][] = [
  ['YAML syntax: unclosed flow sequence', `name: t\nprocesses: [{ name: parent }\nsteps: []\n`, ['s.yaml:3:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]']],
  ['YAML duplicate key', `${HEAD}  - mmap: { process: parent, len: 64K, len: 4K }\n`, ['s.yaml:5:40: YAML syntax: Map keys must be unique']],
  ['empty file', ``, ['s.yaml:1:1: the file is empty: a scenario needs `name`, `processes` and `steps`']],
  ['top level is a list', `- a\n- b\n`, ['s.yaml:1:1: (top level): expected a mapping, got a list']],
  ['unknown top-level key with a near miss', `${HEAD}  - exit: { process: parent }\ndescrption: x\n`, ['s.yaml:6:1: unknown key `descrption` in the scenario; did you mean `description`?']],
  ['unknown step kind with a near miss', `${HEAD}  - mmpa: { process: parent, len: 64K }\n`, ['s.yaml:5:5: unknown step kind or key `mmpa` in `steps[0]`; did you mean `mmap`?']],
  ['unknown step argument', `${HEAD}  - mmap: { process: parent, lne: 64K }\n`, ['s.yaml:5:11: `steps[0].mmap` is missing the required key `len`', 's.yaml:5:30: unknown key `lne` in `steps[0].mmap`; did you mean `len`?']],
  ['step without a kind', `${HEAD}  - name: nothing\n`, ['s.yaml:5:5: steps[0]: the step has no kind; expected one of mmap, write, read, fork, exit, munmap, mremap, mprotect, madvise, pageout, reclaim, pin, unpin, uffdwp, poison, mlock, munlock, deviceExclusive, inject, expect']],
  ['step with two kinds', `${HEAD}  - exit: { process: parent }\n    fork: { process: parent, child: c }\n`, ['s.yaml:5:5: steps[0]: a step does one thing, but this one has 2 kinds (`exit`, `fork`)']],
  ['bad size 64Q', `${HEAD}  - mmap: { process: parent, len: 64Q }\n`, ['s.yaml:5:35: steps[0].mmap.len: bad size "64Q": expected bytes, or a number with a K, M, G or T suffix (e.g. 64K) or hex (0x10000)']],
  ['wrong type', `${HEAD}  - mmap: { process: parent, len: 64K, locked: yes }\n`, ['s.yaml:5:48: steps[0].mmap.locked: expected a boolean, got the string "yes"']],
  ['enum with a near miss', `${HEAD}  - mmap: { process: parent, len: 64K, as: buf }\n  - madvise: { process: parent, addr: buf, len: 64K, advice: pagout }\n`, ['s.yaml:6:62: steps[1].madvise.advice: "pagout" is not one of dontneed, free, pageout, cold, dontfork, dofork; did you mean `pageout`?']],
  ['unknown process', `${HEAD}  - mmap: { process: parnt, len: 64K }\n`, ['s.yaml:5:22: steps[0].mmap.process: unknown process `parnt`; did you mean `parent`? (known here: parent)']],
  ['unknown bound name', `${HEAD}  - mmap: { process: parent, len: 64K, as: buf }\n  - write: { process: parent, addr: bfu+4K }\n`, ['s.yaml:6:37: steps[1].write.addr: unknown name `bfu` in address "bfu+4K"; did you mean `buf`? (bound so far: buf)']],
  ['name used before it is bound', `${HEAD}  - write: { process: parent, addr: buf }\n  - mmap: { process: parent, len: 64K, as: buf }\n`, ['s.yaml:5:37: steps[0].write.addr: unknown name `buf` in address "buf" (bound so far: none)']],
  ['duplicate names', `name: t\nprocesses: [{ name: parent }, { name: parent }]\nsteps:\n  - mmap: { process: parent, len: 4K, as: b }\n  - mmap: { process: parent, len: 4K, as: b }\n  - fork: { process: parent, child: parent }\n`, ['s.yaml:2:39: processes[1].name: duplicate process name `parent`', 's.yaml:5:43: steps[1].mmap.as: duplicate name `b`: it is already bound by an earlier step', 's.yaml:6:37: steps[2].fork.child: duplicate process name `parent`']],
  ['len not a multiple of 4K', `${HEAD}  - mmap: { process: parent, len: 6K }\n`, ['s.yaml:5:35: steps[0].mmap.len: length "6K" (6144 bytes) is not a multiple of 4K']],
  ['zero length', `${HEAD}  - mmap: { process: parent, len: 0 }\n`, ['s.yaml:5:35: steps[0].mmap.len: length must not be 0']],
  ['unaligned range start', `${HEAD}  - mmap: { process: parent, addr: 0x40000100, len: 4K }\n`, ['s.yaml:5:36: steps[0].mmap.addr: address "0x40000100" is not page aligned (offset 1073742080 is not a multiple of 4K)']],
  ['missing required top-level keys', `name: t\n`, ['s.yaml:1:1: the scenario is missing the required key `processes`', 's.yaml:1:1: the scenario is missing the required key `steps`']],
  ['config: unknown key, bad enum, memory not a multiple of 2M', `name: t\nconfig: { polcy: batched, arch: arm64, memory: 3M }\nprocesses: [{ name: p }]\nsteps: [{ exit: { process: p } }]\n`, ['s.yaml:2:11: unknown key `polcy` in `config`; did you mean `policy`?', 's.yaml:2:33: config.arch: "arm64" is not one of arm64-contpte, arm64-nocont, x86', 's.yaml:2:48: config.memory: "3M" (3M) is not a multiple of 2M']],
  ['process used after exit', `${HEAD}  - exit: { process: parent }\n  - mmap: { process: parent, len: 4K }\n`, ['s.yaml:6:22: steps[1].mmap.process: process `parent` has exited by this step']],
  ['unpin of an unknown handle', `${HEAD}  - unpin: { handle: dma }\n`, ['s.yaml:5:22: steps[0].unpin.handle: unknown pin handle `dma` (pin with `as: dma` first)']],
  ['expect: bad path root, unknown matcher, unknown event', `${HEAD}  - exit: { process: parent }\n  - expect:\n      state:\n        proceses[parent].rss.anon: 0\n        folios: { lenghtOf: 0 }\n      events: { PTE_REDA: 1 }\n`, ['s.yaml:8:9: steps[1].expect.state: bad path "proceses[parent].rss.anon": unknown root `proceses`; did you mean `processes`? (roots: schema, config, processes, folios, swap, stats, ledger, invariants, ptes, folioAt, pageAt)', 's.yaml:9:19: unknown key `lenghtOf` in `steps[1].expect.state.folios`; did you mean `lengthOf`?', 's.yaml:10:17: unknown key `PTE_REDA` in `steps[1].expect.events`; did you mean `PTE_READ`?']],
  ['expect: path names an unknown process and an unbound name', `${HEAD}  - mmap: { process: parent, len: 4K, as: buf }\n  - expect:\n      state:\n        ptes[child][buf].kind: none\n        ptes[parent][bf].kind: none\n`, ['s.yaml:8:9: steps[1].expect.state: path "ptes[child][buf].kind": unknown process `child`', 's.yaml:9:9: steps[1].expect.state: path "ptes[parent][bf].kind": unknown name `bf`; did you mean `buf`?']],
  ['events with no earlier step', `${HEAD}  - expect: { events: { PTE_READ: 1 } }\n`, ['s.yaml:5:15: steps[0].expect.events: there is no earlier step whose events to check']],
  ['a step with when cannot bind', `${HEAD}  - when: { policy: [batched] }\n    mmap: { process: parent, len: 4K, as: buf }\n`, ['s.yaml:5:5: steps[0]: a step with `when` cannot bind names (`as`/`child`): later steps would not know them under other policies']],
  ['huge size', `${HEAD}  - mmap: { process: parent, len: 99999999999T }\n`, ['s.yaml:5:35: steps[0].mmap.len: size "99999999999T" is too large (more than 2^53 bytes)']],
];

describe('loader errors: file:line:col: message, every problem collected', () => {
  it.each(CASES)('%s', (_title, text, expected) => {
    expect(errorsOf(text)).toEqual(expected);
  });

  it('has at least 15 malformed cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(15);
  });

  it('ScenarioError carries the diagnostics as data and never a stack in its message', () => {
    try {
      parseScenario(`${HEAD}  - mmap: { process: parnt, len: 6K }\n`, 'x.yml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      const err = e as ScenarioError;
      expect(err.code).toBe('EINVAL');
      expect(err.name).toBe('ScenarioError');
      expect(err.diagnostics).toEqual([
        { file: 'x.yml', line: 5, col: 22, message: 'steps[0].mmap.process: unknown process `parnt`; did you mean `parent`? (known here: parent)' },
        { file: 'x.yml', line: 5, col: 34, message: 'steps[0].mmap.len: length "6K" (6144 bytes) is not a multiple of 4K' },
      ]);
      expect(err.message).not.toMatch(/\n\s+at /);
    }
  });
});

describe('loading valid scenarios', () => {
  const yaml = `name: ok
config: { memory: 64M, swap: 32M, mthp: { 64K: always }, limits: { maxMemory: 1G } }
processes: [{ name: parent }]
steps:
  - mmap: { process: parent, addr: 0x40000000, len: 64K, as: buf }
  - write: { process: parent, addr: buf+4K, len: 4K }
  - expect:
      state:
        ptes[parent][buf+4K].kind: present
`;

  it('normalises config sizes to bytes and keeps steps as written', () => {
    const s = parseScenario(yaml, 'ok.yaml');
    expect(s.config).toEqual({ memory: 64 * 2 ** 20, swap: 32 * 2 ** 20, mthp: { '64K': 'always' }, limits: { maxMemory: 2 ** 30 } });
    expect(s.steps[0]).toEqual({ mmap: { process: 'parent', addr: 0x4000_0000, len: '64K', as: 'buf' } });
  });

  it('remembers positions of steps and expectation keys', () => {
    const s = parseScenario(yaml, 'ok.yaml');
    const src = scenarioSource(s)!;
    expect(src.locate(['steps', 1])).toEqual({ file: 'ok.yaml', line: 6, col: 5 });
    expect(src.locate(['steps', 2, 'expect', 'state', 'ptes[parent][buf+4K].kind'], 'key')).toEqual({ file: 'ok.yaml', line: 9, col: 9 });
  });

  it('accepts JSON with the same positions machinery', () => {
    const json = JSON.stringify({ name: 'j', processes: [{ name: 'p' }], steps: [{ mmap: { process: 'p', len: '4K', lne: 1 } }] }, null, 2);
    expect(errorsOf(json, 's.json')).toEqual(['s.json:13:9: unknown key `lne` in `steps[0].mmap`; did you mean `len`?']);
  });

  it('validateScenario / checkScenario work on objects built in code (no positions)', () => {
    expect(checkScenario({ name: 'c', processes: [{ name: 'p' }], steps: [{ exit: { process: 'q' } }] })).toEqual([
      { file: '<scenario>', line: 0, col: 0, message: 'steps[0].exit.process: unknown process `q`; did you mean `p`? (known here: p)' },
    ]);
    expect(() => validateScenario({ name: 'c', processes: [{ name: 'p' }], steps: [] })).toThrow('<scenario>: steps: needs at least 1 item(s)');
    expect(validateScenario({ name: 'c', processes: [{ name: 'p' }], steps: [{ exit: { process: 'p' } }] }).name).toBe('c');
  });

  it('a missing file is a diagnostic, not a crash', () => {
    expect(() => loadScenarioFile('/nonexistent/x.yaml')).toThrow('/nonexistent/x.yaml: cannot read the file: ENOENT');
  });
});

it('an unknown step kind with no near miss lists the kinds', () => {
  expect(errorsOf(`${HEAD}  - frobnicate: {}\n`)).toEqual([
    's.yaml:5:5: unknown step kind or key `frobnicate` in `steps[0]` (expected one of: mmap, write, read, fork, exit, munmap, mremap, mprotect, madvise, pageout, reclaim, pin, unpin, uffdwp, poison, mlock, munlock, deviceExclusive, inject, expect, name, when)',
  ]);
});
