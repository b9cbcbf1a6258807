import { EV, FoliolabError } from '@foliolab/ledger';
import {
  HPAGE_PMD_NR,
  PAGE_SHIFT,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PMD_TYPE_MASK,
  PMD_TYPE_TABLE,
  PTRS_PER_TABLE,
  PTE_PRESENT_INVALID,
  PTE_VALID,
  PUD_SIZE,
  VA_LIMIT,
  internalPmdpGet,
  internalPtepGet,
  internalPtepGetLockless,
  isPmdDevicePrivateEntry,
  isPmdMigrationEntry,
  pmdIndex,
  pmdPfn,
  pmdPresent,
  pmdTransHuge,
  pmdpGet,
  pteNone,
  ptePresent,
  pteSame,
  softleafIsDeviceExclusive,
  softleafIsDevicePrivate,
  softleafPfn,
} from '@foliolab/pagetable-arm64-contpte';
import { checkPmd, checkPte, pteMatches, stepForward } from './check.js';
import { forgetRun, measureRun, skipHandledRun } from './run.js';
import type { PageVmaMappedWalk } from './state.js';
import { NO_LOCK, PVMW_BATCH_PRESENT, PVMW_MIGRATION, PVMW_PGTABLE_CROSSED, PVMW_SYNC, type PvmwVma } from './types.js';
import { vmaAddressEndOf } from './vma.js';

/*
 * page_vma_mapped_walk (mm/page_vma_mapped.c, 2026 post-softleaf copy with
 * PVMW_PGTABLE_CROSSED; spec "Package pvmw" §3). The gotos become a small
 * state machine: RESTART (descend from the PGD), THIS (check_pte), NEXT.
 *
 * Costs: PVMW_CALL per call; PVMW_STEP per NEXT step and per step_forward;
 * PMD_READ for the lockless read (D.2) and each post-lock re-read;
 * PTE_READ at the real raw-read count of ptep_get / ptep_get_lockless;
 * LOCK/UNLOCK of the PTE ptl or PMD lock; PVMW_RESTART per `goto restart`
 * (and per page_vma_mapped_walk_restart); PGTABLE_CROSSED per table crossing.
 * The PGD/PUD presence tests and pte_offset_map's own PMD load are not
 * charged: the spec counts the D.2 read as the one that maps the table.
 */

/** arm64 selects ARCH_ENABLE_THP_MIGRATION: `thp_migration_supported()`. */
const THP_MIGRATION_SUPPORTED = true;

// Main-loop state: descend from the PGD (the `restart:` label).
const S_DESCEND = -1;

// descend() results
const D_CONTINUE = 0; // step_forward done: test the loop condition
const D_TRUE = 1; // PMD-level hit
const D_NOT_FOUND = 2;
const D_RESTART = 3; // map_pte found no table: goto restart
const D_NEXT = 4; // map_pte false with the table mapped
const D_THIS = 5; // map_pte locked a candidate

// nextPte() results
const N_NOT_FOUND = 0;
const N_RESTART = 1;
const N_THIS = 2;

/** `not_found(pvmw)`: walk_done, then false. */
function notFound(w: PageVmaMappedWalk): boolean {
  pageVmaMappedWalkDone(w);
  return false;
}

/**
 * `page_vma_mapped_walk_done(pvmw)` (rmap.h): unmap the PTE (free here) and
 * unlock `ptl` if set. Like the kernel it clears no field, so a second call
 * would unlock twice (the ledger throws EPERM).
 */
export function pageVmaMappedWalkDone(w: PageVmaMappedWalk): void {
  forgetRun(w);
  if (w.ptl !== NO_LOCK) w.pt.ledger.unlock(w.ptl);
}

/**
 * `page_vma_mapped_walk_restart(pvmw)` (rmap.h): after the caller changed
 * the page tables under the lock (e.g. split a PMD), drop the lock and make
 * the next call descend again from `address`. Requires a held ptl.
 */
export function pageVmaMappedWalkRestart(w: PageVmaMappedWalk): void {
  if (w.ptl === NO_LOCK || !w.pt.ledger.locks.isHeld(w.ptl)) {
    throw new FoliolabError('EINVAL', 'page_vma_mapped_walk_restart: no ptl held (call it only after a true return)', { ptl: w.ptl });
  }
  w.pt.ledger.unlock(w.ptl);
  w.pt.ledger.charge(EV.PVMW_RESTART);
  forgetRun(w);
  w.ptl = NO_LOCK;
  w.pmd = null;
  w.pte = null;
  w.hugePte = null;
}

/**
 * `page_vma_mapped_walk(pvmw)` (mm/page_vma_mapped.c, 2026): find the next
 * place at or after `walk.address` where the target PFN range is mapped in
 * `walk.vma`. True: one lock held (`walk.ptl`), and `walk.pte` set (PTE hit),
 * or `walk.pmd` set with `pte` null (PMD hit), or `walk.hugePte` set
 * (hugetlb). False: no lock held.
 */
export function pageVmaMappedWalk(w: PageVmaMappedWalk): boolean {
  const resume = w.pte !== null;
  if (resume && (w.flags & PVMW_BATCH_PRESENT) !== 0) skipHandledRun(w); // validates walk.nr, then moves
  w.pt.ledger.charge(EV.PVMW_CALL);
  // The only possible PMD mapping was handled on the last call.
  if (w.pmd !== null && w.pte === null) return notFound(w);
  if (w.vma.isHugetlb === true) return hugetlbWalk(w);
  const end = vmaAddressEndOf(w.vma, w.pgoff, w.nrPages, w.address);
  let st = resume ? D_NEXT : S_DESCEND;
  for (;;) {
    if (st === S_DESCEND) {
      st = descend(w);
      if (st === D_CONTINUE) {
        if (w.address >= end) return false; // E: the loop ran out with nothing mapped or locked
        st = S_DESCEND;
        continue;
      }
      if (st === D_TRUE) return true;
      if (st === D_NOT_FOUND) return notFound(w);
      if (st === D_RESTART) {
        w.pt.ledger.charge(EV.PVMW_RESTART);
        st = S_DESCEND;
        continue;
      }
    }
    if (st === D_THIS) {
      if (checkPte(w, 1)) {
        if ((w.flags & PVMW_BATCH_PRESENT) !== 0) w.nr = w.lastRun = measureRun(w, end);
        return true;
      }
    }
    // NEXT
    const n = nextPte(w, end);
    if (n === N_NOT_FOUND) return notFound(w);
    if (n === N_RESTART) {
      w.pt.ledger.charge(EV.PVMW_RESTART);
      st = S_DESCEND;
      continue;
    }
    st = D_THIS;
  }
}

/**
 * One pass of the RESTART body: PGD/PUD presence, the PMD cases, map_pte.
 * Reads go through the unchecked pagetable entry points: the PMD table and
 * slot come from the lookup itself, and `address` is a user VA (checked
 * below, falling back to the checked lookup, which throws as before).
 */
function descend(w: PageVmaMappedWalk): number {
  const pt = w.pt;
  const l = pt.ledger;
  const a = w.address;
  if (!(Number.isInteger(a) && a >= 0 && a < VA_LIMIT)) pt.lookupPud(a); // throws ERANGE for a corrupted cursor
  const pud = pt.pudOfUnchecked(a);
  if (pud === null) {
    stepForward(w, PGDIR_SIZE);
    return D_CONTINUE;
  }
  // P4D is folded on arm64 4-level: always present.
  const pmdT = pt.pmdTableOfUnchecked(pud, a);
  if (pmdT === null) {
    stepForward(w, PUD_SIZE);
    return D_CONTINUE;
  }
  const pi = ((a / PMD_SIZE) >>> 0) & (PTRS_PER_TABLE - 1); // pmd_index for a checked VA
  w.pmd = pmdT;
  w.pmdIndex = pi;
  const v = w.scratch;
  internalPmdpGet(pmdT, pi, v); // pmdp_get_lockless
  let lo = v.lo;
  let hi = v.hi;
  // A table descriptor (the common case) is present, not trans-huge and not a softleaf: straight to map_pte.
  if ((lo & PMD_TYPE_MASK) === PMD_TYPE_TABLE) return mapPteResult(w, lo, hi);
  // 7.2.13 mm/page_vma_mapped.c:page_vma_mapped_walk: a trans-huge, migration or device-private PMD is
  // re-read under the PMD lock, then each kind is checked against the flags and the target range.
  if (pmdTransHuge(lo, hi) || isPmdMigrationEntry(lo, hi) || isPmdDevicePrivateEntry(lo, hi)) {
    if (w.raceHook !== null) w.raceHook(w, 'pmdLock');
    w.ptl = pmdT.ptl;
    l.lock(w.ptl);
    internalPmdpGet(pmdT, pi, v); // re-read under the PMD lock
    lo = v.lo;
    hi = v.hi;
    if (isPmdMigrationEntry(lo, hi)) {
      if (!THP_MIGRATION_SUPPORTED || (w.flags & PVMW_MIGRATION) === 0) return D_NOT_FOUND;
      return checkPmd(w, softleafPfn(lo, hi)) ? D_TRUE : D_NOT_FOUND;
    }
    if (isPmdDevicePrivateEntry(lo, hi)) {
      if ((w.flags & PVMW_MIGRATION) !== 0) return D_NOT_FOUND;
      return checkPmd(w, softleafPfn(lo, hi)) ? D_TRUE : D_NOT_FOUND;
    }
    if (!pmdPresent(lo, hi)) return D_NOT_FOUND;
    if (pmdTransHuge(lo, hi)) {
      if ((w.flags & PVMW_MIGRATION) !== 0) return D_NOT_FOUND;
      return checkPmd(w, pmdPfn(lo, hi)) ? D_TRUE : D_NOT_FOUND;
    }
    // THP / device-private PMD was split under us: handle it at the PTE level.
    l.unlock(w.ptl);
    w.ptl = NO_LOCK;
  } else if (!pmdPresent(lo, hi)) {
    // sync_with_folio_pmd_zap: wait out a zap that cleared the PMD but has not yet dropped the mapcount.
    if ((w.flags & PVMW_SYNC) !== 0 && thpPmdOrderSuitable(w.vma, a) && w.nrPages >= HPAGE_PMD_NR) {
      l.lock(pmdT.ptl);
      l.unlock(pmdT.ptl);
    }
    stepForward(w, PMD_SIZE);
    return D_CONTINUE;
  }
  return mapPteResult(w, lo, hi);
}

/** descend's map_pte step and its three outcomes. */
function mapPteResult(w: PageVmaMappedWalk, lo: number, hi: number): number {
  if (mapPte(w, lo, hi)) return D_THIS;
  return w.pte === null ? D_RESTART : D_NEXT;
}

/** `thp_vma_suitable_order(vma, addr, PMD_ORDER)` for an anonymous VMA, or the VMA's override. */
function thpPmdOrderSuitable(vma: PvmwVma, addr: number): boolean {
  if (vma.thpPmdOrderSuitable !== undefined) return vma.thpPmdOrderSuitable;
  const haddr = addr - (addr % PMD_SIZE);
  return haddr >= vma.vmStart && haddr + PMD_SIZE <= vma.vmEnd;
}

/**
 * `map_pte(pvmw, &pmde, &ptl)`. SYNC: map and lock at once
 * (pte_offset_map_lock: LOCK, then PMD re-read). Otherwise map without the
 * lock, one `ptep_get_lockless`, return false early for entries that cannot
 * match, else LOCK and re-read the PMD. A changed PMD unlocks and retries.
 * `(pmdLo, pmdHi)` is the value D.2 read; retries use the re-read value.
 */
function mapPte(w: PageVmaMappedWalk, pmdLo: number, pmdHi: number): boolean {
  const l = w.pt.ledger;
  const sync = (w.flags & PVMW_SYNC) !== 0;
  const migration = (w.flags & PVMW_MIGRATION) !== 0;
  const batchPresent = (w.flags & PVMW_BATCH_PRESENT) !== 0;
  const v = w.scratch;
  for (;;) {
    const t = w.pt.pteTableFromPmd(pmdLo, pmdHi);
    if (t === null) {
      w.pte = null; // the PMD changed: no table to map
      return false;
    }
    w.pte = t;
    w.pteIndex = (w.address % PMD_SIZE) >>> PAGE_SHIFT; // pte_index for the checked VA descend() started from
    w.pmdvalLo = pmdLo;
    w.pmdvalHi = pmdHi;
    w.savedPtl = t.ptl;
    if (!sync) {
      internalPtepGetLockless(t, w.pteIndex, v);
      if (pteNone(v.lo, v.hi)) return false;
      if (ptePresent(v.lo, v.hi)) {
        if (migration) return false;
      } else if (!migration) {
        if (batchPresent) return false;
        if (!softleafIsDevicePrivate(v.lo, v.hi) && !softleafIsDeviceExclusive(v.lo, v.hi)) return false;
      }
    }
    if (w.raceHook !== null) w.raceHook(w, 'ptl');
    l.lock(t.ptl);
    internalPmdpGet(w.pmd!, w.pmdIndex, v);
    if (pteSame(v.lo, v.hi, pmdLo, pmdHi)) {
      w.ptl = t.ptl;
      return true;
    }
    l.unlock(t.ptl); // pte_unmap_unlock, then again
    pmdLo = v.lo;
    pmdHi = v.hi;
  }
}

/**
 * NEXT: step 4K at a time over entries that cannot be candidates (none; with
 * PVMW_BATCH_PRESENT any non-present entry), reading with `ptep_get` when the
 * ptl is held, else `ptep_get_lockless`. At a 2M boundary: unlock, unmap,
 * set PVMW_PGTABLE_CROSSED, restart. If a candidate was found unlocked:
 * LOCK the saved ptl and re-check the PMD.
 */
function nextPte(w: PageVmaMappedWalk, end: number): number {
  const l = w.pt.ledger;
  const batchPresent = (w.flags & PVMW_BATCH_PRESENT) !== 0;
  const v = w.scratch;
  // Neither the table nor the lock changes inside the loop (a crossing returns), so they are read once.
  const t = w.pte!;
  const locked = w.ptl !== NO_LOCK;
  let a = w.address;
  let i = w.pteIndex;
  for (;;) {
    a += PAGE_SIZE;
    w.address = a;
    l.charge(EV.PVMW_STEP);
    if (a >= end) return N_NOT_FOUND;
    if (a % PMD_SIZE === 0) {
      if (locked) {
        l.unlock(w.ptl);
        w.ptl = NO_LOCK;
      }
      forgetRun(w);
      w.pte = null;
      w.flags |= PVMW_PGTABLE_CROSSED;
      l.charge(EV.PGTABLE_CROSSED);
      return N_RESTART;
    }
    w.pteIndex = ++i; // below 512: the 2M boundary test above returned first
    if (locked) internalPtepGet(t, i, v);
    else internalPtepGetLockless(t, i, v);
    const lo = v.lo;
    if (batchPresent ? (lo & (PTE_VALID | PTE_PRESENT_INVALID)) !== 0 : (lo | v.hi) !== 0) break; // pte_present / !pte_none
  }
  if (!locked) {
    if (w.raceHook !== null) w.raceHook(w, 'ptl');
    l.lock(w.savedPtl);
    internalPmdpGet(w.pmd!, w.pmdIndex, v);
    if (!pteSame(v.lo, v.hi, w.pmdvalLo, w.pmdvalHi)) {
      l.unlock(w.savedPtl);
      w.pte = null;
      return N_RESTART;
    }
    w.ptl = w.savedPtl;
  }
  return N_THIS;
}

/**
 * B, the hugetlb branch, modelled for the 2M hstate only: `hugetlb_walk`
 * finds the L2 slot (null when no PMD table exists: return false),
 * `huge_pte_lock` takes `huge_pte_lockptr` = the PMD table's lock for a
 * PMD-size page, and `check_pte(pages_per_huge_page)` reads the L2 entry
 * with `huge_ptep_get`: one load, and no gather, since a 2M PMD-level entry
 * has no CONT bit (7.2.13 arch/arm64/mm/hugetlbpage.c:huge_ptep_get gathers
 * only `pte_present && pte_cont` entries). Charged as one PMD_READ.
 */
function hugetlbWalk(w: PageVmaMappedWalk): boolean {
  if (w.hugePte !== null) return notFound(w);
  const pmdT = w.pt.lookupPmdTable(w.address);
  if (pmdT === null) return false;
  w.hugePte = pmdT;
  w.hugePteIndex = pmdIndex(w.address);
  w.ptl = pmdT.ptl;
  w.pt.ledger.lock(w.ptl);
  const v = pmdpGet(pmdT, w.hugePteIndex, w.pteval);
  if (!pteMatches(w, v.lo, v.hi, HPAGE_PMD_NR)) return notFound(w);
  return true;
}
