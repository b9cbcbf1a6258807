import { defineConfig } from 'tsup';

/** Every package builds the same way: ESM + .d.ts from src/index.ts (TS 6 needs ignoreDeprecations for tsup's dts). */
export const sharedTsup = defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
  clean: true,
  sourcemap: true,
});
