import { describe, expect, it } from 'vitest';
import { Memmap, PAGE_MAPCOUNT_MAX } from './index.js';

// struct page._mapcount is an atomic_t in the kernel; the model stores it as
// an Int16Array (2 B/page). The rmap package rejects the 32769th mapping.
describe('per-page _mapcount width (model limit)', () => {
  it('is an Int16Array holding up to PAGE_MAPCOUNT_MAX, −1 after allocation', () => {
    const mm = new Memmap({ nrPages: 512, perPageMapcount: true });
    expect(mm.mapcount).toBeInstanceOf(Int16Array);
    expect(PAGE_MAPCOUNT_MAX).toBe(32767);
    expect(mm.memmapBytes().mapcount).toBe(512 * 2);
    const f = mm.allocFolio(4)!;
    expect(Array.from(mm.mapcount!.subarray(f.head, f.head + f.nr))).toEqual(new Array<number>(16).fill(-1));
    mm.mapcount![f.head] = PAGE_MAPCOUNT_MAX;
    expect(mm.mapcount![f.head]).toBe(PAGE_MAPCOUNT_MAX);
  });
});
