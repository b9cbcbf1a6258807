import { describe, expect, it } from 'vitest';
import { compareObservations, formatDifferences, notAllowedFor, type StepObs } from './index.js';

function step(pages: StepObs['processes'][number]['pages'], counters: Record<string, number> = {}): StepObs {
  return { step: 3, kind: 'pageout', outcome: 'ok', lost: [], counters, processes: [{ slot: 0, name: 'parent', vmas: [], pages }] };
}
const swapRun = (offset: number): StepObs['processes'][number]['pages'] => [{ addr: '0x40000000', n: 16, kind: 'swap', type: 0, offset }];

describe('compareObservations', () => {
  it('equal answers: no difference', () => {
    expect(compareObservations([step(swapRun(512), { pswpout: 16 })], [step(swapRun(512), { pswpout: 16 })])).toEqual([]);
  });

  it('names the step, the place, the field and both values; folds a run of pages into one line', () => {
    const d = compareObservations([step(swapRun(512))], [step(swapRun(16))]);
    expect(d).toHaveLength(16);
    expect(d[0]).toMatchObject({ step: 3, where: 'parent 0x40000000', field: 'offset', kernel: 512, engine: 16 });
    expect(formatDifferences(d)).toEqual(['step 3 parent 0x40000000 (+15 pages) offset: kernel 512..527, engine 16..31']);
  });

  it('compares the counters both sides have, and ignores the kernel-only noise', () => {
    const d = compareObservations([step([], { pswpout: 16, numa_hit: 40, 'mthp.64K.swpout': 1 })], [step([], { pswpout: 15, 'mthp.64K.swpout': 1 })]);
    expect(d.map((x) => [x.field, x.kernel, x.engine])).toEqual([['pswpout', 16, 15]]);
  });

  it('a counter only the engine moved is compared too (the engine spells nr_swapcached nr_swapcache)', () => {
    const d = compareObservations([step([], {})], [step([], { nr_swapcache: 16 })]);
    expect(d.map((x) => [x.field, x.kernel, x.engine])).toEqual([['nr_swapcached', 0, 16]]);
  });

  it('a page present on one side only', () => {
    const d = compareObservations([step(swapRun(512))], [step([])]);
    expect(d[0]).toMatchObject({ field: 'kind', kernel: 'swap', engine: 'none' });
  });

  it('mainline may differ in nothing; another policy only where ALLOWED_DIFFERENCES says', () => {
    // mainline queues a spurious deferred split where a batch would not (a row for per-pte and mainline):
    // per-pte and batched may differ from the kernel's mainline answer there
    const d = compareObservations([step([], { 'mthp.64K.split_deferred': 1 })], [step([], { 'mthp.64K.split_deferred': 0 })]);
    expect(notAllowedFor('mainline', d)).toHaveLength(1);
    expect(notAllowedFor('per-pte', d)).toHaveLength(0);
    expect(notAllowedFor('batched', d)).toHaveLength(0);
    // no row covers a swap offset: every policy must give the kernel's
    const o = compareObservations([step(swapRun(512))], [step(swapRun(16))]);
    for (const p of ['mainline', 'per-pte', 'batched'] as const) expect(notAllowedFor(p, o)).toHaveLength(16);
  });
});
