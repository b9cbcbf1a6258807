import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { loadScenarioFile, type Scenario } from '@foliolab/scenario';
import { boot, type BootResult } from './boot.js';
import { buildGuestBinary, buildInitramfs } from './build.js';
import { OracleError } from './errors.js';
import { CALL_EVENTS, compareObservations, kernelEventCount } from './compare.js';
import { guestObservations, parseConsole, type GuestConsole } from './guest-output.js';
import { packageDir } from './package-dir.js';
import { cacheDir, configFacts, FACT_OPTIONS, fetchKernel, KERNEL, requireTools, type KernelTree } from './host.js';
import { recordId, translateScenario, type GuestProgram } from './translate.js';
import type { OracleArch, OracleRecord, Unstable } from './types.js';

/*
 * Recording: translate scenarios, build one guest with all of them, boot it,
 * and write each scenario's answer as `foliolab.oracle-record/v1` JSON. The
 * recorded files are data: `pnpm test` compares the engine with them and
 * needs neither QEMU nor the kernel.
 */

/** The package version written into records. */
export const ORACLE_VERSION: string = (JSON.parse(readFileSync(join(packageDir(), 'package.json'), 'utf8')) as { version: string }).version;

/** The repository root (the nearest parent with pnpm-workspace.yaml), for repo-relative scenario paths. */
export function repoRoot(from: string = packageDir()): string {
  let d = resolve(from);
  for (;;) {
    if (existsSync(join(d, 'pnpm-workspace.yaml'))) return d;
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}

/** sha256 of a file's bytes. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A scenario to record: its file, loaded, with its record id. */
export interface RecordInput {
  file: string;
  scenario: Scenario;
  id: string;
}

/**
 * Scenario files as record inputs, each with a unique record id (its base name). `load` reads one
 * file (default loadScenarioFile; the CLI passes its own, which names the file as the user typed it).
 */
export function loadInputs(files: readonly string[], load: (file: string) => Scenario = loadScenarioFile): RecordInput[] {
  const seen = new Set<string>();
  return files.map((file) => {
    const base = recordId(basename(file));
    let id = base;
    for (let n = 2; seen.has(id); n++) id = `${base}-${n}`;
    seen.add(id);
    return { file: resolve(file), scenario: load(file), id };
  });
}

export interface RecordOptions {
  arch: OracleArch;
  /** Scenarios per boot (default 40). */
  batch?: number;
  memory?: string;
  cpus?: number;
  log?: (s: string) => void;
  /** Called with each console line (e.g. for --verbose). */
  onLine?: (line: string) => void;
  /** Count the kernel's own calls of guest/trace-funcs per step (ftrace; ~5 s more per boot). */
  trace?: boolean;
  /** Boots per batch (default 2: in order, then reversed); what the boots disagree on is unstable. */
  repeat?: number;
}

export interface BatchResult {
  records: { id: string; record: OracleRecord }[];
  boots: { wallMs: number; scenarios: number; exitCode: number | null; timedOut: boolean }[];
  /** Scenarios that did not run to their end in the guest, with why. */
  problems: { id: string; problem: string }[];
}

function toRecord(input: RecordInput, program: GuestProgram, kinds: Map<number, string>, con: GuestConsole, tree: KernelTree, b: BootResult, arch: OracleArch): OracleRecord | string {
  const run = con.runs.get(program.id);
  if (run === undefined) return 'the guest never started it';
  const facts = { ...configFacts(tree, FACT_OPTIONS), ...Object.fromEntries(Object.entries(con.facts).filter(([k]) => k !== 'kernel' && k !== 'cmdline')) };
  if (run.info.swap !== undefined) facts.swapDevice = run.info.swap;
  const [release = '', ...rest] = (con.facts.kernel ?? '').split(' ');
  const machine = rest.pop() ?? '';
  return {
    schema: 'foliolab.oracle-record/v1',
    scenario: relative(repoRoot(), resolve(input.file)),
    name: input.scenario.name,
    sha256: fileSha256(input.file),
    arch,
    kernel: { release, version: rest.join(' '), machine, image: tree.package },
    oracle: { package: `@foliolab/kernel-oracle ${ORACLE_VERSION}`, qemu: b.qemu, cpus: b.cpus, memory: b.memory, boots: 1, facts, recorded: new Date().toISOString().slice(0, 10) },
    unstable: [],
    translation: { stop: program.stop, notes: [...program.notes, ...(run.status === 'abort' ? [`guest aborted: ${run.abort}`] : []), ...run.garbled.map((g) => `garbled console line: ${g}`)] },
    kernelLog: run.kernelLog,
    steps: guestObservations(run, program, kinds, con.facts.trace !== undefined),
  };
}

/** One boot of a built guest: its console, parsed. */
async function bootOnce(o: RecordOptions, tree: KernelTree, initrd: string, n: number, work: string, tag: string, log: (s: string) => void): Promise<{ b: BootResult; con: GuestConsole }> {
  const b = await boot(o.arch, tree, initrd, {
    memory: o.memory,
    cpus: o.cpus,
    onLine: o.onLine,
    timeoutMs: 60_000 + n * 60_000,
    ...(o.trace === true ? { append: 'koracle_trace=1' } : {}),
  });
  writeFileSync(join(work, `console-${tag}.log`), b.lines.join('\n'));
  const con = parseConsole(b.lines);
  if (!con.done) log(`the guest did not finish (${b.timedOut ? 'timeout' : `qemu exit ${b.exitCode}`}); console in ${join(work, `console-${tag}.log`)}`);
  return { b, con };
}

/**
 * What differs between two answers of the kernel to the same scenario (the same steps in another
 * boot, after other scenarios): history- or timing-dependent, e.g. a refault's activation
 * (workingset_test_recent compares with the LRU sizes of the moment). Such fields are marked
 * unstable, and no engine is expected to give one particular answer there.
 */
function unstableFields(a: OracleRecord, b: OracleRecord): Unstable[] {
  const out = new Map<string, Unstable>();
  for (const d of compareObservations(a.steps, b.steps, { softDirty: true })) out.set(`${d.step} ${d.where} ${d.field}`, { step: d.step, where: d.where, field: d.field });
  a.steps.forEach((s, i) => {
    const t = b.steps[i];
    if (s.calls === undefined || t?.calls === undefined || t.step !== s.step) return;
    for (const ev of Object.keys(CALL_EVENTS))
      if (kernelEventCount(s.calls, ev) !== kernelEventCount(t.calls, ev)) out.set(`${s.step} calls ${ev}`, { step: s.step, where: 'calls', field: ev });
  });
  return [...out.values()];
}

/**
 * Record the kernel's answers for `inputs` on one arch: each batch boots `repeat` times (default
 * 2), the second time in reverse order, and what the boots disagree on is marked unstable.
 */
export async function recordScenarios(inputs: readonly RecordInput[], o: RecordOptions): Promise<BatchResult> {
  const log = o.log ?? (() => {});
  requireTools(o.arch);
  const tree = fetchKernel(o.arch, log);
  const out: BatchResult = { records: [], boots: [], problems: [] };
  const size = o.batch ?? 40;
  const repeat = o.repeat ?? 2;
  for (let b0 = 0; b0 < inputs.length; b0 += size) {
    const batch = inputs.slice(b0, b0 + size);
    const programs: GuestProgram[] = [];
    const kinds = new Map<string, Map<number, string>>();
    for (const inp of batch) {
      const t = translateScenario(inp.scenario, { arch: o.arch, id: inp.id });
      programs.push(t.program);
      kinds.set(inp.id, new Map(t.engine.map((s) => [s.step, s.kind])));
    }
    const work = join(cacheDir(), 'work', `${o.arch}-${process.pid}-${b0}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    log(`build ${programs.length} scenario(s) for ${o.arch}`);
    const bin = buildGuestBinary(o.arch, programs, work);
    const ids = programs.map((p) => p.id);
    const boots: { b: BootResult; con: GuestConsole }[] = [];
    for (let r = 0; r < repeat; r++) {
      const order = r % 2 === 0 ? ids : [...ids].reverse();
      const initrd = buildInitramfs(o.arch, tree, bin, order, join(work, `initramfs-${r}.cpio.gz`));
      log(`boot ${KERNEL[o.arch].image} with ${programs.length} scenario(s)${r > 0 ? ` (again, ${r % 2 === 1 ? 'reversed' : 'in order'}: what differs is unstable)` : ''}`);
      const one = await bootOnce(o, tree, initrd, programs.length, work, String(r), log);
      boots.push(one);
      out.boots.push({ wallMs: one.b.wallMs, scenarios: programs.length, exitCode: one.b.exitCode, timedOut: one.b.timedOut });
    }
    const allOk = boots.every(({ con }) => con.done && [...con.runs.values()].every((r) => r.status === 'ok'));
    if (allOk) rmSync(work, { recursive: true, force: true });
    else log(`consoles of the boots in ${work}`);
    batch.forEach((inp, k) => {
      const recs = boots.map(({ b, con }) => toRecord(inp, programs[k]!, kinds.get(inp.id)!, con, tree, b, o.arch));
      const first = recs[0]!;
      if (typeof first === 'string') {
        out.problems.push({ id: inp.id, problem: first });
        return;
      }
      const run = boots[0]!.con.runs.get(inp.id)!;
      if (run.status !== 'ok') out.problems.push({ id: inp.id, problem: run.abort ?? 'did not end' });
      const unstable = new Map<string, Unstable>();
      for (const other of recs.slice(1)) {
        if (typeof other === 'string') continue;
        for (const u of unstableFields(first, other)) unstable.set(`${u.step} ${u.where} ${u.field}`, u);
      }
      first.unstable = [...unstable.values()];
      first.oracle.boots = recs.length;
      out.records.push({ id: inp.id, record: first });
    });
  }
  return out;
}

/** Where a record of a scenario is kept: <dir>/<arch>/<id>.json. */
export function recordPath(dir: string, arch: OracleArch, id: string): string {
  return join(dir, arch, `${id}.json`);
}

/** Write a record as stable, readable JSON. */
export function writeRecord(dir: string, r: OracleRecord, id: string): string {
  const p = recordPath(dir, r.arch, id);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, `${JSON.stringify(r, null, 1)}\n`);
  return p;
}

/** Read a record, checking its schema. */
export function readRecord(path: string): OracleRecord {
  let r: OracleRecord;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as OracleRecord;
  } catch (e) {
    throw new OracleError('EINVAL', `${path}: not a JSON record (${(e as Error).message})`);
  }
  if (r.schema !== 'foliolab.oracle-record/v1') throw new OracleError('EINVAL', `${path}: schema ${String(r.schema)} is not foliolab.oracle-record/v1`);
  return r;
}
