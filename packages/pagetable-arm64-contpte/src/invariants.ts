import { CONT_PTES, PTRS_PER_TABLE } from './geometry.js';
import { PTE_AF, PTE_HI_DIRTY, PTE_HI_PFN_MASK, PTE_HI_SPECIAL, PTE_LO_PFN_MASK, PTE_RDONLY, ptePfn, pteValidCont } from './pte.js';
import type { PageTables, PteTable } from './tables.js';

/*
 * Spec §9 invariant 1 as a checker for tests and the engine's invariant
 * runs. Cold path: allocates its report.
 */

/** State of an aligned 16-slot block: `cont`, `noncont`, or `broken` (violates §9.1). */
export type BlockState = 'cont' | 'noncont' | 'broken';

/** Why block `b` of `table` is broken, or null if it is CONT or NONCONT. */
export function contpteBlockProblem(table: PteTable, b: number): string | null {
  const base = b * CONT_PTES;
  let nCont = 0;
  for (let k = base; k < base + CONT_PTES; k++) if (pteValidCont(table.lo[k]!, table.hi[k]!)) nCont++;
  if (nCont === 0) return null;
  if (nCont !== CONT_PTES) return `${nCont} of 16 entries are valid-CONT`;
  const pfn0 = ptePfn(table.lo[base]!, table.hi[base]!);
  if (pfn0 % CONT_PTES !== 0) return `base pfn ${pfn0} is not 16-aligned`;
  const pLo = ((table.lo[base]! & ~PTE_AF) | PTE_RDONLY) & ~PTE_LO_PFN_MASK;
  const pHi = table.hi[base]! & ~PTE_HI_DIRTY & ~PTE_HI_PFN_MASK;
  if ((pHi & PTE_HI_SPECIAL) !== 0) return 'special entries in a CONT block';
  for (let k = base; k < base + CONT_PTES; k++) {
    const lo = table.lo[k]!;
    const hi = table.hi[k]!;
    if (ptePfn(lo, hi) !== pfn0 + (k - base)) return `slot ${k} has pfn ${ptePfn(lo, hi)}, expected ${pfn0 + (k - base)}`;
    if (((((lo & ~PTE_AF) | PTE_RDONLY) & ~PTE_LO_PFN_MASK) ^ pLo) !== 0 || ((hi & ~PTE_HI_DIRTY & ~PTE_HI_PFN_MASK) ^ pHi) !== 0) {
      return `slot ${k} attributes differ (ignoring AF, DIRTY, RDONLY)`;
    }
  }
  const f = table.mm.folios;
  if (f !== null) {
    const head = f.folioHead(pfn0);
    if (head > pfn0 || head + f.folioNrPages(pfn0) < pfn0 + CONT_PTES) return `pfns [${pfn0}, ${pfn0 + 16}) are not in one folio`;
  }
  if (!table.mm.userMm) return 'CONT block in a non-user mm';
  return null;
}

/** State of aligned block `b` (slots 16b..16b+15) of `table`. */
export function contpteBlockState(table: PteTable, b: number): BlockState {
  if (contpteBlockProblem(table, b) !== null) return 'broken';
  for (let k = b * CONT_PTES; k < (b + 1) * CONT_PTES; k++) if (pteValidCont(table.lo[k]!, table.hi[k]!)) return 'cont';
  return 'noncont';
}

/** Every §9.1 violation in `mm`, as readable strings (empty when consistent). */
export function checkContpteInvariants(mm: PageTables): string[] {
  const out: string[] = [];
  for (const t of mm.pteTables) {
    for (let b = 0; b < PTRS_PER_TABLE / CONT_PTES; b++) {
      const p = contpteBlockProblem(t, b);
      if (p !== null) out.push(`table ${t.id} (va 0x${t.baseVa.toString(16)}) block ${b}: ${p}`);
    }
  }
  return out;
}
