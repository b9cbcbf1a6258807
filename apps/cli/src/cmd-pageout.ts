import { requireEngine } from './engine.js';
import { EXIT_CHECK_FAILED, EXIT_OK } from './errors.js';
import { progressFor, styleFor, type Io } from './io.js';
import { planPageout, runPageout, type PageoutRawOptions } from './pageout.js';
import { renderPageout } from './pageout-render.js';

/*
 * `foliolab pageout`: the headline experiment. The engine is imported here,
 * lazily (engine.ts), so a missing engine is an "engine not available" error
 * with exit code 2, and every other command works without it.
 */

export interface PageoutFlags extends PageoutRawOptions {
  json?: boolean;
  color?: boolean;
  progress?: boolean;
}

export async function cmdPageout(io: Io, flags: PageoutFlags): Promise<number> {
  const plan = planPageout(flags);
  const engine = await requireEngine('pageout');
  const progress = progressFor(io, flags.progress !== false);
  let report;
  try {
    report = runPageout(engine.factory, plan, (i, n, arch, policy) => progress.update(`pageout: ${arch} ${policy} (${i + 1}/${n})…`));
  } finally {
    progress.done();
  }
  if (flags.json === true) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout.write(`${renderPageout(report, styleFor(io.stdout, io.env, flags.color !== false))}\n`);
  return report.ok ? EXIT_OK : EXIT_CHECK_FAILED;
}
