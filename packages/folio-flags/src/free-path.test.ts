import { FoliolabError } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FLAG,
  Memmap,
  checkMemmap,
  folioPutRefs,
  folioTestFlag,
  folioTestFlagUnchecked,
  folioTestSwapcache,
  folioTestSwapcacheUnchecked,
  type Folio,
} from './index.js';

/*
 * freeFolio's single-pass flag reset and paired `_mapcount` check, and the
 * unchecked flag tests, against the plain per-page definitions (spec §1.1
 * "free": every page's flags cleared except PG_hwpoison, poisoned pages
 * offline; a folio with any page still mapped is refused, naming the first).
 */

describe('freeFolio (per-page definition)', () => {
  it('random orders, hwpoisoned and mapped pages: same flags, offline count and error as page by page', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9 }),
        fc.array(fc.nat(511), { maxLength: 4 }),
        fc.option(fc.tuple(fc.nat(511), fc.integer({ min: -2, max: 5 }))),
        fc.integer({ min: 0, max: 0xffff }),
        (order, poison, mapped, junk) => {
          const mm = new Memmap({ nrPages: 1024, perPageMapcount: true });
          mm.allocFolio(0); // keep the folio off PFN 0
          const f = mm.allocFolio(order)!;
          folioPutRefs(f, 1);
          const flags = mm.flags;
          const hw = FLAG.hwpoison.mask;
          // Per-page flags other than the head's checked ones, and some poisoned pages.
          for (let p = f.head + 1; p < f.head + f.nr; p++) flags[p] = (flags[p]! | (junk & ~0xff & 0xffff)) >>> 0;
          const poisoned = new Set(poison.map((i) => f.head + (i % f.nr)));
          for (const p of poisoned) flags[p] = flags[p]! | hw;
          let firstMapped = -1;
          if (mapped !== null && mapped[1] !== -1) {
            const p = f.head + (mapped[0] % f.nr);
            mm.mapcount![p] = mapped[1];
            firstMapped = p;
          }
          const before = flags.slice();
          const offlineBefore = mm.nrOfflinePages;
          if (firstMapped >= 0) {
            let err: unknown = null;
            try {
              mm.freeFolio(f);
            } catch (e) {
              err = e;
            }
            expect(err).toBeInstanceOf(FoliolabError);
            expect((err as FoliolabError).code).toBe('EBUSY');
            expect((err as Error).message).toBe(
              `freeFolio: folio ${f.head} (order ${order}) has page ${firstMapped} still mapped (_mapcount ${mapped![1]})`,
            );
            expect(flags).toEqual(before);
            return;
          }
          mm.freeFolio(f);
          for (let p = f.head; p < f.head + f.nr; p++) {
            // The buddy may mark a healthy freed block's head; only kernel bits are compared.
            expect(flags[p]! & 0xffffff).toBe(poisoned.has(p) ? hw : 0);
          }
          expect(mm.nrOfflinePages - offlineBefore).toBe(poisoned.size);
          expect(checkMemmap(mm)).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('unchecked flag tests ≡ checked ones on live folios', () => {
  it('folioTestFlagUnchecked and folioTestSwapcacheUnchecked: same answers and FLAG_LOAD counts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.nat(0xfffff), fc.nat(0xfffff), (order, w0, w1) => {
        const mm = new Memmap({ nrPages: 1024 });
        const f: Folio = mm.allocFolio(order)!;
        mm.flags[f.head] = (mm.flags[f.head]! | (w0 & ~(1 << 6))) >>> 0; // keep PG_head as allocated
        mm.flags[f.head + 1] = (mm.flags[f.head + 1]! | (w1 & ~0xff)) >>> 0; // keep the order
        for (const flag of Object.values(FLAG)) {
          if (flag.placement === 'any') continue;
          const c0 = mm.ledger.snapshot().FLAG_LOAD;
          const a = folioTestFlag(f, flag);
          const c1 = mm.ledger.snapshot().FLAG_LOAD;
          const b = folioTestFlagUnchecked(f, flag);
          const c2 = mm.ledger.snapshot().FLAG_LOAD;
          expect(b).toBe(a);
          expect(c2 - c1).toBe(c1 - c0);
        }
        const c0 = mm.ledger.snapshot().FLAG_LOAD;
        const a = folioTestSwapcache(f);
        const c1 = mm.ledger.snapshot().FLAG_LOAD;
        const b = folioTestSwapcacheUnchecked(f);
        const c2 = mm.ledger.snapshot().FLAG_LOAD;
        expect(b).toBe(a);
        expect(c2 - c1).toBe(c1 - c0);
      }),
      { numRuns: 200 },
    );
  });
});
