import { EV, FoliolabError, type Ledger } from '@foliolab/ledger';
import { PAGE_SIZE, PGDIR_SIZE, PMD_SIZE, PTRS_PER_TABLE, PUD_SIZE, alignDown, checkVa, pgdIndex, pmdIndex, pudIndex } from './geometry.js';
import { PMD_TYPE_MASK, PMD_TYPE_TABLE, pmdIsTable, tableDescHi, tableDescId, tableDescLo } from './pmd.js';
import type { ArchProfile, Machine } from './profile.js';

/**
 * Folio geometry the page tables need to decide a fold ("one folio covers the
 * whole block", spec §5). The memmap package implements it; tests can use
 * `fixedSizeFolios`.
 */
export interface FolioBounds {
  /** PFN of the head page of the folio containing `pfn`. */
  folioHead(pfn: number): number;
  /** Pages in the folio containing `pfn`. */
  folioNrPages(pfn: number): number;
}

/** Folios of `nrPages` (a power of two) naturally aligned in PFN space. */
export function fixedSizeFolios(nrPages: number): FolioBounds {
  if (!Number.isInteger(nrPages) || nrPages < 1 || (nrPages & (nrPages - 1)) !== 0) {
    throw new FoliolabError('EINVAL', `fixedSizeFolios: nrPages ${nrPages} is not a power of two`, { nrPages });
  }
  return { folioHead: (pfn) => pfn - (pfn % nrPages), folioNrPages: () => nrPages };
}

/** Options of `new PageTables`. */
export interface PageTablesOptions {
  /** Split PTE locks (one per PTE-table page). Default true. */
  splitPtlocks?: boolean;
  /** Split PMD locks (one per PMD-table page). Default: same as splitPtlocks. */
  splitPmdPtlocks?: boolean;
  /** A user mm; false models init_mm / the EFI mm (never contpte). Default true. */
  userMm?: boolean;
  /** Folio geometry for fold decisions; without it no block is ever folded. */
  folios?: FolioBounds | null;
  /** Track TLB visibility per PTE (1 byte/PTE). Default true. */
  trackTlb?: boolean;
  /** Name used in lock names. Default `mm<N>`. */
  name?: string;
}

/** A PGD (level 0) or PUD (level 1) table: 512 table descriptors. */
export class UpperTable {
  readonly lo = new Uint32Array(PTRS_PER_TABLE);
  readonly hi = new Uint32Array(PTRS_PER_TABLE);
  constructor(
    readonly mm: PageTables,
    readonly id: number,
    readonly level: 0 | 1,
    readonly baseVa: number,
  ) {}
}

/** A PMD (level 2) table: table descriptors, THP blocks, PMD softleaf entries. */
export class PmdTable {
  readonly level = 2;
  readonly lo = new Uint32Array(PTRS_PER_TABLE);
  readonly hi = new Uint32Array(PTRS_PER_TABLE);
  constructor(
    readonly mm: PageTables,
    readonly id: number,
    readonly baseVa: number,
    /** `pmd_lockptr`: the split PMD lock, or mm->page_table_lock. */
    readonly ptl: number,
  ) {}
}

/**
 * A PTE (level 3) table: 512 arm64 descriptors as two Uint32Array halves
 * (8 bytes per PTE) plus, when TLB tracking is on, one state byte per PTE.
 */
export class PteTable {
  readonly level = 3;
  readonly lo = new Uint32Array(PTRS_PER_TABLE);
  readonly hi = new Uint32Array(PTRS_PER_TABLE);
  /**
   * @internal TLB visibility per PTE: bit 0 = changed, no TLBI yet; bit 1 =
   * TLBI issued, DSB pending. Allocated on the first tracked change and
   * dropped again once every change is complete, so a quiet table costs nothing.
   */
  tlb: Uint8Array | null = null;
  /** @internal `Machine.dsbGen` when the in-flight TLBIs of this table were issued. */
  tlbiGen = 0;
  /** @internal index range holding in-flight (bit 1) entries. */
  inflLo = PTRS_PER_TABLE;
  /** @internal */
  inflHi = -1;
  /** @internal number of entries with bit 0 set. */
  nrNeed = 0;

  constructor(
    readonly mm: PageTables,
    readonly id: number,
    readonly baseVa: number,
    /** `pte_lockptr`: the split PTE lock, or mm->page_table_lock. */
    readonly ptl: number,
    readonly pmdTable: PmdTable,
    readonly pmdIndex: number,
  ) {
  }

  /** VA mapped by slot `index`. */
  vaOf(index: number): number {
    return this.baseVa + index * PAGE_SIZE;
  }
}

type AnyTable = UpperTable | PmdTable | PteTable;

/**
 * The page tables of one mm: a PGD plus on-demand PUD, PMD and PTE tables,
 * split locks, and the mm-level TLB flags (`tlb_flush_pending`,
 * `tlb_flush_batched`).
 */
export class PageTables {
  readonly machine: Machine;
  readonly ledger: Ledger;
  readonly profile: ArchProfile;
  readonly id: number;
  readonly name: string;
  readonly userMm: boolean;
  readonly trackTlb: boolean;
  readonly splitPtlocks: boolean;
  readonly splitPmdPtlocks: boolean;
  folios: FolioBounds | null;
  /** `mm->page_table_lock`. */
  readonly pageTableLock: number;
  readonly pgd: UpperTable;
  /** Every PTE table, in allocation order. */
  readonly pteTables: PteTable[] = [];
  /** `mm->tlb_flush_pending` (inc/dec_tlb_flush_pending). */
  tlbFlushPending = 0;
  /** `mm->tlb_flush_batched`, pending half. */
  tlbFlushBatchedPending = 0;
  /** `mm->tlb_flush_batched`, flushed half. */
  tlbFlushBatchedFlushed = 0;
  /** @internal cached profile switches for hot paths */
  readonly contpte: boolean;
  /** @internal */
  readonly x86: boolean;
  private readonly tables: AnyTable[] = [];

  /** Number of table pages at every level (PGD, PUD, PMD and PTE tables). */
  get nrTables(): number {
    return this.tables.length;
  }

  constructor(machine: Machine, options: PageTablesOptions = {}) {
    this.machine = machine;
    this.ledger = machine.ledger;
    this.profile = machine.profile;
    this.id = machine.nextMmId++;
    this.name = options.name ?? `mm${this.id}`;
    this.userMm = options.userMm ?? true;
    this.trackTlb = options.trackTlb ?? true;
    this.splitPtlocks = options.splitPtlocks ?? true;
    this.splitPmdPtlocks = options.splitPmdPtlocks ?? this.splitPtlocks;
    this.folios = options.folios ?? null;
    this.contpte = this.profile.contpte;
    this.x86 = this.profile.arch === 'x86';
    this.pageTableLock = this.ledger.lockId(`page_table_lock:${this.name}`, 'page_table_lock');
    this.pgd = new UpperTable(this, 0, 0, 0);
    this.tables.push(this.pgd);
  }

  /** The table with simulator id `id` (the address field of a table descriptor). */
  tableById(id: number): AnyTable | undefined {
    return this.tables[id];
  }

  /** The PUD table covering `va`, or null if the PGD entry is none. No cost. */
  lookupPud(va: number): UpperTable | null {
    checkVa('lookupPud', va, false);
    return this.pudOfUnchecked(va);
  }

  /** The PMD table covering `va`, or null if a PGD/PUD entry is none. No cost. */
  lookupPmdTable(va: number): PmdTable | null {
    checkVa('lookupPud', va, false);
    const pud = this.pudOfUnchecked(va);
    return pud === null ? null : this.pmdTableOfUnchecked(pud, va);
  }

  /**
   * The PTE table a PMD value points at (`pte_offset_map_nolock` after the
   * PMD was read), or null if the value is not a table descriptor. No cost.
   */
  pteTableFromPmd(pmdLo: number, pmdHi: number): PteTable | null {
    if (!pmdIsTable(pmdLo, pmdHi)) return null;
    const t = this.tables[tableDescId(pmdLo, pmdHi)];
    return t instanceof PteTable ? t : null;
  }

  /** Simulator lookup of the PTE table for `va` (no kernel read is charged). */
  pteTableOf(va: number): PteTable | null {
    checkVa('lookupPud', va, false);
    return this.pteTableOfUnchecked(va);
  }

  /*
   * Unchecked lookups for hot paths. `va` must be an integer in [0, 2^48):
   * then every level index is a quotient below 2^32, so `>>> 0` is the floor
   * (the checked geometry helpers divide with Math.floor and %, which costs
   * more and is only needed to define results for bad input).
   */

  /** @internal `lookupPud` for a VA the caller has checked (integer, 0 ≤ va < 2^48). */
  pudOfUnchecked(va: number): UpperTable | null {
    const i = (va / PGDIR_SIZE) >>> 0;
    const pgd = this.pgd;
    const lo = pgd.lo[i]!;
    return lo === 0 ? null : (this.tables[tableDescId(lo, pgd.hi[i]!)] as UpperTable);
  }

  /** @internal The PMD table under `pud` covering the checked `va`, or null if the PUD entry is none. */
  pmdTableOfUnchecked(pud: UpperTable, va: number): PmdTable | null {
    const i = ((va / PUD_SIZE) >>> 0) & (PTRS_PER_TABLE - 1);
    const lo = pud.lo[i]!;
    return lo === 0 ? null : (this.tables[tableDescId(lo, pud.hi[i]!)] as PmdTable);
  }

  /** @internal `pteTableOf` for a checked `va`. */
  pteTableOfUnchecked(va: number): PteTable | null {
    const pud = this.pudOfUnchecked(va);
    if (pud === null) return null;
    const pmd = this.pmdTableOfUnchecked(pud, va);
    if (pmd === null) return null;
    const i = ((va / PMD_SIZE) >>> 0) & (PTRS_PER_TABLE - 1);
    const lo = pmd.lo[i]!;
    if ((lo & PMD_TYPE_MASK) !== PMD_TYPE_TABLE) return null;
    const t = this.tables[tableDescId(lo, pmd.hi[i]!)];
    return t instanceof PteTable ? t : null;
  }

  /**
   * `pte_alloc` (with `pud_alloc`/`pmd_alloc` as needed): the PTE table for
   * `va`, allocating missing levels. Each allocated table costs PGTABLE_ALLOC,
   * and its populate (under the lock that protects the entry) LOCK, the
   * descriptor store (PMD_WRITE at L2), DSB_ISHST + ISB (set_pmd/set_pud on a
   * valid entry), UNLOCK. Throws if the PMD entry holds a THP or softleaf.
   */
  pteAlloc(va: number): PteTable {
    checkVa('pteAlloc', va, false);
    const pud = this.ensureChild(this.pgd, pgdIndex(va), () => new UpperTable(this, this.tables.length, 1, alignDown(va, PGDIR_SIZE)), this.pageTableLock, false);
    const pmd = this.ensureChild(pud, pudIndex(va), () => this.newPmdTable(alignDown(va, PUD_SIZE)), this.pageTableLock, false);
    const i = pmdIndex(va);
    const lo = pmd.lo[i]!;
    if (lo !== 0 || pmd.hi[i] !== 0) {
      const t = this.pteTableFromPmd(lo, pmd.hi[i]!);
      if (t === null) throw new FoliolabError('EEXIST', `pteAlloc: PMD entry for va 0x${va.toString(16)} is not a table`, { va });
      return t;
    }
    return this.ensureChild(pmd, i, () => this.newPteTable(alignDown(va, PMD_SIZE), pmd, i), pmd.ptl, true);
  }

  /** `pmd_alloc`: the PMD table for `va`, allocating upper levels as needed. */
  pmdAlloc(va: number): PmdTable {
    checkVa('pmdAlloc', va, false);
    const pud = this.ensureChild(this.pgd, pgdIndex(va), () => new UpperTable(this, this.tables.length, 1, alignDown(va, PGDIR_SIZE)), this.pageTableLock, false);
    return this.ensureChild(pud, pudIndex(va), () => this.newPmdTable(alignDown(va, PUD_SIZE)), this.pageTableLock, false);
  }

  private ensureChild<T extends AnyTable>(parent: AnyTable, i: number, make: () => T, lock: number, pmdLevel: boolean): T {
    const lo = parent.lo[i]!;
    if (lo !== 0) return this.tables[tableDescId(lo, parent.hi[i]!)] as T;
    const child = make();
    this.tables.push(child);
    const l = this.ledger;
    l.charge(EV.PGTABLE_ALLOC);
    l.lock(lock);
    parent.lo[i] = tableDescLo(child.id);
    parent.hi[i] = tableDescHi(child.id);
    if (pmdLevel) l.charge(EV.PMD_WRITE);
    l.charge(EV.DSB_ISHST);
    l.charge(EV.ISB);
    l.unlock(lock);
    return child;
  }

  private newPmdTable(baseVa: number): PmdTable {
    const id = this.tables.length;
    const ptl = this.splitPmdPtlocks ? this.ledger.lockId(`pmd:${this.name}:${id}`, 'pmd') : this.pageTableLock;
    return new PmdTable(this, id, baseVa, ptl);
  }

  private newPteTable(baseVa: number, pmd: PmdTable, pmdIdx: number): PteTable {
    const id = this.tables.length;
    const ptl = this.splitPtlocks ? this.ledger.lockId(`ptl:${this.name}:${id}`, 'ptl') : this.pageTableLock;
    const t = new PteTable(this, id, baseVa, ptl, pmd, pmdIdx);
    this.pteTables.push(t);
    return t;
  }
}

/** `pte_lockptr(mm, pmd)`: the lock id of a PTE table. */
export function pteLockId(table: PteTable): number {
  return table.ptl;
}

/** `pmd_lockptr(mm, pmd)`: the lock id of a PMD table. */
export function pmdLockId(table: PmdTable): number {
  return table.ptl;
}

/** Bytes of simulator memory per PTE slot: 8 (descriptor) + 1 with TLB tracking while a change is in flight. */
export function bytesPerPte(mm: PageTables): number {
  return 8 + (mm.trackTlb ? 1 : 0);
}

/** Simulator bytes held by all of `mm`'s tables (descriptor arrays plus TLB state), for memory budgets. */
export function pageTableBytes(mm: PageTables): number {
  let tlb = 0;
  for (const t of mm.pteTables) tlb += t.tlb?.byteLength ?? 0;
  return mm.nrTables * PTRS_PER_TABLE * 8 + tlb;
}
