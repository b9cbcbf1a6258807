import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The directory of the §7 spec scenarios shipped with the package (`scenarios/spec/`). Found from
 * the package's own package.json, resolved by name, not from import.meta.url: an app that bundles
 * this module (scripts/run-ts.mjs) moves import.meta.url into the app, and `../scenarios/spec/`
 * from there is not this package's.
 */
export function specScenariosDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@foliolab/scenario/package.json')), 'scenarios', 'spec');
}

/** Paths of the spec scenario files, in name order. */
export function specScenarioFiles(): string[] {
  const dir = specScenariosDir();
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}
