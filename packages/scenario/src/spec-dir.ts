import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of the §7 spec scenarios shipped with the package (`scenarios/spec/`). */
export function specScenariosDir(): string {
  // src/ and dist/ are siblings of scenarios/, so this holds for source and build alike.
  return fileURLToPath(new URL('../scenarios/spec/', import.meta.url));
}

/** Paths of the spec scenario files, in name order. */
export function specScenarioFiles(): string[] {
  const dir = specScenariosDir();
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}
