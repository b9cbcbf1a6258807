/*
 * arm64 PTE bits (spec §2), arch/arm64/include/asm/pgtable{,-prot,-hwdef}.h
 * ≈v6.13–6.15. A 64-bit PTE is two uint32 halves: `lo` = bits 0–31 and
 * `hi` = bits 32–63. Constants are named for the half they live in; hi
 * constants are the bit number minus 32.
 *
 * Predicates take (lo, hi) numbers. Bit operations mutate a caller-owned
 * `PteBits` register and return it, so hot paths allocate nothing.
 */

/** A mutable 64-bit PTE value as two uint32 halves. */
export interface PteBits {
  lo: number;
  hi: number;
}

/** A fresh PTE register (allocate once, reuse). */
export function pteBits(lo = 0, hi = 0): PteBits {
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

// ---- low word (bits 0–31) ----
export const PTE_VALID = 1 << 0;
/** Bit 1: table/page type; must be 1 for a page at L3. */
export const PTE_TYPE_PAGE = 1 << 1;
export const PTE_ATTRINDX_SHIFT = 2;
export const PTE_ATTRINDX_MASK = 7 << 2;
/** AP[1]: EL0 access. */
export const PTE_USER = 1 << 6;
/** AP[2]: read-only. */
export const PTE_RDONLY = 1 << 7;
export const PTE_SHARED_SHIFT = 8;
export const PTE_SHARED = 3 << 8;
/** Access flag (young). */
export const PTE_AF = 1 << 10;
export const PTE_NG = 1 << 11;
/** nG doubles as PRESENT_INVALID when VALID is clear (PROT_NONE, NUMA hints). */
export const PTE_PRESENT_INVALID = PTE_NG;
/** PA bits 12–31 (PFN bits 0–19) in the low word. */
export const PTE_LO_PFN_MASK = 0xfffff000;

// ---- high word (bits 32–63), as bit − 32 ----
/** PA bits 32–47 (PFN bits 20–35) in the high word. */
export const PTE_HI_PFN_MASK = 0xffff;
/** Bit 50: guarded page (BTI). */
export const PTE_HI_GP = 1 << 18;
/** Bit 51: DBM, used by the kernel as PTE_WRITE. */
export const PTE_HI_WRITE = 1 << 19;
export const PTE_HI_DBM = PTE_HI_WRITE;
/** Bit 52: contiguous hint. */
export const PTE_HI_CONT = 1 << 20;
/** Bit 53. */
export const PTE_HI_PXN = 1 << 21;
/** Bit 54. */
export const PTE_HI_UXN = 1 << 22;
/** Bit 55: software dirty. */
export const PTE_HI_DIRTY = 1 << 23;
/** Bit 56. */
export const PTE_HI_SPECIAL = 1 << 24;
/** Bit 57: obsolete DEVMAP; never produced, rejected by the decoder. */
export const PTE_HI_DEVMAP = 1 << 25;
/** Bit 58: userfaultfd write-protect (PTE_UFFD in 2026). */
export const PTE_HI_UFFD_WP = 1 << 26;

const TWO20 = 1 << 20;

/** `pte_pfn`: PA bits 12–47 >> 12. Also the PFN of PFN-bearing softleaf entries. */
export function ptePfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & PTE_HI_PFN_MASK) * TWO20;
}

/** Low word of a PFN's PA bits (bits 12–31). */
export function pfnLo(pfn: number): number {
  return ((pfn % TWO20) << 12) >>> 0;
}

/** High word of a PFN's PA bits (bits 32–47). */
export function pfnHi(pfn: number): number {
  return Math.floor(pfn / TWO20) & PTE_HI_PFN_MASK;
}

/** `pte_none`. */
export function pteNone(lo: number, hi: number): boolean {
  return (lo | hi) === 0;
}

/** `pte_valid`. */
export function pteValid(lo: number, _hi: number): boolean {
  return (lo & PTE_VALID) !== 0;
}

/** `pte_present_invalid`: PRESENT_INVALID set, VALID clear. */
export function ptePresentInvalid(lo: number, _hi: number): boolean {
  return (lo & (PTE_VALID | PTE_PRESENT_INVALID)) === PTE_PRESENT_INVALID;
}

/** `pte_present`: valid, or present-invalid. */
export function ptePresent(lo: number, _hi: number): boolean {
  return (lo & (PTE_VALID | PTE_PRESENT_INVALID)) !== 0;
}

/** `pte_protnone`: present-invalid, not user, not user-exec. */
export function pteProtnone(lo: number, hi: number): boolean {
  return ptePresentInvalid(lo, hi) && (lo & PTE_USER) === 0 && (hi & PTE_HI_UXN) !== 0;
}

/** `pte_cont` (raw bit; see `pteValidCont` for the test contpte decisions use). */
export function pteCont(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_CONT) !== 0;
}

/** `pte_valid_cont`: VALID && CONT. */
export function pteValidCont(lo: number, hi: number): boolean {
  return (lo & PTE_VALID) !== 0 && (hi & PTE_HI_CONT) !== 0;
}

/** `pte_write`: the WRITE/DBM bit. */
export function pteWrite(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_WRITE) !== 0;
}

/** `pte_rdonly`. */
export function pteRdonly(lo: number, _hi: number): boolean {
  return (lo & PTE_RDONLY) !== 0;
}

/** `pte_hw_dirty`: WRITE && !RDONLY. */
export function pteHwDirty(lo: number, hi: number): boolean {
  return (hi & PTE_HI_WRITE) !== 0 && (lo & PTE_RDONLY) === 0;
}

/** `pte_sw_dirty`. */
export function pteSwDirty(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_DIRTY) !== 0;
}

/** `pte_dirty`: DIRTY || hwDirty. */
export function pteDirty(lo: number, hi: number): boolean {
  return (hi & PTE_HI_DIRTY) !== 0 || ((hi & PTE_HI_WRITE) !== 0 && (lo & PTE_RDONLY) === 0);
}

/** `pte_young`: AF. */
export function pteYoung(lo: number, _hi: number): boolean {
  return (lo & PTE_AF) !== 0;
}

/** `pte_special`. */
export function pteSpecial(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_SPECIAL) !== 0;
}

/** `pte_uffd_wp`. */
export function pteUffdWp(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_UFFD_WP) !== 0;
}

/** `pte_user`. */
export function pteUser(lo: number, _hi: number): boolean {
  return (lo & PTE_USER) !== 0;
}

/** `pte_user_exec`: UXN clear. */
export function pteUserExec(_lo: number, hi: number): boolean {
  return (hi & PTE_HI_UXN) === 0;
}

/**
 * `pte_same` (arm64 ≥v6.10): raw compare, with RDONLY masked out of each
 * operand that is present (a DBM write clears RDONLY behind the kernel's back).
 */
export function pteSame(aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  if ((aHi ^ bHi) !== 0) return false;
  const am = (aLo & (PTE_VALID | PTE_PRESENT_INVALID)) !== 0 ? aLo & ~PTE_RDONLY : aLo;
  const bm = (bLo & (PTE_VALID | PTE_PRESENT_INVALID)) !== 0 ? bLo & ~PTE_RDONLY : bLo;
  return (am ^ bm) === 0;
}

// ---- bit operations on a PteBits register ----

/** `pte_mkclean`: clear DIRTY, set RDONLY. */
export function pteMkclean(p: PteBits): PteBits {
  p.hi = (p.hi & ~PTE_HI_DIRTY) >>> 0;
  p.lo = (p.lo | PTE_RDONLY) >>> 0;
  return p;
}

/** `pte_mkdirty`: set DIRTY; if WRITE also clear RDONLY. */
export function pteMkdirty(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_DIRTY) >>> 0;
  if ((p.hi & PTE_HI_WRITE) !== 0) p.lo = (p.lo & ~PTE_RDONLY) >>> 0;
  return p;
}

/** `pte_wrprotect`: move hardware dirtiness to DIRTY, clear WRITE, set RDONLY. */
export function pteWrprotect(p: PteBits): PteBits {
  if (pteHwDirty(p.lo, p.hi)) p.hi = (p.hi | PTE_HI_DIRTY) >>> 0;
  p.hi = (p.hi & ~PTE_HI_WRITE) >>> 0;
  p.lo = (p.lo | PTE_RDONLY) >>> 0;
  return p;
}

/**
 * `pte_mkwrite_novma` as the spec's table gives it: set WRITE, clear RDONLY.
 * Not 7.2.13's (that is `pteMkwriteNovma`); kept for the spec's examples,
 * no model path uses it.
 */
export function pteMkwrite(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_WRITE) >>> 0;
  p.lo = (p.lo & ~PTE_RDONLY) >>> 0;
  return p;
}

/**
 * arm64 `pte_mkwrite_novma` since Huang Ying's "arm64, mm: avoid always
 * making PTE dirty in pte_mkwrite()" (Oct 2025, reviewed by Catalin
 * Marinas): set WRITE, and clear RDONLY only for a software-dirty entry. A
 * clean writable entry stays WRITE|RDONLY, so it is still clean. The older
 * form, `pteMkwrite`, makes every entry it touches look hardware-dirty.
 * What the engine and the FPB_MERGE_WRITE batch use; the same as 7.2.13
 * arch/arm64/include/asm/pgtable.h:pte_mkwrite_novma.
 */
export function pteMkwriteNovma(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_WRITE) >>> 0;
  if ((p.hi & PTE_HI_DIRTY) !== 0) p.lo = (p.lo & ~PTE_RDONLY) >>> 0;
  return p;
}

/** `pte_mkold`. */
export function pteMkold(p: PteBits): PteBits {
  p.lo = (p.lo & ~PTE_AF) >>> 0;
  return p;
}

/** `pte_mkyoung`. */
export function pteMkyoung(p: PteBits): PteBits {
  p.lo = (p.lo | PTE_AF) >>> 0;
  return p;
}

/** `pte_mkuffd_wp`: set UFFD_WP, then wrprotect. */
export function pteMkuffdWp(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_UFFD_WP) >>> 0;
  return pteWrprotect(p);
}

/** `pte_clear_uffd_wp`. */
export function pteClearUffdWp(p: PteBits): PteBits {
  p.hi = (p.hi & ~PTE_HI_UFFD_WP) >>> 0;
  return p;
}

/** `pte_mkcont`. */
export function pteMkcont(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_CONT) >>> 0;
  return p;
}

/** `pte_mknoncont`. */
export function pteMknoncont(p: PteBits): PteBits {
  p.hi = (p.hi & ~PTE_HI_CONT) >>> 0;
  return p;
}

/** `pte_mkspecial`. */
export function pteMkspecial(p: PteBits): PteBits {
  p.hi = (p.hi | PTE_HI_SPECIAL) >>> 0;
  return p;
}

/** `pte_mkinvalid`: make a valid entry present-invalid (PROT_NONE / NUMA hint form). */
export function pteMkinvalid(p: PteBits): PteBits {
  p.lo = ((p.lo | PTE_PRESENT_INVALID) & ~PTE_VALID) >>> 0;
  return p;
}

/** `pte_mkvalid`. */
export function pteMkvalid(p: PteBits): PteBits {
  p.lo = (p.lo | PTE_VALID) >>> 0;
  return p;
}

/** Replace the PFN field (`pfn_pte(pfn, pte_pgprot(p))`). */
export function pteSetPfn(p: PteBits, pfn: number): PteBits {
  p.lo = ((p.lo & ~PTE_LO_PFN_MASK) | pfnLo(pfn)) >>> 0;
  p.hi = ((p.hi & ~PTE_HI_PFN_MASK) | pfnHi(pfn)) >>> 0;
  return p;
}

/** The raw value as a 64-bit bigint (cold paths: dumps, tests). */
export function pteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Split a 64-bit bigint into `out` (allocates `out` if not given). */
export function pteFromBigInt(v: bigint, out: PteBits = pteBits()): PteBits {
  const u = BigInt.asUintN(64, v);
  out.lo = Number(u & 0xffffffffn);
  out.hi = Number(u >> 32n);
  return out;
}

/** `0x…` with 16 hex digits. */
export function pteHex(lo: number, hi: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** Options of `makeUserPte`. */
export interface UserPteOptions {
  /** VM_WRITE: set WRITE (DBM); a clean writable entry keeps RDONLY. Default false. */
  write?: boolean;
  /** AF set (PROT_DEFAULT includes PTE_AF). Default true. */
  young?: boolean;
  /** `pte_mkdirty` applied. Default false. */
  dirty?: boolean;
  /** Clear UXN. Default false. */
  exec?: boolean;
  special?: boolean;
  uffdWp?: boolean;
  /** Build the PROT_NONE (present-invalid) form instead of a valid entry. */
  protNone?: boolean;
}

/**
 * A user anonymous-memory PTE as `mk_pte(page, vm_get_page_prot(...))` builds
 * it: PAGE_READONLY/PAGE_SHARED-style bits (TYPE_PAGE, AttrIndx MT_NORMAL=0,
 * inner-shareable, nG, USER, PXN, UXN), then mkyoung/mkdirty as asked.
 * PROT_NONE is PAGE_NONE's form: present-invalid, not USER, UXN set.
 */
export function makeUserPte(pfn: number, o: UserPteOptions = {}): PteBits {
  const p = pteBits();
  pteSetPfn(p, pfn);
  p.lo = (p.lo | PTE_TYPE_PAGE | PTE_SHARED | PTE_NG | PTE_RDONLY) >>> 0;
  p.hi = (p.hi | PTE_HI_PXN | PTE_HI_UXN) >>> 0;
  if (o.protNone === true) {
    p.lo = (p.lo | PTE_PRESENT_INVALID) >>> 0;
  } else {
    p.lo = (p.lo | PTE_VALID | PTE_USER) >>> 0;
    if (o.exec === true) p.hi = (p.hi & ~PTE_HI_UXN) >>> 0;
  }
  if (o.young ?? true) pteMkyoung(p);
  if (o.write === true) p.hi = (p.hi | PTE_HI_WRITE) >>> 0;
  if (o.dirty === true) pteMkdirty(p);
  if (o.special === true) pteMkspecial(p);
  if (o.uffdWp === true) pteMkuffdWp(p);
  return p;
}
