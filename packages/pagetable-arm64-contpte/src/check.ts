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
  // For numbers, (x | 0) === x is exact for the int32 range, which contains 0..511.
  if (typeof index !== 'number' || (index | 0) !== index || index < 0 || index >= PTRS_PER_TABLE) {
    throw new FoliolabError('ERANGE', `${fn}: index ${String(index)} outside 0..511`, { index });
  }
}

/** Throw unless [index, index + nr) is a non-empty range inside one PTE table. */
export function checkRange(fn: string, table: PteTable, index: number, nr: number): void {
  checkSlot(fn, table, index);
  // Integers beyond int32 fall through to Number.isInteger and then fail the ERANGE test, as before.
  if (typeof nr !== 'number' || ((nr | 0) !== nr && !Number.isInteger(nr)) || nr < 1) throw new FoliolabError('EINVAL', `${fn}: nr ${String(nr)} must be an integer ≥ 1`, { index, nr });
  if (index + nr > PTRS_PER_TABLE) {
    throw new FoliolabError('ERANGE', `${fn}: [${index}, ${index + nr}) crosses the end of the PTE table`, { index, nr });
  }
}

/** Throw unless (lo, hi) are uint32 halves. */
export function checkWords(fn: string, lo: number, hi: number): void {
  // The uint32 numbers are exactly those with x >>> 0 === x.
  if (typeof lo !== 'number' || typeof hi !== 'number' || lo >>> 0 !== lo || hi >>> 0 !== hi) {
    throw new FoliolabError('EINVAL', `${fn}: (lo ${String(lo)}, hi ${String(hi)}) are not uint32 halves`, { lo, hi });
  }
}
