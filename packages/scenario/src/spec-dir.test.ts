import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import { specScenarioFiles, specScenariosDir } from './index.js';

/*
 * specScenariosDir() names this package's scenarios/spec/ wherever the code runs: from source,
 * from dist/, and from an app's bundle (scripts/run-ts.mjs bundles @foliolab/* into the app, so
 * import.meta.url is the app's, not this package's).
 */

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const SPEC_DIR = realpathSync(join(PACKAGE_DIR, 'scenarios', 'spec'));

describe('specScenariosDir', () => {
  it('is scenarios/spec of the package, from source', () => {
    expect(realpathSync(specScenariosDir())).toBe(SPEC_DIR);
    expect(specScenarioFiles()).toHaveLength(26);
  });

  const app = mkdtempSync(join(tmpdir(), 'foliolab-spec-dir-'));
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('is scenarios/spec of the package, from a bundle in an app that depends on it', async () => {
    // An app outside the package: node_modules/@foliolab/scenario links to the package (as pnpm
    // links a workspace dependency), and the bundle lives in the app's own directory.
    mkdirSync(join(app, 'node_modules', '@foliolab'), { recursive: true });
    symlinkSync(PACKAGE_DIR, join(app, 'node_modules', '@foliolab', 'scenario'), 'dir');
    await build({
      config: false,
      entry: { 'spec-dir': fileURLToPath(new URL('./spec-dir.ts', import.meta.url)) },
      format: ['esm'],
      platform: 'node',
      target: 'node20',
      outDir: join(app, 'dist'),
      dts: false,
      sourcemap: false,
      silent: true,
    });
    const bundled = (await import(pathToFileURL(join(app, 'dist', 'spec-dir.js')).href)) as { specScenariosDir(): string };
    expect(realpathSync(bundled.specScenariosDir())).toBe(SPEC_DIR);
  });
});
