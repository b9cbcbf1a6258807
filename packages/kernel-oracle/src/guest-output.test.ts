import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, specScenarioFiles } from '@foliolab/scenario';
import { counterName, expandRuns, guestObservations, outcomeOf, parseConsole, translateScenario } from './index.js';

/*
 * The console of a real boot (Linux 7.2.13+deb14-arm64 under QEMU TCG, spec scenarios 01–03,
 * recorded 2026-12-07 by `foliolab oracle record`), read back: the expected values are what
 * that kernel printed.
 */
const lines = readFileSync(new URL('./fixtures/console-arm64-spec-01-03.log', import.meta.url), 'utf8').split('\n');

describe('parseConsole on a recorded arm64 boot', () => {
  const con = parseConsole(lines);

  it('has the facts, three scenario runs, and the final marker', () => {
    expect(con.done).toBe(true);
    expect(con.facts.kernel).toMatch(/^7\.2\.13\+deb14-arm64 .* aarch64$/);
    expect(con.facts.lru_gen).toBe('0x0000');
    expect([...con.runs.keys()]).toEqual(['01-fault-in', '02-pageout-exclusive-today', '03-pageout-exclusive-batched']);
    for (const r of con.runs.values()) expect(r.status).toBe('ok');
  });

  it('decodes 02: a 64K folio faulted in, then 16 swap entries at 512..527 after MADV_PAGEOUT', () => {
    const file = specScenarioFiles().find((f) => f.includes('02-pageout'))!;
    const t = translateScenario(loadScenarioFile(file), { arch: 'arm64', id: '02-pageout-exclusive-today' });
    const obs = guestObservations(con.runs.get('02-pageout-exclusive-today')!, t.program, new Map([[3, 'pageout']]));
    expect(obs.map((s) => s.step)).toEqual([0, 1, 3]);
    const faulted = obs[1]!.processes[0]!.pages;
    expect(faulted).toEqual([
      { addr: '0x40000000', n: 16, kind: 'present', folio: 0, idx: 0, order: 4, mapcount: 1, exclusive: true, flags: ['anon', 'lru', 'swapbacked', 'uptodate'], anonExclusiveHead: true },
    ]);
    expect(obs[1]!.counters['mthp.64K.anon_fault_alloc']).toBe(1);
    const out = expandRuns(obs[2]!.processes[0]!.pages);
    expect([...out.values()].map((p) => [p.kind, p.type, p.offset])).toEqual(Array.from({ length: 16 }, (_, i) => ['swap', 0, 512 + i]));
    expect(obs[2]!.counters).toMatchObject({ pswpout: 16, 'mthp.64K.swpout': 1, 'mthp.64K.nr_anon': -1 });
    expect(obs[2]!.processes[0]!.vmas).toEqual([{ start: '0x40000000', end: '0x40010000', perms: 'rw-p', flags: ['ac', 'me', 'mr', 'mw', 'rd', 'wr'], rss: 0, swap: 16 }]);
  });

  it('keeps only the counters that belong to the scenario', () => {
    const run = con.runs.get('01-fault-in')!;
    expect(Object.keys(run.steps[0]!.counters)).not.toContain('numa_hit');
    expect(Object.keys(run.steps[0]!.counters)).not.toContain('pgfault');
  });
});

describe('pagemap and kpageflags decoding (pagemap.rst, kernel-page-flags.h, 7.2.13 swap.h)', () => {
  const one = (pg: string): ReturnType<typeof expandRuns> => {
    const con = parseConsole(['KORACLE-RUN x', 'KO begin x', 'KO step 0 0 0 0', 'KO proc 0 0 9', `KO pg 0 0 ${pg}`, 'KO done 0', 'KO end x ok', 'KORACLE-EXIT x rc=0']);
    const prog = { procNames: ['p'] } as unknown as Parameters<typeof guestObservations>[1];
    return expandRuns(guestObservations(con.runs.get('x')!, prog, new Map())[0]!.processes[0]!.pages);
  };
  it('swap type 31 is a PTE marker; bit 57 its uffd-wp', () => {
    // frame = type | offset << 5; PM_SWAP (62) | PM_UFFD_WP (57)
    const pm = (1n << 62n) | (1n << 57n) | 31n | (1n << 5n);
    expect(one(`40000000 ${pm.toString(16)}`).get(0x4000_0000)).toEqual({ kind: 'marker', uffdWp: true });
  });
  it('swap type 24 (MAX_SWAPFILES) is a hwpoison entry; 0..23 are swap devices', () => {
    expect(one(`40000000 ${((1n << 62n) | 24n | (77n << 5n)).toString(16)}`).get(0x4000_0000)).toEqual({ kind: 'hwpoison' });
    expect(one(`40000000 ${((1n << 62n) | 1n | (77n << 5n)).toString(16)}`).get(0x4000_0000)).toEqual({ kind: 'swap', type: 1, offset: 77 });
  });
  it('a present page with KPF_ZERO_PAGE is the zero page', () => {
    expect(one(`40000000 ${((1n << 63n) | 0x1234n).toString(16)} ${(1n << 24n).toString(16)} 0 1234 0`).get(0x4000_0000)).toEqual({ kind: 'zero' });
  });
  it('outcomes and counter names', () => {
    expect([outcomeOf(0, 0), outcomeOf(-1, 12), outcomeOf(-1, 1011), outcomeOf(-1, 1007)]).toEqual(['ok', 'ENOMEM', 'SIGSEGV', 'SIGBUS']);
    expect([counterName('mthp.2048K.swpout'), counterName('mthp.64K.swpout'), counterName('pswpout')]).toEqual(['mthp.2M.swpout', 'mthp.64K.swpout', 'pswpout']);
  });
});
