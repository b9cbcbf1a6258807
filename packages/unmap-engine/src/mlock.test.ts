import { describe, expect, it } from 'vitest';
import { Engine } from './index.js';

/*
 * mlock_fixup (7.2.13 mm/mlock.c) walks the pages only of a VMA whose VM_LOCKED changes. Expected
 * values: packages/kernel-oracle/recorded/{arm64,x86}/oracle-mlock-unchanged.json (steps 4 and 5).
 */

const BUF = 0x4000_0000;
const PAGE = 4096;

function flagsAt(e: Engine, pid: number, addr: number): string[] {
  const d = e.dump();
  const pte = d.processes.find((p) => p.pid === pid)!.ptes.find((p) => parseInt(p.addr, 16) === addr)!;
  return d.folios.find((f) => f.pfn === pte.pfn)!.flags;
}

describe('mlock / munlock of a range whose VM_LOCKED does not change (mlock_fixup)', () => {
  it('the child’s munlock of an unlocked VMA and the parent’s second mlock count no folio', () => {
    const e = new Engine({ policy: 'mainline', arch: 'arm64-contpte', mapcountMode: 'page_mapcount_mm_id', memory: 64 << 20, swap: 64 << 20 });
    const parent = e.createProcess();
    e.mmap(parent, { addr: BUF, len: 2 * PAGE });
    e.write(parent, BUF, 2 * PAGE);
    e.mlock(parent, BUF, 2 * PAGE);
    const child = e.fork(parent);
    e.munlock(child, BUF, PAGE);
    expect(flagsAt(e, child, BUF)).toEqual(expect.arrayContaining(['mlocked', 'unevictable'])); // record step 4
    e.mlock(parent, BUF + PAGE, PAGE); // populate write-faults: COW, the old folio leaves the VM_LOCKED VMA
    expect(flagsAt(e, parent, BUF + PAGE)).toEqual(expect.arrayContaining(['mlocked', 'unevictable'])); // record step 5
    expect(flagsAt(e, child, BUF + PAGE)).not.toContain('mlocked');
    expect(flagsAt(e, child, BUF + PAGE)).not.toContain('unevictable');
    expect(flagsAt(e, child, BUF)).toContain('mlocked');
    expect(e.checkInvariants().violations).toEqual([]);
  });
});
