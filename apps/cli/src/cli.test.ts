import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_SCHEMA } from '@foliolab/scenario';
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { factoryOrUnavailable } from './engine.js';
import { EngineUnavailableError } from './errors.js';
import { processIo, styleFor, userPath, type Io } from './io.js';
import { fmtEvents, fmtNs, fmtRatio, renderTable } from './table.js';
import { CLI_DIR } from './test-cli.js';
import { VERSION } from './version.js';

/* In-process checks of the command layer and the rendering helpers (the spawned binary is in cli.e2e.test.ts). */

function bufferIo(env: Record<string, string> = {}): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env,
    cwd: CLI_DIR,
    out: () => out,
    err: () => err,
  };
}

describe('main (in process)', () => {
  it('VERSION is package.json’s version', () => {
    const pkg = JSON.parse(readFileSync(join(CLI_DIR, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });

  it('schema state → the state schema on stdout, exit 0', async () => {
    const io = bufferIo();
    expect(await main(['schema', 'state'], io)).toBe(0);
    expect(JSON.parse(io.out())).toEqual(JSON.parse(JSON.stringify(STATE_SCHEMA)));
    expect(io.err()).toBe('');
  });

  it('a CliError is one line on stderr with its exit code; --json output stays empty', async () => {
    const io = bufferIo();
    expect(await main(['pageout', '--size', '1M', '--folio', '2M', '--json'], io)).toBe(2);
    expect(io.err()).toBe('foliolab: pageout: --size 1M must be a non-zero multiple of the folio size 2M\n');
    expect(io.out()).toBe('');
  });

  it('a scenario error prints only the diagnostics (path:line:col: message), exit 2', async () => {
    const io = bufferIo();
    expect(await main(['run', 'test/fixtures/bad/28-len-not-page-multiple.yaml'], io)).toBe(2);
    expect(io.err()).toBe('test/fixtures/bad/28-len-not-page-multiple.yaml:5:35: steps[0].mmap.len: length "6K" (6144 bytes) is not a multiple of 4K\n');
  });
});

describe('no engine', () => {
  it('the stand-in factory throws "engine not available" (exit 2) naming the command', () => {
    const f = factoryOrUnavailable(null, 'run');
    expect(() => f({})).toThrow(EngineUnavailableError);
    try {
      f({});
    } catch (e) {
      expect((e as EngineUnavailableError).exitCode).toBe(2);
      expect((e as Error).message).toMatch(/^run: engine not available: @foliolab\/unmap-engine could not be loaded/);
    }
  });
});

describe('io', () => {
  it('colour: on for a TTY, off for NO_COLOR (non-empty) or --no-color, forced by FORCE_COLOR (not 0)', () => {
    const tty = { write: () => true, isTTY: true };
    const pipe = { write: () => true, isTTY: false };
    expect(styleFor(tty, {}).enabled).toBe(true);
    expect(styleFor(tty, { NO_COLOR: '1' }).enabled).toBe(false);
    expect(styleFor(tty, { NO_COLOR: '' }).enabled).toBe(true);
    expect(styleFor(tty, {}, false).enabled).toBe(false);
    expect(styleFor(pipe, {}).enabled).toBe(false);
    expect(styleFor(pipe, { FORCE_COLOR: '1' }).enabled).toBe(true);
    expect(styleFor(pipe, { FORCE_COLOR: '0' }).enabled).toBe(false);
    expect(styleFor(pipe, {}).red('x')).toBe('x');
    expect(styleFor(tty, {}).red('x')).toBe('\u001b[31mx\u001b[39m');
  });

  it('paths are the user’s: INIT_CWD when started by the `foliolab` package script (pnpm runs it in apps/cli)', () => {
    expect(processIo({ npm_lifecycle_event: 'foliolab', INIT_CWD: '/work/main' }, '/work/main/apps/cli').cwd).toBe('/work/main');
    expect(processIo({ npm_lifecycle_event: 'test', INIT_CWD: '/elsewhere' }, '/here').cwd).toBe('/here');
    expect(userPath({ ...bufferIo(), cwd: '/a/b' }, 'c.yaml')).toBe('/a/b/c.yaml');
    expect(userPath({ ...bufferIo(), cwd: '/a/b' }, '/x.yaml')).toBe('/x.yaml');
  });
});

describe('table helpers', () => {
  it('aligns columns by visible width (ANSI ignored), first column left, the rest right', () => {
    const st = styleFor({ write: () => true, isTTY: true }, {});
    const t = renderTable(['event', 'a'], [[st.red('PTE_READ'), '1,024'], ['TLBI_VA', '2']]).replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '');
    expect(t).toBe(['event         a', 'PTE_READ  1,024', 'TLBI_VA       2'].join('\n'));
  });

  it('formats events, durations and ratios', () => {
    expect(fmtEvents({ PTE_READ: 71, TLBI_VA: 32, DSB_ISH: 0 }, 80, '  ')).toBe('PTE_READ 71 · TLBI_VA 32');
    expect(fmtEvents({ AAAA: 1, BBBB: 2, CCCC: 3 }, 17, '  ')).toBe('AAAA 1 · BBBB 2\n  CCCC 3');
    expect(fmtEvents({}, 80, '')).toBe('(no events)');
    expect([fmtNs(850), fmtNs(12_500), fmtNs(3_210_000), fmtNs(37_401_913)]).toEqual(['850 ns', '12.5 µs', '3.210 ms', '37.40 ms']);
    expect([fmtRatio(0.46576), fmtRatio(null), fmtRatio(Number.NaN)]).toEqual(['0.466', '—', '—']);
  });
});
