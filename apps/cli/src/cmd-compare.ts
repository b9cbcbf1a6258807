import { EVENT_NAMES, modeledNsFor } from '@foliolab/ledger';
import { compare, formatCompare, POLICIES, type ArchName, type CompareResult } from '@foliolab/scenario';
import { withEngineLimits } from './cmd-run.js';
import { factoryOrUnavailable, loadEngine } from './engine.js';
import { EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, type ExitCode } from './errors.js';
import { progressFor, styleFor, type Io, type Style } from './io.js';
import { loadScenarioArg, parseArch, parseLimits, type LimitFlags } from './scenario-args.js';
import { fmtCount, fmtNs, renderTable } from './table.js';

/*
 * `foliolab compare <scenario>`: the three policies side by side — the
 * end-state diff (or "equivalent", with the engine's ALLOWED_DIFFERENCES
 * applied) and a table of event counts and modeled time per policy.
 */

export interface CompareFlags extends LimitFlags {
  arch?: string;
  json?: boolean;
  color?: boolean;
}

/** 2 when any policy's run hit a step the engine rejected; 1 when not equivalent or a check failed; else 0. */
export function compareExitCode(r: CompareResult): ExitCode {
  const runs = POLICIES.map((p) => r.perPolicy[p]);
  if (runs.some((x) => x.error?.kind === 'bad-input')) return EXIT_BAD_INPUT;
  if (!r.equivalent || runs.some((x) => !x.ok)) return EXIT_CHECK_FAILED;
  return EXIT_OK;
}

/** Modeled ns per policy. */
export function modeledByPolicy(r: CompareResult, arch: ArchName): Record<string, number> {
  return Object.fromEntries(POLICIES.map((p) => [p, modeledNsFor(r.perPolicy[p].events, arch)]));
}

/** Event table: every event non-zero under some policy; differing rows marked. */
export function renderCompare(r: CompareResult, arch: ArchName, st: Style): string {
  const verdict = formatCompare(r).split('\n');
  const lines = [r.equivalent ? st.green(verdict[0]!) : st.red(verdict[0]!), ...verdict.slice(1), ''];
  const rows: string[][] = [];
  for (const e of EVENT_NAMES) {
    const vals = POLICIES.map((p) => r.perPolicy[p].events[e] ?? 0);
    if (vals.every((v) => v === 0)) continue;
    const differs = vals.some((v) => v !== vals[0]);
    rows.push([differs ? st.yellow(e) : e, ...vals.map((v) => fmtCount(v))]);
  }
  const ns = modeledByPolicy(r, arch);
  rows.push([st.bold('modeled time'), ...POLICIES.map((p) => st.bold(fmtNs(ns[p]!)))]);
  rows.push(['checks', ...POLICIES.map((p) => (r.perPolicy[p].ok ? st.green('ok') : st.red(`${r.perPolicy[p].failures.length} failed`)))]);
  lines.push(renderTable(['event', ...POLICIES.map((p) => st.bold(p))], rows, { indent: '  ', rule: st.dim }));
  lines.push(st.dim(`  (events in yellow differ between policies; prices: ${arch === 'x86' ? 'PRICES_X86' : 'PRICES_ARM64'})`));
  for (const p of POLICIES) for (const f of r.perPolicy[p].failures) lines.push(st.red(`${p}: ${f}`));
  return lines.join('\n');
}

export async function cmdCompare(io: Io, file: string, flags: CompareFlags): Promise<number> {
  const archFlag = parseArch(flags.arch, 'compare');
  const limits = parseLimits(flags, 'compare');
  const scenario = loadScenarioArg(io, file);
  const binding = await loadEngine();
  const base = withEngineLimits(factoryOrUnavailable(binding, 'compare'), limits?.maxMemory);
  const progress = progressFor(io, true);
  let result: CompareResult;
  try {
    result = compare(scenario, {
      // compare() builds one engine per policy: the factory is where progress can be shown
      engineFactory: (config) => {
        progress.update(`compare: ${scenario.name}: ${config.policy ?? ''}…`);
        return base(config);
      },
      allowedDifferences: binding?.allowedDifferences ?? [],
      ...(archFlag ? { arch: archFlag } : {}),
      ...(limits ? { limits } : {}),
    });
  } finally {
    progress.done();
  }
  const arch: ArchName = archFlag ?? scenario.config?.arch ?? 'arm64-contpte';
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify({ schema: 'foliolab.compare/v1', file, arch, ...result, modeledNs: modeledByPolicy(result, arch) }, null, 2)}\n`);
  } else io.stdout.write(`${renderCompare(result, arch, styleFor(io.stdout, io.env, flags.color !== false))}\n`);
  return compareExitCode(result);
}
