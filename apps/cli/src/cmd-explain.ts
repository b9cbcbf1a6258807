import {
  evalAddr,
  formatDiagnostic,
  parseAddrExpr,
  runScenario,
  scenarioSource,
  stepArgs,
  stepKind,
  type ArchName,
  type EngineFactory,
  type Policy,
  type RunOptions,
  type RunResult,
  type Scenario,
  type StateV1,
} from '@foliolab/scenario';
import { withEngineLimits } from './cmd-run.js';
import { factoryOrUnavailable, loadEngine } from './engine.js';
import { CliError, EXIT_BAD_INPUT, EXIT_OK } from './errors.js';
import { explainDiff, renderExplain, type ExplainItem } from './explain.js';
import { styleFor, type Io } from './io.js';
import { loadScenarioArg, parseArch, parseLimits, parsePolicy, type LimitFlags } from './scenario-args.js';
import { fmtEvents } from './table.js';

/*
 * `foliolab explain <scenario> --step N [--pte ADDR]`: the state dumps just
 * before and just after step N (from runs of the scenario's first N and N+1
 * steps), diffed by explain.ts into reviewer's words.
 */

export interface ExplainFlags extends LimitFlags {
  step: string;
  pte?: string;
  policy?: string;
  arch?: string;
  json?: boolean;
  color?: boolean;
}

function prefix(s: Scenario, n: number): Scenario {
  return { ...s, steps: s.steps.slice(0, n) };
}

/** The state before any step: the engine with the scenario's processes created (what runScenario starts from). */
function initialState(s: Scenario, factory: EngineFactory, policy: Policy | undefined, arch: ArchName | undefined): StateV1 {
  const config = { ...(s.config ?? {}) };
  config.policy = policy ?? config.policy ?? 'mainline';
  config.arch = arch ?? config.arch ?? 'arm64-contpte';
  const engine = factory(config);
  for (const p of s.processes) engine.createProcess(p.name);
  return engine.dump();
}

/** Addresses bound by `as` on mmap/mremap steps of a run, for --pte expressions like buf+4K. */
function boundNames(s: Scenario, r: RunResult): Map<string, number> {
  const names = new Map<string, number>();
  for (const st of r.steps) {
    const step = s.steps[st.index]!;
    const as = (stepArgs(step) as { as?: unknown }).as;
    const kind = stepKind(step);
    if ((kind === 'mmap' || kind === 'mremap') && typeof as === 'string' && typeof st.result === 'number') names.set(as, st.result);
  }
  return names;
}

function parseStep(v: string, s: Scenario): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new CliError(`explain: --step ${JSON.stringify(v)} must be a step index (0, 1, …)`);
  if (n >= s.steps.length) throw new CliError(`explain: --step ${n} is past the last step: the scenario has ${s.steps.length} step(s), 0–${s.steps.length - 1}`);
  return n;
}

export async function cmdExplain(io: Io, file: string, flags: ExplainFlags): Promise<number> {
  const policy = parsePolicy(flags.policy, 'explain');
  const arch = parseArch(flags.arch, 'explain');
  const limits = parseLimits(flags, 'explain');
  const scenario = loadScenarioArg(io, file);
  const n = parseStep(flags.step, scenario);
  const binding = await loadEngine();
  const factory = withEngineLimits(factoryOrUnavailable(binding, 'explain'), limits?.maxMemory);
  const opts: RunOptions = { engineFactory: factory, ...(policy ? { policy } : {}), ...(arch ? { arch } : {}), ...(limits ? { limits } : {}) };
  const after = runScenario(prefix(scenario, n + 1), opts);
  const loc = scenarioSource(scenario)?.locate(['steps', n]);
  const at = loc !== undefined && loc.line > 0 ? `${formatDiagnostic({ ...loc, message: '' }).replace(/: $/, '')}: ` : '';
  if (after.error !== undefined && after.error.step < n) {
    throw new CliError(`explain: cannot reach step ${n}: the run stopped at step ${after.error.step}: ${after.error.message}`);
  }
  const before = n === 0 ? initialState(scenario, factory, policy, arch) : runScenario(prefix(scenario, n), opts).finalState;
  const step = after.steps[n]!;
  let pte: number | undefined;
  if (flags.pte !== undefined) {
    const names = boundNames(scenario, after);
    try {
      pte = evalAddr(parseAddrExpr(/^\d+$/.test(flags.pte) ? Number(flags.pte) : flags.pte), (x) => names.get(x));
    } catch (e) {
      throw new CliError(`explain: --pte ${JSON.stringify(flags.pte)}: ${(e as Error).message} (names bound by step ${n}: ${[...names.keys()].join(', ') || 'none'})`);
    }
  }
  const items: ExplainItem[] = before !== null && after.finalState !== null ? explainDiff(before, after.finalState, pte === undefined ? {} : { pte }) : [];
  const code = after.error?.kind === 'bad-input' ? EXIT_BAD_INPUT : EXIT_OK;
  if (flags.json === true) {
    const out = {
      schema: 'foliolab.explain/v1',
      file,
      step: n,
      name: step.name,
      kind: step.kind,
      policy: after.policy,
      arch: after.arch,
      skipped: step.skipped,
      ledgerDelta: step.ledgerDelta,
      ...(pte !== undefined ? { pte: `0x${pte.toString(16)}` } : {}),
      ...(after.error ? { error: after.error } : {}),
      changes: items,
    };
    io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return code;
  }
  const st = styleFor(io.stdout, io.env, flags.color !== false);
  const lines = [`${at}${st.bold(`step ${n}: ${step.name}`)} ${st.dim(`(${step.kind}; policy ${after.policy}, arch ${after.arch})`)}`];
  if (step.skipped) lines.push('skipped: its `when` does not hold for this policy/arch, so nothing changed');
  else if (step.kind === 'expect') lines.push('an expect step only reads the state dump: nothing changed');
  else {
    if (after.error !== undefined) lines.push(st.red(`rejected: ${after.error.message} (a rejected step changes nothing)`));
    lines.push(`events: ${fmtEvents(step.ledgerDelta, io.stdout.columns ?? 100, '        ')}`, '', renderExplain(items, st));
  }
  io.stdout.write(`${lines.join('\n')}\n`);
  return code;
}
