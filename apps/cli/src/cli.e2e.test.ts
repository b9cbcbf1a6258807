import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_NAMES } from '@foliolab/ledger';
import { engineAvailable, SCENARIO_SCHEMA, specScenarioFiles, STATE_SCHEMA, validateStateDump } from '@foliolab/scenario';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from './engine.js';
import { PAGEOUT_SCHEMA } from './pageout.js';
import { buildCli, CLI_DIR, runCli, type BuiltCli, type CliResult } from './test-cli.js';

/*
 * End to end: the binary is built once (tsup, workspace packages from
 * source) and spawned with node. Issue 6: every exit code (0 ok, 1 a check
 * failed, 2 bad input), the malformed-scenario corpus with its exact
 * messages, --json outputs validated, and — once @foliolab/unmap-engine can
 * be loaded — the headline table, pageout --json, run/compare/explain on the
 * spec scenarios and a trace file that parses as trace-event JSON.
 */

const haveEngine = engineAvailable || (await loadEngine()) !== null;

let cli: BuiltCli;
const run = (args: readonly string[], env?: Record<string, string | undefined>): Promise<CliResult> => runCli(cli.bin, args, env);

beforeAll(async () => {
  cli = await buildCli();
}, 60_000);

afterAll(() => cli?.cleanup());

const pkg = JSON.parse(readFileSync(join(CLI_DIR, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const spec = (prefix: string): string => specScenarioFiles().find((f) => f.includes(`/${prefix}`))!;
const compileSchema = (schema: object): ReturnType<Ajv2020['compile']> => new Ajv2020({ allErrors: true, strict: false }).compile(schema);
const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);

describe('program: help, version, unknown input (exit codes 0 and 2)', () => {
  it('--version prints the package version, exit 0', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(pkg.bin).toEqual({ foliolab: './dist/foliolab.js' });
  });

  it('--help lists every command and the exit codes, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['pageout', 'run', 'compare', 'explain', 'race', 'schema']) expect(r.stdout).toContain(c);
    expect(r.stdout).toContain('Exit codes: 0 ok; 1 a check failed');
  });

  it('no command: help on stderr, exit 2', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: foliolab');
  });

  it('an unknown command is bad input with a suggestion, exit 2', async () => {
    const r = await run(['compre', 'x.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'compre'");
    expect(r.stderr).toContain('compare');
  });

  it('an unknown flag is bad input, exit 2', async () => {
    const r = await run(['race', '--presett', 'hwpoison']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--presett'");
    expect(r.stderr).toContain('--preset');
  });

  it('a missing required flag and a bad choice are bad input, exit 2', async () => {
    const a = await run(['explain', 'test/fixtures/engine/failing-expect.yaml']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("required option '--step <n>' not specified");
    const b = await run(['schema', 'scenarios']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("error: command-argument value 'scenarios' is invalid for argument 'which'. Allowed choices are scenario, state, pageout.");
  });
});

describe('race: the folio-flags explorer rendered (seed 004)', () => {
  it('partially-mapped: 3 interleavings, 1 loses the PG_anon_exclusive clear; exploring exits 0', async () => {
    const r = await run(['race']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('interleavings: 3; 1 of 3 interleaving(s) lose an update: PG_anon_exclusive');
    expect(r.stdout).toContain('cpu0 load  page[1] __folio_set_partially_mapped');
    expect(r.stdout).toContain("lost: cpu1's clear of PG_anon_exclusive on page[1]");
  });

  it('the fixed preset loses nothing', async () => {
    const r = await run(['race', '--preset', 'partially-mapped-fixed']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no interleaving loses an update');
    expect(r.stdout).not.toContain('first losing interleaving');
  });

  it('--json is the explorer report and nothing else', async () => {
    const r = await run(['race', '--preset', 'hwpoison', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { schema: string; preset: { name: string }; report: { interleavings: number; losing: number; lostFlags: string[] } };
    expect(j.schema).toBe('foliolab.race/v1');
    expect(j.preset.name).toBe('hwpoison');
    expect(j.report.losing).toBeGreaterThan(0);
    expect(j.report.losing).toBeLessThan(j.report.interleavings);
  });

  it('--list names the presets; an unknown preset is exit 2 with the list', async () => {
    const l = await run(['race', '--list']);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('partially-mapped-hwpoison-fixed');
    const u = await run(['race', '--preset', 'nope']);
    expect(u.code).toBe(2);
    expect(u.stderr).toBe('foliolab: race: unknown preset "nope"; known: partially-mapped, partially-mapped-fixed, partially-mapped-hwpoison, partially-mapped-hwpoison-fixed, hwpoison, hwpoison-fixed\n');
  });

  it('colour: on with FORCE_COLOR on a pipe, off with NO_COLOR or --no-color, off by default on a pipe', async () => {
    const esc = new RegExp(String.fromCharCode(27) + '\\[');
    expect((await run(['race'], { NO_COLOR: undefined, FORCE_COLOR: '1' })).stdout).toMatch(esc);
    expect((await run(['race'], { NO_COLOR: '1', FORCE_COLOR: '1' })).stdout).not.toMatch(esc);
    expect((await run(['race', '--no-color'], { NO_COLOR: undefined, FORCE_COLOR: '1' })).stdout).not.toMatch(esc);
    expect((await run(['race'], { NO_COLOR: undefined })).stdout).not.toMatch(esc);
  });
});

describe('schema: the JSON Schemas', () => {
  it.each([
    ['scenario', SCENARIO_SCHEMA],
    ['state', STATE_SCHEMA],
    ['pageout', PAGEOUT_SCHEMA],
  ] as const)('schema %s prints the schema (it compiles), exit 0', async (which, schema) => {
    const r = await run(['schema', which]);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as object;
    expect(printed).toEqual(JSON.parse(JSON.stringify(schema)));
    expect(() => compileSchema(printed)).not.toThrow();
  });
});

describe('bad input: flags and limits (exit 2, one clear message, no engine needed)', () => {
  it.each([
    [['pageout', '--size', '64Q'], 'foliolab: pageout: --size "64Q": bad size "64Q": expected bytes as a number or a string like 4K, 64K, 2M, 1G or 0x10000\n'],
    [['pageout', '--folio', '8K'], 'foliolab: pageout: --folio 8K is not a folio size anonymous memory uses; one of 4K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M (no 8K: anon never uses order 1)\n'],
    [['pageout', '--size', '100K'], 'foliolab: pageout: --size 100K must be a non-zero multiple of the folio size 64K\n'],
    [['pageout', '--arch', 'arm65'], 'foliolab: pageout: --arch "arm65" is not one of arm64, x86, all, arm64-contpte, arm64-nocont, x86\n'],
    [['pageout', '--policy', 'fast'], 'foliolab: pageout: --policy "fast" is not one of per-pte, mainline, batched, all\n'],
    [['pageout', '--max-memory', '256M'], 'foliolab: pageout: --size 256M needs 544M of simulated memory (twice the range plus 32M), more than the limit of 256M; raise it with --max-memory\n'],
    [['run', 'test/fixtures/engine/failing-expect.yaml', '--max-steps', '2'], 'test/fixtures/engine/failing-expect.yaml:5:1: steps: 3 steps exceed the step limit of 2 (raise limits.maxSteps)\n'],
    [
      ['run', 'test/fixtures/engine/failing-expect.yaml', '--max-memory', '32M'],
      // no config.memory in the file: the default 64M (and swap = memory), located at `config`
      'test/fixtures/engine/failing-expect.yaml:3:9: config.memory: 64M of simulated memory exceeds the memory limit of 32M (raise limits.maxMemory)\n' +
        'test/fixtures/engine/failing-expect.yaml:3:9: config.swap: 64M of swap exceeds the memory limit of 32M (raise limits.maxMemory)\n',
    ],
    [['run', 'test/fixtures/engine/failing-expect.yaml', '--max-steps', 'many'], 'foliolab: run: --max-steps "many" must be a positive integer\n'],
    [['run', 'test/fixtures/engine/failing-expect.yaml', '--policy', 'fast'], 'foliolab: run: --policy "fast" is not one of per-pte, mainline, batched\n'],
    [['compare', 'test/fixtures/engine/failing-expect.yaml', '--arch', 'sparc'], 'foliolab: compare: --arch "sparc" is not one of arm64, arm64-contpte, arm64-nocont, x86\n'],
    [['explain', 'test/fixtures/engine/failing-expect.yaml', '--step', '3'], 'foliolab: explain: --step 3 is past the last step: the scenario has 3 step(s), 0–2\n'],
    [['run', 'no/such/file.yaml'], 'no/such/file.yaml: cannot read the file: ENOENT\n'],
  ] as const)('%j', async (args, message) => {
    const r = await run(args);
    expect(r.stderr).toBe(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });
});

const BAD_DIR = join(CLI_DIR, 'test/fixtures/bad');
const badFiles = readdirSync(BAD_DIR)
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .sort();

describe('malformed scenarios: path:line:col: message, exit 2, never a stack trace', () => {
  it('the corpus has at least 30 files, each with its expected message', () => {
    expect(badFiles.length).toBeGreaterThanOrEqual(30);
    for (const f of badFiles) expect(existsSync(join(BAD_DIR, f.replace(/\.[^.]+$/, '.expected'))), f).toBe(true);
  });

  it('check: every file at once — each file\'s exact diagnostics, in order, exit 2', async () => {
    const rels = badFiles.map((f) => `test/fixtures/bad/${f}`);
    const expected = badFiles.map((f) => readFileSync(join(BAD_DIR, f.replace(/\.[^.]+$/, '.expected')), 'utf8')).join('');
    const r = await run(['check', ...rels]);
    expect(r.stderr).toBe(expected);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^test\/fixtures\/bad\/[\w.-]+:\d+:\d+: \S/);
    noStack(r.stderr);
    const j = await run(['check', '--json', ...rels, 'test/fixtures/engine/failing-expect.yaml']);
    expect(j.code).toBe(2);
    const out = JSON.parse(j.stdout) as { ok: boolean; files: { file: string; ok: boolean; diagnostics: { line: number; col: number }[] }[] };
    expect(out.ok).toBe(false);
    expect(out.files.map((f) => f.ok)).toEqual([...badFiles.map(() => false), true]);
    expect(out.files.slice(0, -1).every((f) => f.diagnostics.length > 0 && f.diagnostics.every((d) => d.line > 0 && d.col > 0))).toBe(true);
  });

  // `run` itself, on a sample of the corpus (one of each kind: YAML syntax, schema, semantic, limits)
  describe.concurrent('run prints the same message', () => {
    it.each(['01-yaml-unclosed-flow.yaml', '14-unknown-step-arg.yaml', '25-unbound-name.yaml', '39-memory-over-limit.yaml', '41-json-unknown-key.json'])('%s', async (f) => {
      const rel = `test/fixtures/bad/${f}`;
      const r = await run(['run', rel]);
      expect(r.stderr).toBe(readFileSync(join(BAD_DIR, f.replace(/\.[^.]+$/, '.expected')), 'utf8'));
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      noStack(r.stderr);
    });
  });

  it('compare and explain report the same diagnostics (loading comes first)', async () => {
    const rel = 'test/fixtures/bad/24-unknown-process.yaml';
    const expected = readFileSync(join(BAD_DIR, '24-unknown-process.expected'), 'utf8');
    for (const args of [['compare', rel], ['explain', rel, '--step', '0'], ['run', rel, '--json']]) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(expected);
      expect(r.stdout).toBe('');
    }
  });
});

describe.skipIf(haveEngine)('without the engine', () => {
  it('pageout and a valid scenario say "engine not available", exit 2', async () => {
    const p = await run(['pageout', '--size', '2M']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/^foliolab: pageout: engine not available/);
    const r = await run(['run', spec('01-')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^foliolab: run: engine not available/);
  });
});

describe('with the engine', () => {
  it.skipIf(!haveEngine)('pageout: the headline table — one table per arch, ratios beside the published ones, invariants ok', async () => {
    const r = await run(['pageout']);
    expect(r.stderr).toBe(''); // no TTY: no progress line
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('MADV_PAGEOUT of 256M in 64K folios (4,096 folio(s), 65,536 PTEs');
    for (const t of ['arm64-contpte (prices: PRICES_ARM64', 'arm64-nocont', 'x86 (prices: PRICES_X86']) expect(out).toContain(t);
    expect(out).toMatch(/\s+per-pte\s+mainline\s+batched/);
    expect(out).toContain('modeled ms');
    expect(out).toContain('wall ms (simulation)');
    expect(out).toContain('published 0.466 (37.4 → 17.4 ms, Linux VM on Apple M3, A1)');
    expect(out).toContain('published 0.944 (55.0 → 51.9 ms, bare-metal x86, A1)');
    // §8: mainline unfolds every contpte block, batched never does
    expect(out).toMatch(/CONTPTE_UNFOLD\s+4,096\s+4,096\s+0/);
    expect(out.trimEnd().split('\n').pop()).toBe('invariants and folio sizes: ok');
  });

  it.skipIf(!haveEngine)('pageout --json: exactly the foliolab.pageout/v1 shape, validated by its schema', async () => {
    const r = await run(['pageout', '--size', '4M', '--arch', 'arm64,x86', '--json', '--verify']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      schema: string;
      config: { size: string; folio: string; nrFolios: number };
      runs: { arch: string; policy: string; events: Record<string, number>; modeledNs: number; wallMs: number; invariants: { ok: boolean; violations: unknown[] }; lost: number; folios: number }[];
      ratios: { arch: string; modeled: number; published: { ratio: number } | null }[];
    };
    const validate = compileSchema(PAGEOUT_SCHEMA);
    expect(validate(j), JSON.stringify(validate.errors)).toBe(true);
    expect(j.schema).toBe('foliolab.pageout/v1');
    expect(j.config).toMatchObject({ size: '4M', folio: '64K', nrFolios: 64 });
    expect(j.runs.map((x) => `${x.arch}/${x.policy}`)).toEqual([
      'arm64-contpte/per-pte',
      'arm64-contpte/mainline',
      'arm64-contpte/batched',
      'x86/per-pte',
      'x86/mainline',
      'x86/batched',
    ]);
    for (const x of j.runs) {
      expect(Object.keys(x.events).every((e) => (EVENT_NAMES as readonly string[]).includes(e))).toBe(true);
      expect(x.invariants).toEqual({ ok: true, violations: [] });
      expect(x.lost).toBe(0);
      expect(x.folios).toBe(64);
      expect(x.modeledNs).toBeGreaterThan(0);
    }
    const arm = j.runs.filter((x) => x.arch === 'arm64-contpte');
    // pagetable-contpte-pvmw.md §8: 32 TLBIs per 64K folio one-by-one, 16 batched (no TLBIRANGE)
    expect(arm.map((x) => x.events.TLBI_VA)).toEqual([64 * 32, 64 * 32, 64 * 16]);
    expect(j.ratios.find((x) => x.arch === 'arm64-contpte')!.published!.ratio).toBeCloseTo(17420282 / 37401913, 6);
    expect(j.ratios.find((x) => x.arch === 'x86')!.published!.ratio).toBeCloseTo(51930795 / 54986286, 6);
  });

  it.skipIf(!haveEngine)('run: §7.1 fault-in passes (exit 0); --json, --dump (schema-valid) and --trace (trace-event JSON)', async () => {
    const dir = join(cli.dir, 'run-out');
    const dump = join(dir, 'state.json');
    const trace = join(dir, 'trace.json');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const r = await run(['run', spec('01-'), '--json', '--dump', dump, '--trace', trace]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { schema: string; ok: boolean; steps: { kind: string; ledgerDelta: Record<string, number> }[]; modeledNs: number };
    expect(j.schema).toBe('foliolab.run/v1');
    expect(j.ok).toBe(true);
    expect(j.steps.length).toBeGreaterThan(0);
    const state = JSON.parse(readFileSync(dump, 'utf8')) as unknown;
    expect(validateStateDump(state)).toEqual([]);
    const t = JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; ph: string; ts: number; pid: number; tid: number; dur?: number }[] };
    expect(Array.isArray(t.traceEvents)).toBe(true);
    expect(t.traceEvents.length).toBeGreaterThan(10);
    for (const e of t.traceEvents) {
      expect(typeof e.name).toBe('string');
      expect(['B', 'E', 'X', 'i', 'M', 'C']).toContain(e.ph);
      expect(Number.isFinite(e.ts)).toBe(true);
      expect(Number.isInteger(e.pid) && Number.isInteger(e.tid)).toBe(true);
      if (e.ph === 'X') expect(e.dur).toBeGreaterThanOrEqual(0);
    }
    const spans = t.traceEvents.filter((e) => e.ph === 'B').map((e) => e.name);
    expect(spans).toContain('write');
    expect(t.traceEvents.filter((e) => e.ph === 'B').length).toBe(t.traceEvents.filter((e) => e.ph === 'E').length);
  });

  it.skipIf(!haveEngine)('run: a failed expectation is exit 1; a step the engine rejects is exit 2 with path:line:col', async () => {
    const f = await run(['run', 'test/fixtures/engine/failing-expect.yaml']);
    expect(f.code).toBe(1);
    expect(f.stdout).toContain('test/fixtures/engine/failing-expect.yaml:8:5: step 2 (expect): processes[parent].rss.anon: expected 15, got 16');
    const b = await run(['run', 'test/fixtures/engine/rejected-step.yaml']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^test\/fixtures\/engine\/rejected-step\.yaml:7:5: step 1 \(write parent 0x50000000 4K\): /);
    noStack(b.stderr);
  });

  it.skipIf(!haveEngine)('compare: §7.1 fault-in is equivalent under the three policies (exit 0); --json parses', async () => {
    const h = await run(['compare', spec('01-')]);
    expect(h.stdout).toMatch(/^§7\.1 .*: equivalent/);
    expect(h.stdout).toMatch(/event\s+per-pte\s+mainline\s+batched/);
    expect(h.code).toBe(0);
    const r = await run(['compare', spec('01-'), '--json']);
    const j = JSON.parse(r.stdout) as { schema: string; equivalent: boolean; perPolicy: Record<string, { ok: boolean }>; modeledNs: Record<string, number> };
    expect(j.schema).toBe('foliolab.compare/v1');
    expect(j.equivalent).toBe(true);
    expect(Object.keys(j.perPolicy)).toEqual(['per-pte', 'mainline', 'batched']);
    expect(Object.keys(j.modeledNs)).toEqual(['per-pte', 'mainline', 'batched']);
  });

  it.skipIf(!haveEngine)('explain: §7.2 MADV_PAGEOUT step — 16 PTEs become exclusive swap entries, the folio is freed, RSS moves', async () => {
    const r = await run(['explain', spec('02-'), '--step', '3']);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/0x40000000–0x4000ffff \(16 PTEs\): unmapped: swap entry at offset \d+–\d+ \(type 0, swp-exclusive\) replaces pfn \d+–\d+ \(writable, dirty, young, PTE_CONT\)/);
    expect(out).toMatch(/folio pfn \d+–\d+ \(order 4, 64K\): freed/);
    expect(out).toContain('MM_ANONPAGES 16 → 0 (−16)');
    expect(out).toContain('MM_SWAPENTS 0 → 16 (+16)');
    expect(out).toMatch(/swap offsets \d+–\d+ \(16 slots\): allocated: count 1, not in the swap cache/);
    const one = await run(['explain', spec('02-'), '--step', '3', '--pte', 'buf+4K', '--json']);
    expect(one.code).toBe(0);
    const j = JSON.parse(one.stdout) as { schema: string; pte: string; changes: { area: string; where: string; text: string }[] };
    expect(j.schema).toBe('foliolab.explain/v1');
    expect(j.pte).toBe('0x40001000');
    const ptes = j.changes.filter((c) => c.area === 'pte');
    expect(ptes).toHaveLength(1);
    expect(ptes[0]!.where).toBe('pid 1 (parent) 0x40001000');
  });
});
