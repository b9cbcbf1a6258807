import { FoliolabError, measure, nonZero, type EventName } from '@foliolab/ledger';
import { defaultEngineFactory } from './default-engine.js';
import { ScenarioError, type DataPath, type Diagnostic } from './diagnostics.js';
import type { EngineFactory, EngineLike, InvariantReport, InvariantViolation, StateV1 } from './engine-like.js';
import { evaluateExpect, type ExpectationResult } from './expect.js';
import { checkScenario, scenarioSource, type ScenarioSource, type SourceLocation } from './loader.js';
import { evalAddr, formatAddr, formatSize, PAGE_SIZE, parseAddrExpr, parseSize } from './sizes.js';
import { stepArgs, stepKind, type ArchName, type EngineConfig, type ExpectArgs, type InjectName, type Policy, type Scenario, type Step, type StepKind, type When } from './types.js';

/*
 * The scenario runner: builds an engine for the (possibly overridden)
 * config, creates the processes, runs the steps in order with names resolved,
 * records each step's ledger delta and invariant report, and evaluates
 * `expect` steps. Expected kernel outcomes are state, not exceptions; a step
 * the engine rejects (FoliolabError) is bad input: it is recorded with the
 * step and the run stops there.
 */

/** Limits when neither the options nor the scenario's config set them. */
export const DEFAULT_LIMITS = { maxSteps: 100_000, maxMemory: 4 * 2 ** 30 } as const;
const DEFAULT_MEMORY = 64 * 2 ** 20;

export interface RunOptions {
  /** Replaces config.policy. */
  policy?: Policy;
  /** Replaces config.arch. */
  arch?: ArchName;
  /** Builds the engine (default: `new Engine(config)` of @foliolab/unmap-engine). */
  engineFactory?: EngineFactory;
  /** Replace config.limits (steps in the scenario, simulated memory and swap bytes). */
  limits?: { maxSteps?: number; maxMemory?: number };
}

export type LedgerDelta = Partial<Record<EventName, number>>;

export interface StepResult {
  index: number;
  name: string;
  kind: StepKind;
  location?: SourceLocation;
  /** True when the step's `when` did not hold for this run. */
  skipped: boolean;
  /** Non-zero events the step charged. */
  ledgerDelta: LedgerDelta;
  /** checkInvariants() after the step. */
  invariants: InvariantReport;
  /** Violations that appeared with this step (the step that caused them). */
  newViolations: InvariantViolation[];
  expectations: ExpectationResult[];
  /** What the engine returned (address, pid, pin handle, read or reclaim result). */
  result?: unknown;
}

export interface RunError {
  kind: 'bad-input' | 'crash';
  step: number;
  stepKind: StepKind;
  name: string;
  code?: string;
  message: string;
  location?: SourceLocation;
}

export interface RunResult {
  scenario: string;
  policy: Policy;
  arch: ArchName;
  /** The config the engine was built with. */
  config: EngineConfig;
  finalState: StateV1 | null;
  /** Non-zero events of the whole run. */
  events: LedgerDelta;
  steps: StepResult[];
  ok: boolean;
  error?: RunError;
  /** One readable line per failed check (expectation, invariant, lost data, error). */
  failures: string[];
}

/** Names bound while running. */
interface Env {
  engine: EngineLike;
  processes: Map<string, number>;
  names: Map<string, number>;
  handles: Map<string, number>;
}

function ctxErr(msg: string): never {
  throw new FoliolabError('ENOENT', msg);
}

function pidOf(env: Env, name: unknown): number {
  return env.processes.get(String(name)) ?? ctxErr(`unknown process "${String(name)}"`);
}

function addrOf(env: Env, v: unknown): number {
  return evalAddr(parseAddrExpr(v as number | string), (n) => env.names.get(n));
}

function sizeOf(v: unknown, dflt = PAGE_SIZE): number {
  return v === undefined ? dflt : parseSize(v as number | string);
}

/** Copy the defined entries only (the engine sees no `undefined` options). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Run one action step against the engine; returns what the engine returned. */
function exec(env: Env, kind: StepKind, a: Record<string, unknown>): unknown {
  const e = env.engine;
  const pid = (): number => pidOf(env, a.process);
  const range = (): [number, number, number] => [pid(), addrOf(env, a.addr), sizeOf(a.len)];
  switch (kind) {
    case 'mmap': {
      const o = defined({
        addr: a.addr === undefined ? undefined : addrOf(env, a.addr),
        len: sizeOf(a.len),
        prot: a.prot as 'r' | 'rw' | 'none' | undefined,
        anon: true as const,
        locked: a.locked as boolean | undefined,
        droppable: a.droppable as boolean | undefined,
      });
      const addr = e.mmap(pid(), o);
      if (typeof a.as === 'string') env.names.set(a.as, addr);
      return addr;
    }
    case 'write':
      return e.write(...range(), a.token as number | undefined);
    case 'read':
      return e.read(...range());
    case 'fork': {
      const child = e.fork(pid());
      env.processes.set(String(a.child), child);
      return child;
    }
    case 'exit':
      return e.exit(pid());
    case 'munmap':
      return e.munmap(...range());
    case 'mremap': {
      const o = a.fixed === undefined ? undefined : { fixed: addrOf(env, a.fixed) };
      const to = e.mremap(pid(), addrOf(env, a.addr), sizeOf(a.oldLen), sizeOf(a.newLen), o);
      if (typeof a.as === 'string') env.names.set(a.as, to);
      return to;
    }
    case 'mprotect':
      return e.mprotect(...range(), a.prot as 'r' | 'rw' | 'none');
    case 'madvise':
      return e.madvise(...range(), a.advice as 'dontneed');
    case 'pageout':
      return e.madvise(...range(), 'pageout');
    case 'reclaim':
      return e.reclaim(
        defined({
          kind: (a.kind as 'proactive' | 'node' | undefined) ?? 'proactive',
          pid: a.process === undefined ? undefined : pid(),
          addr: a.addr === undefined ? undefined : addrOf(env, a.addr),
          len: a.len === undefined ? undefined : sizeOf(a.len),
          nrToReclaim: a.nrToReclaim as number | undefined,
        }),
      );
    case 'pin': {
      const h = e.pin(...range(), defined({ kind: a.kind as 'pin' | 'get' | undefined, write: a.write as boolean | undefined }));
      if (typeof a.as === 'string') env.handles.set(a.as, h);
      return h;
    }
    case 'unpin':
      return e.unpin(env.handles.get(String(a.handle)) ?? ctxErr(`unknown pin handle "${String(a.handle)}"`));
    case 'uffdwp':
      return e.uffdwp(...range(), a.op as 'register');
    case 'poison': {
      const o: { ttuHwpoison?: boolean; split?: boolean } = {};
      if (a.ttuHwpoison !== undefined) o.ttuHwpoison = a.ttuHwpoison as boolean;
      if (a.split !== undefined) o.split = a.split as boolean;
      return e.poison(pid(), addrOf(env, a.addr), Object.keys(o).length === 0 ? undefined : o);
    }
    case 'mlock':
      return e.mlock(...range());
    case 'munlock':
      return e.munlock(...range());
    case 'deviceExclusive':
      return e.makeDeviceExclusive(pid(), addrOf(env, a.addr));
    case 'inject':
      for (const [n, v] of Object.entries(a)) e.setInject(n as InjectName, v as number | boolean);
      return undefined;
    case 'expect':
      return undefined;
  }
}

function whenHolds(w: When | undefined, config: EngineConfig): boolean {
  if (w === undefined) return true;
  if (w.policy !== undefined && !w.policy.includes(config.policy!)) return false;
  if (w.arch !== undefined && !w.arch.includes(config.arch!)) return false;
  if (w.mapcountMode !== undefined && !w.mapcountMode.includes(config.mapcountMode ?? 'legacy')) return false;
  return true;
}

/** "pageout parent buf 64K": a step's default name. */
export function describeStep(step: Step): string {
  const kind = stepKind(step);
  const a = stepArgs(step);
  const parts: string[] = [kind];
  for (const k of ['process', 'addr', 'len', 'advice', 'op', 'handle', 'kind'] as const) {
    const v = a[k];
    if (v === undefined) continue;
    if (typeof v === 'number') parts.push(k === 'len' ? formatSize(v) : k === 'addr' ? formatAddr(v) : String(v));
    else parts.push(typeof v === 'string' ? v : JSON.stringify(v));
  }
  return parts.join(' ');
}

function effectiveConfig(s: Scenario, o: RunOptions): EngineConfig {
  const c: EngineConfig = { ...(s.config ?? {}) };
  c.policy = o.policy ?? c.policy ?? 'mainline';
  c.arch = o.arch ?? c.arch ?? 'arm64-contpte';
  return c;
}

function checkLimits(s: Scenario, c: EngineConfig, o: RunOptions, src: ScenarioSource | undefined): void {
  const file = src?.file ?? '<scenario>';
  const at = (p: DataPath): Omit<Diagnostic, 'message'> => src?.locate(p, 'key') ?? { file, line: 0, col: 0 };
  const maxSteps = o.limits?.maxSteps ?? c.limits?.maxSteps ?? DEFAULT_LIMITS.maxSteps;
  const maxMemory = o.limits?.maxMemory ?? c.limits?.maxMemory ?? DEFAULT_LIMITS.maxMemory;
  const out: Diagnostic[] = [];
  if (s.steps.length > maxSteps) out.push({ ...at(['steps']), message: `steps: ${s.steps.length} steps exceed the step limit of ${maxSteps} (raise limits.maxSteps)` });
  const memory = c.memory ?? DEFAULT_MEMORY;
  const over = (what: string, n: number): string =>
    `${what} exceeds the memory limit of ${formatSize(maxMemory)} (raise limits.maxMemory)`.replace('%', formatSize(n));
  if (memory > maxMemory) out.push({ ...at(['config', 'memory']), message: over('config.memory: % of simulated memory', memory) });
  const swap = c.swap ?? memory;
  if (swap > maxMemory) out.push({ ...at(['config', 'swap']), message: over('config.swap: % of swap', swap) });
  if (out.length > 0) throw new ScenarioError(out);
}

function violationKey(v: InvariantViolation): string {
  return `${v.rule}\u0000${v.where}\u0000${v.detail}`;
}

function prefix(r: { index: number; name: string; location?: SourceLocation }): string {
  const loc = r.location !== undefined && r.location.line > 0 ? `${r.location.file}:${r.location.line}:${r.location.col}: ` : '';
  return `${loc}step ${r.index} (${r.name})`;
}

function lostExpectation(result: unknown): ExpectationResult | null {
  const lost = (result as { lost?: unknown[] } | undefined)?.lost;
  if (!Array.isArray(lost) || lost.length === 0) return null;
  const message = `read.lost: ${lost.length} page(s) did not read back what was written: ${JSON.stringify(lost.slice(0, 4))}`;
  return { ok: false, path: 'read.lost', expected: [], actual: lost, message };
}

/** The state of one run between steps. */
interface Run {
  env: Env;
  src: ScenarioSource | undefined;
  lastReport: InvariantReport;
  lastDelta: LedgerDelta;
}

/** An `expect` step: evaluate against the dump now and the previous action's delta. */
function doExpect(run: Run, r: StepResult, a: ExpectArgs): void {
  const dump = a.state !== undefined ? run.env.engine.dump() : undefined;
  r.expectations = evaluateExpect(a, { dump, ctx: run.env, delta: run.lastDelta, invariants: run.lastReport });
  if (run.src) for (const x of r.expectations) x.location = run.src.locate(expectationPath(r.index, x.path), 'key');
}

/** An action step: run it under `measure`, then check the invariants and note what is new. */
function doAction(run: Run, r: StepResult, step: Step): void {
  const m = measure(run.env.engine.ledger, () => exec(run.env, r.kind, stepArgs(step)));
  r.ledgerDelta = nonZero(m.counts);
  r.result = m.result;
  const lost = r.kind === 'read' ? lostExpectation(m.result) : null;
  if (lost !== null) r.expectations.push(lost);
  run.lastDelta = r.ledgerDelta;
  checkAfter(run, r);
}

function checkAfter(run: Run, r: StepResult): void {
  const prev = new Set(run.lastReport.violations.map(violationKey));
  run.lastReport = run.env.engine.checkInvariants();
  r.invariants = run.lastReport;
  r.newViolations = run.lastReport.violations.filter((v) => !prev.has(violationKey(v)));
}

function runError(r: StepResult, e: unknown): RunError {
  const bad = e instanceof FoliolabError;
  return {
    kind: bad ? 'bad-input' : 'crash',
    step: r.index,
    stepKind: r.kind,
    name: r.name,
    message: `${prefix(r)}: ${e instanceof Error ? e.message : JSON.stringify(e)}`,
    ...(bad ? { code: e.code } : {}),
    ...(r.location ? { location: r.location } : {}),
  };
}

/** Build the engine and the processes; the first invariant report. */
function start(scenario: Scenario, config: EngineConfig, options: RunOptions, src: ScenarioSource | undefined): Run {
  const engine = (options.engineFactory ?? defaultEngineFactory)(config);
  const env: Env = { engine, processes: new Map(), names: new Map(), handles: new Map() };
  for (const p of scenario.processes) env.processes.set(p.name, engine.createProcess(p.name));
  return { env, src, lastReport: engine.checkInvariants(), lastDelta: {} };
}

/**
 * Run a scenario. Throws ScenarioError (bad input, before anything runs) for
 * an invalid scenario or an exceeded limit; everything that happens while
 * running — failed expectations, invariant violations, a step the engine
 * rejects (then the run stops) — is in the result.
 */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const src = scenarioSource(scenario);
  if (src === undefined) {
    const d = checkScenario(scenario);
    if (d.length > 0) throw new ScenarioError(d);
  }
  const config = effectiveConfig(scenario, options);
  checkLimits(scenario, config, options, src);
  const run = start(scenario, config, options, src);
  const failures = run.lastReport.violations.map((v) => `before the first step: invariant ${v.rule} violated at ${v.where}: ${v.detail}`);
  const steps: StepResult[] = [];
  let error: RunError | undefined;

  for (let index = 0; index < scenario.steps.length && error === undefined; index++) {
    const step = scenario.steps[index]!;
    const kind = stepKind(step);
    const r: StepResult = {
      index,
      name: step.name ?? describeStep(step),
      kind,
      ...(src ? { location: src.locate(['steps', index]) } : {}),
      skipped: false,
      ledgerDelta: {},
      invariants: run.lastReport,
      newViolations: [],
      expectations: [],
    };
    steps.push(r);
    if (!whenHolds(step.when, config)) {
      r.skipped = true;
      continue;
    }
    try {
      if (kind === 'expect') doExpect(run, r, stepArgs(step));
      else doAction(run, r, step);
    } catch (e) {
      error = runError(r, e);
      if (kind !== 'expect') checkAfter(run, r); // the contract: a rejected call changed nothing — check it did not
    }
    for (const x of r.expectations) if (!x.ok) failures.push(`${prefix(r)}: ${x.message}`);
    for (const v of r.newViolations) failures.push(`${prefix(r)}: invariant ${v.rule} violated at ${v.where}: ${v.detail}`);
    if (error !== undefined) failures.push(error.message);
  }
  return finish(scenario, config, run, steps, failures, error);
}

function finish(scenario: Scenario, config: EngineConfig, run: Run, steps: StepResult[], failures: string[], error: RunError | undefined): RunResult {
  let finalState: StateV1 | null = null;
  try {
    finalState = run.env.engine.dump();
  } catch (e) {
    failures.push(`dump failed after the run: ${(e as Error).message}`);
  }
  return {
    scenario: scenario.name,
    policy: config.policy!,
    arch: config.arch!,
    config,
    finalState,
    events: nonZero(run.env.engine.ledger.snapshot()),
    steps,
    // every failed check (expectation, invariant — at the first step showing it —, lost data, error) is a line
    ok: failures.length === 0 && finalState !== null,
    ...(error ? { error } : {}),
    failures,
  };
}

function expectationPath(index: number, path: string): DataPath {
  if (path.startsWith('events.')) return ['steps', index, 'expect', 'events', path.slice(7)];
  if (path === 'invariants') return ['steps', index, 'expect', 'invariants'];
  return ['steps', index, 'expect', 'state', path];
}
