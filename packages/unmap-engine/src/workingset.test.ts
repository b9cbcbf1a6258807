import { describe, expect, it } from 'vitest';
import { Engine } from './index.js';

/*
 * Refault activation (7.2.13 mm/workingset.c: workingset_eviction, workingset_refault,
 * workingset_test_recent; workingset.ts). Every expected value is a recorded kernel answer:
 * packages/kernel-oracle/recorded/{arm64,x86}/oracle-refault-activation.json (the scenario
 * packages/scenario/scenarios/oracle/oracle-refault-activation.yaml, whose header derives the
 * ages) and 06-read-fault-swapin.json.
 */

const K64 = 0x10000;
const A = 0x4000_0000;
const B = 0x4010_0000;
const C = 0x4020_0000;
const F = 0x4040_0000;
const Y = 0x4060_0000;

function flagsAt(e: Engine, pid: number, addr: number): string[] {
  const d = e.dump();
  const pte = d.processes.find((p) => p.pid === pid)!.ptes.find((p) => parseInt(p.addr, 16) === addr)!;
  return d.folios.find((f) => f.pfn <= pte.pfn! && pte.pfn! < f.pfn + (1 << f.order))!.flags;
}

function ws(e: Engine): [number, number, number] {
  const v = e.dump().stats.vmstat;
  return [v.workingset_refault_anon!, v.workingset_activate_anon!, v.workingset_restore_anon!];
}

function setUp(): { e: Engine; p: number } {
  const e = new Engine({ policy: 'mainline', arch: 'arm64-contpte', mapcountMode: 'page_mapcount_mm_id', mthp: { '64K': 'always', '128K': 'always' }, memory: 64 << 20, swap: 64 << 20 });
  const p = e.createProcess();
  e.mmap(p, { addr: A, len: K64 });
  e.write(p, A, K64);
  return { e, p };
}

describe('refault activation (7.2.13 workingset_refault)', () => {
  it('the distance counts the folio’s own eviction: 16 > an empty workingset, not activated (06-read-fault-swapin step 3)', () => {
    const { e, p } = setUp();
    e.madvise(p, A, K64, 'pageout');
    e.read(p, A, K64);
    expect(flagsAt(e, p, A)).not.toContain('active');
    expect(ws(e)).toEqual([16, 0, 0]);
  });

  it('MADV_PAGEOUT evicts against the root; 16 active pages make a refault of 16 recent (oracle-refault-activation steps 3–8)', () => {
    const { e, p } = setUp();
    e.mmap(p, { addr: B, len: K64 });
    const ring = e.pin(p, B, K64, { kind: 'pin', write: true }); // the slow GUP path activates b
    e.madvise(p, A, K64, 'pageout');
    e.read(p, A, K64);
    expect(flagsAt(e, p, A)).toContain('active');
    expect(ws(e)).toEqual([16, 16, 0]);
    e.unpin(ring);
    e.madvise(p, B, K64, 'pageout'); // b is active: PG_workingset, kept in its shadow
    e.read(p, B, K64);
    expect(flagsAt(e, p, B)).toEqual(expect.arrayContaining(['active', 'workingset']));
    expect(ws(e)).toEqual([32, 32, 16]);
  });

  it('memory.reclaim evicts against the memcg, whose age MADV_PAGEOUT does not move; lazyfree pages count in the workingset (steps 11–21)', () => {
    const { e, p } = setUp();
    e.mmap(p, { addr: B, len: K64 });
    const ring = e.pin(p, B, K64, { kind: 'pin', write: true });
    e.madvise(p, A, K64, 'pageout');
    e.read(p, A, K64);
    e.unpin(ring);
    e.madvise(p, B, K64, 'pageout');
    e.read(p, B, K64);
    e.mmap(p, { addr: C, len: 2 * K64 });
    e.write(p, C, 2 * K64);
    e.reclaim({ kind: 'proactive' });
    expect(e.dump().stats.vmstat.pgdeactivate).toBe(32); // WORKINGSET_ACTIVATE_ANON moved: a and b aged first
    e.mmap(p, { addr: F, len: 2 * K64 });
    e.write(p, F, 2 * K64);
    e.madvise(p, F, 2 * K64, 'free');
    e.mmap(p, { addr: Y, len: K64 });
    e.write(p, Y, K64);
    e.madvise(p, Y, K64, 'pageout');
    for (const [addr, len] of [[A, K64], [B, K64], [C, 2 * K64], [Y, K64]] as const) e.read(p, addr, len);
    expect(flagsAt(e, p, A)).toContain('active');
    expect(flagsAt(e, p, B)).toContain('active');
    expect(flagsAt(e, p, C)).not.toContain('active');
    expect(flagsAt(e, p, Y)).toContain('active');
    expect(ws(e)).toEqual([112, 80, 48]);
    expect(e.checkInvariants().violations).toEqual([]);
  });
});
