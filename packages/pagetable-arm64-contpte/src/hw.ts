import { checkSlot } from './check.js';
import { PTE_AF, PTE_HI_WRITE, PTE_RDONLY, PTE_VALID } from './pte.js';
import type { PteTable } from './tables.js';

/**
 * A CPU access to the page mapped by slot `index`, as the MMU performs it
 * (no software cost is charged). Returns false (the access faults, nothing
 * changes) if the entry is not valid, is old without hardware AF, or a write
 * hits a non-WRITE entry, or a clean writable entry without hardware DBM.
 * Otherwise the MMU sets AF and, for a write, clears RDONLY on that one
 * descriptor — on a contpte block only the accessed entry changes, which is
 * why reads must gather A/D over the block. The TLB is assumed coherent with
 * hardware A/D updates.
 */
export function hwAccess(table: PteTable, index: number, write: boolean): boolean {
  checkSlot('hwAccess', table, index);
  const p = table.mm.profile;
  let lo = table.lo[index]!;
  const hi = table.hi[index]!;
  if ((lo & PTE_VALID) === 0) return false;
  if ((lo & PTE_AF) === 0) {
    if (!p.hwAF) return false;
    lo |= PTE_AF;
  }
  if (write) {
    if ((hi & PTE_HI_WRITE) === 0) return false;
    if ((lo & PTE_RDONLY) !== 0) {
      if (!p.hwDBM) return false;
      lo &= ~PTE_RDONLY;
    }
  }
  table.lo[index] = lo;
  return true;
}
