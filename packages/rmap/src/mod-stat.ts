import { folioTestAnon, folioTestSwapbacked, type Folio } from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import type { RmapState } from './state.js';
import { HPAGE_PMD_ORDER } from './types.js';

/**
 * __folio_mod_stat(folio, nr, nr_pmdmapped) (mm/rmap.c, v6.15): NR_ANON_MAPPED
 * or NR_FILE_MAPPED by `nr`, then NR_ANON_THPS or NR_{SHMEM,FILE}_PMDMAPPED by
 * `nrPmdmapped`. One PCPU_COUNTER per non-zero update (each is a separate
 * per-CPU stat update in the kernel).
 */
export function folioModStat(st: RmapState, folio: Folio, nr: number, nrPmdmapped: number): void {
  const s = st.stats;
  if (nr !== 0) {
    st.ledger.charge(EV.PCPU_COUNTER);
    if (folioTestAnon(folio)) s.NR_ANON_MAPPED += nr;
    else s.NR_FILE_MAPPED += nr;
  }
  if (nrPmdmapped !== 0) {
    st.ledger.charge(EV.PCPU_COUNTER);
    if (folioTestAnon(folio)) s.NR_ANON_THPS += nrPmdmapped;
    else if (folioTestSwapbacked(folio)) s.NR_SHMEM_PMDMAPPED += nrPmdmapped;
    else s.NR_FILE_PMDMAPPED += nrPmdmapped;
  }
}

/**
 * mod_mthp_stat / count_mthp_stat(order, item, delta) (include/linux/huge_mm.h):
 * a per-CPU add for orders 1..PMD_ORDER, nothing for order 0.
 */
export function modMthpStat(st: RmapState, stat: Float64Array, order: number, delta: number): void {
  if (order <= 0 || order > HPAGE_PMD_ORDER) return;
  st.ledger.charge(EV.PCPU_COUNTER);
  stat[order]! += delta;
}
