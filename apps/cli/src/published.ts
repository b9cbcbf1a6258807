import type { ArchName } from '@foliolab/scenario';

/*
 * The published results the headline experiment is compared with
 * (shared/kernel/anchors.md A1): Dev Jain, "[PATCH v2/v4] Optimize anonymous
 * large folio unmapping" — mmap 256 MiB private anon, memset, one
 * madvise(MADV_PAGEOUT) timed, 64K mTHP. Same text in v2 and v4.
 */

export interface PublishedResult {
  /** Vanilla (mainline) mean, ns. */
  readonly vanillaNs: number;
  /** Patched (batched) mean, ns. */
  readonly patchedNs: number;
  readonly machine: string;
  readonly source: string;
}

/** The benchmark's geometry: the published numbers are for this workload only. */
export const A1_SIZE = 256 * 2 ** 20;
export const A1_FOLIO = 64 * 2 ** 10;

const SOURCE = 'Dev Jain, [PATCH v2/v4 0/…] Optimize anonymous large folio unmapping (anchors A1)';

export const PUBLISHED: Readonly<Partial<Record<ArchName, PublishedResult>>> = Object.freeze({
  'arm64-contpte': { vanillaNs: 37_401_913, patchedNs: 17_420_282, machine: 'Linux VM on Apple M3', source: SOURCE },
  x86: { vanillaNs: 54_986_286, patchedNs: 51_930_795, machine: 'bare-metal x86', source: SOURCE },
});

/** patched / vanilla (arm64 0.466, x86 0.944). */
export function publishedRatio(p: PublishedResult): number {
  return p.patchedNs / p.vanillaNs;
}
