import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '@foliolab/scenario';
import { expandRuns, readRecord, recordedDir, repoRoot, translateScenario } from './index.js';

/*
 * Issue 11's three findings, each held to the recorded answer of the real Linux 7.2.13
 * (the engine had answers no kernel gives; these are the kernel's).
 */

const rec = (arch: 'arm64' | 'x86', id: string): ReturnType<typeof readRecord> => readRecord(`${recordedDir()}/${arch}/${id}.json`);
const engine = (r: ReturnType<typeof readRecord>): ReturnType<typeof translateScenario>['engine'] =>
  translateScenario(loadScenarioFile(`${repoRoot()}/${r.scenario}`), { arch: r.arch }).engine;

describe('finding 1: MADV_PAGEOUT clears no young bit and flushes nothing in its madvise walk', () => {
  it('x86: the kernel flushes 16 times during the pageout of a 64K folio (the unmap, one PTE at a time, nothing deferred on one CPU), as the engine', () => {
    for (const id of ['02-pageout-exclusive-today', '03-pageout-exclusive-batched', '06-read-fault-swapin', '26-no-batch-flush']) {
      const r = rec('x86', id);
      const e = engine(r);
      const i = r.steps.findIndex((s) => s.kind === 'pageout');
      // recorded: flush_tlb_mm_range 16 — a young-clearing madvise walk would add one more
      expect(r.steps[i]!.calls?.flush_tlb_mm_range, id).toBe(16);
      expect(e[i]!.events?.TLB_FLUSH_RANGE, id).toBe(16);
    }
  });
});

describe('finding 2: a swap-in on a SWP_SYNCHRONOUS_IO device (zram) frees the swap cache, even on a read fault', () => {
  it('the kernel maps the 64K folio back dirty and out of the swap cache, as the engine', () => {
    for (const arch of ['arm64', 'x86'] as const) {
      const r = rec(arch, '06-read-fault-swapin');
      const read = r.steps.find((s) => s.kind === 'read')!;
      const pages = [...expandRuns(read.processes[0]!.pages).values()];
      expect(pages).toHaveLength(16);
      for (const p of pages) {
        expect(p.order).toBe(4);
        expect(p.flags).toContain('dirty'); // folio_free_swap → swap_cache_del_folio + folio_mark_dirty
        expect(p.flags).not.toContain('swapcache');
      }
      const e = engine(r);
      const er = [...expandRuns(e[r.steps.indexOf(read)]!.processes[0]!.pages).values()];
      expect(er.map((p) => [p.order, p.flags?.includes('dirty'), p.flags?.includes('swapcache')])).toEqual(pages.map(() => [4, true, false]));
    }
  });
});

describe('finding 3: a fork batch respects dirty (copy_present_ptes, FPB_RESPECT_DIRTY)', () => {
  it('x86: the child keeps page 3 dirty, so MADV_PAGEOUT of the lazyfree folio aborts and keeps all 16 pages', () => {
    const r = rec('x86', 'oracle-fork-dirty');
    const po = r.steps.find((s) => s.kind === 'pageout')!;
    const pages = [...expandRuns(po.processes[0]!.pages).values()];
    expect(pages.map((p) => p.kind)).toEqual(Array(16).fill('present'));
    expect(pages[0]!.flags).toContain('swapbacked');
    expect(po.counters.pglazyfreed ?? 0).toBe(0);
    const e = engine(r)[r.steps.indexOf(po)]!;
    expect([...expandRuns(e.processes[0]!.pages).values()].map((p) => p.kind)).toEqual(Array(16).fill('present'));
  });
});

describe('MADV_HWPOISON answers the caller as 7.2.13 does (memory_failure: kill_procs, kill_procs_now, kill_accessing_process)', () => {
  it('the engine reports SIGBUS exactly where the recorded kernel sent it', () => {
    let seen = 0;
    for (const arch of ['arm64', 'x86'] as const) {
      for (const id of ['oracle-poison-collect', 'oracle-poison-swapcache-dirty', 'oracle-poison-split-zeropage', 'oracle-poison-swapped-large']) {
        const r = rec(arch, id);
        const e = engine(r);
        r.steps.forEach((s, i) => {
          if (s.kind !== 'poison') return;
          seen++;
          expect(e[i]!.outcome === 'SIGBUS', `${arch}/${id} step ${s.step}`).toBe(s.outcome === 'SIGBUS');
        });
      }
    }
    expect(seen).toBe(14);
  });
});
