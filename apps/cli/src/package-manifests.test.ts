import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The manifests of the public packages, as a user of one package relies on them (issue 15). The
 * tarballs themselves are checked by `pnpm verify:pack` (scripts/verify-pack.mjs), which needs a
 * build and the registry; this keeps the manifest rules in `pnpm test`.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  repository?: { type?: string; url?: string; directory?: string };
  homepage?: string;
  bugs?: { url?: string };
  exports?: Record<string, unknown>;
  files?: string[];
  engines?: { node?: string };
}

const publicPackages = ['packages', 'apps'].flatMap((group) =>
  readdirSync(join(ROOT, group))
    .map((name) => `${group}/${name}`)
    .filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
    .map((dir) => [dir, JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest] as const)
    .filter(([, m]) => m.private !== true),
);

describe('public package manifests', () => {
  it('include the ten packages the README lists', () => {
    const names = ['ledger', 'folio-flags', 'pagetable-arm64-contpte', 'rmap', 'swap', 'pvmw', 'unmap-engine', 'scenario', 'kernel-oracle', 'cli'];
    expect(publicPackages.map(([, m]) => m.name)).toEqual(expect.arrayContaining(names.map((n) => `@foliolab/${n}`)));
  });

  it.each(publicPackages)('%s: MIT with its LICENSE, one repository with the directory, homepage, bugs, engines', (dir, m) => {
    expect(m.license).toBe('MIT');
    expect(existsSync(join(ROOT, dir, 'LICENSE'))).toBe(true);
    expect(readFileSync(join(ROOT, dir, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(m.repository).toEqual({ type: 'git', url: publicPackages[0]![1].repository?.url, directory: dir });
    expect(m.homepage).toMatch(/^https:\/\//);
    expect(m.bugs?.url).toMatch(/^https:\/\//);
    expect(m.engines?.node).toBe('>=20.19');
  });

  it.each(publicPackages)('%s: files ship README, CHANGELOG and LICENSE, and src/ only as *.ts globs with the tests excluded', (_dir, m) => {
    const files = m.files ?? [];
    expect(files).toEqual(expect.arrayContaining(['dist', 'README.md', 'CHANGELOG.md', 'LICENSE']));
    // A bare "src" makes npm-packlist walk src/, and it always includes files named readme.* there
    // (src/readme.test.ts), whatever "!" patterns follow.
    expect(files).not.toContain('src');
    if (files.includes('src/**/*.ts')) {
      expect(files).toEqual(expect.arrayContaining(['!src/**/*.test.ts', '!src/**/*.test-d.ts', '!src/**/*test-fixtures.ts', '!src/**/test-*.ts']));
    }
  });

  it.each(publicPackages.filter(([, m]) => m.exports !== undefined))(
    '%s: exports["."] is types, then default (require(esm) on Node >= 20.19 needs a condition require() matches)',
    (_dir, m) => {
      const root = m.exports!['.'] as Record<string, string>;
      const keys = Object.keys(root).filter((k) => k !== '@foliolab/source');
      expect(keys).toEqual(['types', 'default']);
      expect(root.default).toBe('./dist/index.js');
      expect(m.exports!['./package.json']).toBe('./package.json');
    },
  );
});
