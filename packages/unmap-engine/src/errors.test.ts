import { describe, expect, it } from 'vitest';
import { FoliolabError } from '@foliolab/ledger';
import { Engine, diffStates } from './index.js';
import { A, K64, setup } from './test-fixtures.js';

/*
 * ENGINE-API.md: bad input throws FoliolabError with a code and a message
 * naming the operation and the reason — and then nothing has changed.
 */

function rejects(e: Engine, code: string, op: string, fn: () => unknown): void {
  const before = e.dump();
  let err: unknown = null;
  try {
    fn();
  } catch (x) {
    err = x;
  }
  expect(err).toBeInstanceOf(FoliolabError);
  expect((err as FoliolabError).code).toBe(code);
  expect((err as FoliolabError).message.startsWith(`${op}:`)).toBe(true);
  expect(diffStates(before, e.dump())).toEqual([]);
}

describe('bad input is rejected with the state untouched', () => {
  const world = () => {
    const f = setup('batched');
    f.e.write(f.pid, A, K64);
    f.e.mmap(f.pid, { addr: A + 0x100000, len: K64, prot: 'r' });
    return f;
  };

  it('unknown and exited pids', () => {
    const { e, pid } = world();
    rejects(e, 'ENOENT', 'write', () => e.write(99, A, 4096));
    const c = e.fork(pid);
    e.exit(c);
    rejects(e, 'ENOENT', 'fork', () => e.fork(c));
    rejects(e, 'EINVAL', 'exit', () => e.exit(1.5));
  });

  it('mmap: zero length, misaligned address, overlap, unsupported kinds', () => {
    const { e, pid } = world();
    rejects(e, 'EINVAL', 'mmap', () => e.mmap(pid, { len: 0 }));
    rejects(e, 'EINVAL', 'mmap', () => e.mmap(pid, { addr: A + 1, len: 4096 }));
    rejects(e, 'EEXIST', 'mmap', () => e.mmap(pid, { addr: A + 0x8000, len: K64 }));
    rejects(e, 'EINVAL', 'mmap', () => e.mmap(pid, { len: 4096, shared: true as unknown as false }));
    rejects(e, 'EINVAL', 'mmap', () => e.mmap(pid, { len: 4096, locked: true, droppable: true }));
    rejects(e, 'EINVAL', 'mmap', () => e.mmap(pid, { len: 4096, prot: 'rwx' as 'rw' }));
  });

  it('ranges outside any VMA, misaligned ranges, permissions', () => {
    const { e, pid } = world();
    rejects(e, 'ENOMEM', 'write', () => e.write(pid, A + 4 * K64, 4096));
    rejects(e, 'EINVAL', 'munmap', () => e.munmap(pid, 0x9000_0000, 4096));
    rejects(e, 'EINVAL', 'munmap', () => e.munmap(pid, A + 12, 4096));
    rejects(e, 'ENOMEM', 'mprotect', () => e.mprotect(pid, A, 0x200000, 'r'));
    rejects(e, 'ENOMEM', 'madvise', () => e.madvise(pid, A, 0x200000, 'pageout'));
    rejects(e, 'EFAULT', 'write', () => e.write(pid, A + 0x100000, 4096));
    rejects(e, 'EINVAL', 'madvise', () => e.madvise(pid, A, 4096, 'willneed' as 'cold'));
    rejects(e, 'EINVAL', 'write', () => e.write(pid, A, 4096, -1));
  });

  it('mremap: old range not inside one VMA, overlapping fixed target', () => {
    const { e, pid } = world();
    // 7.2.13 check_prep_vma checks [addr, addr + old_len) inside one VMA for an expansion or a move only: the
    // same-size call without MREMAP_FIXED is a no-op (recorded: kernel-oracle/recorded/*/oracle-mremap-move.json, part D)
    rejects(e, 'EFAULT', 'mremap', () => e.mremap(pid, A + K64 * 3, 2 * K64, 3 * K64));
    rejects(e, 'EINVAL', 'mremap', () => e.mremap(pid, A, K64, K64, { fixed: A + 0x4000 }));
  });

  it('mlocked ranges refuse pageout; unregistered ranges refuse uffd-wp protect', () => {
    const { e, pid } = world();
    e.mlock(pid, A, K64);
    rejects(e, 'EINVAL', 'madvise', () => e.madvise(pid, A, K64, 'pageout'));
    rejects(e, 'ENOENT', 'uffdwp', () => e.uffdwp(pid, A + K64, K64, 'protect'));
  });

  it('a synchronous uffd-wp write fault has no handler in the model', () => {
    const { e, pid } = world();
    e.uffdwp(pid, A, K64, 'register');
    e.uffdwp(pid, A, K64, 'protect');
    rejects(e, 'EFAULT', 'write', () => e.write(pid, A, 4096));
  });

  it('unpin of an unknown or already unpinned handle', () => {
    const { e, pid } = world();
    const h = e.pin(pid, A, 4096);
    e.unpin(h);
    rejects(e, 'ENOENT', 'unpin', () => e.unpin(h));
    rejects(e, 'ENOENT', 'unpin', () => e.unpin(12345));
  });

  it('poison of an address without a page; poison options the kernel would WARN on', () => {
    const { e, pid } = world();
    rejects(e, 'EINVAL', 'poison', () => e.poison(pid, A + 2 * K64));
    rejects(e, 'EINVAL', 'poison', () => e.poison(pid, A, { split: false }));
  });

  it('setInject validates the switch and its value', () => {
    const { e } = world();
    rejects(e, 'EINVAL', 'setInject', () => e.setInject('nope' as 'swapDupEnomem', 1));
    rejects(e, 'EINVAL', 'setInject', () => e.setInject('swapDupEnomem', -2));
    rejects(e, 'EINVAL', 'setInject', () => e.setInject('archUnmapOneFail', true));
  });

  it('a write larger than simulated memory is refused up front (no half-applied fault-in)', () => {
    const e = new Engine({ memory: 2 * 1024 * 1024, swap: 0 });
    const pid = e.createProcess();
    e.mmap(pid, { addr: A, len: 4 * 1024 * 1024 });
    rejects(e, 'ENOMEM', 'write', () => e.write(pid, A, 4 * 1024 * 1024));
  });

  it('limits.maxSteps', () => {
    const e = new Engine({ limits: { maxSteps: 2 } });
    const pid = e.createProcess();
    e.mmap(pid, { len: 4096 });
    rejects(e, 'E2BIG', 'mmap', () => e.mmap(pid, { len: 4096 }));
  });
});

describe('config validation', () => {
  it.each([
    [{ memory: 3 * 1024 * 1024 }],
    [{ swap: 1 }],
    [{ policy: 'fast' }],
    [{ arch: 'riscv' }],
    [{ mthp: { '8K': 'always' } }],
    [{ mthp: { '64K': 'madvise' } }],
    [{ inject: { swapDupEnomem: -1 } }],
    [{ inject: { archUnmapOneFail: 1 } }],
    [{ color: 'blue' }],
    [{ memory: 8 * 1024 * 1024, limits: { maxMemory: 4 * 1024 * 1024 } }],
  ])('%j is rejected', (cfg) => {
    expect(() => new Engine(cfg as never)).toThrow(FoliolabError);
  });

  it('defaults', () => {
    const e = new Engine();
    // mapcounts as 7.2.13 keeps them: per-page counts and MM_ID (THP selects MM_ID; PAGE_MAPCOUNT=y)
    expect(e.config).toMatchObject({ arch: 'arm64-contpte', policy: 'mainline', mapcountMode: 'page_mapcount_mm_id', memory: 64 * 1024 * 1024, swap: 64 * 1024 * 1024, swapSynchronousIo: true });
    expect(Object.values(e.config.mthp).every((v) => v === 'never')).toBe(true);
  });
});
