// `pnpm run example`: bundle src/example-main.ts (and @foliolab/ledger from
// source, via the "@foliolab/source" export condition) with tsup, then run it.
// Works from a clean checkout after `pnpm install`: no prior build needed.
import { build } from 'tsup';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, '.example-out');
await build({
  config: false,
  entry: { 'example-main': join(root, 'src/example-main.ts') },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir,
  dts: false,
  sourcemap: false,
  clean: true,
  silent: true,
  noExternal: [/^@foliolab\//],
  esbuildOptions(options) {
    options.conditions = ['@foliolab/source'];
  },
});
await import(pathToFileURL(join(outDir, 'example-main.js')).href);
