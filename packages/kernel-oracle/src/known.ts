import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { formatDifferences } from './compare.js';
import type { RecordCheck } from './check.js';
import { recordedDir } from './check.js';

/*
 * recorded/known-differences.json: where the engine still does not give the kernel's answer, the
 * exact difference lines per record and policy, with why. The recorded test asserts exactly these
 * lines, so a fix or a new difference shows up until the list is updated (`foliolab oracle check
 * --update-known`), and an entry without a reason fails it.
 */

export interface KnownDifference {
  reason: string;
  policies: Record<string, string[]>;
}

/** The placeholder reason `--update-known` writes for a new entry; the recorded test refuses it. */
export const UNEXPLAINED = '(not explained yet: say why the engine differs, with the kernel function)';

export function knownFile(dir: string = recordedDir()): string {
  return join(dir, 'known-differences.json');
}

/** Record key: <arch>/<id>. */
export function recordKey(file: string): string {
  return `${file.includes('/x86/') ? 'x86' : 'arm64'}/${basename(file, '.json')}`;
}

export function readKnown(file: string = knownFile()): Record<string, KnownDifference> {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, KnownDifference>) : {};
}

/** Rewrite the entries of the checked records from their current differences; keeps the reasons. */
export function updateKnown(checks: readonly RecordCheck[], file: string = knownFile()): { added: string[]; removed: string[]; changed: string[] } {
  const known = readKnown(file);
  const res = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
  for (const c of checks) {
    const key = recordKey(c.file);
    const policies: Record<string, string[]> = {};
    for (const p of c.policies) if (p.differences.length > 0) policies[p.policy] = formatDifferences(p.differences);
    const before = known[key];
    if (Object.keys(policies).length === 0) {
      if (before !== undefined) {
        delete known[key];
        res.removed.push(key);
      }
      continue;
    }
    if (before === undefined) res.added.push(key);
    else if (JSON.stringify(before.policies) !== JSON.stringify(policies)) res.changed.push(key);
    known[key] = { reason: before?.reason ?? UNEXPLAINED, policies };
  }
  const sorted = Object.fromEntries(Object.entries(known).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(file, `${JSON.stringify(sorted, null, 1)}\n`);
  return res;
}
