import { MM_IDS_LOCK_MASK, F_MM_ID0, folioSubrange } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import {
  RMAP_EXCLUSIVE,
  RMAP_NONE,
  folioAddAnonRmapPtes,
  folioAveragePageMapcount,
  folioLargeMapcount,
  folioMaybeMappedShared,
  folioMmId,
  folioMmIdMapcount,
  folioMmIdOwner,
  folioRemoveRmapPtes,
  folioTryDupAnonRmapPtes,
  type RmapVma,
} from './index.js';
import { faultIn, makeMm, makeVma, makeWorld, type World } from './test-fixtures.js';

const A = makeMm(11);
const B = makeMm(22);
const C = makeMm(33);

function slots(f: ReturnType<typeof faultIn>): string {
  return `${folioMmId(f, 0)}:${folioMmIdMapcount(f, 0)} ${folioMmId(f, 1)}:${folioMmIdMapcount(f, 1)} shared=${folioMaybeMappedShared(f)}`;
}

function world(): { w: World; vma: RmapVma; f: ReturnType<typeof faultIn>; as: (mm: typeof A) => RmapVma } {
  const w = makeWorld('mm_id');
  const vma = makeVma(w, A, 0x100000, 16);
  const f = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
  return { w, vma, f, as: (mm) => ({ ...vma, mm }) };
}

describe('MM_ID slots (spec §2.1 "add(diff, mm)" / "sub(diff, mm)")', () => {
  it('claims slot 0, then slot 1 with SHARED, leaves a third mm untracked; clears SHARED when one slot owns all', () => {
    const { f, vma, as } = world();
    const all = folioSubrange(f, 0, 16);
    expect(slots(f)).toBe('11:16 0:0 shared=false');
    expect(folioMmIdOwner(f)).toBe(11);
    expect(folioTryDupAnonRmapPtes(all, as(B), vma)).toBe(0);
    expect(slots(f)).toBe('11:16 22:16 shared=true');
    expect(folioMmIdOwner(f)).toBe(null);
    expect(folioTryDupAnonRmapPtes(all, as(C), vma)).toBe(0); // both slots taken: untracked
    expect(slots(f)).toBe('11:16 22:16 shared=true');
    expect(folioLargeMapcount(f)).toBe(48);
    folioRemoveRmapPtes(all, as(B)); // slot 1 freed; slot 0 (16) ≠ total (32): still shared
    expect(slots(f)).toBe('11:16 0:0 shared=true');
    folioRemoveRmapPtes(folioSubrange(f, 0, 8), as(C)); // untracked mm: only the total moves
    expect(slots(f)).toBe('11:16 0:0 shared=true');
    folioRemoveRmapPtes(folioSubrange(f, 8, 8), as(C)); // now slot 0 == total: exclusive again
    expect(slots(f)).toBe('11:16 0:0 shared=false');
    expect(folioMmIdOwner(f)).toBe(11);
    folioRemoveRmapPtes(all, vma);
    expect(slots(f)).toBe('0:0 0:0 shared=false');
    expect(folioMmIdOwner(f)).toBe(null);
  });

  it('a slot decrement that stays ≥ 0 skips the SHARED re-check (the kernel\'s `goto out`)', () => {
    const { f, vma, as } = world();
    expect(folioTryDupAnonRmapPtes(folioSubrange(f, 0, 4), as(B), vma)).toBe(0);
    expect(slots(f)).toBe('11:16 22:4 shared=true');
    folioRemoveRmapPtes(folioSubrange(f, 0, 3), as(B)); // B's slot 4 → 1: goto out
    expect(slots(f)).toBe('11:16 22:1 shared=true');
    folioRemoveRmapPtes(folioSubrange(f, 3, 1), as(B)); // slot freed; slot 0 == total
    expect(slots(f)).toBe('11:16 0:0 shared=false');
  });

  it('an mm that claims a slot after older untracked mappings under-counts, and its slot is reset at −1', () => {
    const { f, vma, as } = world();
    const all = folioSubrange(f, 0, 16);
    folioTryDupAnonRmapPtes(all, as(B), vma);
    folioTryDupAnonRmapPtes(all, as(C), vma); // C untracked
    folioRemoveRmapPtes(all, vma); // A leaves: slot 0 free, SHARED stays (B + C = 32, slot 1 = 16)
    expect(slots(f)).toBe('0:0 22:16 shared=true');
    folioAddAnonRmapPtes(folioSubrange(f, 0, 1), as(C), RMAP_NONE); // C claims slot 0 with 1
    expect(slots(f)).toBe('33:1 22:16 shared=true');
    folioRemoveRmapPtes(all, as(C)); // C drops 16 of its 17: slot 0 1 − 16 < 0 → reset; slot 1 (16) ≠ 17
    expect(slots(f)).toBe('0:0 22:16 shared=true');
    folioRemoveRmapPtes(folioSubrange(f, 0, 1), as(C)); // C's last: untracked now; slot 1 == total
    expect(slots(f)).toBe('0:0 22:16 shared=false');
    expect(folioMmIdOwner(f)).toBe(22);
  });

  it('the _mm_ids bit lock is clear outside updates', () => {
    const { f, vma } = world();
    folioRemoveRmapPtes(folioSubrange(f, 0, 3), vma);
    expect(f.fa[f.fb + F_MM_ID0]! & MM_IDS_LOCK_MASK).toBe(0);
  });
});

describe('folio_maybe_mapped_shared per mode (spec §2.1 "Queries")', () => {
  it('legacy uses v6.12 folio_likely_mapped_shared: a guess from page 0; MM_ID knows (7.2.13 include/linux/mm.h)', () => {
    // 7.2.13 folio_maybe_mapped_shared: large folios read FOLIO_MM_IDS_SHARED_BITNUM whenever CONFIG_MM_ID,
    // which TRANSPARENT_HUGEPAGE selects — so also with PAGE_MAPCOUNT (page_mapcount_mm_id, the default).
    for (const mode of ['legacy', 'mm_id', 'page_mapcount_mm_id'] as const) {
      const w = makeWorld(mode);
      const vma = makeVma(w, A, 0x100000, 16);
      const f = faultIn(w, 4, vma, 0x100000, RMAP_NONE);
      expect(folioMaybeMappedShared(f)).toBe(false);
      // A keeps pages 0..7; B maps pages 8..15 (fork, then A unmapped them): 16 mappings, 2 mms.
      folioTryDupAnonRmapPtes(folioSubrange(f, 8, 8), { ...vma, mm: B }, vma);
      folioRemoveRmapPtes(folioSubrange(f, 8, 8), vma);
      expect(folioMaybeMappedShared(f)).toBe(mode !== 'legacy'); // the legacy heuristic misses it
      folioTryDupAnonRmapPtes(folioSubrange(f, 0, 1), { ...vma, mm: B }, vma);
      expect(folioMaybeMappedShared(f)).toBe(true); // page 0 mapped twice: legacy catches it too
    }
  });

  it('folio_average_page_mapcount rounds PTE mappings / nr to the nearest integer', () => {
    const { f, vma, as } = world();
    expect(folioAveragePageMapcount(f)).toBe(1);
    folioTryDupAnonRmapPtes(folioSubrange(f, 0, 7), as(B), vma); // 23 / 16 = 1.44
    expect(folioAveragePageMapcount(f)).toBe(1);
    folioTryDupAnonRmapPtes(folioSubrange(f, 7, 1), as(B), vma); // 24 / 16 = 1.5 → 2
    expect(folioAveragePageMapcount(f)).toBe(2);
  });
});
