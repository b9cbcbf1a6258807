import {
  defaultEngineFactory,
  engineAvailable,
  type AllowedDifference,
  type EngineConfig,
  type EngineFactory,
  type EngineLike,
} from '@foliolab/scenario';
import { EngineUnavailableError } from './errors.js';

/*
 * Binding the engine lazily. `@foliolab/unmap-engine` is imported with a
 * dynamic import inside the commands that need it, so `race`, `schema` and
 * every scenario-loading error work without it, and the CLI picks the engine
 * up the moment the package has an entry point (in the workspace the bundler
 * resolves it to source; installed, to its dist). If the import fails, the
 * scenario package's own binding (`engineAvailable` / `defaultEngineFactory`)
 * is the fallback; if neither exists, commands fail with "engine not
 * available" and exit code 2.
 */

export interface EngineBinding {
  /** Where the engine came from (for --version-like diagnostics). */
  readonly source: string;
  readonly factory: EngineFactory;
  /** The engine's ALLOWED_DIFFERENCES table ([] when it exports none). */
  readonly allowedDifferences: readonly AllowedDifference[];
}

let cached: Promise<EngineBinding | null> | undefined;

async function importEngine(): Promise<unknown> {
  try {
    // The engine package may not have an entry point yet: then this import
    // (and its type) does not resolve. The try block makes esbuild leave an
    // unresolvable import to run time, where it throws and is caught.
    // eslint-disable-next-line @typescript-eslint/ban-ts-comment
    // @ts-ignore -- resolves only once @foliolab/unmap-engine has src/index.ts
    const mod: unknown = await import('@foliolab/unmap-engine');
    return mod;
  } catch {
    return undefined;
  }
}

function isAllowedTable(v: unknown): v is AllowedDifference[] {
  return Array.isArray(v) && v.every((r) => r !== null && typeof r === 'object' && typeof (r as AllowedDifference).path === 'string');
}

async function bind(): Promise<EngineBinding | null> {
  const mod = (await importEngine()) as { Engine?: unknown; ALLOWED_DIFFERENCES?: unknown } | undefined;
  if (mod !== undefined && typeof mod.Engine === 'function') {
    const Ctor = mod.Engine as new (config: EngineConfig) => EngineLike;
    return {
      source: '@foliolab/unmap-engine',
      factory: (config) => new Ctor(config),
      allowedDifferences: isAllowedTable(mod.ALLOWED_DIFFERENCES) ? mod.ALLOWED_DIFFERENCES : [],
    };
  }
  if (engineAvailable) return { source: '@foliolab/scenario defaultEngineFactory', factory: defaultEngineFactory, allowedDifferences: [] };
  return null;
}

/** The engine binding, or null when no engine can be loaded (memoised). */
export function loadEngine(): Promise<EngineBinding | null> {
  return (cached ??= bind());
}

/** The engine binding; EngineUnavailableError (exit 2) naming `command` when there is none. */
export async function requireEngine(command: string): Promise<EngineBinding> {
  const b = await loadEngine();
  if (b === null) throw new EngineUnavailableError(command);
  return b;
}

/**
 * An engine factory for runs that may not need an engine to fail: loading
 * and limit errors are reported by the runner before it calls the factory,
 * so bad input exits 2 with its own message even without an engine.
 */
export function factoryOrUnavailable(binding: EngineBinding | null, command: string): EngineFactory {
  if (binding !== null) return binding.factory;
  return () => {
    throw new EngineUnavailableError(command);
  };
}
