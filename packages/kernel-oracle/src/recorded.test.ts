import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRecord, formatDifferences, readKnown, readRecord, recordFiles, recordKey, UNEXPLAINED } from './index.js';

/*
 * The recorded answers of the real Linux 7.2.13 (recorded/<arch>/*.json, written by
 * `foliolab oracle record`) against the engine. Under `mainline` every observable must match;
 * `per-pte` and `batched` may differ only as ALLOWED_DIFFERENCES says. Where they still differ,
 * recorded/known-differences.json lists the exact difference lines with the reason, and this test
 * asserts exactly those: a fix (or a new difference) shows up here until the list says so.
 */

const known = readKnown();
const files = recordFiles();
// the x86 records are checked in recorded-x86.test.ts (another worker: the checks are CPU-bound)
const arm64 = recordFiles(undefined, 'arm64');

describe('recorded kernel answers', () => {
  it('there are records for both arches, and every spec scenario has one on arm64', () => {
    const arm = files.filter((f) => f.includes('/arm64/')).map((f) => basename(f, '.json'));
    expect(arm.filter((id) => /^\d\d-/.test(id)).length).toBeGreaterThanOrEqual(26);
    expect(files.some((f) => f.includes('/x86/'))).toBe(true);
  });

  it('every entry of known-differences.json names a record that exists, and says why', () => {
    for (const [key, k] of Object.entries(known)) {
      expect(files.some((f) => f.endsWith(`${key}.json`)), key).toBe(true);
      expect(k.reason.length > 20 && k.reason !== UNEXPLAINED, `${key}: reason`).toBe(true);
    }
  });

  for (const file of arm64) {
    const key = recordKey(file);
    it(`${key}: the engine gives the kernel's answer`, () => {
      const rec = readRecord(file);
      expect(rec.kernel.release).toMatch(/^7\.2\.13\+deb14-(arm64|amd64)$/);
      const c = checkRecord(file);
      expect(c.stale, `${key}: the scenario changed since it was recorded: run foliolab oracle record`).toBe(false);
      for (const p of c.policies) {
        const lines = formatDifferences(p.differences);
        expect(lines, `${key} under ${p.policy}`).toEqual(known[key]?.policies[p.policy] ?? []);
      }
    }, 60_000);
  }
});
