import type { EventCounts, EventName } from '@foliolab/ledger';
import { workedExample64K, type WorkedExampleOptions, type WorkedExampleResult } from './example.js';

/*
 * `pnpm run example`: prints the spec §8 table for a few profiles.
 * Output only; the numbers are asserted in example.test.ts.
 */

interface Row {
  label: string;
  get: (c: EventCounts) => number;
}

const tlbi = (c: EventCounts): number => c.TLBI_VA + c.TLBI_RANGE + c.TLBI_ASID;
const ev =
  (n: EventName) =>
  (c: EventCounts): number =>
    c[n];

const ROWS: Row[] = [
  { label: 'PTE_READ', get: ev('PTE_READ') },
  { label: 'PTE_XCHG', get: ev('PTE_XCHG') },
  { label: 'PTE_WRITE', get: ev('PTE_WRITE') },
  { label: 'TLBI (VA+RANGE+ASID)', get: tlbi },
  { label: 'DSB_ISHST', get: ev('DSB_ISHST') },
  { label: 'DSB_ISH', get: ev('DSB_ISH') },
  { label: 'CONTPTE_UNFOLD', get: ev('CONTPTE_UNFOLD') },
  { label: 'X86_INVLPG', get: ev('X86_INVLPG') },
  { label: 'X86_FLUSH_ALL', get: ev('X86_FLUSH_ALL') },
  { label: 'X86_IPI', get: ev('X86_IPI') },
  { label: 'PMD_READ', get: ev('PMD_READ') },
  { label: 'LOCK / UNLOCK', get: (c) => c.LOCK },
  { label: 'PVMW_CALL', get: ev('PVMW_CALL') },
  { label: 'PVMW_STEP', get: ev('PVMW_STEP') },
  { label: 'TLB_PENDING_ADD', get: ev('TLB_PENDING_ADD') },
];

function table(title: string, r: WorkedExampleResult): string {
  const lines = [`${title}  (G = ${r.g})`];
  const w = [22, 12, 10, 6];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  lines.push(row(['event', 'one-by-one', 'batched', 'Δ']));
  lines.push(row(['-'.repeat(22), '-'.repeat(12), '-'.repeat(10), '-'.repeat(6)]));
  const add = (label: string, a: number, b: number): void => {
    if (a !== 0 || b !== 0) lines.push(row([label, String(a), String(b), (b - a > 0 ? '+' : '') + String(b - a)]));
  };
  for (const x of ROWS) {
    if (x.label === 'DSB_ISH') {
      add('DSB_ISH (in folio)', x.get(r.oneByOne.folio), x.get(r.batched.folio));
      add('DSB_ISH (final flush)', x.get(r.oneByOne.flush), x.get(r.batched.flush));
      continue;
    }
    if (x.label.startsWith('X86_')) {
      add(x.label, x.get(r.oneByOne.total), x.get(r.batched.total));
      continue;
    }
    add(x.label, x.get(r.oneByOne.folio), x.get(r.batched.folio));
  }
  return lines.join('\n');
}

const CASES: [string, WorkedExampleOptions][] = [
  ['arm64-contpte, earlyExit gather, no range TLBI, deferred flush', {}],
  ['arm64-contpte, old17 gather', { gatherVariant: 'old17' }],
  ['arm64-contpte, earlyExit, FEAT_TLBIRANGE', { hasTlbiRange: true }],
  ['arm64-contpte, earlyExit, immediate flush (no TTU_BATCH_FLUSH)', { batchFlush: false }],
  ['x86 (one CPU in mm_cpumask: no deferral, INVLPG)', { profile: 'x86' }],
];

for (const [title, o] of CASES) {
  console.log(table(title, workedExample64K(o)));
  console.log('');
}
