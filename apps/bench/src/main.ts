/**
 * `pnpm bench`: run foliolab's benchmarks and print Markdown results.
 *   --mib N    simulated range in MiB (default 256; the pageout benchmark also runs 4 × N)
 *   --time MS  tinybench time budget per task (default 1500)
 *   --out F    also write the Markdown to F
 */
import { writeFileSync } from 'node:fs';
import { benchPagetable } from './pagetable.js';
import { benchPageout } from './pageout.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`bench: --${name} needs a positive number`);
    process.exit(2);
  }
  return v;
}

const mib = arg('mib', 256);
const time = arg('time', 1500);
const parts: string[] = [`# foliolab benchmarks`, '', `Node ${process.version}, ${new Date().toISOString()}`, ''];
const pt = await benchPagetable(mib, time);
parts.push(pt.markdown, '');
for (const m of [mib, 4 * mib]) parts.push((await benchPageout(m, time)).markdown, '');
const md = parts.join('\n');
console.log(md);
const oi = process.argv.indexOf('--out');
if (oi >= 0 && process.argv[oi + 1]) writeFileSync(process.argv[oi + 1]!, md + '\n');
