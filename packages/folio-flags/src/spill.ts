import { NR_FOLIO_FIELD_SLOTS } from './fields.js';

const BASE_ROWS_SHIFT = 5; // chunk 0 holds 32 rows; chunk k holds 32 << k

/**
 * The spill pool: 16-slot Int32 rows holding the head-only fields of folios
 * of order 0..3 (too few tail pages to overlay them). Storage grows by adding
 * chunks of doubling size and is never reallocated, so a Folio handle's cached
 * `(fa, fb)` stays valid for the folio's lifetime. Freed rows go on a free
 * stack and are reused LIFO (deterministic).
 *
 * Internal to the package.
 */
export class SpillPool {
  private readonly chunks: Int32Array[] = [];
  private capacity = 0;
  private nextFresh = 0;
  private freeRows = new Int32Array(0);
  private nrFreeRows = 0;
  private inUse = 0;

  /** Take a row; returns its id. */
  alloc(): number {
    if (this.nrFreeRows > 0) {
      this.inUse++;
      return this.freeRows[--this.nrFreeRows]!;
    }
    if (this.nextFresh === this.capacity) this.grow();
    this.inUse++;
    return this.nextFresh++;
  }

  /** Give a row back. */
  free(row: number): void {
    if (this.nrFreeRows === this.freeRows.length) {
      const bigger = new Int32Array(Math.max(32, this.freeRows.length * 2));
      bigger.set(this.freeRows);
      this.freeRows = bigger;
    }
    this.freeRows[this.nrFreeRows++] = row;
    this.inUse--;
  }

  /** The chunk holding `row`. */
  chunkOf(row: number): Int32Array {
    return this.chunks[chunkIndex(row)]!;
  }

  /** The slot index of `row`'s slot 0 inside its chunk. */
  baseOf(row: number): number {
    const k = chunkIndex(row);
    return (row - ((((1 << k) - 1) << BASE_ROWS_SHIFT) >>> 0)) * NR_FOLIO_FIELD_SLOTS;
  }

  /** Rows currently owned by folios. */
  get rowsInUse(): number {
    return this.inUse;
  }

  /** Bytes of typed arrays the pool holds (rows plus the free stack). */
  get bytes(): number {
    let b = this.freeRows.byteLength;
    for (const c of this.chunks) b += c.byteLength;
    return b;
  }

  private grow(): void {
    const rows = 1 << (BASE_ROWS_SHIFT + this.chunks.length);
    this.chunks.push(new Int32Array(rows * NR_FOLIO_FIELD_SLOTS));
    this.capacity += rows;
  }
}

function chunkIndex(row: number): number {
  return 31 - Math.clz32((row >>> BASE_ROWS_SHIFT) + 1);
}
