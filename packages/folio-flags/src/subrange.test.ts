import { FoliolabError } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_FOLIO_ORDER, Memmap, folioSubrange, folioSubrangeAll, type Folio, type FolioSubrange } from './index.js';

/** One folio of every order 0..9 in a 1024-page memmap. */
const mm = new Memmap({ nrPages: 1024 });
const folios: Folio[] = [];
for (let order = MAX_FOLIO_ORDER; order >= 0; order--) folios.push(mm.allocFolio(order)!);
const anyFolio = fc.constantFrom(...folios);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FoliolabError);
    return (e as FoliolabError).code;
  }
  return undefined;
}

describe('FolioSubrange (seed 000: a checked {folio, first page, nr})', () => {
  it('every valid triple constructs, with the first PFN', () => {
    const valid = anyFolio.chain((f) =>
      fc.integer({ min: 0, max: f.nr - 1 }).chain((first) => fc.tuple(fc.constant(f), fc.constant(first), fc.integer({ min: 1, max: f.nr - first }))),
    );
    fc.assert(
      fc.property(valid, ([f, first, nr]) => {
        const r = folioSubrange(f, first, nr);
        // field by field: a deep match would walk the whole memmap behind the folio handle
        expect(r.folio).toBe(f);
        expect([r.firstPage, r.nr, r.firstPfn]).toEqual([first, nr, f.head + first]);
        expect(Object.isFrozen(r)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('every invalid triple throws: nr ≤ 0, non-integers, before or past the folio', () => {
    const badNumber = fc.oneof(
      fc.double({ noInteger: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    );
    const invalid = anyFolio.chain((f) =>
      fc.oneof(
        fc.tuple(fc.constant(f), fc.integer({ min: 0, max: f.nr - 1 }), fc.integer({ min: -1000, max: 0 })), // nr ≤ 0
        fc.tuple(fc.constant(f), fc.integer({ min: -1000, max: -1 }), fc.integer({ min: 1, max: 1000 })), // before
        fc.tuple(fc.constant(f), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 2000 })).filter(([, a, n]) => a + n > f.nr), // past
        fc.tuple(fc.constant(f), badNumber, fc.integer({ min: 1, max: 4 })),
        fc.tuple(fc.constant(f), fc.integer({ min: 0, max: 4 }), badNumber),
      ),
    );
    fc.assert(
      fc.property(invalid, ([f, first, nr]) => {
        expect(['EINVAL', 'ERANGE']).toContain(codeOf(() => folioSubrange(f, first, nr)));
      }),
      { numRuns: 300 },
    );
  });

  it('names the values in its errors and covers the exact boundary', () => {
    const f = folios.find((x) => x.order === 4)!;
    expect(() => folioSubrange(f, 0, 0)).toThrow('nr 0 must be at least 1');
    expect(() => folioSubrange(f, 10, 7)).toThrow('pages 10..16 are outside folio');
    expect(folioSubrange(f, 10, 6).nr).toBe(6);
    expect(folioSubrangeAll(f)).toMatchObject({ firstPage: 0, nr: 16 });
  });

  it('rejects a freed folio', () => {
    const m = new Memmap({ nrPages: 512 });
    const f = m.allocFolio(2)!;
    m.aux[f.head] = 0;
    m.freeFolio(f);
    expect(codeOf(() => folioSubrange(f, 0, 1))).toBe('EINVAL');
  });

  it('is branded: a plain object literal is not a FolioSubrange', () => {
    const f = folios[0]!;
    // @ts-expect-error a FolioSubrange can only come from folioSubrange()
    const forged: FolioSubrange = { folio: f, firstPage: 0, nr: 1, firstPfn: f.head };
    expect(forged.nr).toBe(1);
  });
});
