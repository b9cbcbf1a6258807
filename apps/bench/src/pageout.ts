/**
 * Issue #5's benchmark: MADV_PAGEOUT of N MiB of 64K folios on the
 * arm64-contpte profile, under each policy: simulated PTEs per second (wall
 * time of the simulation itself) and simulator bytes per mapped 4K page.
 * Each iteration builds the mapped, written state in `beforeEach` (not timed)
 * and times only the madvise(MADV_PAGEOUT) call.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { Engine, type Policy } from '@foliolab/unmap-engine';
import { fmtRate, markdownTable, rowsOf } from './report.js';

const ADDR = 0x4000_0000;
const SLACK = 4 << 20;

/**
 * A full GC, run after each untimed build: otherwise the previous
 * iterations' engines (hundreds of MiB of typed arrays at 1 GiB) are
 * collected in the middle of a timed pageout, and the figure depends on
 * when V8 decides to collect. `gc` is exposed at run time (the bench runs
 * inside scripts/run-ts.mjs, which cannot pass --expose-gc).
 */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function build(mib: number, policy: Policy): { engine: Engine; pid: number } {
  const bytes = mib << 20;
  const engine = new Engine({
    arch: 'arm64-contpte',
    policy,
    mthp: { '64K': 'always' },
    // RAM and swap just above the mapping: 4M of slack is enough for every fault to get its 64K
    // folio (the page tables live outside simulated RAM), so the memmap is not inflated by unused RAM
    memory: bytes + SLACK,
    swap: bytes + SLACK,
  });
  const pid = engine.createProcess('bench');
  engine.mmap(pid, { addr: ADDR, len: bytes, prot: 'rw' });
  engine.write(pid, ADDR, bytes, 0); // memset(0) as in the published benchmark: every page zero-filled
  return { engine, pid };
}

export interface PageoutBenchResult {
  markdown: string;
}

export async function benchPageout(mib: number, time = 1500): Promise<PageoutBenchResult> {
  const pages = (mib << 20) / 4096;
  const policies: Policy[] = ['batched', 'mainline', 'per-pte'];
  const bench = new Bench({ name: `pageout ${mib} MiB`, time, warmup: true, warmupTime: 200, iterations: 3 });
  let cur: { engine: Engine; pid: number } | null = null;

  for (const policy of policies) {
    bench.add(
      `MADV_PAGEOUT ${policy}`,
      () => {
        cur!.engine.madvise(cur!.pid, ADDR, mib << 20, 'pageout');
      },
      {
        beforeEach: () => {
          cur = null;
          collectGarbage();
          cur = build(mib, policy);
          collectGarbage();
        },
      },
    );
  }
  const probe = build(mib, 'batched');
  const mem = probe.engine.memoryBytes();
  const bytesPerPage = mem.total / pages;
  // the same engine after the pageout: swap now holds every page, RAM is free again
  probe.engine.madvise(probe.pid, ADDR, mib << 20, 'pageout');
  const after = probe.engine.memoryBytes();
  await bench.run();
  const rows = rowsOf(bench, pages, { 'MADV_PAGEOUT batched': '≥ 30 M PTE/s', 'MADV_PAGEOUT per-pte': '≥ 10 M PTE/s' });
  const markdown = [
    `### MADV_PAGEOUT: ${mib} MiB of 64K folios (${pages} PTEs), arm64-contpte`,
    '',
    markdownTable(
      ['benchmark', 'simulated PTEs/s', 'mean ms / pageout', '± %', 'median ms', 'samples', 'target'],
      rows.map((r) => [r.name, fmtRate(r.ptesPerSec), r.meanMs.toFixed(2), r.rmePct.toFixed(1), r.medianMs.toFixed(2), r.samples, r.target ?? '']),
    ),
    '',
    markdownTable(
      ['simulator bytes per mapped 4K page', 'mapped, written state', 'after the pageout', 'target'],
      [
        ...Object.keys(mem.parts).map((k) => [k, (mem.parts[k]! / pages).toFixed(2), ((after.parts[k] ?? 0) / pages).toFixed(2), '']),
        ['total', bytesPerPage.toFixed(2), (after.total / pages).toFixed(2), '≤ 24 B (mapped state)'],
      ],
    ),
    '',
    `Simulated RAM and swap are each ${mib} MiB + ${SLACK >> 20} MiB; the mapped state has every page in a 64K folio.`,
  ].join('\n');
  return { markdown };
}
