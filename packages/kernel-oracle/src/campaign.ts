import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseScenario, randomScenario, scenarioYaml } from '@foliolab/scenario';
import type { Policy } from '@foliolab/unmap-engine';
import { checkRecord } from './check.js';
import { formatDifferences } from './compare.js';
import { recordScenarios, writeRecord, type RecordInput } from './record.js';
import type { OracleArch } from './types.js';

/*
 * A campaign: random scenarios (randomScenario, the same generator the
 * fuzzer uses) through the real kernel, each compared with the engine. Every
 * scenario is kept as a ready-to-run YAML file next to its record, so a
 * mismatch is one `foliolab oracle check <record>` (or `foliolab run`) away.
 */

export interface CampaignOptions {
  count: number;
  seed: number;
  arch: OracleArch;
  outDir: string;
  /** Scenarios per boot (default 50). */
  batch?: number;
  /** Policies compared (default: mainline only — the kernel is mainline). */
  policies?: Policy[];
  log?: (s: string) => void;
}

export interface CampaignMismatch {
  id: string;
  scenario: string;
  record: string;
  policy: Policy;
  differences: string[];
}

export interface CampaignResult {
  arch: OracleArch;
  seeds: [number, number];
  scenarios: number;
  /** Scenarios whose every recorded step matched under every compared policy. */
  matched: number;
  mismatched: CampaignMismatch[];
  /** Scenarios the guest did not run to their end (with why). */
  problems: { id: string; problem: string }[];
  /** Recorded steps, and scenarios the translation stopped early (a step user space cannot make). */
  steps: number;
  stoppedEarly: number;
  boots: { wallMs: number; scenarios: number }[];
  wallMs: number;
}

/** Run a campaign; writes scenarios/, records/ and summary.json under outDir. */
export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const scenDir = join(o.outDir, 'scenarios');
  const recDir = join(o.outDir, 'records');
  mkdirSync(scenDir, { recursive: true });
  const inputs: RecordInput[] = [];
  for (let i = 0; i < o.count; i++) {
    const seed = o.seed + i;
    const id = `random-${seed}`;
    const file = join(scenDir, `${id}.yaml`);
    const text = scenarioYaml(randomScenario(seed, { arch: o.arch === 'x86' ? 'x86' : 'arm64-contpte' }));
    writeFileSync(file, text);
    inputs.push({ file, scenario: parseScenario(text, file), id });
  }
  log(`${inputs.length} scenarios in ${scenDir}`);
  const rec = await recordScenarios(inputs, { arch: o.arch, batch: o.batch ?? 50, log, trace: true });
  const res: CampaignResult = {
    arch: o.arch,
    seeds: [o.seed, o.seed + o.count - 1],
    scenarios: inputs.length,
    matched: 0,
    mismatched: [],
    problems: rec.problems,
    steps: 0,
    stoppedEarly: 0,
    boots: rec.boots.map((b) => ({ wallMs: b.wallMs, scenarios: b.scenarios })),
    wallMs: 0,
  };
  for (const { id, record } of rec.records) {
    const path = writeRecord(recDir, record, id);
    res.steps += record.steps.length;
    if (record.translation.stop !== null) res.stoppedEarly++;
    const c = checkRecord(path, o.policies ?? ['mainline']);
    const bad = c.policies.filter((p) => p.differences.length > 0);
    if (bad.length === 0) res.matched++;
    for (const p of bad) res.mismatched.push({ id, scenario: join(scenDir, `${id}.yaml`), record: path, policy: p.policy, differences: formatDifferences(p.differences) });
  }
  res.wallMs = Date.now() - t0;
  writeFileSync(join(o.outDir, 'summary.json'), `${JSON.stringify(res, null, 1)}\n`);
  return res;
}
