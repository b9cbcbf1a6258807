/**
 * Issue #3's benchmark: batched `get_and_clear_full_ptes` over N MiB of 64K
 * contpte blocks vs the same one PTE at a time (`ptep_get_and_clear`, which
 * unfolds each block on its first entry), and simulator bytes per mapped 4K
 * page for page tables + memmap. Each iteration re-maps the range in
 * `beforeEach` (not timed), so every timed pass starts from valid-CONT blocks.
 */
import { Bench } from 'tinybench';
import { Ledger } from '@foliolab/ledger';
import { Memmap } from '@foliolab/folio-flags';
import {
  Machine,
  PageTables,
  PTRS_PER_PTE,
  getAndClearFullPtes,
  makeUserPte,
  pageTableBytes,
  ptepGetAndClear,
  pteBits,
  setPtes,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { fmtRate, markdownTable, rowsOf, type BenchRow } from './report.js';

const FOLIO_PAGES = 16;
const VA_BASE = 0x40_0000_0000;

interface Mapped {
  mm: PageTables;
  memmap: Memmap;
  tables: PteTable[];
  heads: number[];
  pages: number;
}

function mapRange(mib: number, profile: 'arm64-contpte' | 'x86'): Mapped {
  const pages = (mib << 20) >>> 12;
  const ledger = new Ledger();
  const memmap = new Memmap({ nrPages: pages, ledger });
  const machine = new Machine({ profile, ledger });
  const mm = new PageTables(machine, { folios: memmap });
  const heads: number[] = [];
  for (let i = 0; i < pages / FOLIO_PAGES; i++) {
    const f = memmap.allocFolio(4);
    if (f === null) throw new Error('bench: memmap exhausted');
    heads.push(f.head);
  }
  const tables: PteTable[] = [];
  for (let va = VA_BASE; va < VA_BASE + pages * 4096; va += PTRS_PER_PTE * 4096) tables.push(mm.pteAlloc(va));
  const m = { mm, memmap, tables, heads, pages };
  remap(m);
  return m;
}

/** Install every folio as one valid-CONT block (young + dirty + writable, as after memset). */
function remap(m: Mapped): void {
  let f = 0;
  for (const t of m.tables) {
    for (let i = 0; i < PTRS_PER_PTE; i += FOLIO_PAGES) {
      const pte = makeUserPte(m.heads[f++]!, { write: true, young: true, dirty: true });
      setPtes(t, i, pte.lo, pte.hi, FOLIO_PAGES);
    }
  }
}

export interface PagetableBenchResult {
  rows: BenchRow[];
  bytesPerPage: number;
  pageTableBytesPerPage: number;
  memmapBytesPerPage: number;
  markdown: string;
}

export async function benchPagetable(mib: number, time = 1500): Promise<PagetableBenchResult> {
  const m = mapRange(mib, 'arm64-contpte');
  // Memory of the mapped state, before any unmap leaves TLB work in flight.
  const ptBytes = pageTableBytes(m.mm);
  const mb = m.memmap.memmapBytes();
  const memmapBytes = mb.flags + mb.aux + mb.spill;
  const v = pteBits();
  const bench = new Bench({ name: `pagetable ${mib} MiB`, time, warmup: true, warmupTime: 200 });
  const reset = () => {
    remap(m);
  };
  bench.add(
    'batched get_and_clear_full_ptes (nr=16)',
    () => {
      for (const t of m.tables) for (let i = 0; i < PTRS_PER_PTE; i += FOLIO_PAGES) getAndClearFullPtes(t, i, FOLIO_PAGES, false, v);
    },
    { beforeEach: reset },
  );
  bench.add(
    'one PTE at a time ptep_get_and_clear',
    () => {
      for (const t of m.tables) for (let i = 0; i < PTRS_PER_PTE; i++) ptepGetAndClear(t, i, v);
    },
    { beforeEach: reset },
  );
  await bench.run();
  const rows = rowsOf(bench, m.pages, {
    'batched get_and_clear_full_ptes (nr=16)': '≥ 50 M PTE/s',
  });
  const bytesPerPage = (ptBytes + memmapBytes) / m.pages;
  const markdown = [
    `### Page-table primitives: ${mib} MiB of 64K contpte folios (${m.pages} PTEs), arm64-contpte`,
    '',
    markdownTable(
      ['benchmark', 'simulated PTEs/s', 'mean ms / pass', '± %', 'median ms', 'samples', 'target'],
      rows.map((r) => [r.name, fmtRate(r.ptesPerSec), r.meanMs.toFixed(2), r.rmePct.toFixed(1), r.medianMs.toFixed(2), r.samples, r.target ?? '']),
    ),
    '',
    markdownTable(
      ['memory', 'bytes per mapped 4K page', 'target'],
      [
        ['page tables (PGD/PUD/PMD/PTE descriptors)', (ptBytes / m.pages).toFixed(2), ''],
        ['memmap (flags + refcount/folio fields)', (memmapBytes / m.pages).toFixed(2), ''],
        ['total', bytesPerPage.toFixed(2), '≤ 16 B'],
      ],
    ),
  ].join('\n');
  return { rows, bytesPerPage, pageTableBytesPerPage: ptBytes / m.pages, memmapBytesPerPage: memmapBytes / m.pages, markdown };
}
