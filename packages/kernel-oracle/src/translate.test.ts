import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, parseScenario, specScenarioFiles } from '@foliolab/scenario';
import { cRegistry, cSource, guestDir, KO, translateScenario } from './index.js';

const spec = (n: string): string => specScenarioFiles().find((f) => f.includes(`/${n}-`))!;

describe('translateScenario', () => {
  it('spec 02 becomes mmap, write, MADV_PAGEOUT at the scenario addresses', () => {
    const t = translateScenario(loadScenarioFile(spec('02')), { arch: 'arm64', id: 'x' });
    const p = t.program;
    expect(p.procNames).toEqual(['parent']);
    expect(p.steps.map((s) => [s.index, s.op, s.proc, s.addr, s.len])).toEqual([
      [0, KO.MMAP, 0, 0x4000_0000, 0x1_0000],
      [1, KO.WRITE, 0, 0x4000_0000, 0x1_0000],
      [3, KO.MADVISE, 0, 0x4000_0000, 0x1_0000],
    ]);
    expect(p.steps[2]!.arg).toBe(21n); // MADV_PAGEOUT, include/uapi/asm-generic/mman-common.h
    expect(p.mthpAlways).toBe(1 << 4);
    expect(p.swapBytes).toBe(64 * 2 ** 20);
    expect(p.domain).toEqual([{ start: 0x4000_0000, pages: 16 }]);
    expect(t.engine.map((s) => s.step)).toEqual([0, 1, 3]);
  });

  it('stops at a step user space cannot express, and says why', () => {
    const inject = translateScenario(loadScenarioFile(spec('10')), { arch: 'arm64' });
    expect(inject.program.stop?.reason).toMatch(/failure injection/);
    const sparc = translateScenario(loadScenarioFile(spec('11')), { arch: 'arm64' });
    expect(sparc.program.stop?.step).toBe(0);
    expect(sparc.program.stop?.reason).toMatch(/sparc64/);
    expect(sparc.program.steps).toEqual([]);
  });

  it('gives forks their own slot and pins the handle to the process that took it', () => {
    const s = parseScenario(
      `name: t
config: { mthp: { 64K: always } }
processes: [{ name: a }]
steps:
  - mmap: { process: a, addr: 0x40000000, len: 64K, as: buf }
  - write: { process: a, addr: buf, len: 64K }
  - fork: { process: a, child: b }
  - pin: { process: b, addr: buf, len: 4K, kind: get, as: h }
  - unpin: { handle: h }
  - exit: { process: b }
`,
      't.yaml',
    );
    const p = translateScenario(s, { arch: 'x86' }).program;
    expect(p.procNames).toEqual(['a', 'b']);
    expect(p.steps.map((x) => [x.op, x.proc, x.arg])).toEqual([
      [KO.MMAP, 0, 3n],
      [KO.WRITE, 0, 2n ** 32n],
      [KO.FORK, 0, 1n],
      [KO.PIN, 1, 0n],
      [KO.UNPIN, 1, 0n],
      [KO.EXIT, 1, 0n],
    ]);
    expect(p.steps[3]!.arg2).toBe(2); // KO_PIN_GET: vmsplice
  });
});

const hostCc = spawnSync('sh', ['-c', 'command -v gcc'], { stdio: 'ignore' }).status === 0;

describe.runIf(hostCc)('the guest C (host gcc, -Werror)', () => {
  it('the runtime, /init and every spec scenario translation compile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koracle-'));
    const flags = ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-I', guestDir()];
    execFileSync('gcc', [...flags, '-c', '-o', join(dir, 'koracle.o'), join(guestDir(), 'koracle.c')]);
    execFileSync('gcc', [...flags, '-c', '-o', join(dir, 'init.o'), join(guestDir(), 'init.c')]);
    const ids: string[] = [];
    for (const f of specScenarioFiles()) {
      const id = f.split('/').pop()!.replace(/\.yaml$/, '');
      const t = translateScenario(loadScenarioFile(f), { arch: 'x86', id });
      writeFileSync(join(dir, `${id}.c`), cSource(t.program));
      execFileSync('gcc', [...flags, '-c', '-o', join(dir, `${id}.o`), join(dir, `${id}.c`)]);
      ids.push(id);
    }
    writeFileSync(join(dir, 'registry.c'), cRegistry(ids));
    execFileSync('gcc', [...flags, '-c', '-o', join(dir, 'registry.o'), join(dir, 'registry.c')]);
  }, 60_000);
});
