import { describe, expect, it } from 'vitest';
import { checkRecord, formatDifferences, readKnown, readRecord, recordFiles, recordKey } from './index.js';

/* The x86-64 records against the engine, as recorded.test.ts does for arm64. */

const known = readKnown();

describe('recorded kernel answers (x86-64)', () => {
  for (const file of recordFiles(undefined, 'x86')) {
    const key = recordKey(file);
    it(`${key}: the engine gives the kernel's answer`, () => {
      expect(readRecord(file).kernel.release).toBe('7.2.13+deb14-amd64');
      const c = checkRecord(file);
      expect(c.stale, `${key}: the scenario changed since it was recorded: run foliolab oracle record`).toBe(false);
      for (const p of c.policies) expect(formatDifferences(p.differences), `${key} under ${p.policy}`).toEqual(known[key]?.policies[p.policy] ?? []);
    }, 60_000);
  }
});
