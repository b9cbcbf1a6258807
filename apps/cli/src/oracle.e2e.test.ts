import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordedDir, recordFiles } from '@foliolab/kernel-oracle';
import { specScenarioFiles } from '@foliolab/scenario';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, runCli, type BuiltCli, type CliResult } from './test-cli.js';

/*
 * `foliolab oracle`: translate and check need no QEMU (check compares the engine with the shipped
 * recorded answers of the real Linux 7.2.13); record needs it and is exercised by hand
 * (docs/ORACLE.md).
 */

let cli: BuiltCli;
const run = (args: readonly string[]): Promise<CliResult> => runCli(cli.bin, args);
const spec = (prefix: string): string => specScenarioFiles().find((f) => f.includes(`/${prefix}`))!;

beforeAll(async () => {
  cli = await buildCli();
}, 60_000);
afterAll(() => cli?.cleanup());

describe('foliolab oracle', () => {
  it('translate prints the C program of a scenario', async () => {
    const r = await run(['oracle', 'translate', spec('02-')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('#include "koracle.h"');
    expect(r.stdout).toMatch(/\{ 3, KO_MADVISE, 0, 0x40000000ULL, 0x10000ULL, 0x15ULL, 0x0ULL \}, \/\* step 3: madvise pageout \*\//);
  });

  it('translate says where a scenario stops being expressible', async () => {
    const r = await run(['oracle', 'translate', spec('11-')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stops before step 0: archOptions.archUnmapOne/);
  });

  it('check: every shipped record matches the engine or differs exactly as known-differences.json says (exit 0)', async () => {
    const r = await run(['oracle', 'check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${recordFiles().length} record\\(s\\): \\d+ match the engine, \\d+ differ as known-differences.json says, 0 otherwise$`, 'm'));
  }, 120_000);

  it('check: a record the engine does not match is exit 1, with the differences', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oracle-e2e-'));
    try {
      const src = recordFiles(recordedDir(), 'arm64').find((f) => f.includes('02-pageout'))!;
      const rec = JSON.parse(readFileSync(src, 'utf8')) as { steps: { processes: { pages: { offset?: number }[] }[] }[] };
      rec.steps[2]!.processes[0]!.pages[0]!.offset = 16; // the kernel said 512
      mkdirSync(join(dir, 'arm64'));
      writeFileSync(join(dir, 'arm64', 'x.json'), JSON.stringify(rec));
      const r = await run(['oracle', 'check', join(dir, 'arm64', 'x.json')]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('step 3 parent 0x40000000 (+15 pages) offset: kernel 16..31, engine 512..527');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('bad flags are exit 2', async () => {
    const r = await run(['oracle', 'check', '--arch', 'sparc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--arch "sparc" is not one of arm64, x86, all/);
  });
});
