import { readFileSync } from 'node:fs';
import {
  ARCH_NAMES,
  parseScenario,
  parseSize,
  POLICIES,
  ScenarioError,
  type ArchName,
  type Policy,
  type RunOptions,
  type Scenario,
} from '@foliolab/scenario';
import { CliError } from './errors.js';
import { userPath, type Io } from './io.js';

/*
 * The arguments every scenario command shares: the file (read relative to
 * the user's directory, but named in messages exactly as typed), one policy,
 * one arch profile, and the limits.
 */

/** Load and validate a scenario file; ScenarioError (exit 2, `path:line:col: message` lines) on any problem. */
export function loadScenarioArg(io: Io, file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(userPath(io, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ScenarioError([{ file, line: 0, col: 0, message: `cannot read the file: ${code}` }]);
  }
  return parseScenario(text, file);
}

export function parsePolicy(v: string | undefined, command: string): Policy | undefined {
  if (v === undefined) return undefined;
  if (!POLICIES.includes(v as Policy)) throw new CliError(`${command}: --policy ${JSON.stringify(v)} is not one of ${POLICIES.join(', ')}`);
  return v as Policy;
}

export function parseArch(v: string | undefined, command: string): ArchName | undefined {
  if (v === undefined) return undefined;
  if (v === 'arm64') return 'arm64-contpte';
  if (!ARCH_NAMES.includes(v as ArchName)) throw new CliError(`${command}: --arch ${JSON.stringify(v)} is not one of arm64, ${ARCH_NAMES.join(', ')}`);
  return v as ArchName;
}

export interface LimitFlags {
  maxMemory?: string;
  maxSteps?: string;
}

/** --max-memory SIZE and --max-steps N → runner limits; CliError naming the flag otherwise. */
export function parseLimits(o: LimitFlags, command: string): RunOptions['limits'] {
  const limits: NonNullable<RunOptions['limits']> = {};
  if (o.maxMemory !== undefined) {
    try {
      limits.maxMemory = parseSize(o.maxMemory);
    } catch (e) {
      throw new CliError(`${command}: --max-memory ${JSON.stringify(o.maxMemory)}: ${(e as Error).message.replace(/^parseSize: /, '')}`);
    }
    if (limits.maxMemory < 2 * 2 ** 20) throw new CliError(`${command}: --max-memory ${o.maxMemory} is below the smallest simulated memory (2M)`);
  }
  if (o.maxSteps !== undefined) {
    const n = Number(o.maxSteps);
    if (!/^\d+$/.test(o.maxSteps) || !Number.isSafeInteger(n) || n < 1) {
      throw new CliError(`${command}: --max-steps ${JSON.stringify(o.maxSteps)} must be a positive integer`);
    }
    limits.maxSteps = n;
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}
