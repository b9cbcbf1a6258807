import { FoliolabError } from '@foliolab/ledger';
import {
  PAGE_SIZE,
  PFN_LIMIT,
  PMD_SIZE,
  VA_LIMIT,
  pteBits,
  type PageTables,
  type PmdTable,
  type PteBits,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import {
  NO_LOCK,
  PVMW_BATCH_PRESENT,
  PVMW_INPUT_FLAGS,
  PVMW_MIGRATION,
  type PvmwRaceSite,
  type PvmwTarget,
  type PvmwVma,
} from './types.js';
import { vmaAddressEndOf } from './vma.js';

/*
 * `struct page_vma_mapped_walk` (include/linux/rmap.h, 2026). One object per
 * walk, reusable through `init`; the walker allocates nothing per call or
 * step. Pointers become (table, index) pairs; `ptl` is a ledger lock id.
 */

/**
 * The walk state: inputs (pfn, nrPages, pgoff, vma, address, flags), outputs
 * (pmd, pte, ptl, address, nr) and the walker's private scratch.
 */
export class PageVmaMappedWalk {
  readonly pt: PageTables;
  /** First PFN of the target range. */
  pfn = 0;
  /** Pages in the target range (`nr_pages`). */
  nrPages = 1;
  /** Page offset of the target's first page. */
  pgoff = 0;
  vma: PvmwVma;
  /** Cursor; on a true return the VA of the hit. */
  address = 0;
  /** PVMW_* input flags plus the result flag PVMW_PGTABLE_CROSSED. */
  flags = 0;
  /** `pvmw->pmd`: the PMD table and slot last descended through (null = NULL). */
  pmd: PmdTable | null = null;
  pmdIndex = 0;
  /** `pvmw->pte`: the mapped PTE table and slot (null = NULL; also null after a PMD hit). */
  pte: PteTable | null = null;
  pteIndex = 0;
  /**
   * Hugetlb hits: the L2 slot holding the huge PTE. The kernel keeps it in
   * `pvmw->pte` with `pmd` NULL; here `pte` is typed as an L3 slot, so the
   * huge entry has its own field (`pte` stays null, `pmd` stays null).
   */
  hugePte: PmdTable | null = null;
  hugePteIndex = 0;
  /** `pvmw->ptl`: the lock id held after a true return, or NO_LOCK. `walk_done` does not clear it. */
  ptl = NO_LOCK;
  /**
   * PVMW_BATCH_PRESENT: on a PTE hit, the length of the run of present PTEs
   * mapping consecutive target pages from the hit (capped at the PTE table,
   * `end` and the target's last PFN). The caller may lower it to the number
   * it handled before the next call; the walker steps over `nr − 1` entries
   * without reading them. Always 1 without the flag.
   */
  nr = 1;
  /**
   * Test hook: called where another CPU could change the PMD between a
   * lockless look and taking a lock (the kernel's retry branches, which a
   * single-threaded run never reaches otherwise). Null in normal use.
   */
  raceHook: ((walk: PageVmaMappedWalk, site: PvmwRaceSite) => void) | null = null;

  /** @internal the PMD value map_pte mapped the table from (`pmde`). */
  pmdvalLo = 0;
  /** @internal */
  pmdvalHi = 0;
  /** @internal the ptl of the mapped table, kept while scanning unlocked (`ptl` local). */
  savedPtl = NO_LOCK;
  /** @internal check_pte's gathered copy of the hit (keeps CONT for pte_batch_hint). */
  readonly pteval: PteBits = pteBits();
  /** @internal scratch register for reads the walker discards. */
  readonly scratch: PteBits = pteBits();
  /** @internal BATCH_PRESENT: the run last measured, valid while the ptl stays held. */
  runTable: PteTable | null = null;
  /** @internal */
  runStart = 0;
  /** @internal */
  runEnd = 0;
  /** @internal */
  runPfn = 0;
  /** @internal the `nr` of the last PTE hit (upper bound for the caller's write-back). */
  lastRun = 1;

  constructor(pt: PageTables, target: PvmwTarget, vma: PvmwVma, address: number, flags = 0) {
    this.pt = pt;
    this.vma = vma;
    this.init(target, vma, address, flags);
  }

  /**
   * Re-arm for a new walk (`DEFINE_FOLIO_VMA_WALK` on a reused object):
   * validates everything first, then sets the inputs and nulls the outputs.
   */
  init(target: PvmwTarget, vma: PvmwVma, address: number, flags = 0): this {
    checkWalkArgs(target, vma, address, flags);
    return this.initUnchecked(target.pfn, target.nrPages, target.pgoff, vma, address, flags);
  }

  /**
   * @internal `init` without validation, taking the target as scalars (no
   * target object per call), for the engine's reclaim path. The caller
   * guarantees what `init` checks: `vma` is a non-empty 4K-aligned user
   * range (2M-aligned if hugetlb) with an integer vmPgoff ≥ 0; [pfn, pfn +
   * nrPages) is a PFN range (integers, nrPages ≥ 1, below 2^36); pgoff is an
   * integer ≥ 0; `address` is a 4K-aligned address inside the VMA; `flags`
   * holds only PVMW_INPUT_FLAGS and not both MIGRATION and BATCH_PRESENT.
   */
  initUnchecked(pfn: number, nrPages: number, pgoff: number, vma: PvmwVma, address: number, flags: number): this {
    this.pfn = pfn;
    this.nrPages = nrPages;
    this.pgoff = pgoff;
    this.vma = vma;
    this.address = address;
    this.flags = flags;
    this.pmd = null;
    this.pmdIndex = 0;
    this.pte = null;
    this.pteIndex = 0;
    this.hugePte = null;
    this.hugePteIndex = 0;
    this.ptl = NO_LOCK;
    this.nr = 1;
    this.lastRun = 1;
    this.savedPtl = NO_LOCK;
    this.runTable = null;
    return this;
  }

  /** `vma_address_end(pvmw)` for the current fields. */
  get end(): number {
    return vmaAddressEndOf(this.vma, this.pgoff, this.nrPages, this.address);
  }
}

/** `DEFINE_FOLIO_VMA_WALK(name, folio, vma, address, flags)`. */
export function folioVmaWalk(pt: PageTables, folio: PvmwTarget, vma: PvmwVma, address: number, flags = 0): PageVmaMappedWalk {
  return new PageVmaMappedWalk(pt, folio, vma, address, flags);
}

function bad(what: string, details: Record<string, unknown>): never {
  throw new FoliolabError('EINVAL', `page_vma_mapped_walk: ${what}`, details);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Throw unless (vma, target, address, flags) describe a walk the kernel could start. */
export function checkVma(vma: PvmwVma): void {
  const { vmStart, vmEnd, vmPgoff } = vma;
  if (!isInt(vmStart) || !isInt(vmEnd) || vmStart < 0 || vmEnd > VA_LIMIT || vmStart >= vmEnd) {
    bad(`vma [${String(vmStart)}, ${String(vmEnd)}) is not a non-empty user range`, { vmStart, vmEnd });
  }
  if (vmStart % PAGE_SIZE !== 0 || vmEnd % PAGE_SIZE !== 0) bad(`vma [0x${vmStart.toString(16)}, 0x${vmEnd.toString(16)}) is not 4K aligned`, { vmStart, vmEnd });
  if (!isInt(vmPgoff) || vmPgoff < 0) bad(`vmPgoff ${String(vmPgoff)} is not a page offset`, { vmPgoff });
  if (vma.isHugetlb === true && (vmStart % PMD_SIZE !== 0 || vmEnd % PMD_SIZE !== 0)) {
    bad(`hugetlb vma [0x${vmStart.toString(16)}, 0x${vmEnd.toString(16)}) is not 2M aligned (only the 2M hstate is modelled)`, { vmStart, vmEnd });
  }
}

function checkWalkArgs(target: PvmwTarget, vma: PvmwVma, address: number, flags: number): void {
  checkVma(vma);
  const { pfn, nrPages, pgoff } = target;
  if (!isInt(pfn) || pfn < 0 || !isInt(nrPages) || nrPages < 1 || pfn + nrPages > PFN_LIMIT) {
    bad(`target pfn ${String(pfn)} nrPages ${String(nrPages)} is not a PFN range`, { pfn, nrPages });
  }
  if (!isInt(pgoff) || pgoff < 0) bad(`target pgoff ${String(pgoff)} is not a page offset`, { pgoff });
  if (!isInt(address) || address % PAGE_SIZE !== 0 || address < vma.vmStart || address >= vma.vmEnd) {
    bad(`address ${String(address)} is not a 4K-aligned address inside the vma`, { address, vmStart: vma.vmStart, vmEnd: vma.vmEnd });
  }
  if (!isInt(flags) || (flags & ~PVMW_INPUT_FLAGS) !== 0) bad(`flags 0x${Number(flags).toString(16)} has bits that are not input flags`, { flags });
  if ((flags & PVMW_MIGRATION) !== 0 && (flags & PVMW_BATCH_PRESENT) !== 0) {
    bad('PVMW_MIGRATION and PVMW_BATCH_PRESENT exclude each other (migration entries are not present)', { flags });
  }
}
