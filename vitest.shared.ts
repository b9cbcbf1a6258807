import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings: resolve sibling workspace packages through the
 * "@foliolab/source" export condition, so `turbo run test` needs no build.
 */
export const sharedConfig = defineConfig({
  resolve: { conditions: ['@foliolab/source'] },
  ssr: { resolve: { conditions: ['@foliolab/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    environment: 'node',
    pool: 'threads',
    // turbo runs every package's tests at once on 2 cores: leave room for load
    testTimeout: 30_000,
  },
});
