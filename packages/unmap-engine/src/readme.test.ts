import { expect, it } from 'vitest';
import { measure } from '@foliolab/ledger';
import { Engine, diffStates } from './index.js';

it('the README example runs and says what it claims', () => {
  const run = (policy: 'mainline' | 'batched') => {
    const e = new Engine({ policy, mthp: { '64K': 'always' } });
    const pid = e.createProcess();
    const a = e.mmap(pid, { addr: 0x4000_0000, len: 0x10000 });
    e.write(pid, a, 0x10000);
    const { counts } = measure(e.ledger, () => e.madvise(pid, a, 0x10000, 'pageout'));
    expect(e.dump().processes[0]!.ptes[0]).toMatchObject({ kind: 'swap', exclusive: true });
    expect(counts.RMAP_CALL).toBe(policy === 'mainline' ? 16 : 1);
    expect(e.read(pid, a, 0x10000).lost).toEqual([]);
    return e.dump();
  };
  expect(diffStates(run('mainline'), run('batched'), ['mainline', 'batched'])).toEqual([]);
});
