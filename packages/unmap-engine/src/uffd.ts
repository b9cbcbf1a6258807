import { VM_UFFD_WP, VM_WRITE } from './consts.js';
import type { Kernel } from './kernel.js';
import { CP_TRY_CHANGE_WRITABLE, CP_UFFD_WP, CP_UFFD_WP_RESOLVE, changeProtection } from './mprotect.js';
import type { Proc } from './proc.js';
import { vmaModify, vmasInRange } from './vma.js';

/*
 * userfaultfd write-protect (fs/userfaultfd.c, mm/userfaultfd.c):
 * UFFDIO_REGISTER(MODE_WP) arms VM_UFFD_WP (split/merge; the context's
 * WP_ASYNC / WP_UNPOPULATED features travel with the VMA); UFFDIO_WRITEPROTECT
 * runs change_protection(MM_CP_UFFD_WP) — present PTEs get uffd-wp and lose
 * write, swap PTEs get swp-uffd-wp, none PTEs get markers only with
 * WP_UNPOPULATED — or MM_CP_UFFD_WP_RESOLVE (+ MM_CP_TRY_CHANGE_WRITABLE for
 * writable VMAs); unregister resolves the range first (uffd_wp_range false).
 */

export type UffdOp = 'register' | 'protect' | 'unprotect' | 'unregister';

/** Options of register: the uffd context features. */
export interface UffdRegisterOptions {
  /** UFFD_FEATURE_WP_ASYNC: write faults resolve themselves instead of waiting for a handler. */
  async?: boolean;
  /** UFFD_FEATURE_WP_UNPOPULATED: protect installs markers on none PTEs of anonymous memory. */
  unpopulated?: boolean;
}

/** uffd-wp operation over [start, end); the caller validated coverage and registration. */
export function doUffdwp(k: Kernel, p: Proc, start: number, end: number, op: UffdOp, o: UffdRegisterOptions = {}): void {
  switch (op) {
    case 'register':
      vmaModify(p, start, end, (v) => {
        v.flags |= VM_UFFD_WP;
        v.uffdAsync = o.async === true;
        v.uffdUnpopulated = o.unpopulated === true;
      });
      return;
    case 'protect':
      for (const v of vmasInRange(p, start, end)) changeProtection(k, p, v, Math.max(start, v.vmStart), Math.min(end, v.vmEnd), CP_UFFD_WP);
      return;
    case 'unprotect':
      resolve(k, p, start, end);
      return;
    case 'unregister':
      resolve(k, p, start, end);
      vmaModify(p, start, end, (v) => {
        v.flags &= ~VM_UFFD_WP;
        v.uffdAsync = false;
        v.uffdUnpopulated = false;
      });
      return;
  }
}

function resolve(k: Kernel, p: Proc, start: number, end: number): void {
  for (const v of vmasInRange(p, start, end)) {
    if ((v.flags & VM_UFFD_WP) === 0) continue;
    const cp = CP_UFFD_WP_RESOLVE | ((v.flags & VM_WRITE) !== 0 ? CP_TRY_CHANGE_WRITABLE : 0);
    changeProtection(k, p, v, Math.max(start, v.vmStart), Math.min(end, v.vmEnd), cp);
  }
}
