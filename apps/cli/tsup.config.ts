import { defineConfig } from 'tsup';

/** The `foliolab` binary: one ESM file with a node shebang; workspace packages stay external (dependencies). */
export default defineConfig({
  entry: { foliolab: 'src/foliolab.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  dts: false,
  clean: true,
  sourcemap: true,
  banner: { js: '#!/usr/bin/env node' },
});
