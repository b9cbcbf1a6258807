import { FoliolabError } from '@foliolab/ledger';
import { PTRS_PER_TABLE } from './geometry.js';
import { PteTable } from './tables.js';

/*
 * Boundary validation of the public ptep API: a checked (table, index, nr)
 * never crosses the PTE table (spec §9 invariant 8). Everything is checked
 * before anything changes.
 */

/** Throw unless `table` is a PTE table and `index` a slot of it. */
export function checkSlot(fn: string, table: PteTable, index: number): void {
  if (!(table instanceof PteTable)) throw new FoliolabError('EINVAL', `${fn}: not a PTE table`, { table: String(table) });
  if (!Number.isInteger(index) || index < 0 || index >= PTRS_PER_TABLE) {
    throw new FoliolabError('ERANGE', `${fn}: index ${String(index)} outside 0..511`, { index });
  }
}

/** Throw unless [index, index + nr) is a non-empty range inside one PTE table. */
export function checkRange(fn: string, table: PteTable, index: number, nr: number): void {
  checkSlot(fn, table, index);
  if (!Number.isInteger(nr) || nr < 1) throw new FoliolabError('EINVAL', `${fn}: nr ${String(nr)} must be an integer ≥ 1`, { index, nr });
  if (index + nr > PTRS_PER_TABLE) {
    throw new FoliolabError('ERANGE', `${fn}: [${index}, ${index + nr}) crosses the end of the PTE table`, { index, nr });
  }
}

/** Throw unless (lo, hi) are uint32 halves. */
export function checkWords(fn: string, lo: number, hi: number): void {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < 0 || lo > 0xffffffff || hi > 0xffffffff) {
    throw new FoliolabError('EINVAL', `${fn}: (lo ${String(lo)}, hi ${String(hi)}) are not uint32 halves`, { lo, hi });
  }
}
