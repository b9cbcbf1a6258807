import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

/*
 * Test support for the end-to-end tests: build the `foliolab` binary once
 * (tsup, with @foliolab/* bundled from source through the "@foliolab/source"
 * condition, like scripts/run-ts.mjs) into a temporary directory inside
 * apps/cli, and spawn it with node. Not part of the published package.
 */

/** apps/cli */
export const CLI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface BuiltCli {
  readonly bin: string;
  readonly dir: string;
  cleanup(): void;
}

export async function buildCli(): Promise<BuiltCli> {
  const dir = mkdtempSync(join(CLI_DIR, '.test-out-'));
  await build({
    config: false,
    entry: { foliolab: join(CLI_DIR, 'src/foliolab.ts') },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    outDir: dir,
    dts: false,
    sourcemap: false,
    silent: true,
    noExternal: [/^@foliolab\//],
    esbuildOptions(options) {
      options.conditions = ['@foliolab/source'];
    },
  });
  return { bin: join(dir, 'foliolab.js'), dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawn `node bin ...args` in apps/cli (colour off unless env says otherwise). */
export function runCli(bin: string, args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const base: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, npm_lifecycle_event: undefined };
  const merged = { ...base, ...env };
  const clean = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: CLI_DIR, env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
