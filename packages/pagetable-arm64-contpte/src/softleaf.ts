import { FoliolabError } from '@foliolab/ledger';
import { PFN_LIMIT } from './geometry.js';
import { PTE_HI_PFN_MASK, PTE_PRESENT_INVALID, PTE_VALID, ptePfn, type PteBits } from './pte.js';

/*
 * Non-present entries (spec §3): arm64 swap-PTE layout and the softleaf
 * types of include/linux/leafops.h @ba23adb6 with every config enabled.
 *
 *   bits 0–1   0 (not valid)            bit 11     0 (not present-invalid)
 *   bit 2      SWP_EXCLUSIVE            bits 6–10  type
 *   bit 3      SWP_UFFD_WP              bits 12–61 offset (50 bits)
 *
 * PFN-bearing types keep the PFN in offset bits 0–35, i.e. raw bits 12–47:
 * the same place as a present PTE's PFN, so `ptePfn` reads both.
 * Migration young/dirty sit right above the PFN (7.2.13
 * include/linux/swapops.h: SWP_MIG_YOUNG_BIT = SWP_PFN_BITS =
 * MAX_PHYSMEM_BITS − PAGE_SHIFT, SWP_MIG_DIRTY_BIT = SWP_PFN_BITS + 1; arm64
 * MAX_PHYSMEM_BITS = PHYS_MASK_SHIFT, arch/arm64/include/asm/sparsemem.h and
 * pgtable-prot.h): with 48-bit PAs, offset bits 36 and 37 = raw bits 48 and
 * 49 (high word bits 16 and 17). A 52-bit-PA kernel running with LPA2
 * (CONFIG_ARM64_LPA2 and TCR_EL1.DS, e.g. Debian's arm64 7.2.13 config on an
 * LPA2 CPU) has PHYS_MASK_SHIFT 52: bits 40 and 41, and a different PFN
 * layout that this model does not follow.
 */

export const PTE_SWP_EXCLUSIVE = 1 << 2;
export const PTE_SWP_UFFD_WP = 1 << 3;
export const SWP_TYPE_SHIFT = 6;
export const SWP_TYPE_MASK = 0x1f;
export const SWP_OFFSET_BITS = 50;
/** Real swap files: types 0..23. */
export const MAX_SWAPFILES = 24;
export const SWP_HWPOISON = 24;
export const SWP_MIGRATION_READ = 25;
export const SWP_MIGRATION_READ_EXCLUSIVE = 26;
export const SWP_MIGRATION_WRITE = 27;
/** Device-private, writable. */
export const SWP_DEVICE_WRITE = 28;
/** Device-private, read-only. */
export const SWP_DEVICE_READ = 29;
export const SWP_DEVICE_EXCLUSIVE = 30;
export const SWP_PTE_MARKER = 31;
/** Offset bit of a migration entry's young flag (raw bit 48). */
export const SWP_MIG_YOUNG_BIT = 36;
/** Offset bit of a migration entry's dirty flag (raw bit 49). */
export const SWP_MIG_DIRTY_BIT = 37;
const HI_MIG_YOUNG = 1 << (SWP_MIG_YOUNG_BIT - 20);
const HI_MIG_DIRTY = 1 << (SWP_MIG_DIRTY_BIT - 20);
/** Marker bits, in the offset of a PTE_MARKER entry. */
export const PTE_MARKER_UFFD_WP = 1 << 0;
export const PTE_MARKER_POISONED = 1 << 1;
export const PTE_MARKER_GUARD = 1 << 2;
export const PTE_MARKER_MASK = 7;

/** Low-word bits a non-present entry may have: flags, type, offset bits 0–19. */
const SWP_LO_ALLOWED = (PTE_SWP_EXCLUSIVE | PTE_SWP_UFFD_WP | (SWP_TYPE_MASK << SWP_TYPE_SHIFT) | 0xfffff000) >>> 0;
/** High-word bits of offset bits 20–49. */
const SWP_HI_OFFSET_MASK = 0x3fffffff;
const TWO20 = 1 << 20;

/**
 * `softleaf_type` of the raw entry: 0..31, or −1 when the entry is none or
 * present (`SOFTLEAF_NONE`).
 */
export function softleafType(lo: number, hi: number): number {
  if ((lo | hi) === 0 || (lo & (PTE_VALID | PTE_PRESENT_INVALID)) !== 0) return -1;
  return (lo >>> SWP_TYPE_SHIFT) & SWP_TYPE_MASK;
}

/** `softleaf_offset`: offset bits 0–49 (flags stripped). */
export function softleafOffset(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & SWP_HI_OFFSET_MASK) * TWO20;
}

/** A real swap entry (type < MAX_SWAPFILES). */
export function softleafIsSwap(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t >= 0 && t < MAX_SWAPFILES;
}

/** `softleaf_is_migration`. */
export function softleafIsMigration(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t >= SWP_MIGRATION_READ && t <= SWP_MIGRATION_WRITE;
}

/** `softleaf_is_migration_write`. */
export function softleafIsMigrationWrite(lo: number, hi: number): boolean {
  return softleafType(lo, hi) === SWP_MIGRATION_WRITE;
}

/** `softleaf_is_device_private`. */
export function softleafIsDevicePrivate(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t === SWP_DEVICE_WRITE || t === SWP_DEVICE_READ;
}

/** `softleaf_is_device_exclusive`. */
export function softleafIsDeviceExclusive(lo: number, hi: number): boolean {
  return softleafType(lo, hi) === SWP_DEVICE_EXCLUSIVE;
}

/** `softleaf_is_hwpoison`. */
export function softleafIsHwpoison(lo: number, hi: number): boolean {
  return softleafType(lo, hi) === SWP_HWPOISON;
}

/** `softleaf_is_marker`. */
export function softleafIsMarker(lo: number, hi: number): boolean {
  return softleafType(lo, hi) === SWP_PTE_MARKER;
}

/** `softleaf_has_pfn`: migration, device-private, device-exclusive, hwpoison. */
export function softleafHasPfn(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t >= SWP_HWPOISON && t <= SWP_DEVICE_EXCLUSIVE;
}

/** `softleaf_to_pfn`: offset bits 0–35 (only meaningful when `softleafHasPfn`). */
export function softleafPfn(lo: number, hi: number): number {
  return ptePfn(lo, hi);
}

/** `softleaf_migration_young`. */
export function softleafMigrationYoung(_lo: number, hi: number): boolean {
  return (hi & HI_MIG_YOUNG) !== 0;
}

/** `softleaf_migration_dirty`. */
export function softleafMigrationDirty(_lo: number, hi: number): boolean {
  return (hi & HI_MIG_DIRTY) !== 0;
}

/** The marker bits of a PTE_MARKER entry. */
export function pteMarkerBits(lo: number, _hi: number): number {
  return (lo >>> 12) & PTE_MARKER_MASK;
}

/** `pte_swp_exclusive`. */
export function pteSwpExclusive(lo: number, _hi: number): boolean {
  return (lo & PTE_SWP_EXCLUSIVE) !== 0;
}

/** `pte_swp_uffd_wp`. */
export function pteSwpUffdWp(lo: number, _hi: number): boolean {
  return (lo & PTE_SWP_UFFD_WP) !== 0;
}

/** `pte_swp_mkexclusive`. */
export function pteSwpMkexclusive(p: PteBits): PteBits {
  p.lo = (p.lo | PTE_SWP_EXCLUSIVE) >>> 0;
  return p;
}

/** `pte_swp_clear_exclusive`. */
export function pteSwpClearExclusive(p: PteBits): PteBits {
  p.lo = (p.lo & ~PTE_SWP_EXCLUSIVE) >>> 0;
  return p;
}

/** `pte_swp_mkuffd_wp`. */
export function pteSwpMkuffdWp(p: PteBits): PteBits {
  p.lo = (p.lo | PTE_SWP_UFFD_WP) >>> 0;
  return p;
}

/** `pte_swp_clear_uffd_wp`. */
export function pteSwpClearUffdWp(p: PteBits): PteBits {
  p.lo = (p.lo & ~PTE_SWP_UFFD_WP) >>> 0;
  return p;
}

function bad(fn: string, what: string, details: Record<string, unknown>): never {
  throw new FoliolabError('EINVAL', `${fn}: ${what}`, details);
}

function checkPfn(fn: string, pfn: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= PFN_LIMIT) bad(fn, `pfn ${String(pfn)} is not a 36-bit PFN`, { pfn });
}

/** `__swp_entry_to_pte(__swp_entry(type, offset))` into `out`. */
function setSoftleaf(out: PteBits, type: number, offset: number): PteBits {
  out.lo = (((type & SWP_TYPE_MASK) << SWP_TYPE_SHIFT) | ((offset % TWO20) << 12)) >>> 0;
  out.hi = Math.floor(offset / TWO20) & SWP_HI_OFFSET_MASK;
  return out;
}

/**
 * A swap PTE for slot (type, offset), as `swp_entry_to_pte` builds it. A swap
 * entry is never `pte_none`: the all-zero encoding (type 0, offset 0, no flags)
 * is rejected.
 */
export function mkSwapPte(out: PteBits, type: number, offset: number, exclusive = false, uffdWp = false): PteBits {
  if (!Number.isInteger(type) || type < 0 || type >= MAX_SWAPFILES) bad('mkSwapPte', `type ${String(type)} is not a swap file (0..23)`, { type });
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** SWP_OFFSET_BITS) bad('mkSwapPte', `offset ${String(offset)} does not fit 50 bits`, { offset });
  setSoftleaf(out, type, offset);
  if (exclusive) out.lo = (out.lo | PTE_SWP_EXCLUSIVE) >>> 0;
  if (uffdWp) out.lo = (out.lo | PTE_SWP_UFFD_WP) >>> 0;
  if ((out.lo | out.hi) === 0) bad('mkSwapPte', 'swap entry (0, 0) without flags would encode as pte_none', { type, offset });
  return out;
}

/** Migration access kinds (the three migration types). */
export type MigrationAccess = 'read' | 'readExclusive' | 'write';

const MIGRATION_TYPE: Readonly<Record<MigrationAccess, number>> = {
  read: SWP_MIGRATION_READ,
  readExclusive: SWP_MIGRATION_READ_EXCLUSIVE,
  write: SWP_MIGRATION_WRITE,
};

/** `make_{readable,readable_exclusive,writable}_migration_entry(pfn)` (+ young/dirty). */
export function mkMigrationPte(out: PteBits, access: MigrationAccess, pfn: number, young = false, dirty = false): PteBits {
  checkPfn('mkMigrationPte', pfn);
  setSoftleaf(out, MIGRATION_TYPE[access], pfn);
  if (young) out.hi = (out.hi | HI_MIG_YOUNG) >>> 0;
  if (dirty) out.hi = (out.hi | HI_MIG_DIRTY) >>> 0;
  return out;
}

/** `make_{writable,readable}_device_private_entry(pfn)`. */
export function mkDevicePrivatePte(out: PteBits, pfn: number, write: boolean): PteBits {
  checkPfn('mkDevicePrivatePte', pfn);
  return setSoftleaf(out, write ? SWP_DEVICE_WRITE : SWP_DEVICE_READ, pfn);
}

/** `make_device_exclusive_entry(pfn)`. */
export function mkDeviceExclusivePte(out: PteBits, pfn: number): PteBits {
  checkPfn('mkDeviceExclusivePte', pfn);
  return setSoftleaf(out, SWP_DEVICE_EXCLUSIVE, pfn);
}

/** `make_hwpoison_entry(page)`. */
export function mkHwpoisonPte(out: PteBits, pfn: number): PteBits {
  checkPfn('mkHwpoisonPte', pfn);
  return setSoftleaf(out, SWP_HWPOISON, pfn);
}

/** `make_pte_marker(bits)`: bits of PTE_MARKER_UFFD_WP | POISONED | GUARD. */
export function mkMarkerPte(out: PteBits, bits: number): PteBits {
  if (!Number.isInteger(bits) || bits < 0 || bits > PTE_MARKER_MASK) bad('mkMarkerPte', `marker bits ${String(bits)} not within 0..7`, { bits });
  return setSoftleaf(out, SWP_PTE_MARKER, bits);
}

/** Offset high-word bits that must be zero for a type, given its layout. */
export function softleafHiReserved(type: number): number {
  if (type < MAX_SWAPFILES) return 0;
  if (type === SWP_PTE_MARKER) return SWP_HI_OFFSET_MASK;
  if (type >= SWP_MIGRATION_READ && type <= SWP_MIGRATION_WRITE) return SWP_HI_OFFSET_MASK & ~(PTE_HI_PFN_MASK | HI_MIG_YOUNG | HI_MIG_DIRTY);
  return SWP_HI_OFFSET_MASK & ~PTE_HI_PFN_MASK;
}

/** Whether (lo, hi) uses only bits the non-present layout defines. */
export function softleafLayoutOk(lo: number, hi: number): boolean {
  if ((lo & ~SWP_LO_ALLOWED) !== 0 || (hi & ~SWP_HI_OFFSET_MASK) !== 0) return false;
  const type = (lo >>> SWP_TYPE_SHIFT) & SWP_TYPE_MASK;
  if ((hi & softleafHiReserved(type)) !== 0) return false;
  return type !== SWP_PTE_MARKER || (lo >>> 12) <= PTE_MARKER_MASK;
}
