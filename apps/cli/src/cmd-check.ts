import { runScenario, ScenarioError, type Diagnostic, type RunOptions, type Scenario } from '@foliolab/scenario';
import { EXIT_BAD_INPUT, EXIT_OK } from './errors.js';
import { styleFor, type Io } from './io.js';
import { loadScenarioArg, parseLimits, type LimitFlags } from './scenario-args.js';

/*
 * `foliolab check <scenario...>`: load and validate scenario files without
 * running them (no engine needed) — the same diagnostics `run` prints, for
 * every file, so a directory of scenarios can be linted in one go. The
 * limits are checked too: the runner checks them before it asks for an
 * engine, so a factory that stops the run right there gives exactly `run`'s
 * verdict on the file.
 */

/** Thrown by check's engine factory: the runner got past every check it makes before building an engine. */
class StopBeforeEngine extends Error {}

/** Everything `run` rejects before it builds an engine (loading, schema, semantics, limits). */
function checkBeforeEngine(s: Scenario, limits: RunOptions['limits']): void {
  try {
    runScenario(s, {
      engineFactory: () => {
        throw new StopBeforeEngine('check: stop before the engine');
      },
      ...(limits ? { limits } : {}),
    });
  } catch (e) {
    if (!(e instanceof StopBeforeEngine)) throw e;
  }
}

export interface CheckFlags extends LimitFlags {
  json?: boolean;
  color?: boolean;
}

export function cmdCheck(io: Io, files: readonly string[], flags: CheckFlags): number {
  const limits = parseLimits(flags, 'check');
  const results: { file: string; ok: boolean; name?: string; steps?: number; diagnostics: Diagnostic[] }[] = [];
  for (const file of files) {
    try {
      const s = loadScenarioArg(io, file);
      checkBeforeEngine(s, limits);
      results.push({ file, ok: true, name: s.name, steps: s.steps.length, diagnostics: [] });
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      results.push({ file, ok: false, diagnostics: [...e.diagnostics] });
      if (flags.json !== true) io.stderr.write(`${e.message}\n`);
    }
  }
  const bad = results.filter((r) => !r.ok).length;
  if (flags.json === true) io.stdout.write(`${JSON.stringify({ schema: 'foliolab.check/v1', ok: bad === 0, files: results }, null, 2)}\n`);
  else {
    const st = styleFor(io.stdout, io.env, flags.color !== false);
    for (const r of results) if (r.ok) io.stdout.write(`${st.green('ok')} ${r.file}: ${r.name} (${r.steps} steps)\n`);
  }
  return bad === 0 ? EXIT_OK : EXIT_BAD_INPUT;
}
