import { FoliolabError } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  F_DEFERRED_NEXT,
  F_DEFERRED_PREV,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_PINCOUNT,
  MAX_FOLIO_ORDER,
  Memmap,
  checkMemmap,
  fileMapping,
  folioPutRefs,
  folioRefAdd,
  folioRefCount,
  folioSetLru,
  folioTryGet,
  pageOf,
  setPageHWPoison,
  folioSetHasHwpoisoned,
  type Folio,
} from './index.js';

/** Assert `fn` throws a FoliolabError with `code` whose message contains `text`. */
function throwsFoliolab(fn: () => unknown, code: string, text?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FoliolabError);
  expect((err as FoliolabError).code).toBe(code);
  if (text !== undefined) expect((err as Error).message).toContain(text);
}

/** Drop the allocation reference and free. */
function release(mm: Memmap, f: Folio): void {
  folioPutRefs(f, folioRefCount(f));
  mm.freeFolio(f);
}

describe('Memmap construction', () => {
  it('accepts positive multiples of 512 and rejects everything else with the value in the message', () => {
    expect(new Memmap({ nrPages: 512 }).nrPages).toBe(512);
    for (const n of [0, -512, 511, 513, 1.5 * 512, Number.NaN, 2 ** 27]) {
      throwsFoliolab(() => new Memmap({ nrPages: n }), 'EINVAL', String(n));
    }
  });

  it('optional per-page arrays exist only when asked for; mapcount starts at −1', () => {
    const plain = new Memmap({ nrPages: 512 });
    expect(plain.mapcount).toBeNull();
    expect(plain.token).toBeNull();
    const full = new Memmap({ nrPages: 512, perPageMapcount: true, dataTokens: true });
    expect(full.mapcount!.every((v) => v === -1)).toBe(true);
    expect(full.token!.length).toBe(512);
  });
});

describe('buddy allocator (orders 0..9)', () => {
  it('hands out every order naturally aligned, lowest PFN first, until exhausted (then null)', () => {
    for (let order = 0; order <= MAX_FOLIO_ORDER; order++) {
      const mm = new Memmap({ nrPages: 2048 });
      const heads: number[] = [];
      for (;;) {
        const f = mm.allocFolio(order);
        if (f === null) break;
        expect(f.order).toBe(order);
        expect(f.nr).toBe(1 << order);
        heads.push(f.head);
      }
      expect(heads).toEqual(Array.from({ length: 2048 >> order }, (_, i) => i << order));
      expect(mm.nrFreePages).toBe(0);
      expect(checkMemmap(mm)).toEqual([]);
    }
  });

  it('splits a max-order block and merges it back on free', () => {
    const mm = new Memmap({ nrPages: 1024 });
    const small = mm.allocFolio(0)!;
    expect(small.head).toBe(0);
    const big = mm.allocFolio(9)!;
    expect(big.head).toBe(512); // block 0 was split
    expect(mm.allocFolio(9)).toBeNull();
    const next = mm.allocFolio(3)!;
    expect(next.head).toBe(8); // 1 (order 0), 2..3 (order 1), 4..7 (order 2) are free; 8..15 is order 3
    release(mm, next);
    release(mm, small);
    expect(mm.nrFreePages).toBe(512);
    expect(mm.allocFolio(9)!.head).toBe(0); // fully merged again
    expect(checkMemmap(mm)).toEqual([]);
  });

  it('reuses a freed block at once (LIFO)', () => {
    const mm = new Memmap({ nrPages: 512 });
    const a = mm.allocFolio(2)!;
    const b = mm.allocFolio(2)!;
    expect([a.head, b.head]).toEqual([0, 4]);
    release(mm, a);
    expect(mm.allocFolio(2)!.head).toBe(0);
  });

  it('random alloc/free sequences keep the memmap consistent, never overlap, and free everything back to order 9', () => {
    const nrPages = 2048;
    const op = fc.oneof(
      fc.record({ alloc: fc.integer({ min: 0, max: MAX_FOLIO_ORDER }) }),
      fc.record({ free: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const mm = new Memmap({ nrPages, perPageMapcount: true });
        const owner = new Int32Array(nrPages).fill(-1);
        const live: Folio[] = [];
        for (const o of ops) {
          if ('alloc' in o) {
            const f = mm.allocFolio(o.alloc);
            if (f === null) {
              // null only when no free block of that order or larger exists (internal counts, on purpose)
              for (let k = o.alloc; k <= MAX_FOLIO_ORDER; k++) expect(mm.buddy.nrFree[k]).toBe(0);
              continue;
            }
            expect(f.head % f.nr).toBe(0);
            for (let p = f.head; p < f.head + f.nr; p++) {
              expect(owner[p]).toBe(-1);
              owner[p] = f.head;
            }
            live.push(f);
          } else if (live.length > 0) {
            const [f] = live.splice(o.free % live.length, 1);
            owner.fill(-1, f!.head, f!.head + f!.nr);
            release(mm, f!);
          }
        }
        expect(checkMemmap(mm)).toEqual([]);
        for (let p = 0; p < nrPages; p += 37) {
          expect(mm.folioOf(p)?.head ?? -1).toBe(owner[p]);
        }
        for (const f of live) release(mm, f);
        expect(mm.nrFreePages).toBe(nrPages);
        const heads = Array.from({ length: nrPages / 512 }, () => mm.allocFolio(9)!.head);
        expect(heads.sort((a, b) => a - b)).toEqual([0, 512, 1024, 1536]);
        expect(mm.allocFolio(0)).toBeNull();
      }),
      { numRuns: 150 },
    );
  });

  it('lazy deletion stays bounded: stale stack entries are compacted and never handed out twice (internal, on purpose)', () => {
    const mm = new Memmap({ nrPages: 512 });
    for (let round = 0; round < 3; round++) {
      const fs = Array.from({ length: 512 }, () => mm.allocFolio(0)!);
      expect(new Set(fs.map((f) => f.head)).size).toBe(512);
      expect(mm.allocFolio(0)).toBeNull();
      for (const f of fs) release(mm, f); // ascending: every free merges, leaving stale entries behind
      expect(checkMemmap(mm)).toEqual([]);
      expect(mm.nrFreePages).toBe(512);
      expect(mm.buddy.bytes).toBeLessThan(2048);
    }
  });

  it('an allocation that fails for lack of a large block still succeeds at smaller orders', () => {
    const mm = new Memmap({ nrPages: 512 });
    const fs = Array.from({ length: 512 }, () => mm.allocFolio(0)!);
    for (let i = 0; i < 512; i += 2) release(mm, fs[i]!); // free every other page: no order-1 block
    expect(mm.nrFreePages).toBe(256);
    expect(mm.allocFolio(1)).toBeNull();
    expect(mm.allocFolio(0)!.head).toBe(510); // the last freed, LIFO
  });

  it('allocFolio initialises what prep_compound_page does (§1.1, §2.1)', () => {
    const mm = new Memmap({ nrPages: 512, perPageMapcount: true });
    const f = mm.allocFolio(4)!;
    expect(folioRefCount(f)).toBe(1);
    expect(mm.flags[f.head]! & (1 << 6)).not.toBe(0); // PG_head
    expect(mm.flags[f.head + 1]! & 0xff).toBe(4); // order in page[1]
    expect(f.fa[f.fb + F_LARGE_MAPCOUNT]).toBe(-1);
    expect([...mm.mapcount!.subarray(f.head, f.head + 16)].every((v) => v === -1)).toBe(true);
    const o0 = mm.allocFolio(0)!;
    expect(mm.flags[o0.head]! & (1 << 6)).toBe(0); // no PG_head on an order-0 folio
  });

  it('rejects bad orders with the value (ERANGE)', () => {
    const mm = new Memmap({ nrPages: 512 });
    for (const o of [-1, 10, 1.5, Number.NaN]) throwsFoliolab(() => mm.allocFolio(o), 'ERANGE', String(o));
  });
});

describe('folio lookup', () => {
  it('folioOf/folioHead/folioNrPages find the folio from any of its pages (tails store no head pointer)', () => {
    const mm = new Memmap({ nrPages: 1024 });
    const fs = [mm.allocFolio(0)!, mm.allocFolio(3)!, mm.allocFolio(9)!, mm.allocFolio(1)!];
    for (const f of fs) {
      for (let i = 0; i < f.nr; i++) {
        const p = pageOf(f, i);
        expect(mm.folioOf(p)!.head).toBe(f.head);
        expect(mm.folioHead(p)).toBe(f.head);
        expect(mm.folioNrPages(p)).toBe(f.nr);
      }
    }
  });

  it('folioAt wants a head: tails, misaligned and free PFNs throw EINVAL naming the folio', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(3)!;
    expect(mm.folioAt(f.head).order).toBe(3);
    throwsFoliolab(() => mm.folioAt(f.head + 3), 'EINVAL', 'pfn 3 is not a folio head: it is page 3 of folio 0 (order 3)');
    throwsFoliolab(() => mm.folioAt(9), 'EINVAL', 'is not in an allocated folio');
    throwsFoliolab(() => mm.folioAt(600), 'ERANGE', '600');
  });

  it('a free page is its own one-page "folio" for folioHead/folioNrPages (page_folio of a non-compound page), null for folioOf', () => {
    const mm = new Memmap({ nrPages: 512 });
    mm.allocFolio(2);
    expect(mm.folioOf(100)).toBeNull();
    expect(mm.folioHead(100)).toBe(100);
    expect(mm.folioNrPages(100)).toBe(1);
  });

  it('out-of-range PFNs and page indices throw ERANGE with the values', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(2)!;
    for (const p of [-1, 512, 3.5]) {
      throwsFoliolab(() => mm.folioOf(p), 'ERANGE', String(p));
      throwsFoliolab(() => mm.folioHead(p), 'ERANGE', String(p));
      throwsFoliolab(() => mm.folioNrPages(p), 'ERANGE', String(p));
    }
    throwsFoliolab(() => pageOf(f, 4), 'ERANGE', '4');
    expect(pageOf(f, 3)).toBe(f.head + 3);
  });
});

describe('freeFolio', () => {
  it('requires refcount 0 and changes nothing when it refuses', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(4)!;
    const before = mm.flags.slice();
    throwsFoliolab(() => mm.freeFolio(f), 'EBUSY', 'refcount 1');
    expect(mm.flags).toEqual(before);
    expect(mm.nrFolios).toBe(1);
  });

  it('refuses mapped, pinned, deferred-listed, LRU and file-mapped folios', () => {
    const mm = new Memmap({ nrPages: 512, perPageMapcount: true });
    const cases: [string, (f: Folio) => void, string][] = [
      ['mapped (large mapcount)', (f) => (f.fa[f.fb + F_LARGE_MAPCOUNT] = 0), 'mapped'],
      ['mapped (page _mapcount)', (f) => (mm.mapcount![f.head + f.nr - 1] = 0), 'still mapped'],
      ['pinned', (f) => (f.fa[f.fb + F_PINCOUNT] = 1), 'pincount'],
      ['on the deferred list', (f) => ((f.fa[f.fb + F_DEFERRED_PREV] = f.head), (f.fa[f.fb + F_DEFERRED_NEXT] = f.head)), 'deferred'],
      ['on the LRU', (f) => folioSetLru(f), 'PAGE_FLAGS_CHECK_AT_FREE'],
      ['file mapped', (f) => (f.fa[f.fb + F_MAPPING] = fileMapping(7)), 'file mapping'],
    ];
    for (const [, spoil, msg] of cases) {
      for (const order of [0, 2, 4]) {
        const f = mm.allocFolio(order)!;
        folioPutRefs(f, 1);
        spoil(f);
        expect(() => mm.freeFolio(f)).toThrow(msg);
        expect(mm.folioIsLive(f)).toBe(true);
      }
    }
  });

  it('a freed handle is stale: freeing it again or using it throws', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(1)!;
    release(mm, f);
    expect(mm.folioIsLive(f)).toBe(false);
    throwsFoliolab(() => mm.freeFolio(f), 'EINVAL', 'not an allocated folio');
    expect(() => folioRefAdd(f, 1)).toThrow('not an allocated folio');
  });

  it('takes hwpoisoned pages offline and frees the healthy ones', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(2)!;
    setPageHWPoison(mm, f.head + 1);
    folioSetHasHwpoisoned(f);
    release(mm, f);
    expect(mm.nrOfflinePages).toBe(1);
    expect(mm.nrFreePages).toBe(511);
    expect(mm.folioOf(1)).toBeNull();
    expect(checkMemmap(mm)).toEqual([]);
    expect(mm.allocFolio(9)).toBeNull(); // block 0 can never merge back
  });
});

describe('refcount (aux[head])', () => {
  it('ref add/put/try_get each charge one ATOMIC_REF; put reports reaching zero; underflow throws', () => {
    const mm = new Memmap({ nrPages: 512 });
    const f = mm.allocFolio(4)!;
    folioRefAdd(f, 16);
    expect(folioRefCount(f)).toBe(17);
    expect(folioPutRefs(f, 16)).toBe(false);
    expect(folioTryGet(f)).toBe(true);
    expect(folioPutRefs(f, 2)).toBe(true);
    expect(folioTryGet(f)).toBe(false);
    throwsFoliolab(() => folioPutRefs(f, 1), 'EINVAL', 'refcount 0');
    expect(mm.ledger.snapshot().ATOMIC_REF).toBe(5);
  });
});

describe('memory per page', () => {
  it('is 8 B/page (flags + aux) with large folios; order 0..3 folios add spill rows', () => {
    const mm = new Memmap({ nrPages: 65536 });
    expect(mm.memmapBytesPerPage()).toBe(8);
    while (mm.allocFolio(4) !== null);
    expect(mm.memmapBytesPerPage()).toBe(8); // 64K folios keep their fields in their tails
    expect(mm.memmapBytes().spill).toBe(0);
    const small = new Memmap({ nrPages: 512 });
    small.allocFolio(0);
    expect(small.memmapBytes().spill).toBeGreaterThan(0);
    expect(small.memmapBytesPerPage()).toBeGreaterThan(8);
    const opt = new Memmap({ nrPages: 512, perPageMapcount: true, dataTokens: true }).memmapBytes();
    expect(opt.mapcount + opt.token).toBe(512 * 6); // Int16 _mapcount (2 B) + Uint32 token (4 B)
  });
});
