import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expandRuns, normalisePages, type RawPage } from './index.js';

const A = 0x4000_0000;
const P = 4096;

describe('normalisePages', () => {
  it('numbers folios by first appearance and folds a folio mapped in order into one run', () => {
    const pages: RawPage[] = [];
    for (let i = 0; i < 16; i++) pages.push({ slot: 0, addr: A + i * P, kind: 'present', head: 0x5000, idx: i, order: 4, mapcount: 1, exclusive: true, flags: ['anon'] });
    pages.push({ slot: 0, addr: A + 16 * P, kind: 'present', head: 0x100, idx: 0, order: 0, mapcount: 1, exclusive: true, flags: ['anon'] });
    for (let i = 0; i < 16; i++) pages.push({ slot: 1, addr: A + i * P, kind: 'present', head: 0x5000, idx: i, order: 4, mapcount: 1, exclusive: true, flags: ['anon'] });
    const runs = normalisePages(pages);
    expect(runs.get(0)).toEqual([
      { addr: '0x40000000', n: 16, kind: 'present', folio: 0, idx: 0, order: 4, mapcount: 1, exclusive: true, flags: ['anon'] },
      { addr: '0x40010000', n: 1, kind: 'present', folio: 1, idx: 0, order: 0, mapcount: 1, exclusive: true, flags: ['anon'] },
    ]);
    // the other process maps the same folio: the same number
    expect(runs.get(1)![0]!.folio).toBe(0);
  });

  it('breaks a run where the next page is not the continuation', () => {
    const runs = normalisePages([
      { slot: 0, addr: A, kind: 'swap', type: 0, offset: 512 },
      { slot: 0, addr: A + P, kind: 'swap', type: 0, offset: 513 },
      { slot: 0, addr: A + 2 * P, kind: 'swap', type: 0, offset: 600 },
      { slot: 0, addr: A + 4 * P, kind: 'swap', type: 0, offset: 601 },
    ]);
    expect(runs.get(0)!.map((r) => [r.addr, r.n, r.offset])).toEqual([
      ['0x40000000', 2, 512],
      ['0x40002000', 1, 600],
      ['0x40004000', 1, 601],
    ]);
  });

  it('expandRuns inverts it (property)', () => {
    const page = fc.oneof(
      fc.record({ kind: fc.constant('present' as const), head: fc.integer({ min: 0, max: 3 }), idx: fc.integer({ min: 0, max: 15 }), mapcount: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('swap' as const), type: fc.constant(0), offset: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('zero' as const), uffdWp: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), page), { maxLength: 40 }), (xs) => {
        const raw: RawPage[] = xs.map(([slot, p], i) => ({ slot, addr: A + i * P, ...p }));
        raw.sort((a, b) => a.slot - b.slot || a.addr - b.addr);
        const runs = normalisePages(raw);
        const ids = new Map<number, number>();
        for (const r of raw) if (r.kind === 'present' && !ids.has(r.head!)) ids.set(r.head!, ids.size);
        for (const slot of [0, 1]) {
          const got = expandRuns(runs.get(slot) ?? []);
          const want = raw.filter((r) => r.slot === slot);
          expect([...got.keys()]).toEqual(want.map((r) => r.addr));
          for (const r of want) {
            const g = got.get(r.addr)!;
            expect(g.kind).toBe(r.kind);
            if (r.kind === 'present') expect([g.folio, g.idx, g.mapcount ?? 0]).toEqual([ids.get(r.head!), r.idx, r.mapcount]);
            if (r.kind === 'swap') expect(g.offset).toBe(r.offset);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
