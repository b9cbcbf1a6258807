import { describe, expect, it } from 'vitest';
import { Engine, diffStates, type Policy } from './index.js';
import { A, K64, POLICIES, costs, proc } from './test-fixtures.js';

/*
 * copy_present_ptes() batches (mm/memory.c, Linux 7.2.13): for a VMA that is
 * not VM_SHARED the batch scan is folio_pte_batch_flags(FPB_MERGE_WRITE |
 * FPB_RESPECT_DIRTY), so a batch never mixes dirty and clean PTEs, and
 * __copy_present_ptes gives the child the batch's first PTE (write-protected,
 * old) for all nr. The setting: a 64K folio made clean by MADV_FREE
 * (clear_young_dirty_ptes(CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)), then page 3
 * written (the MMU marks that one PTE dirty), then fork.
 *
 *   0123456789abcdef   one char per 4K page of the 64K folio at A
 *   cccDcccccccccccc   parent before fork: c = clean, D = dirty (page 3)
 */

function forkAfterFreeAndWrite(policy: Policy, arch: 'arm64-contpte' | 'arm64-nocont' | 'x86') {
  const e = new Engine({ policy, arch, mthp: { '64K': 'always' } });
  const pid = e.createProcess();
  e.mmap(pid, { addr: A, len: 4 * K64 });
  e.write(pid, A, K64);
  e.madvise(pid, A, K64, 'free');
  e.write(pid, A + 3 * 4096, 4096);
  let child = 0;
  const c = costs(e, () => {
    child = e.fork(pid);
  });
  const d = e.dump();
  const dirty = (p: number) => proc(d, p).ptes.filter((x) => parseInt(x.addr, 16) < A + K64).map((x) => (x.dirty ? 'D' : 'c')).join('');
  return { e, d, c, parent: dirty(pid), child: dirty(child), childPtes: proc(d, child).ptes };
}

describe('fork respects dirty in its batches (mm/memory.c:copy_present_ptes, 7.2.13: FPB_RESPECT_DIRTY unless VM_SHARED)', () => {
  for (const arch of ['arm64-nocont', 'x86'] as const) {
    it.each(['mainline', 'batched'] as const)(`%s, ${arch}: three batches (0–2 clean, 3 dirty, 4–15 clean); the child's page 3 is dirty, the others clean`, (policy) => {
      const r = forkAfterFreeAndWrite(policy, arch);
      // One folio_try_dup_anon_rmap_ptes per batch: [0, 3), [3, 4), [4, 16).
      expect(r.c.RMAP_CALL).toBe(3);
      expect(r.child).toBe('cccDcccccccccccc');
      expect(r.parent).toBe('cccDcccccccccccc');
      for (const p of r.childPtes) expect(p).toMatchObject({ kind: 'present', write: false, young: false });
    });

    it(`per-pte, ${arch}: one PTE at a time, the same child`, () => {
      const r = forkAfterFreeAndWrite('per-pte', arch);
      expect(r.c.RMAP_CALL).toBe(16);
      expect(r.child).toBe('cccDcccccccccccc');
    });
  }

  it.each(POLICIES)('%s, arm64 contpte: the block is still valid-CONT, so ptep_get ORs dirty over it and pte_batch_hint gives 16 — every child PTE is dirty', (policy) => {
    // MADV_FREE's clear_young_dirty_ptes does not unfold (contpte_clear_young_dirty_ptes), the MMU's write to page 3
    // dirties one entry of the block; contpte_ptep_get returns the first PTE with the block's OR, and
    // folio_pte_batch_flags takes the hint 16 without reading further: one batch of 16, the dirty first PTE
    // copied to all. Per-PTE copying meets the same gathered value at each entry (and ptep_set_wrprotect(1)
    // unfolds the block, replicating the OR).
    const r = forkAfterFreeAndWrite(policy, 'arm64-contpte');
    if (policy !== 'per-pte') expect(r.c.RMAP_CALL).toBe(1);
    expect(r.child).toBe('D'.repeat(16));
    expect(r.parent).toBe('D'.repeat(16));
  });

  it.each(['arm64-nocont', 'x86'] as const)('%s: per-pte, mainline and batched end in the same state (no allowed difference needed)', (arch) => {
    const dumps = POLICIES.map((p) => forkAfterFreeAndWrite(p, arch).d);
    for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) expect(diffStates(dumps[i], dumps[j])).toEqual([]);
  });
});
