import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { loadScenarioFile } from '@foliolab/scenario';
import type { Policy } from '@foliolab/unmap-engine';
import { compareObservations, notAllowedFor, type Difference } from './compare.js';
import { OracleError } from './errors.js';
import { packageDir } from './package-dir.js';
import { fileSha256, readRecord, repoRoot } from './record.js';
import { translateScenario } from './translate.js';
import type { OracleArch, OracleRecord } from './types.js';

/*
 * Checking: the engine runs each recorded scenario again and its answers are
 * compared with the kernel's. `mainline` (= 7.2.13) must match on every
 * observable; `per-pte` and `batched` may differ only as ALLOWED_DIFFERENCES
 * says. A record whose scenario file changed since it was recorded is stale.
 */

/** The records shipped with the package: recorded/<arch>/*.json. */
export function recordedDir(): string {
  return join(packageDir(), 'recorded');
}

/** Record files under a directory (recursively by arch), sorted. */
export function recordFiles(dir: string = recordedDir(), arch?: OracleArch): string[] {
  const out: string[] = [];
  for (const a of arch !== undefined ? [arch] : ['arm64', 'x86']) {
    const d = join(dir, a);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort()) if (f.endsWith('.json')) out.push(join(d, f));
  }
  return out;
}

export interface PolicyCheck {
  policy: Policy;
  /** Differences from the kernel's answer that the policy may not have. */
  differences: Difference[];
}

export interface RecordCheck {
  file: string;
  record: OracleRecord;
  stale: boolean;
  /** Steps the kernel answered. */
  steps: number;
  policies: PolicyCheck[];
}

/**
 * The file of a record's scenario (stored relative to the repository root): in the repository, or —
 * for an installed package, where there is no repository — in the installed @foliolab/<name>
 * package that ships it (packages/scenario/scenarios/… → @foliolab/scenario/scenarios/…).
 */
export function scenarioPath(rel: string): string | null {
  const inRepo = resolve(repoRoot(), rel);
  if (existsSync(inRepo)) return inRepo;
  const m = /^packages\/([a-z0-9-]+)\/(.+)$/.exec(rel);
  if (m === null) return null;
  try {
    const dir = dirname(createRequire(import.meta.url).resolve(`@foliolab/${m[1]}/package.json`));
    const p = join(dir, m[2]!);
    return existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** Compare one record with the engine under each policy. */
export function checkRecord(file: string, policies: readonly Policy[] = ['mainline', 'per-pte', 'batched']): RecordCheck {
  const record = readRecord(file);
  const scenarioFile = scenarioPath(record.scenario);
  if (scenarioFile === null) throw new OracleError('ESTALE', `${file}: its scenario ${record.scenario} does not exist`);
  const stale = fileSha256(scenarioFile) !== record.sha256;
  const scenario = loadScenarioFile(scenarioFile);
  const mapcounts = scenario.config?.mapcountMode !== 'mm_id';
  const out: PolicyCheck[] = [];
  for (const policy of policies) {
    const t = translateScenario(scenario, { arch: record.arch, policy });
    const unstable = new Set((record.unstable ?? []).map((u) => `${u.step} ${u.where} ${u.field}`));
    const diffs = compareObservations(record.steps, t.engine, { mapcounts, calls: policy === 'mainline' }).filter((d) => !unstable.has(`${d.step} ${d.where} ${d.field}`));
    out.push({ policy, differences: notAllowedFor(policy, diffs) });
  }
  return { file, record, stale, steps: record.steps.length, policies: out };
}
