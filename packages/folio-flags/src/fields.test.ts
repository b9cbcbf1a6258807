import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  F_DEFERRED_NEXT,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_MM_ID0,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT0,
  F_NR_PAGES_MAPPED,
  F_OWNER,
  F_SPARE1,
  FIELDS_IN_TAILS_MIN_ORDER,
  FOLIO_FIELD_INIT,
  FOLIO_FIELD_NAMES,
  MM_IDS_LOCK_MASK,
  MM_IDS_SHARED_MASK,
  MM_ID_MASK,
  Memmap,
  NR_FOLIO_FIELD_SLOTS,
  anonMapping,
  fileMapping,
  folioPutRefs,
  folioRefCount,
  folioTestAnon,
  mappingId,
  mappingIsAnon,
  type Folio,
} from './index.js';

/** Every field slot 1..15 of every folio, then every refcount, then the flags words. */
function snapshot(mm: Memmap, folios: readonly Folio[]): number[] {
  const out: number[] = [];
  for (const f of folios) for (let F = 1; F < NR_FOLIO_FIELD_SLOTS; F++) out.push(f.fa[f.fb + F]!);
  for (const f of folios) out.push(folioRefCount(f));
  out.push(...mm.flags);
  return out;
}

/** A 2048-page memmap holding one folio of every order 0..9 plus a few more small ones. */
function mixedMemmap(): { mm: Memmap; folios: Folio[] } {
  const mm = new Memmap({ nrPages: 2048 });
  const folios: Folio[] = [];
  for (let order = 9; order >= 0; order--) folios.push(mm.allocFolio(order)!);
  for (const order of [0, 1, 2, 3, 0, 3]) folios.push(mm.allocFolio(order)!);
  return { mm, folios };
}

describe('head-only field overlay (struct folio over page[1..], spill rows for order 0..3)', () => {
  it('has one slot per kernel field, 15 of them after the owner slot', () => {
    expect(NR_FOLIO_FIELD_SLOTS).toBe(16);
    expect(FOLIO_FIELD_NAMES).toHaveLength(16);
    expect(new Set(FOLIO_FIELD_NAMES).size).toBe(16);
    expect(FIELDS_IN_TAILS_MIN_ORDER).toBe(4); // order 4 has exactly 15 tails
  });

  it('an order ≥ 4 folio keeps its fields in aux[head + F]; order 0..3 in a spill row owned by the head', () => {
    const { mm, folios } = mixedMemmap();
    for (const f of folios) {
      if (f.order >= FIELDS_IN_TAILS_MIN_ORDER) {
        expect(f.fa).toBe(mm.aux);
        expect(f.fb).toBe(f.head);
      } else {
        expect(f.fa).not.toBe(mm.aux);
        expect(f.fa[f.fb + F_OWNER]).toBe(f.head);
      }
      const again = mm.folioOf(f.head + f.nr - 1)!;
      expect(again.fa).toBe(f.fa);
      expect(again.fb).toBe(f.fb);
    }
    expect(mm.spillRows.size).toBe(folios.filter((f) => f.order < 4).length); // one entry per small folio
  });

  it('allocation resets every field as prep_compound_head() does (§2.1: counters stored minus one)', () => {
    const { folios } = mixedMemmap();
    for (const f of folios) {
      for (let F = 1; F < NR_FOLIO_FIELD_SLOTS; F++) expect(f.fa[f.fb + F]).toBe(FOLIO_FIELD_INIT[F]);
      expect(f.fa[f.fb + F_LARGE_MAPCOUNT]).toBe(-1);
      expect(f.fa[f.fb + F_ENTIRE_MAPCOUNT]).toBe(-1);
      expect(f.fa[f.fb + F_NR_PAGES_MAPPED]).toBe(0);
      expect(f.fa[f.fb + F_MM_ID_MAPCOUNT0]).toBe(-1);
      expect(f.fa[f.fb + F_DEFERRED_NEXT]).toBe(-1);
      expect(folioRefCount(f)).toBe(1);
    }
  });

  it('writing one field of folio A changes exactly that slot: no other field, refcount, flags word or folio (orders 0..9)', () => {
    const { mm, folios } = mixedMemmap();
    const base = snapshot(mm, folios);
    folios.forEach((a, ai) => {
      for (let F = 1; F < NR_FOLIO_FIELD_SLOTS; F++) {
        const old = a.fa[a.fb + F]!;
        a.fa[a.fb + F] = 0x5a5a0000 + F;
        const now = snapshot(mm, folios);
        const changed = now.flatMap((v, i) => (v !== base[i] ? [i] : []));
        expect(changed).toEqual([ai * 15 + (F - 1)]);
        a.fa[a.fb + F] = old;
      }
    });
  });

  it('fields survive unrelated allocations and frees (spill storage is never moved)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 }), (orders) => {
        const mm = new Memmap({ nrPages: 4096 });
        const live: { f: Folio; v: number }[] = [];
        orders.forEach((order, i) => {
          const f = mm.allocFolio(order);
          if (f === null) return;
          f.fa[f.fb + F_SPARE1] = 1000 + i;
          live.push({ f, v: 1000 + i });
          if (i % 3 === 2) {
            const { f: victim } = live.splice(i % live.length, 1)[0]!;
            folioPutRefs(victim, 1);
            mm.freeFolio(victim);
          }
        });
        for (const { f, v } of live) {
          expect(f.fa[f.fb + F_SPARE1]).toBe(v);
          expect(mm.folioOf(f.head)!.fa[mm.folioOf(f.head)!.fb + F_SPARE1]).toBe(v);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a freed and reallocated folio starts from fresh fields', () => {
    const mm = new Memmap({ nrPages: 512 });
    for (const order of [0, 4]) {
      const f = mm.allocFolio(order)!;
      f.fa[f.fb + F_MAPPING] = anonMapping(3);
      f.fa[f.fb + F_MM_ID0] = 5;
      folioPutRefs(f, 1);
      mm.freeFolio(f);
      const g = mm.allocFolio(order)!;
      expect(g.head).toBe(f.head);
      expect(g.fa[g.fb + F_MAPPING]).toBe(0);
      expect(g.fa[g.fb + F_MM_ID0]).toBe(0);
      folioPutRefs(g, 1);
      mm.freeFolio(g);
    }
  });
});

describe('field encodings', () => {
  it('_mm_ids: the lock bit is bit 31 of _mm_id[0], the shared bit bit 31 of _mm_id[1] (kernel bits 31 and 63)', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(4)!;
    f.fa[f.fb + F_MM_ID0] = 12345 | MM_IDS_LOCK_MASK;
    f.fa[f.fb + F_MM_ID1] = 777 | MM_IDS_SHARED_MASK;
    expect(f.fa[f.fb + F_MM_ID0]! & MM_ID_MASK).toBe(12345);
    expect(f.fa[f.fb + F_MM_ID1]! & MM_ID_MASK).toBe(777);
    expect((f.fa[f.fb + F_MM_ID0]! & MM_IDS_LOCK_MASK) !== 0).toBe(true);
    expect((f.fa[f.fb + F_MM_ID1]! & MM_IDS_SHARED_MASK) !== 0).toBe(true);
  });

  it('mapping words round-trip and carry the anon tag (PAGE_MAPPING_ANON)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: (1 << 29) - 1 }), (id) => {
        expect(mappingId(anonMapping(id))).toBe(id);
        expect(mappingIsAnon(anonMapping(id))).toBe(true);
        expect(mappingId(fileMapping(id))).toBe(id);
        expect(mappingIsAnon(fileMapping(id))).toBe(false);
      }),
      { numRuns: 200 },
    );
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(2)!;
    expect(folioTestAnon(f)).toBe(false);
    f.fa[f.fb + F_MAPPING] = anonMapping(9);
    expect(folioTestAnon(f)).toBe(true);
  });
});
