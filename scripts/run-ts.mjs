// Run a TypeScript entry of this workspace without a prior build: bundle it with
// tsup (esbuild), resolving @foliolab/* packages to their source through the
// "@foliolab/source" export condition, then import the bundle.
//   node scripts/run-ts.mjs <entry.ts> [args...]
import { build } from 'tsup';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entryArg, ...rest] = process.argv.slice(2);
if (!entryArg) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
const entry = resolve(entryArg);
const name = basename(entry).replace(/\.ts$/, '');
// Inside the current package, so the bundle resolves that package's own dependencies.
const outDir = join(process.cwd(), '.run-out');
await build({
  config: false,
  entry: { [name]: entry },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir,
  dts: false,
  sourcemap: false,
  silent: true,
  noExternal: [/^@foliolab\//],
  esbuildOptions(options) {
    options.conditions = ['@foliolab/source'];
  },
});
process.argv = [process.argv[0], entry, ...rest];
await import(pathToFileURL(join(outDir, `${name}.js`)).href);
