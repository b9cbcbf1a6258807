import { FoliolabError } from './errors.js';

/** What a lock protects; used for trace tracks and per-kind counts. */
export type LockKind =
  | 'ptl' // split PTE-table lock (pte_lockptr)
  | 'pmd' // split PMD-table lock (pmd_lock)
  | 'page_table_lock' // mm->page_table_lock (split locks disabled)
  | 'hugetlb'
  | 'anon_vma' // anon_vma root rwsem (read)
  | 'i_mmap'
  | 'split_queue' // deferred split_queue_lock
  | 'mmlist' // mmlist_lock
  | 'swap_cluster' // ci->lock
  | 'mm_id' // the folio _mm_ids bit spinlock
  | 'other';

/**
 * A table of named locks. Locks are small integer ids so that hot paths can
 * take and release them without allocating; the table remembers each lock's
 * name, kind, holder state and acquisition count.
 */
export class LockTable {
  private names: string[] = [];
  private kinds: LockKind[] = [];
  private byName = new Map<string, number>();
  private held = new Uint8Array(64);
  private acquired = new Float64Array(64);
  private nrHeld = 0;

  /** Id of the lock called `name`, registering it on first use. */
  id(name: string, kind: LockKind = 'other'): number {
    const found = this.byName.get(name);
    if (found !== undefined) return found;
    const id = this.names.length;
    this.names.push(name);
    this.kinds.push(kind);
    this.byName.set(name, id);
    if (id >= this.held.length) {
      const h = new Uint8Array(this.held.length * 2);
      h.set(this.held);
      this.held = h;
      const a = new Float64Array(this.acquired.length * 2);
      a.set(this.acquired);
      this.acquired = a;
    }
    return id;
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new FoliolabError('EINVAL', `LockTable.name: no lock with id ${id}`);
    return n;
  }

  kind(id: number): LockKind {
    const k = this.kinds[id];
    if (k === undefined) throw new FoliolabError('EINVAL', `LockTable.kind: no lock with id ${id}`);
    return k;
  }

  get size(): number {
    return this.names.length;
  }

  /** Mark `id` taken. A spinlock taken twice is a self-deadlock in the kernel: an error here. */
  acquire(id: number): void {
    if (this.held[id] === 1) throw new FoliolabError('EDEADLK', `lock ${this.name(id)} taken while already held`);
    this.held[id] = 1;
    this.acquired[id]! += 1;
    this.nrHeld++;
  }

  release(id: number): void {
    if (this.held[id] !== 1) throw new FoliolabError('EPERM', `lock ${this.name(id)} released while not held`);
    this.held[id] = 0;
    this.nrHeld--;
  }

  isHeld(id: number): boolean {
    return this.held[id] === 1;
  }

  /** Number of locks held right now (pvmw invariant: 1 after a true return, 0 after false). */
  get heldCount(): number {
    return this.nrHeld;
  }

  /** Names of the locks held right now. */
  heldNames(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.names.length; i++) if (this.held[i] === 1) out.push(this.names[i]!);
    return out;
  }

  /** How many times each lock was acquired, by name. */
  acquisitions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.names.length; i++) if (this.acquired[i]! > 0) out[this.names[i]!] = this.acquired[i]!;
    return out;
  }

  resetCounts(): void {
    this.acquired.fill(0);
  }
}
