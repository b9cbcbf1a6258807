import { describe, expect, it } from 'vitest';
import { Engine } from './index.js';

/*
 * The first Engine of a process builds a small private engine that keeps
 * V8's hidden classes alive (engine.ts, keepClassesAlive). It must leave no
 * trace in any engine a caller builds: the engines share no state.
 */

const A = 0x4000_0000;
const K64 = 64 * 1024;

function run(): Engine {
  const e = new Engine({ memory: 8 * 2 ** 20, swap: 8 * 2 ** 20, mthp: { '64K': 'always' } });
  const pid = e.createProcess('p');
  e.mmap(pid, { addr: A, len: 4 * K64, prot: 'rw' });
  e.write(pid, A, 4 * K64);
  e.madvise(pid, A, 4 * K64, 'pageout');
  return e;
}

describe('the class keeper changes no result', () => {
  it('a new engine starts with an empty ledger, no process and all memory free', () => {
    const e = new Engine({ memory: 8 * 2 ** 20, swap: 8 * 2 ** 20 });
    expect(e.ledger.counts.every((c) => c === 0)).toBe(true);
    const d = e.dump();
    expect(d.processes).toEqual([]);
    expect(d.folios).toEqual([]);
    expect(d.swap.usage.freeSlots).toBe(d.swap.usage.totalSlots); // no slot in use
  });

  it('the same operations give the same dump in the first engine and in later ones', () => {
    const first = run().dump();
    const again = run().dump();
    expect(again).toEqual(first);
    expect(first.ledger.PTE_READ).toBeGreaterThan(0);
  });
});
