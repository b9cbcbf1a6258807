import { FoliolabError } from '@foliolab/ledger';
import { checkRange, checkSlot, checkWords } from './check.js';
import * as c from './contpte.js';
import type { PteTable } from './tables.js';

/*
 * Checked entry points to the contpte internals (arch-private in the kernel:
 * core mm never calls them). Useful for tests, traces and fault injection.
 */

function checkContpte(fn: string, table: PteTable): void {
  if (!table.mm.contpte) throw new FoliolabError('EINVAL', `${fn}: profile ${table.mm.profile.name} has no contpte`, {});
}

/** `contpte_try_fold(mm, addr, ptep, pte)` (arm64 ≈v6.9–6.15) for the value (lo, hi) just set at `index`. */
export function contpteTryFold(table: PteTable, index: number, lo: number, hi: number): void {
  checkSlot('contpteTryFold', table, index);
  checkWords('contpteTryFold', lo, hi);
  checkContpte('contpteTryFold', table);
  c.contpteTryFold(table, index, lo, hi);
}

/** `contpte_try_unfold(mm, addr, ptep, pte)`: unfold the block if (lo, hi) is valid-CONT in a user mm. */
export function contpteTryUnfold(table: PteTable, index: number, lo: number, hi: number): void {
  checkSlot('contpteTryUnfold', table, index);
  checkWords('contpteTryUnfold', lo, hi);
  checkContpte('contpteTryUnfold', table);
  c.contpteTryUnfold(table, index, lo, hi);
}

/** `contpte_convert(mm, addr, ptep, pte)`: repaint the block of `index` from prototype (lo, hi); CONT set folds. */
export function contpteConvert(table: PteTable, index: number, lo: number, hi: number): void {
  checkSlot('contpteConvert', table, index);
  checkWords('contpteConvert', lo, hi);
  checkContpte('contpteConvert', table);
  c.contpteConvert(table, index, lo, hi);
}

/** `contpte_try_unfold_partial(mm, addr, ptep, nr)`. */
export function contpteTryUnfoldPartial(table: PteTable, index: number, nr: number): void {
  checkRange('contpteTryUnfoldPartial', table, index, nr);
  checkContpte('contpteTryUnfoldPartial', table);
  c.contpteTryUnfoldPartial(table, index, nr);
}
