import { FoliolabError } from '@foliolab/ledger';
import { PFN_LIMIT } from './geometry.js';
import {
  PTE_AF,
  PTE_ATTRINDX_MASK,
  PTE_ATTRINDX_SHIFT,
  PTE_HI_CONT,
  PTE_HI_DIRTY,
  PTE_HI_GP,
  PTE_HI_PFN_MASK,
  PTE_HI_PXN,
  PTE_HI_SPECIAL,
  PTE_HI_UFFD_WP,
  PTE_HI_UXN,
  PTE_HI_WRITE,
  PTE_NG,
  PTE_RDONLY,
  PTE_SHARED,
  PTE_SHARED_SHIFT,
  PTE_TYPE_PAGE,
  PTE_USER,
  PTE_VALID,
  pteBits,
  pteHex,
  ptePfn,
  ptePresent,
  pteSetPfn,
  type PteBits,
} from './pte.js';
import {
  MAX_SWAPFILES,
  PTE_MARKER_GUARD,
  PTE_MARKER_POISONED,
  PTE_MARKER_UFFD_WP,
  PTE_SWP_EXCLUSIVE,
  PTE_SWP_UFFD_WP,
  SWP_DEVICE_EXCLUSIVE,
  SWP_DEVICE_READ,
  SWP_DEVICE_WRITE,
  SWP_HWPOISON,
  SWP_MIGRATION_READ,
  SWP_MIGRATION_READ_EXCLUSIVE,
  SWP_MIGRATION_WRITE,
  SWP_PTE_MARKER,
  mkDeviceExclusivePte,
  mkDevicePrivatePte,
  mkHwpoisonPte,
  mkMarkerPte,
  mkMigrationPte,
  mkSwapPte,
  pteMarkerBits,
  softleafLayoutOk,
  softleafMigrationDirty,
  softleafMigrationYoung,
  softleafOffset,
  type MigrationAccess,
} from './softleaf.js';

/*
 * The tagged union of PTE kinds (spec §3 "TypeScript model") and its exact
 * codec. Every field maps to raw bits, so encode(decode(raw)) === raw for
 * every raw value decodePte accepts, and decode(encode(u)) deep-equals u.
 * Raw values with bits the layout does not define (bit 5, 48–49, DEVMAP 57,
 * 59–63 when present; bits 1, 4–5, 62–63 or reserved offset bits when not)
 * are rejected rather than silently dropped.
 */

/** Flags a non-present entry carries in bits 2 and 3. */
interface SwpFlags {
  /** Bit 2, `pte_swp_exclusive` (remembers PageAnonExclusive). */
  swpExclusive: boolean;
  /** Bit 3, `pte_swp_uffd_wp`. */
  swpUffdWp: boolean;
}

/** A present PTE: valid, or present-invalid (PROT_NONE / NUMA hint). */
export interface PresentPte {
  kind: 'present';
  pfn: number;
  /** VALID (bit 0). false = present-invalid, which requires `ng` (bit 11 doubles as PRESENT_INVALID). */
  valid: boolean;
  ng: boolean;
  /** AttrIndx, bits 2–4. */
  attrIndx: number;
  user: boolean;
  rdonly: boolean;
  /** SH, bits 8–9. */
  shareability: number;
  /** AF (bit 10). */
  young: boolean;
  gp: boolean;
  /** DBM / PTE_WRITE (bit 51). */
  write: boolean;
  cont: boolean;
  pxn: boolean;
  uxn: boolean;
  /** Software DIRTY (bit 55); `pte_dirty` also counts WRITE && !RDONLY. */
  swDirty: boolean;
  special: boolean;
  uffdWp: boolean;
}

export interface SwapPte extends SwpFlags {
  kind: 'swap';
  /** Swap file, 0..23. */
  type: number;
  /** Slot, 0..2^50−1. */
  offset: number;
}

export interface MigrationPte extends SwpFlags {
  kind: 'migration';
  access: MigrationAccess;
  pfn: number;
  young: boolean;
  dirty: boolean;
}

export interface DevicePrivatePte extends SwpFlags {
  kind: 'devicePrivate';
  write: boolean;
  pfn: number;
}

export interface DeviceExclusivePte extends SwpFlags {
  kind: 'deviceExclusive';
  pfn: number;
}

export interface HwpoisonPte extends SwpFlags {
  kind: 'hwpoison';
  pfn: number;
}

export interface MarkerPte extends SwpFlags {
  kind: 'marker';
  markerUffdWp: boolean;
  poisoned: boolean;
  guard: boolean;
}

/** `pte_none`: the all-zero entry. */
export interface NonePte {
  kind: 'none';
}

/** Every kind of L3 entry. */
export type PteValue =
  | NonePte
  | PresentPte
  | SwapPte
  | MigrationPte
  | DevicePrivatePte
  | DeviceExclusivePte
  | HwpoisonPte
  | MarkerPte;

/** Bits a present entry may have. */
const PRESENT_LO_ALLOWED = ~(1 << 5) >>> 0;
const PRESENT_HI_ALLOWED =
  (PTE_HI_PFN_MASK | PTE_HI_GP | PTE_HI_WRITE | PTE_HI_CONT | PTE_HI_PXN | PTE_HI_UXN | PTE_HI_DIRTY | PTE_HI_SPECIAL | PTE_HI_UFFD_WP) >>> 0;

function reject(lo: number, hi: number, why: string): never {
  throw new FoliolabError('EINVAL', `decodePte: ${pteHex(lo, hi)} ${why}`, { lo, hi });
}

const b = (x: number): boolean => x !== 0;

function decodePresent(lo: number, hi: number): PresentPte {
  if ((lo & ~PRESENT_LO_ALLOWED) !== 0 || (hi & ~PRESENT_HI_ALLOWED) !== 0) reject(lo, hi, 'sets bits a present PTE does not define');
  if ((lo & PTE_TYPE_PAGE) === 0) reject(lo, hi, 'is present but not of page type (bit 1 clear)');
  return {
    kind: 'present',
    pfn: ptePfn(lo, hi),
    valid: b(lo & PTE_VALID),
    ng: b(lo & PTE_NG),
    attrIndx: (lo & PTE_ATTRINDX_MASK) >>> PTE_ATTRINDX_SHIFT,
    user: b(lo & PTE_USER),
    rdonly: b(lo & PTE_RDONLY),
    shareability: (lo & PTE_SHARED) >>> PTE_SHARED_SHIFT,
    young: b(lo & PTE_AF),
    gp: b(hi & PTE_HI_GP),
    write: b(hi & PTE_HI_WRITE),
    cont: b(hi & PTE_HI_CONT),
    pxn: b(hi & PTE_HI_PXN),
    uxn: b(hi & PTE_HI_UXN),
    swDirty: b(hi & PTE_HI_DIRTY),
    special: b(hi & PTE_HI_SPECIAL),
    uffdWp: b(hi & PTE_HI_UFFD_WP),
  };
}

function decodeSoftleaf(lo: number, hi: number): PteValue {
  if (!softleafLayoutOk(lo, hi)) reject(lo, hi, 'sets bits the swap-PTE layout does not define');
  const flags: SwpFlags = { swpExclusive: b(lo & PTE_SWP_EXCLUSIVE), swpUffdWp: b(lo & PTE_SWP_UFFD_WP) };
  const type = (lo >>> 6) & 31;
  const pfn = ptePfn(lo, hi);
  if (type < MAX_SWAPFILES) return { kind: 'swap', type, offset: softleafOffset(lo, hi), ...flags };
  switch (type) {
    case SWP_HWPOISON:
      return { kind: 'hwpoison', pfn, ...flags };
    case SWP_MIGRATION_READ:
    case SWP_MIGRATION_READ_EXCLUSIVE:
    case SWP_MIGRATION_WRITE: {
      const access: MigrationAccess = type === SWP_MIGRATION_READ ? 'read' : type === SWP_MIGRATION_WRITE ? 'write' : 'readExclusive';
      return { kind: 'migration', access, pfn, young: softleafMigrationYoung(lo, hi), dirty: softleafMigrationDirty(lo, hi), ...flags };
    }
    case SWP_DEVICE_WRITE:
    case SWP_DEVICE_READ:
      return { kind: 'devicePrivate', write: type === SWP_DEVICE_WRITE, pfn, ...flags };
    case SWP_DEVICE_EXCLUSIVE:
      return { kind: 'deviceExclusive', pfn, ...flags };
    default: {
      const m = pteMarkerBits(lo, hi);
      if (type !== SWP_PTE_MARKER) reject(lo, hi, `has unknown softleaf type ${type}`);
      return {
        kind: 'marker',
        markerUffdWp: b(m & PTE_MARKER_UFFD_WP),
        poisoned: b(m & PTE_MARKER_POISONED),
        guard: b(m & PTE_MARKER_GUARD),
        ...flags,
      };
    }
  }
}

/** Decode a raw L3 entry into the tagged union (`softleaf_from_pte` + present bits). Cold path. */
export function decodePte(lo: number, hi: number): PteValue {
  lo >>>= 0;
  hi >>>= 0;
  if ((lo | hi) === 0) return { kind: 'none' };
  if (ptePresent(lo, hi)) return decodePresent(lo, hi);
  return decodeSoftleaf(lo, hi);
}

function badValue(what: string, v: unknown): never {
  throw new FoliolabError('EINVAL', `encodePte: ${what}`, { value: v });
}

function checkField(ok: boolean, what: string, v: unknown): void {
  if (!ok) badValue(what, v);
}

function isPfn(pfn: unknown): boolean {
  return Number.isInteger(pfn) && (pfn as number) >= 0 && (pfn as number) < PFN_LIMIT;
}

function encodePresent(u: PresentPte, out: PteBits): void {
  checkField(isPfn(u.pfn), `pfn ${String(u.pfn)} is not a 36-bit PFN`, u);
  checkField(Number.isInteger(u.attrIndx) && u.attrIndx >= 0 && u.attrIndx <= 7, 'attrIndx must be 0..7', u);
  checkField(Number.isInteger(u.shareability) && u.shareability >= 0 && u.shareability <= 3, 'shareability must be 0..3', u);
  checkField(u.valid || u.ng, 'a present-invalid entry needs ng (bit 11 is PRESENT_INVALID)', u);
  out.lo = 0;
  out.hi = 0;
  pteSetPfn(out, u.pfn);
  let lo = out.lo | PTE_TYPE_PAGE | (u.attrIndx << PTE_ATTRINDX_SHIFT) | (u.shareability << PTE_SHARED_SHIFT);
  if (u.valid) lo |= PTE_VALID;
  if (u.ng) lo |= PTE_NG;
  if (u.user) lo |= PTE_USER;
  if (u.rdonly) lo |= PTE_RDONLY;
  if (u.young) lo |= PTE_AF;
  let hi = out.hi;
  if (u.gp) hi |= PTE_HI_GP;
  if (u.write) hi |= PTE_HI_WRITE;
  if (u.cont) hi |= PTE_HI_CONT;
  if (u.pxn) hi |= PTE_HI_PXN;
  if (u.uxn) hi |= PTE_HI_UXN;
  if (u.swDirty) hi |= PTE_HI_DIRTY;
  if (u.special) hi |= PTE_HI_SPECIAL;
  if (u.uffdWp) hi |= PTE_HI_UFFD_WP;
  out.lo = lo >>> 0;
  out.hi = hi >>> 0;
}

function encodeSoftleaf(u: Exclude<PteValue, NonePte | PresentPte>, out: PteBits): void {
  switch (u.kind) {
    case 'swap':
      mkSwapPte(out, u.type, u.offset, u.swpExclusive, u.swpUffdWp);
      return;
    case 'migration':
      mkMigrationPte(out, u.access, u.pfn, u.young, u.dirty);
      break;
    case 'devicePrivate':
      mkDevicePrivatePte(out, u.pfn, u.write);
      break;
    case 'deviceExclusive':
      mkDeviceExclusivePte(out, u.pfn);
      break;
    case 'hwpoison':
      mkHwpoisonPte(out, u.pfn);
      break;
    case 'marker':
      mkMarkerPte(out, (u.markerUffdWp ? PTE_MARKER_UFFD_WP : 0) | (u.poisoned ? PTE_MARKER_POISONED : 0) | (u.guard ? PTE_MARKER_GUARD : 0));
      break;
  }
  if (u.swpExclusive) out.lo = (out.lo | PTE_SWP_EXCLUSIVE) >>> 0;
  if (u.swpUffdWp) out.lo = (out.lo | PTE_SWP_UFFD_WP) >>> 0;
}

/** Encode the tagged union into raw halves (allocates `out` if not given). Cold path. */
export function encodePte(u: PteValue, out: PteBits = pteBits()): PteBits {
  switch (u.kind) {
    case 'none':
      out.lo = 0;
      out.hi = 0;
      return out;
    case 'present':
      encodePresent(u, out);
      return out;
    default:
      encodeSoftleaf(u, out);
      return out;
  }
}
