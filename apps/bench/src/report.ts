import type { Bench } from 'tinybench';

/** One benchmark's result, in the units the issues state targets in. */
export interface BenchRow {
  name: string;
  /** Simulated PTEs per second (mean over samples). */
  ptesPerSec: number;
  /** Mean wall time of one iteration, ms. */
  meanMs: number;
  /** Median wall time of one iteration, ms (robust to a stray slow sample). */
  medianMs: number;
  /** Relative margin of error of the mean latency, %. */
  rmePct: number;
  samples: number;
  target?: string;
}

/** Rows for every completed task of `bench`, each iteration handling `ptesPerIter` PTEs. */
export function rowsOf(bench: Bench, ptesPerIter: number, targets: Record<string, string> = {}): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const task of bench.tasks) {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`benchmark ${task.name} did not complete (${r.state})`);
    const meanMs = r.latency.mean;
    rows.push({
      name: task.name,
      ptesPerSec: ptesPerIter / (meanMs / 1000),
      meanMs,
      medianMs: r.latency.p50,
      rmePct: r.latency.rme,
      samples: r.latency.samplesCount,
      ...(targets[task.name] !== undefined ? { target: targets[task.name] } : {}),
    });
  }
  return rows;
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(1)} M/s` : `${(x / 1e3).toFixed(1)} k/s`;
}
