import { EV, FoliolabError } from '@foliolab/ledger';
import { PTRS_PER_TABLE } from './geometry.js';
import { pmdIsTable } from './pmd.js';
import type { PteBits } from './pte.js';
import { PmdTable } from './tables.js';

function checkPmdSlot(fn: string, table: PmdTable, index: number): void {
  if (!(table instanceof PmdTable)) throw new FoliolabError('EINVAL', `${fn}: not a PMD table`, { table: String(table) });
  // For numbers, (x | 0) === x is exact for the int32 range, which contains 0..511.
  if (typeof index !== 'number' || (index | 0) !== index || index < 0 || index >= PTRS_PER_TABLE) {
    throw new FoliolabError('ERANGE', `${fn}: index ${String(index)} outside 0..511`, { index });
  }
}

/** `pmdp_get` / `pmdp_get_lockless`: one PMD_READ. */
export function pmdpGet(table: PmdTable, index: number, out: PteBits): PteBits {
  checkPmdSlot('pmdpGet', table, index);
  return doPmdpGet(table, index, out);
}

/** @internal `pmdp_get`, unchecked: the caller guarantees a PMD table and a slot 0..511. */
export function doPmdpGet(table: PmdTable, index: number, out: PteBits): PteBits {
  table.mm.ledger.charge(EV.PMD_READ);
  out.lo = table.lo[index]!;
  out.hi = table.hi[index]!;
  return out;
}

/** Uncharged look at a PMD entry (state dumps, tests). */
export function peekPmd(table: PmdTable, index: number, out: PteBits): PteBits {
  checkPmdSlot('peekPmd', table, index);
  out.lo = table.lo[index]!;
  out.hi = table.hi[index]!;
  return out;
}

/**
 * `set_pmd_at`: one PMD_WRITE (user entries need no barrier). Installs a THP
 * block, a PMD migration or device-private entry, or 0. Table descriptors are
 * only made by `PageTables.pteAlloc`, and a PTE table is never overwritten
 * here (that would leak it).
 */
export function setPmdAt(table: PmdTable, index: number, lo: number, hi: number): void {
  checkPmdSlot('setPmdAt', table, index);
  if (pmdIsTable(lo >>> 0, hi >>> 0)) throw new FoliolabError('EINVAL', 'setPmdAt: new value is a table descriptor', { lo, hi });
  if (pmdIsTable(table.lo[index]!, table.hi[index]!)) throw new FoliolabError('EBUSY', `setPmdAt: PMD ${index} points at a PTE table`, { index });
  table.mm.ledger.charge(EV.PMD_WRITE);
  table.lo[index] = lo;
  table.hi[index] = hi;
}

/**
 * `pmdp_huge_get_and_clear` (7.2.13 arch/arm64/include/asm/pgtable.h:
 * `__ptep_get_and_clear_anysz(…, PMD_SIZE)`, one `xchg_relaxed` of the leaf
 * PMD). Charged as one PMD_WRITE: the ledger has no PMD-level xchg event.
 */
export function pmdpHugeGetAndClear(table: PmdTable, index: number, out: PteBits): PteBits {
  checkPmdSlot('pmdpHugeGetAndClear', table, index);
  if (pmdIsTable(table.lo[index]!, table.hi[index]!)) throw new FoliolabError('EBUSY', `pmdpHugeGetAndClear: PMD ${index} points at a PTE table`, { index });
  table.mm.ledger.charge(EV.PMD_WRITE);
  out.lo = table.lo[index]!;
  out.hi = table.hi[index]!;
  table.lo[index] = 0;
  table.hi[index] = 0;
  return out;
}
