import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_SWAPFILES,
  PTE_MARKER_GUARD,
  PTE_MARKER_POISONED,
  PTE_MARKER_UFFD_WP,
  SWP_DEVICE_EXCLUSIVE,
  SWP_HWPOISON,
  SWP_MIGRATION_WRITE,
  SWP_PTE_MARKER,
  decodePte,
  encodePte,
  makeUserPte,
  mkMarkerPte,
  mkMigrationPte,
  mkSwapPte,
  pteBits,
  ptePfn,
  ptePresent,
  pteToBigInt,
  softleafHasPfn,
  softleafIsMarker,
  softleafIsSwap,
  softleafOffset,
  softleafType,
  type PteValue,
} from './index.js';

const bool = fc.boolean();
const pfn = fc.integer({ min: 0, max: 2 ** 36 - 1 });
const flags = { swpExclusive: bool, swpUffdWp: bool };

const presentArb: fc.Arbitrary<PteValue> = fc
  .record({
    pfn,
    valid: bool,
    ng: bool,
    attrIndx: fc.integer({ min: 0, max: 7 }),
    user: bool,
    rdonly: bool,
    shareability: fc.integer({ min: 0, max: 3 }),
    young: bool,
    gp: bool,
    write: bool,
    cont: bool,
    pxn: bool,
    uxn: bool,
    swDirty: bool,
    special: bool,
    uffdWp: bool,
  })
  .map((r) => ({ kind: 'present' as const, ...r, ng: r.valid ? r.ng : true }));

const pteValueArb: fc.Arbitrary<PteValue> = fc.oneof(
  fc.constant<PteValue>({ kind: 'none' }),
  presentArb,
  fc
    .record({ type: fc.integer({ min: 0, max: MAX_SWAPFILES - 1 }), offset: fc.integer({ min: 0, max: 2 ** 50 - 1 }), ...flags })
    .filter((r) => r.type !== 0 || r.offset !== 0 || r.swpExclusive || r.swpUffdWp)
    .map((r) => ({ kind: 'swap' as const, ...r })),
  fc
    .record({ access: fc.constantFrom('read' as const, 'readExclusive' as const, 'write' as const), pfn, young: bool, dirty: bool, ...flags })
    .map((r) => ({ kind: 'migration' as const, ...r })),
  fc.record({ write: bool, pfn, ...flags }).map((r) => ({ kind: 'devicePrivate' as const, ...r })),
  fc.record({ pfn, ...flags }).map((r) => ({ kind: 'deviceExclusive' as const, ...r })),
  fc.record({ pfn, ...flags }).map((r) => ({ kind: 'hwpoison' as const, ...r })),
  fc.record({ markerUffdWp: bool, poisoned: bool, guard: bool, ...flags }).map((r) => ({ kind: 'marker' as const, ...r })),
);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Raw words, biased towards structured values that decode. */
const rawArb = fc.oneof(
  fc.tuple(u32, u32),
  fc.tuple(u32, u32).map(([lo, hi]) => [(lo & ~0x823) >>> 0, hi & 0x3fffffff] as [number, number]), // non-present layout
  fc.tuple(u32, u32).map(([lo, hi]) => [((lo & ~0x20) | 0x3) >>> 0, (hi & 0x05fcffff) >>> 0] as [number, number]), // valid page
);

describe('§3 / §9.9 encodings round-trip exactly', () => {
  it('union → raw → union (fast-check)', () => {
    fc.assert(
      fc.property(pteValueArb, (u) => {
        const p = encodePte(u);
        expect(decodePte(p.lo, p.hi)).toEqual(u);
      }),
      { numRuns: 300 },
    );
  });

  it('raw that decodes → union → the same raw (fast-check)', () => {
    let decoded = 0;
    fc.assert(
      fc.property(rawArb, ([lo, hi]) => {
        let u: PteValue;
        try {
          u = decodePte(lo, hi);
        } catch {
          return;
        }
        decoded++;
        const p = encodePte(u);
        expect(pteToBigInt(p.lo, p.hi)).toBe(pteToBigInt(lo, hi));
      }),
      { numRuns: 300 },
    );
    expect(decoded).toBeGreaterThan(100);
  });

  it('a swap entry is never none; present-invalid entries are not softleaf (§9.9)', () => {
    fc.assert(
      fc.property(pteValueArb, (u) => {
        const p = encodePte(u);
        if (u.kind !== 'none') expect(p.lo | p.hi).not.toBe(0);
        if (u.kind === 'present') expect(softleafType(p.lo, p.hi)).toBe(-1);
      }),
      { numRuns: 200 },
    );
    expect(() => mkSwapPte(pteBits(), 0, 0)).toThrow(/pte_none/);
    const pn = makeUserPte(9, { protNone: true });
    expect(ptePresent(pn.lo, pn.hi)).toBe(true);
    expect(softleafType(pn.lo, pn.hi)).toBe(-1);
  });
});

describe('§3 swap-PTE layout', () => {
  it('exclusive bit 2, uffd-wp bit 3, type bits 6–10, offset bits 12–61', () => {
    const p = mkSwapPte(pteBits(), 23, 2 ** 50 - 1, true, true);
    expect(pteToBigInt(p.lo, p.hi)).toBe((1n << 2n) | (1n << 3n) | (23n << 6n) | (((1n << 50n) - 1n) << 12n));
    expect(softleafIsSwap(p.lo, p.hi)).toBe(true);
    expect(softleafOffset(p.lo, p.hi)).toBe(2 ** 50 - 1);
  });

  it('types 24–31: hwpoison, migration R/RE/W, device-private W/R, device-exclusive, marker', () => {
    const kinds = [24, 25, 26, 27, 28, 29, 30, 31].map((t) => decodePte(t << 6, 0).kind);
    expect(kinds).toEqual(['hwpoison', 'migration', 'migration', 'migration', 'devicePrivate', 'devicePrivate', 'deviceExclusive', 'marker']);
    expect(SWP_HWPOISON).toBe(24);
    expect(SWP_MIGRATION_WRITE).toBe(27);
    expect(SWP_DEVICE_EXCLUSIVE).toBe(30);
    expect(SWP_PTE_MARKER).toBe(31);
  });

  it('PFN-bearing types keep the PFN in offset bits 0–35; migration young/dirty at offset bits 36/37 (7.2.13 include/linux/swapops.h, 48-bit PA)', () => {
    const p = mkMigrationPte(pteBits(), 'write', 0xabcdef123, true, true);
    expect(softleafHasPfn(p.lo, p.hi)).toBe(true);
    expect(ptePfn(p.lo, p.hi)).toBe(0xabcdef123);
    const offset = (pteToBigInt(p.lo, p.hi) >> 12n) & ((1n << 50n) - 1n);
    expect(offset).toBe(0xabcdef123n | (1n << 36n) | (1n << 37n));
  });

  it('marker bits: UFFD_WP bit 0, POISONED bit 1, GUARD bit 2 of the offset', () => {
    const p = mkMarkerPte(pteBits(), PTE_MARKER_UFFD_WP | PTE_MARKER_GUARD);
    expect(softleafIsMarker(p.lo, p.hi)).toBe(true);
    expect(softleafOffset(p.lo, p.hi)).toBe(5);
    expect(decodePte(p.lo, p.hi)).toMatchObject({ kind: 'marker', markerUffdWp: true, poisoned: false, guard: true });
    expect(PTE_MARKER_POISONED).toBe(2);
  });

  it('rejects raw values with bits the layouts do not define', () => {
    expect(() => decodePte(0x3 | (1 << 5), 0)).toThrow(/does not define/); // present with bit 5
    expect(() => decodePte(0x1, 0)).toThrow(/page type/); // valid but bit 1 clear
    expect(() => decodePte(0x10, 0)).toThrow(/swap-PTE layout/); // non-present with bit 4
    expect(() => decodePte(SWP_PTE_MARKER << 6, 1)).toThrow(); // marker with offset bits beyond 2
  });
});
