import { folioSubrange } from '@foliolab/folio-flags';
import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  EFAULT,
  PAGE_SIZE,
  RMAP_EXCLUSIVE,
  anonVmaAlloc,
  anonVmaChainLink,
  anonVmaChainUnlink,
  anonVmaClone,
  anonVmaPrepare,
  folioAnonVma,
  folioMapped,
  folioRemoveRmapPtes,
  rmapWalkAnon,
  unlinkAnonVmas,
  vmaAddress,
  vmaAnonVmas,
  type RmapVma,
} from './index.js';
import { faultIn, makeMm, makeVma, makeWorld, type World } from './test-fixtures.js';

const MM = makeMm(1);

function vmaAt(start: number, pages: number, pgoff: number, mm = MM): RmapVma {
  return { mm, vmStart: start, vmEnd: start + pages * PAGE_SIZE, vmPgoff: pgoff, anonVma: null };
}

describe('vma_address (pvmw spec §1)', () => {
  const vma = vmaAt(0x400000, 16, 100);
  it('maps pgoffs inside the VMA, clamps a range that starts before it, −EFAULT otherwise', () => {
    expect(vmaAddress(vma, 100, 1)).toBe(0x400000);
    expect(vmaAddress(vma, 107, 4)).toBe(0x400000 + 7 * PAGE_SIZE);
    expect(vmaAddress(vma, 115, 1)).toBe(0x400000 + 15 * PAGE_SIZE);
    expect(vmaAddress(vma, 116, 1)).toBe(-EFAULT); // past vm_end
    expect(vmaAddress(vma, 96, 8)).toBe(0x400000); // [96, 103] reaches vm_pgoff
    expect(vmaAddress(vma, 96, 4)).toBe(-EFAULT); // [96, 99] ends before it
  });
});

/** One anon_vma whose tree holds VMAs linked in the order given. */
function tree(w: World, vmas: RmapVma[]) {
  const av = anonVmaAlloc(w.rmap);
  for (const v of vmas) {
    anonVmaChainLink(v, av);
    v.anonVma = av;
  }
  return av;
}

describe('rmap_walk_anon (unmap-engine §2.2)', () => {
  it('visits overlapping VMAs in ascending start pgoff, ties in link order, with one lock and one RMAP_ONE each', () => {
    const w = makeWorld('legacy');
    const v1 = vmaAt(0x100000, 16, 100); // linked first
    const v2 = vmaAt(0x800000, 64, 50); // [50, 113]: overlaps, earlier pgoff
    const v3 = vmaAt(0x200000, 16, 100, makeMm(2)); // same pgoff as v1, linked after it
    const v4 = vmaAt(0x300000, 16, 300); // no overlap
    const v5 = vmaAt(0x900000, 8, 40); // [40, 47]: no overlap
    tree(w, [v1, v2, v3, v4, v5]);
    const folio = faultIn(w, 4, v1, 0x100000, RMAP_EXCLUSIVE); // index 100..115
    const visits: [RmapVma, number][] = [];
    const { result, counts } = measure(w.ledger, () =>
      rmapWalkAnon(folio, {
        rmapOne: (_f, vma, address) => {
          visits.push([vma, address]);
          return true;
        },
      }),
    );
    expect(result).toBe(3);
    expect(visits).toEqual([
      [v2, 0x800000 + 50 * PAGE_SIZE],
      [v1, 0x100000],
      [v3, 0x200000],
    ]);
    expect(nonZero(counts)).toEqual({ LOCK: 1, UNLOCK: 1, RMAP_ONE: 3 });
    const root = folioAnonVma(folio)!.root;
    expect(w.ledger.locks.kind(root.lockId)).toBe('anon_vma');
    expect(w.ledger.locks.heldCount).toBe(0);
  });

  it('stops when rmap_one returns false or done() is true; skips invalid VMAs without RMAP_ONE', () => {
    const w = makeWorld('mm_id');
    const vmas = [0, 1, 2].map((i) => vmaAt(0x100000 * (i + 1), 16, 0, makeMm(i + 1)));
    tree(w, vmas);
    const folio = faultIn(w, 4, vmas[0]!, 0x100000, RMAP_EXCLUSIVE);
    expect(rmapWalkAnon(folio, { rmapOne: () => false })).toBe(1);
    const skip = measure(w.ledger, () => rmapWalkAnon(folio, { rmapOne: () => true, invalidVma: (v) => v === vmas[1] }));
    expect([skip.result, skip.counts.RMAP_ONE]).toEqual([2, 2]);
    // try_to_unmap's shape: unmap in the first VMA, then done = !folio_mapped → stop.
    const n = rmapWalkAnon(folio, {
      rmapOne: (f, vma) => {
        folioRemoveRmapPtes(folioSubrange(f, 0, 16), vma);
        return true;
      },
      done: (f) => !folioMapped(f),
    });
    expect(n).toBe(1);
  });

  it('fork: the child VMA is cloned into the parent anon_vma and gets its own child anon_vma (§7 #5: 2 RMAP_ONE)', () => {
    const w = makeWorld('legacy');
    const parent = makeVma(w, MM, 0x100000, 16);
    const child: RmapVma = { ...parent, mm: makeMm(2), anonVma: null };
    anonVmaClone(child, parent);
    const own = anonVmaAlloc(w.rmap, parent.anonVma);
    anonVmaChainLink(child, own);
    child.anonVma = own;
    expect(own.root).toBe(parent.anonVma);
    expect(own.lockId).toBe(parent.anonVma!.lockId); // one rwsem per family
    expect(vmaAnonVmas(child)).toEqual([parent.anonVma, own]);
    const folio = faultIn(w, 4, parent, 0x100000, RMAP_EXCLUSIVE);
    const seen: RmapVma[] = [];
    expect(rmapWalkAnon(folio, { rmapOne: (_f, v) => (seen.push(v), true) })).toBe(2);
    expect(seen).toEqual([parent, child]);
    // A folio faulted in the child maps to the child's anon_vma: only the child is walked.
    const cf = faultIn(w, 4, child, 0x100000, RMAP_EXCLUSIVE);
    expect(folioAnonVma(cf)).toBe(own);
    expect(rmapWalkAnon(cf, { rmapOne: () => true })).toBe(1);
    unlinkAnonVmas(child);
    expect(vmaAnonVmas(child)).toEqual([]);
    expect(rmapWalkAnon(folio, { rmapOne: () => true })).toBe(1);
  });

  it('rejects tree changes during a walk, a VMA changed while linked, and double links', () => {
    const w = makeWorld('legacy');
    const v = makeVma(w, MM, 0x100000, 16);
    expect(anonVmaPrepare(w.rmap, v)).toBe(v.anonVma);
    const folio = faultIn(w, 4, v, 0x100000, RMAP_EXCLUSIVE);
    const other = vmaAt(0x500000, 16, 0x100);
    expect(() =>
      rmapWalkAnon(folio, {
        rmapOne: () => {
          anonVmaChainLink(other, v.anonVma!);
          return true;
        },
      }),
    ).toThrow(/walk is running/);
    expect(w.ledger.locks.heldCount).toBe(0); // the walk released its lock on the way out
    expect(() => anonVmaChainLink(v, v.anonVma!)).toThrow(/already linked/);
    v.vmPgoff += 1;
    expect(() => rmapWalkAnon(folio, { rmapOne: () => true })).toThrow(FoliolabError);
    v.vmPgoff -= 1;
    anonVmaChainUnlink(v, v.anonVma!);
    expect(() => anonVmaChainUnlink(v, v.anonVma!)).toThrow(/not linked/);
    expect(rmapWalkAnon(folio, { rmapOne: () => true })).toBe(0);
  });
});
