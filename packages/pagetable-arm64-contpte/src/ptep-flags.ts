import { EV, FoliolabError } from '@foliolab/ledger';
import { checkRange, checkSlot, checkWords } from './check.js';
import { contpteConvert, contpteTryUnfoldPartial } from './contpte.js';
import { CONT_PTES, CONT_PTE_SIZE, PAGE_SIZE } from './geometry.js';
import {
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  clearYoungDirtyStores,
  rawClearFlushYoung,
  rawClearYoungDirtyPtes,
  rawPtepSetWrprotect,
  rawSetAccessFlags,
  rawTestAndClearYoung,
  rawWrprotectFrom,
  storePte,
} from './primitives.js';
import { PTE_AF, PTE_HI_CONT, PTE_HI_DIRTY, PTE_HI_WRITE, PTE_RDONLY, PTE_VALID, ptePresent, pteSame, pteValid, pteBits, type PteBits } from './pte.js';
import { doPtepGetAndClear } from './ptep.js';
import type { PageTables, PteTable } from './tables.js';
import { doFlushTlbPage, doFlushTlbRange, doFlushTlbRangeNosync } from './tlb.js';

/*
 * Write-protect, young/dirty and access-flag updates of the public ptep API
 * (spec §6), per profile as in ptep.ts.
 */

const CONT_MASK = CONT_PTES - 1;
const gathered = pteBits();

function checkPresent(fn: string, t: PteTable, i: number, nr: number): void {
  for (let k = i; k < i + nr; k++) {
    if (!ptePresent(t.lo[k]!, t.hi[k]!)) throw new FoliolabError('EINVAL', `${fn}: slot ${k} is not present`, { index: k });
  }
}

/**
 * One locked RMW of an x86 PTE: the `test_and_clear_bit` (LOCK BTR) of
 * ptep_test_and_clear_young (7.2.13 arch/x86/mm/pgtable.c) or one
 * `try_cmpxchg` of ptep_set_wrprotect; the ledger has no bit-op event for
 * PTEs, so a LOCK BTR is charged as the closest one, one PTE_CMPXCHG.
 */
function x86AtomicStore(t: PteTable, i: number, lo: number, hi: number): void {
  t.mm.ledger.charge(EV.PTE_CMPXCHG);
  storePte(t, i, lo >>> 0, hi >>> 0);
}

/**
 * x86 `ptep_set_wrprotect` (7.2.13 arch/x86/include/asm/pgtable.h): READ_ONCE
 * of the entry, then a `try_cmpxchg` loop of `pte_wrprotect` (it became a
 * cmpxchg loop, not `clear_bit`, with shadow stacks): 1 PTE_READ + 1
 * PTE_CMPXCHG in this single-threaded model.
 */
function x86Wrprotect(t: PteTable, i: number): void {
  t.mm.ledger.charge(EV.PTE_READ);
  const lo = t.lo[i]!;
  let hi = t.hi[i]!;
  if ((hi & PTE_HI_WRITE) !== 0 && (lo & PTE_RDONLY) === 0) hi |= PTE_HI_DIRTY;
  x86AtomicStore(t, i, lo | PTE_RDONLY, hi & ~PTE_HI_WRITE);
}

/**
 * `wrprotect_ptes(mm, addr, ptep, nr)` (targets must be present).
 * contpte nr == 1: read; if CONT, `__contpte_try_unfold`; then the CMPXCHG
 * loop from the value read (CONT cleared). contpte nr > 1:
 * `contpte_try_unfold_partial`, then nr × (read + CMPXCHG); no TLBI.
 * arm64-nocont: nr × (read + CMPXCHG). x86 (generic wrprotect_ptes): nr ×
 * `ptep_set_wrprotect` (read + CMPXCHG).
 */
export function wrprotectPtes(table: PteTable, index: number, nr: number): void {
  checkRange('wrprotectPtes', table, index, nr);
  checkPresent('wrprotectPtes', table, index, nr);
  const mm = table.mm;
  if (mm.x86) {
    for (let k = index; k < index + nr; k++) x86Wrprotect(table, k);
    return;
  }
  if (mm.contpte && nr === 1) {
    mm.ledger.charge(EV.PTE_READ);
    const lo = table.lo[index]!;
    let hi = table.hi[index]!;
    if ((hi & PTE_HI_CONT) !== 0) {
      if (mm.userMm) contpteConvert(table, index, lo, hi & ~PTE_HI_CONT);
      hi = (hi & ~PTE_HI_CONT) >>> 0;
    }
    rawWrprotectFrom(table, index, lo, hi);
    return;
  }
  if (mm.contpte) contpteTryUnfoldPartial(table, index, nr);
  for (let k = index; k < index + nr; k++) rawPtepSetWrprotect(table, k);
}

/** `ptep_set_wrprotect` = `wrprotect_ptes(…, 1)`. */
export function ptepSetWrprotect(table: PteTable, index: number): void {
  wrprotectPtes(table, index, 1);
}

export { CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG };

function x86TestAndClearYoung(t: PteTable, i: number): boolean {
  t.mm.ledger.charge(EV.PTE_READ);
  const lo = t.lo[i]!;
  if ((lo & PTE_AF) === 0) return false;
  x86AtomicStore(t, i, lo & ~PTE_AF, t.hi[i]!);
  return true;
}

/**
 * `clear_young_dirty_ptes(vma, addr, ptep, nr, flags)` (targets present).
 * contpte: nr == 1 reads the entry; if it is not CONT, the plain path. Else
 * read the last and first entries, widen to their blocks if CONT, then the
 * plain path (`__clear_young_dirty_ptes`: per entry a read, then a WRITE when
 * clearing both bits, else a CMPXCHG loop). No unfold, no TLBI.
 * x86 (generic): young only → `ptep_test_and_clear_young`; else XCHG + WRITE.
 */
export function clearYoungDirtyPtes(table: PteTable, index: number, nr: number, flags: number): void {
  checkRange('clearYoungDirtyPtes', table, index, nr);
  if (flags !== CYDP_CLEAR_YOUNG && flags !== CYDP_CLEAR_DIRTY && flags !== (CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)) {
    throw new FoliolabError('EINVAL', `clearYoungDirtyPtes: flags ${String(flags)} not a CYDP combination`, { flags });
  }
  checkPresent('clearYoungDirtyPtes', table, index, nr);
  doClearYoungDirtyPtes(table, index, nr, flags);
}

/** @internal `clear_young_dirty_ptes`, unchecked: the caller has validated the range, flags and presence. */
export function doClearYoungDirtyPtes(table: PteTable, index: number, nr: number, flags: number): void {
  const mm = table.mm;
  const l = mm.ledger;
  if (mm.x86) {
    for (let k = index; k < index + nr; k++) {
      if (flags === CYDP_CLEAR_YOUNG) {
        x86TestAndClearYoung(table, k);
        continue;
      }
      doPtepGetAndClear(table, k, gathered);
      let lo = gathered.lo;
      let hi = gathered.hi;
      if ((flags & CYDP_CLEAR_YOUNG) !== 0) lo &= ~PTE_AF;
      if ((flags & CYDP_CLEAR_DIRTY) !== 0) {
        hi &= ~PTE_HI_DIRTY;
        lo |= PTE_RDONLY;
      }
      l.charge(EV.PTE_WRITE);
      storePte(table, k, lo >>> 0, hi >>> 0);
    }
    return;
  }
  if (!mm.contpte) {
    rawClearYoungDirtyPtes(table, index, nr, flags);
    return;
  }
  if (nr === 1) {
    l.charge(EV.PTE_READ);
    if ((table.hi[index]! & PTE_HI_CONT) === 0) {
      rawClearYoungDirtyPtes(table, index, 1, flags);
      return;
    }
  }
  let start = index;
  let end = index + nr;
  l.charge(EV.PTE_READ, 2);
  // Round up / down to the 16-entry block (slots are below 512: int32 arithmetic is exact).
  if ((table.hi[end - 1]! & PTE_HI_CONT) !== 0) end = (end + CONT_MASK) & ~CONT_MASK;
  if ((table.hi[start]! & PTE_HI_CONT) !== 0) start -= start & CONT_MASK;
  rawClearYoungDirtyPtes(table, start, end - start, flags);
}

/**
 * @internal `nr` calls `clear_young_dirty_ptes(…, index + k, 1, flags)`,
 * k = 0..nr − 1, in one: the per-PTE madvise loops of the `per-pte` policy.
 * Same stores and event counts as the separate calls. On contpte each call
 * on a CONT entry widens to the whole block (1 + 2 + 16 reads, 16 CMPXCHGs
 * or WRITEs); clearing is idempotent and nothing else writes the table in
 * between, so the stores of a call whose range was already cleared by an
 * earlier call of this loop would store the values already there: without
 * a trace sink (which could see each call's charge order) such a call only
 * charges. Unchecked as `doClearYoungDirtyPtes`, for every slot.
 */
export function doClearYoungDirtyPtesEach(table: PteTable, index: number, nr: number, flags: number): void {
  const mm = table.mm;
  if (!mm.contpte || mm.ledger.tracing) {
    for (let k = index; k < index + nr; k++) doClearYoungDirtyPtes(table, k, 1, flags);
    return;
  }
  const his = table.hi;
  const end = index + nr;
  let reads = 0;
  let rmw = 0;
  // [doneLo, doneHi): the union of the ranges already cleared by this loop (contiguous: each contains its slot).
  let doneLo = index;
  let doneHi = index;
  for (let k = index; k < end; k++) {
    // The slots call k clears: its own, or (CONT) its whole block after 1 + 2 reads.
    let from = k;
    let to = k + 1;
    if ((his[k]! & PTE_HI_CONT) !== 0) {
      from = k - (k & CONT_MASK);
      to = from + CONT_PTES;
      reads += 3 + CONT_PTES;
      rmw += CONT_PTES;
    } else {
      reads += 2;
      rmw += 1;
    }
    if (from >= doneLo && to <= doneHi) continue;
    clearYoungDirtyStores(table, from, to, flags);
    if (from < doneLo) doneLo = from;
    if (to > doneHi) doneHi = to;
  }
  const l = mm.ledger;
  l.charge(EV.PTE_READ, reads);
  l.charge(flags === (CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY) ? EV.PTE_WRITE : EV.PTE_CMPXCHG, rmw);
}

/**
 * `contpte_test_and_clear_young_ptes(vma, addr, ptep, 1)` (7.2.13
 * arch/arm64/mm/contpte.c): `contpte_align_addr_ptep` reads the last and
 * the first entry of the range (the same slot for nr 1: 2 reads) and widens
 * to the CONT block, then 16 × `__ptep_test_and_clear_young` (read +
 * CMPXCHG loop) over the block.
 */
function contpteTestAndClearYoung(t: PteTable, i: number): boolean {
  t.mm.ledger.charge(EV.PTE_READ, 2);
  if ((t.hi[i]! & PTE_HI_CONT) === 0) return rawTestAndClearYoung(t, i);
  const base = i - (i & CONT_MASK);
  let young = false;
  for (let k = base; k < base + CONT_PTES; k++) if (rawTestAndClearYoung(t, k)) young = true;
  return young;
}

/**
 * `ptep_test_and_clear_young` = `test_and_clear_young_ptes(…, 1)` (7.2.13
 * arch/arm64/include/asm/pgtable.h). arm64-contpte: read; not CONT →
 * `__ptep_test_and_clear_young` (read + CMPXCHG loop); CONT (the test is
 * `pte_cont`, not `pte_valid_cont`) → `contpte_test_and_clear_young_ptes`:
 * 2 reads, then 16 × (read + CMPXCHG), no unfold. arm64-nocont: read +
 * CMPXCHG loop. x86: read, then test_and_clear_bit only if young.
 */
export function ptepTestAndClearYoung(table: PteTable, index: number): boolean {
  checkSlot('ptepTestAndClearYoung', table, index);
  const mm = table.mm;
  if (mm.x86) return x86TestAndClearYoung(table, index);
  if (!mm.contpte) return rawTestAndClearYoung(table, index);
  mm.ledger.charge(EV.PTE_READ);
  if ((table.hi[index]! & PTE_HI_CONT) === 0) return rawTestAndClearYoung(table, index);
  return contpteTestAndClearYoung(table, index);
}

/**
 * `ptep_clear_flush_young` (7.2.13 arch/arm64/include/asm/pgtable.h).
 * arm64: read; not valid-CONT → `__ptep_clear_flush_young` (test-and-clear,
 * then if young `__flush_tlb_page(…, TLBF_NOSYNC)`: DSB_ISHST + TLBI_VA);
 * valid-CONT → `contpte_clear_flush_young_ptes(…, 1)`: test-and-clear of
 * the block as `ptepTestAndClearYoung` (2 + 16 reads, 16 CMPXCHG), then if
 * young `contpte_align_addr_ptep` again (2 reads) and a 64K
 * `__flush_tlb_range(…, TLBF_NOWALKCACHE | TLBF_NOSYNC)` — no trailing DSB
 * either way. x86: no flush.
 */
export function ptepClearFlushYoung(table: PteTable, index: number): boolean {
  checkSlot('ptepClearFlushYoung', table, index);
  const mm = table.mm;
  if (mm.x86) return x86TestAndClearYoung(table, index);
  if (!mm.contpte) return rawClearFlushYoung(table, index);
  mm.ledger.charge(EV.PTE_READ);
  if ((table.lo[index]! & PTE_VALID) === 0 || (table.hi[index]! & PTE_HI_CONT) === 0) return rawClearFlushYoung(table, index);
  const young = contpteTestAndClearYoung(table, index);
  if (young) {
    mm.ledger.charge(EV.PTE_READ, 2);
    const start = table.vaOf(index - (index & CONT_MASK));
    doFlushTlbRangeNosync(mm, start, start + CONT_PTE_SIZE);
  }
  return young;
}

/**
 * `clear_flush_young_ptes(vma, addr, ptep, nr)` over `nr` present entries
 * mapping consecutive pages of one large folio (7.2.13; folio_referenced_one
 * calls it for each batch). arm64-contpte: nr 1 and not CONT (1 read) →
 * `__ptep_clear_flush_young`; else `contpte_clear_flush_young_ptes`:
 * `contpte_align_addr_ptep` reads the last and the first entry and widens the
 * range to the CONT blocks they are in, `__ptep_test_and_clear_young` over
 * the widened range, and if any was young the alignment again (2 reads) and
 * one `__flush_tlb_range` over it (TLBF_NOSYNC: no trailing DSB). Other
 * profiles: the generic loop of `ptep_clear_flush_young` (x86: a
 * test-and-clear, no flush). Returns whether any entry was young.
 */
export function clearFlushYoungPtes(table: PteTable, index: number, nr: number): boolean {
  checkRange('clearFlushYoungPtes', table, index, nr);
  checkPresent('clearFlushYoungPtes', table, index, nr);
  const mm = table.mm;
  if (mm.x86 || !mm.contpte) {
    let young = false;
    for (let k = index; k < index + nr; k++) if (mm.x86 ? x86TestAndClearYoung(table, k) : rawClearFlushYoung(table, k)) young = true;
    return young;
  }
  if (nr === 1) {
    mm.ledger.charge(EV.PTE_READ);
    if ((table.hi[index]! & PTE_HI_CONT) === 0) return rawClearFlushYoung(table, index);
  }
  mm.ledger.charge(EV.PTE_READ, 2);
  const last = index + nr - 1;
  const end = (table.hi[last]! & PTE_HI_CONT) !== 0 ? last - (last & CONT_MASK) + CONT_PTES : index + nr;
  const start = (table.hi[index]! & PTE_HI_CONT) !== 0 ? index - (index & CONT_MASK) : index;
  let young = false;
  for (let k = start; k < end; k++) if (rawTestAndClearYoung(table, k)) young = true;
  if (young) {
    mm.ledger.charge(EV.PTE_READ, 2);
    doFlushTlbRangeNosync(mm, table.vaOf(start), table.vaOf(start) + (end - start) * PAGE_SIZE);
  }
  return young;
}

/** The bits `__ptep_set_access_flags` consumes: PTE_RDONLY | PTE_AF (low word), PTE_WRITE | PTE_DIRTY (high word). */
const ACCESS_LO = PTE_RDONLY | PTE_AF;
const ACCESS_HI = PTE_HI_WRITE | PTE_HI_DIRTY;

/**
 * `ptep_set_access_flags(vma, addr, ptep, entry, dirty)` (7.2.13
 * arch/arm64/include/asm/pgtable.h, arch/arm64/mm/contpte.c); returns
 * whether the entry changed. arm64: read; not valid-CONT →
 * `__ptep_set_access_flags` (read; 0 if `pte_same`; CMPXCHG loop; a local
 * flush of the page if dirty). valid-CONT → `contpte_ptep_set_access_flags`:
 * `contpte_all_subptes_match_access_flags` reads the block's raw entries
 * until one differs from `entry` in RDONLY/AF/WRITE/DIRTY (all 16 match →
 * 0: no gathered read, so a sibling's young or dirty bit does not make the
 * target look up to date); then the raw target (1 read, CONT cleared):
 * WRITE unchanged → 16 × `__ptep_set_access_flags(entry, 0)` and, if dirty,
 * a 64K local flush; WRITE changing → unfold, then a single-entry update.
 * The local flushes (TLBF_NOBROADCAST: DSB NSHST, TLBI VALE1, DSB NSH) are
 * charged as DSB_ISHST / TLBI_VA / DSB_ISH, the ledger having no
 * non-shareable events. x86: read; if changed and dirty, one WRITE of
 * `entry`; no flush.
 */
export function ptepSetAccessFlags(table: PteTable, index: number, entryLo: number, entryHi: number, dirty: boolean): boolean {
  checkSlot('ptepSetAccessFlags', table, index);
  checkWords('ptepSetAccessFlags', entryLo, entryHi);
  checkPresent('ptepSetAccessFlags', table, index, 1);
  const mm = table.mm;
  const l = mm.ledger;
  if (mm.x86) {
    l.charge(EV.PTE_READ);
    const changed = !pteSame(table.lo[index]!, table.hi[index]!, entryLo, entryHi);
    if (changed && dirty) {
      l.charge(EV.PTE_WRITE);
      storePte(table, index, entryLo, entryHi);
    }
    return changed;
  }
  if (!mm.contpte) return rawSetAccessFlags(table, index, entryLo, entryHi, dirty);
  l.charge(EV.PTE_READ);
  const ehi = (entryHi & ~PTE_HI_CONT) >>> 0;
  if (!pteValid(table.lo[index]!, 0) || (table.hi[index]! & PTE_HI_CONT) === 0) return rawSetAccessFlags(table, index, entryLo, ehi, dirty);
  const base = index - (index & CONT_MASK);
  const wantLo = entryLo & ACCESS_LO;
  const wantHi = ehi & ACCESS_HI;
  let reads = 0;
  let match = true;
  for (let k = base; k < base + CONT_PTES; k++) {
    reads++;
    if ((table.lo[k]! & ACCESS_LO) !== wantLo || (table.hi[k]! & ACCESS_HI) !== wantHi) {
      match = false;
      break;
    }
  }
  l.charge(EV.PTE_READ, reads + (match ? 0 : 1));
  if (match) return false;
  const oLo = table.lo[index]!;
  const oHi = (table.hi[index]! & ~PTE_HI_CONT) >>> 0;
  if ((oHi & PTE_HI_WRITE) === (ehi & PTE_HI_WRITE)) {
    for (let k = base; k < base + CONT_PTES; k++) rawSetAccessFlags(table, k, entryLo, ehi, false);
    if (dirty) {
      const start = table.vaOf(base);
      doFlushTlbRange(mm, start, start + CONT_PTE_SIZE);
    }
  } else {
    if (mm.userMm) contpteConvert(table, index, oLo, oHi);
    rawSetAccessFlags(table, index, entryLo, ehi, dirty);
  }
  return true;
}

/** `pte_accessible(mm, pte)`: a TLB flush pending on the mm ? present : valid (arm64; x86 is equivalent here). */
export function pteAccessible(mm: PageTables, lo: number, hi: number): boolean {
  return mm.tlbFlushPending > 0 ? ptePresent(lo, hi) : pteValid(lo, hi);
}

/**
 * Generic `ptep_clear_flush`: `ptep_get_and_clear` (may unfold), then
 * `flush_tlb_page` (DSB_ISHST, TLBI_VA, DSB_ISH) if `pte_accessible`.
 */
export function ptepClearFlush(table: PteTable, index: number, out: PteBits): PteBits {
  checkSlot('ptepClearFlush', table, index);
  doPtepGetAndClear(table, index, out);
  if (pteAccessible(table.mm, out.lo, out.hi)) doFlushTlbPage(table.mm, table.vaOf(index));
  return out;
}
