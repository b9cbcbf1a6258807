import { writeFileSync } from 'node:fs';
import type { ChromeTraceSink } from '@foliolab/ledger';
import { modeledNsFor } from '@foliolab/ledger';
import { runScenario, type EngineFactory, type RunResult, type StepResult } from '@foliolab/scenario';
import { factoryOrUnavailable, loadEngine } from './engine.js';
import { CliError, EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, type ExitCode } from './errors.js';
import { styleFor, userPath, type Io, type Style } from './io.js';
import { loadScenarioArg, parseArch, parseLimits, parsePolicy, type LimitFlags } from './scenario-args.js';
import { fmtEvents, fmtNs } from './table.js';
import { tracingFactory } from './trace.js';

/*
 * `foliolab run <scenario>`: run one scenario under one policy and arch,
 * print each step with its ledger delta and the expectations' results;
 * optionally write a Chrome/Perfetto trace and the final state dump.
 */

export interface RunFlags extends LimitFlags {
  policy?: string;
  arch?: string;
  json?: boolean;
  trace?: string;
  dump?: string;
  color?: boolean;
}

/** The runner's limits flag --max-memory also raises the engine's own ceiling (EngineConfig.limits.maxMemory). */
export function withEngineLimits(base: EngineFactory, maxMemory: number | undefined): EngineFactory {
  if (maxMemory === undefined) return base;
  return (config) => base({ ...config, limits: { ...config.limits, maxMemory } });
}

/** Exit code of a finished run: 2 for a step the engine rejected, 1 for a failed check, else 0. */
export function runExitCode(r: Pick<RunResult, 'ok' | 'error'>): ExitCode {
  if (r.error?.kind === 'bad-input') return EXIT_BAD_INPUT;
  return r.ok ? EXIT_OK : EXIT_CHECK_FAILED;
}

function writeJsonFile(io: Io, path: string, value: unknown, what: string): void {
  try {
    writeFileSync(userPath(io, path), `${JSON.stringify(value, null, 2)}\n`);
  } catch (e) {
    throw new CliError(`run: cannot write the ${what} to ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function stepLines(s: StepResult, st: Style, width: number): string[] {
  const idx = String(s.index).padStart(3);
  if (s.skipped) return [st.dim(`${idx}  ${s.name}  (skipped: its \`when\` does not hold for this run)`)];
  const out: string[] = [];
  if (s.kind === 'expect') {
    const ok = s.expectations.filter((x) => x.ok).length;
    const bad = s.expectations.filter((x) => !x.ok);
    out.push(`${idx}  ${st.cyan(s.name)}  ${bad.length === 0 ? st.green(`✓ ${ok} expectation(s)`) : st.red(`✗ ${bad.length} of ${s.expectations.length} expectation(s) failed`)}`);
    for (const x of bad) out.push(st.red(`       ✗ ${x.message}`));
    return out;
  }
  out.push(`${idx}  ${st.bold(s.name)}`);
  out.push(`       ${fmtEvents(s.ledgerDelta, width, '       ')}`);
  for (const x of s.expectations.filter((e) => !e.ok)) out.push(st.red(`       ✗ ${x.message}`));
  for (const v of s.newViolations) out.push(st.red(`       ✗ invariant ${v.rule} violated at ${v.where}: ${v.detail}`));
  return out;
}

/** Human report of a run. */
export function renderRun(r: RunResult, st: Style, width = 100): string {
  const lines = [st.bold(`${r.scenario}`) + st.dim(`  — policy ${r.policy}, arch ${r.arch}`), ''];
  for (const s of r.steps) lines.push(...stepLines(s, st, width));
  lines.push('', `events: ${fmtEvents(r.events, width, '        ')}`);
  lines.push(`modeled time: ${fmtNs(modeledNsFor(r.events, r.arch))} ${st.dim(`(${r.arch === 'x86' ? 'PRICES_X86' : 'PRICES_ARM64'})`)}`);
  if (r.ok) lines.push(`result: ${st.green('ok')} (${r.steps.length} steps, every expectation and invariant held)`);
  else if (r.error?.kind === 'bad-input') {
    lines.push(`result: ${st.red('BAD INPUT')}: the engine rejected step ${r.error.step} and the run stopped there (a rejected step changes nothing)`);
    for (const f of r.failures) lines.push(st.red(`  ${f}`));
  } else {
    lines.push(`result: ${st.red('FAILED')} (${r.failures.length} failure(s))`);
    for (const f of r.failures) lines.push(st.red(`  ${f}`));
  }
  return lines.join('\n');
}

/** The JSON form: the RunResult without the (large) final state, which --dump writes. */
export function runJson(file: string, r: RunResult): unknown {
  const { finalState: _finalState, ...rest } = r;
  return { schema: 'foliolab.run/v1', file, ...rest, modeledNs: modeledNsFor(r.events, r.arch) };
}

export async function cmdRun(io: Io, file: string, flags: RunFlags): Promise<number> {
  const policy = parsePolicy(flags.policy, 'run');
  const arch = parseArch(flags.arch, 'run');
  const limits = parseLimits(flags, 'run');
  const scenario = loadScenarioArg(io, file);
  const binding = await loadEngine();
  let factory = withEngineLimits(factoryOrUnavailable(binding, 'run'), limits?.maxMemory);
  let sink: ChromeTraceSink | undefined;
  if (flags.trace !== undefined) factory = tracingFactory(factory, (s) => (sink = s));
  const result = runScenario(scenario, {
    engineFactory: factory,
    ...(policy ? { policy } : {}),
    ...(arch ? { arch } : {}),
    ...(limits ? { limits } : {}),
  });
  if (flags.dump !== undefined && result.finalState !== null) writeJsonFile(io, flags.dump, result.finalState, 'state dump');
  if (flags.trace !== undefined && sink !== undefined) writeJsonFile(io, flags.trace, sink.toJSON(), 'trace');
  const code = runExitCode(result);
  if (flags.json === true) io.stdout.write(`${JSON.stringify(runJson(file, result), null, 2)}\n`);
  else {
    io.stdout.write(`${renderRun(result, styleFor(io.stdout, io.env, flags.color !== false), io.stdout.columns ?? 100)}\n`);
    if (result.error?.kind === 'bad-input') io.stderr.write(`${result.error.message}\n`);
  }
  return code;
}
