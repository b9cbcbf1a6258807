import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/**
 * This package's directory (where guest/ and recorded/ live). Resolved by
 * name, not from import.meta.url, so it holds for the source, the build and
 * an app's bundle alike.
 */
export function packageDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@foliolab/kernel-oracle/package.json'));
}
