/**
 * `pnpm --filter @foliolab/bench floor [--mib N]`: a synthetic lower bound for the
 * MADV_PAGEOUT benchmark, NOT the model. It performs roughly the state changes of
 * a 64K-folio pageout on arm64-contpte (PTE gather and clear, contpte unfold under
 * per-pte, swap slot allocation and counts, AnonExclusive, mapcounts, refcounts,
 * swap PTEs, writeout tokens, swap-cache delete, free) with about the same event
 * granularity as foliolab's ledger (one charge per call, not per element, where the
 * model charges so) and its lock operations, as a handful of flat functions over
 * typed arrays: no package layering, no argument checks, no generality, no error
 * paths, no trace sink. The gap between this and `pnpm bench` is the cost of the
 * model's structure, not of its events. See docs/PERFORMANCE.md.
 */

const mibArg = process.argv.indexOf('--mib');
const MIB = mibArg >= 0 ? Number(process.argv[mibArg + 1]) : 256;
if (!Number.isInteger(MIB) || MIB <= 0 || MIB > 4096) {
  console.error('floor: --mib needs an integer 1..4096');
  process.exit(2);
}
const N = (MIB << 20) >> 12; // PTEs
const NF = N >> 4; // 64K folios

const counts = new Float64Array(64);
const sink: ((ev: number, n: number) => void) | null = null;
const lo = new Uint32Array(N);
const hi = new Uint32Array(N);
const flags = new Uint32Array(N);
const mapcount = new Int16Array(N);
const refcount = new Int32Array(N);
const large = new Float64Array(NF * 2); // _large_mapcount, _nr_pages_mapped
const swapCount = new Uint8Array(N + 1);
const swapTable = new Int32Array(N + 1);
const swapData = new Uint32Array(N + 1);
const pageData = new Uint32Array(N);
const held = new Uint8Array(1 << 16);
const acquired = new Float64Array(1 << 16);
const lruNext = new Int32Array(NF);
const lruPrev = new Int32Array(NF);
const buddyNext = new Int32Array(NF);
const rss = new Float64Array(4);
let buddyHead = -1;
let nextSlot = 1;

const VALID = 0x1;
const YOUNG = 0x400;
const DIRTY = 0x80;
const CONT = 0x10; // in hi
const AE = 0x10; // PageAnonExclusive
const F_LOCKED = 0x1;
const F_DIRTY = 0x20;
const F_SWAPCACHE = 0x200;
const F_LRU = 0x100;

function charge(ev: number, n: number): void {
  counts[ev]! += n;
  if (sink !== null) sink(ev, n);
}
function lock(id: number): void {
  if (held[id] === 1) throw new Error('deadlock');
  held[id] = 1;
  acquired[id]! += 1;
  charge(1, 1);
}
function unlock(id: number): void {
  if (held[id] !== 1) throw new Error('unlock of a free lock');
  held[id] = 0;
  charge(2, 1);
}

function setup(): void {
  for (let i = 0; i < N; i++) {
    lo[i] = (VALID | YOUNG | DIRTY | (i << 12)) >>> 0;
    hi[i] = CONT;
    flags[i] = (i & 15) === 0 ? (0x80000000 | AE | F_LRU | 0x8) >>> 0 : AE;
    mapcount[i] = 0;
    pageData[i] = i + 1;
  }
  for (let f = 0; f < NF; f++) {
    refcount[f << 4] = 1;
    large[f * 2] = 15;
    large[f * 2 + 1] = 16;
    lruNext[f] = f + 1;
    lruPrev[f] = f - 1;
  }
  swapCount.fill(0);
  swapTable.fill(-1);
  nextSlot = 1;
  buddyHead = -1;
  counts.fill(0);
}

/** contpte_ptep_get: 16 reads, young/dirty gathered. */
function gather(b: number): number {
  let yd = 0;
  for (let k = 0; k < 16; k++) yd |= lo[b + k]!;
  charge(3, 17);
  return yd;
}
/** folio_pte_batch over one block. */
function batch(b: number): number {
  let n = 1;
  const h = hi[b]!;
  while (n < 16 && hi[b + n] === h && ((lo[b + n]! ^ lo[b]!) & ~(YOUNG | DIRTY)) === (n << 12) >>> 0) n++;
  charge(3, 16);
  return n;
}
function clearYoung(b: number, each: boolean): void {
  for (let k = 0; k < 16; k++) lo[b + k] = lo[b + k]! & ~YOUNG;
  if (each) {
    charge(3, 19 * 16);
    charge(4, 16 * 16);
  } else {
    charge(3, 3);
    charge(4, 16);
  }
}
function isolate(f: number): void {
  charge(10, 3);
  flags[f << 4] = flags[f << 4]! & ~F_LRU;
  const p = lruPrev[f]!;
  const n = lruNext[f]!;
  if (p >= 0) lruNext[p] = n;
  if (n < NF) lruPrev[n] = p;
  refcount[f << 4]! += 1;
}
function allocSwap(f: number): number {
  const c = nextSlot >> 9;
  lock(100 + c);
  charge(11, 1);
  const off = nextSlot;
  for (let k = 0; k < 16; k++) if (swapCount[off + k] !== 0 || swapTable[off + k] !== -1) throw new Error('slot busy');
  for (let k = 0; k < 16; k++) swapTable[off + k] = f;
  nextSlot += 16;
  unlock(100 + c);
  charge(12, 2);
  flags[f << 4] = flags[f << 4]! | F_SWAPCACHE;
  refcount[f << 4]! += 16;
  charge(13, 3);
  return off;
}
function swapPte(off: number, ex: boolean): number {
  return ((off << 12) | (ex ? 4 : 0)) >>> 0;
}
/** try_to_unmap_one, `batched`: one batch of 16, exclusivity sub-batches. */
function unmapBatched(f: number, b: number, off: number): void {
  lock(1);
  lock(2);
  charge(14, 4);
  gather(b);
  gather(b);
  const nr = batch(b);
  let yd = 0;
  for (let k = 0; k < nr; k++) {
    yd |= lo[b + k]!;
    lo[b + k] = 0;
    hi[b + k] = 0;
  }
  charge(15, nr);
  charge(16, 2);
  charge(17, 4);
  if ((yd & DIRTY) !== 0) {
    charge(18, 1);
    flags[b] = flags[b]! | F_DIRTY;
  }
  let s = 0;
  while (s < nr) {
    const ex = (flags[b + s]! & AE) !== 0;
    let len = 1;
    while (s + len < nr && ((flags[b + s + len]! & AE) !== 0) === ex) len++;
    charge(19, len);
    const c = (off + s) >> 9;
    lock(100 + c);
    for (let k = s; k < s + len; k++) swapCount[off + k]! += 1;
    charge(20, 1);
    unlock(100 + c);
    if (ex) {
      charge(21, 3);
      for (let k = s; k < s + len; k++) flags[b + k] = flags[b + k]! & ~AE;
    }
    for (let k = s; k < s + len; k++) {
      lo[b + k] = swapPte(off + k, ex);
      hi[b + k] = 0;
    }
    charge(22, len);
    rss[1]! -= len;
    rss[2]! += len;
    charge(23, 2);
    s += len;
  }
  large[f * 2]! -= nr;
  let last = 0;
  for (let k = 0; k < nr; k++) {
    const v = mapcount[b + k]! - 1;
    mapcount[b + k] = v;
    if (v < 0) last++;
  }
  large[f * 2 + 1]! -= last;
  charge(24, nr + 2);
  charge(25, nr);
  charge(26, 1);
  refcount[b]! -= nr;
  charge(27, 1);
  unlock(2);
  unlock(1);
  charge(28, 2);
}
/** try_to_unmap_one, `per-pte`: the first clear unfolds the block, then one PTE per step. */
function unmapPerPte(f: number, b: number, off: number): void {
  lock(1);
  charge(14, 4);
  for (let j = 0; j < 16; j++) {
    const i = b + j;
    lock(2);
    charge(29, 2);
    if ((hi[i]! & CONT) !== 0) {
      gather(b);
      gather(b);
    } else charge(3, 2);
    charge(30, 1);
    const a = lo[i]!;
    const ex = (flags[i]! & AE) !== 0;
    if ((hi[i]! & CONT) !== 0) {
      for (let k = 0; k < 16; k++) hi[b + k] = hi[b + k]! & ~CONT;
      charge(15, 16);
      charge(31, 17);
    }
    lo[i] = 0;
    hi[i] = 0;
    charge(15, 1);
    charge(17, 4);
    if ((a & DIRTY) !== 0) {
      charge(18, 1);
      flags[b] = flags[b]! | F_DIRTY;
    }
    charge(32, 2);
    const c = (off + j) >> 9;
    lock(100 + c);
    swapCount[off + j]! += 1;
    charge(20, 1);
    unlock(100 + c);
    if (ex) {
      charge(21, 3);
      flags[i] = flags[i]! & ~AE;
    }
    rss[1]! -= 1;
    rss[2]! += 1;
    charge(23, 2);
    lo[i] = swapPte(off + j, ex);
    charge(22, 1);
    large[f * 2]! -= 1;
    const v = mapcount[i]! - 1;
    mapcount[i] = v;
    if (v < 0) large[f * 2 + 1]! -= 1;
    charge(24, 3);
    charge(25, 1);
    charge(26, 1);
    charge(33, 4);
    refcount[b]! -= 1;
    charge(27, 1);
    unlock(2);
  }
  unlock(1);
  charge(28, 2);
}
function writeout(b: number, off: number): void {
  charge(35, 2);
  for (let k = 0; k < 16; k++) swapData[off + k] = pageData[b + k]!;
  charge(36, 3);
  flags[b] = flags[b]! & ~F_DIRTY;
}
function swapCacheDel(b: number, off: number): void {
  const c = off >> 9;
  lock(100 + c);
  for (let k = 0; k < 16; k++) swapTable[off + k] = -1;
  charge(37, 2);
  unlock(100 + c);
  flags[b] = flags[b]! & ~F_SWAPCACHE;
  refcount[b] = 0;
  charge(38, 2);
}
function free(f: number): void {
  charge(39, 3);
  flags[f << 4] = flags[f << 4]! & ~0x18;
  buddyNext[f] = buddyHead;
  buddyHead = f;
}
function pageout(perPte: boolean): void {
  const isolated: number[] = [];
  lock(3);
  for (let f = 0; f < NF; f++) {
    const b = f << 4;
    const yd = gather(b);
    if (batch(b) !== 16) continue;
    if ((yd & YOUNG) !== 0) clearYoung(b, perPte);
    charge(9, 2);
    isolate(f);
    isolated.push(f);
  }
  unlock(3);
  for (let x = isolated.length - 1; x >= 0; x--) {
    const f = isolated[x]!;
    const b = f << 4;
    charge(40, 6);
    flags[b] = flags[b]! | F_LOCKED;
    const off = allocSwap(f);
    if (perPte) unmapPerPte(f, b, off);
    else unmapBatched(f, b, off);
    writeout(b, off);
    charge(41, 2);
    swapCacheDel(b, off);
    flags[b] = flags[b] & ~F_LOCKED;
  }
  for (const f of isolated) free(f);
}

console.log(`# Flat floor (synthetic; not the model): ${MIB} MiB of 64K folios (${N} PTEs)\n`);
console.log('| policy | median ms | simulated PTEs/s | events per folio |');
console.log('|---|---|---|---|');
for (const policy of ['batched', 'per-pte'] as const) {
  const times: number[] = [];
  for (let r = 0; r < 30; r++) {
    setup();
    const t0 = performance.now();
    pageout(policy === 'per-pte');
    times.push(performance.now() - t0);
  }
  const steady = times.slice(10).sort((a, b) => a - b);
  const med = steady[steady.length >> 1]!;
  let ev = 0;
  for (const v of counts) ev += v;
  console.log(`| ${policy} | ${med.toFixed(2)} | ${(N / med / 1000).toFixed(1)} M/s | ${(ev / NF).toFixed(0)} |`);
}
