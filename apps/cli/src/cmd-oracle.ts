import { basename } from 'node:path';
import {
  checkRecord,
  cSource,
  fetchKernel,
  formatDifferences,
  loadInputs,
  missingTools,
  ORACLE_ARCHES,
  oracleArchOf,
  recordedDir,
  recordFiles,
  readKnown,
  recordKey,
  recordScenarios,
  runCampaign,
  updateKnown,
  translateScenario,
  writeRecord,
  type OracleArch,
  type RecordCheck,
  type RecordInput,
} from '@foliolab/kernel-oracle';
import { CliError, EXIT_CHECK_FAILED, EXIT_OK } from './errors.js';
import { styleFor, userPath, type Io } from './io.js';
import { loadScenarioArg } from './scenario-args.js';

/*
 * `foliolab oracle …`: the real kernel as the answer key. `record` boots
 * Linux 7.2.13 under QEMU and writes what it answers (opt-in: it needs QEMU,
 * a C compiler and the one-time `oracle setup`); `check` compares the engine
 * with the recorded answers and needs nothing but Node; `translate` prints
 * the C program a scenario becomes.
 */

export interface OracleFlags {
  arch?: string;
  count?: string;
  seed?: string;
  repeat?: string;
  updateKnown?: boolean;
  out?: string;
  batch?: string;
  verbose?: boolean;
  trace?: boolean;
  json?: boolean;
  color?: boolean;
}

function archesOf(v: string | undefined, fallback: OracleArch[], command: string): OracleArch[] {
  if (v === undefined) return fallback;
  if (v === 'all') return [...ORACLE_ARCHES];
  if (v === 'x86-64' || v === 'amd64') return ['x86'];
  if (!ORACLE_ARCHES.includes(v as OracleArch)) throw new CliError(`${command}: --arch ${JSON.stringify(v)} is not one of arm64, x86, all`);
  return [v as OracleArch];
}

function inputsOf(io: Io, files: readonly string[]): RecordInput[] {
  const typed = new Map(files.map((f) => [userPath(io, f), f]));
  return loadInputs([...typed.keys()], (abs) => loadScenarioArg(io, typed.get(abs)!));
}

/** `oracle setup`: what the host lacks, then fetch and unpack the kernels. */
export function cmdOracleSetup(io: Io, flags: OracleFlags): number {
  const arches = archesOf(flags.arch, [...ORACLE_ARCHES], 'oracle setup');
  let missing = false;
  for (const a of arches) {
    const m = missingTools(a);
    if (m.missing.length > 0) {
      missing = true;
      io.stderr.write(`oracle setup: the ${a} oracle needs ${m.missing.join(', ')}; as root:\n  ${m.install}\n`);
    }
  }
  if (missing) return EXIT_CHECK_FAILED;
  for (const a of arches) {
    const t = fetchKernel(a, (s) => io.stderr.write(`${s}\n`));
    io.stdout.write(`${a}: ${t.package} (${t.release}) ready\n`);
  }
  return EXIT_OK;
}

/** `oracle translate <scenario>`: the C program. */
export function cmdOracleTranslate(io: Io, file: string, flags: OracleFlags): number {
  const [inp] = inputsOf(io, [file]);
  const arch = archesOf(flags.arch, [oracleArchOf(inp!.scenario)], 'oracle translate')[0]!;
  const t = translateScenario(inp!.scenario, { arch, id: inp!.id });
  io.stdout.write(cSource(t.program));
  if (t.program.stop !== null) io.stderr.write(`oracle translate: stops before step ${t.program.stop.step}: ${t.program.stop.reason}\n`);
  return EXIT_OK;
}

/** `oracle record <scenario...>`: boot the kernel and write its answers. */
export async function cmdOracleRecord(io: Io, files: readonly string[], flags: OracleFlags): Promise<number> {
  const inputs = inputsOf(io, files);
  const out = flags.out !== undefined ? userPath(io, flags.out) : recordedDir();
  const batch = flags.batch === undefined ? undefined : Number(flags.batch);
  if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw new CliError(`oracle record: --batch ${flags.batch} must be a positive integer`);
  let problems = 0;
  const byArch = new Map<OracleArch, RecordInput[]>();
  for (const inp of inputs) for (const a of archesOf(flags.arch, [oracleArchOf(inp.scenario)], 'oracle record')) byArch.set(a, [...(byArch.get(a) ?? []), inp]);
  for (const [arch, list] of byArch) {
    const r = await recordScenarios(list, {
      arch,
      ...(batch !== undefined ? { batch } : {}),
      log: (s) => io.stderr.write(`${s}\n`),
      ...(flags.verbose === true ? { onLine: (l: string) => io.stderr.write(`${l}\n`) } : {}),
      trace: flags.trace !== false,
      repeat: intFlag(flags.repeat, 'repeat', 2, 'oracle record'),
    });
    for (const { id, record: rec } of r.records) {
      const p = writeRecord(out, rec, id);
      io.stdout.write(`${arch} ${id}: ${rec.steps.length} steps${rec.unstable.length > 0 ? `, ${rec.unstable.length} unstable field(s)` : ''}${rec.translation.stop !== null ? ` (stops before step ${rec.translation.stop.step}: ${rec.translation.stop.reason})` : ''} → ${p}\n`);
    }
    for (const b of r.boots) io.stderr.write(`${arch}: boot of ${b.scenarios} scenario(s) took ${(b.wallMs / 1000).toFixed(1)} s${b.timedOut ? ' (timed out)' : ''}\n`);
    for (const p of r.problems) {
      problems++;
      io.stderr.write(`${arch} ${p.id}: ${p.problem}\n`);
    }
  }
  return problems === 0 ? EXIT_OK : EXIT_CHECK_FAILED;
}

function checkJson(c: RecordCheck): unknown {
  return {
    file: c.file,
    scenario: c.record.scenario,
    arch: c.record.arch,
    stale: c.stale,
    steps: c.steps,
    stop: c.record.translation.stop,
    policies: Object.fromEntries(c.policies.map((p) => [p.policy, p.differences])),
  };
}

/** `oracle check [record...]`: the engine against the recorded answers. */
export function cmdOracleCheck(io: Io, files: readonly string[], flags: OracleFlags): number {
  const arch = flags.arch === undefined ? undefined : archesOf(flags.arch, [], 'oracle check');
  const list = files.length > 0 ? files.map((f) => userPath(io, f)) : (arch ?? ORACLE_ARCHES).flatMap((a) => recordFiles(recordedDir(), a));
  if (list.length === 0) throw new CliError('oracle check: no records (record some with `foliolab oracle record`)');
  const checks = list.map((f) => checkRecord(f));
  if (flags.updateKnown === true) {
    const u = updateKnown(checks);
    io.stderr.write(`known-differences.json: ${u.added.length} added, ${u.changed.length} changed, ${u.removed.length} removed${u.added.length > 0 ? ` (say why for: ${u.added.join(', ')})` : ''}\n`);
  }
  // a record whose differences are exactly those known-differences.json lists (with why) is "known", not a failure
  const known = readKnown();
  const isKnown = (c: RecordCheck): boolean => {
    const k = known[recordKey(c.file)];
    return k !== undefined && c.policies.every((p) => JSON.stringify(formatDifferences(p.differences)) === JSON.stringify(k.policies[p.policy] ?? []));
  };
  const differing = checks.filter((c) => c.policies.some((p) => p.differences.length > 0));
  const bad = checks.filter((c) => c.stale || (c.policies.some((p) => p.differences.length > 0) && !isKnown(c)));
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify({ schema: 'foliolab.oracle-check/v1', ok: bad.length === 0, records: checks.map((c) => ({ ...(checkJson(c) as object), known: isKnown(c) ? known[recordKey(c.file)]!.reason : null })) }, null, 2)}\n`);
    return bad.length === 0 ? EXIT_OK : EXIT_CHECK_FAILED;
  }
  const st = styleFor(io.stdout, io.env, flags.color !== false);
  for (const c of checks) {
    const name = `${c.record.arch} ${basename(c.file, '.json')}`;
    const stop = c.record.translation.stop !== null ? st.dim(` (kernel answers up to step ${c.record.translation.stop.step}: ${c.record.translation.stop.reason})`) : '';
    const failing = c.policies.filter((p) => p.differences.length > 0);
    if (!c.stale && failing.length === 0) {
      io.stdout.write(`${st.green('match')} ${name}: ${c.steps} steps, every policy${stop}\n`);
      continue;
    }
    if (!c.stale && isKnown(c)) {
      io.stdout.write(`${st.yellow('known')} ${name}: ${failing.map((p) => `${p.policy} ${p.differences.length}`).join(', ')} difference(s), as known-differences.json says: ${known[recordKey(c.file)]!.reason}\n`);
      continue;
    }
    io.stdout.write(`${st.red('differ')} ${name}${c.stale ? st.yellow(' (stale: the scenario changed since it was recorded)') : ''}${stop}\n`);
    for (const p of failing) {
      const lines = formatDifferences(p.differences);
      io.stdout.write(`  ${p.policy}: ${lines.length} difference(s)\n`);
      for (const l of lines.slice(0, 20)) io.stdout.write(`    ${l}\n`);
      if (lines.length > 20) io.stdout.write(`    … ${lines.length - 20} more (--json for all)\n`);
    }
  }
  const knownN = checks.filter((c) => !c.stale && differing.includes(c) && isKnown(c)).length;
  io.stdout.write(`${checks.length} record(s): ${checks.length - differing.length} match the engine, ${knownN} differ as known-differences.json says, ${bad.length} otherwise\n`);
  return bad.length === 0 ? EXIT_OK : EXIT_CHECK_FAILED;
}

function intFlag(v: string | undefined, name: string, dflt: number, command: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`${command}: --${name} ${JSON.stringify(v)} must be a non-negative integer`);
  return n;
}

/** `oracle fuzz`: random scenarios through the real kernel, each compared with the engine. */
export async function cmdOracleFuzz(io: Io, flags: OracleFlags): Promise<number> {
  const arch = archesOf(flags.arch, ['arm64'], 'oracle fuzz');
  if (arch.length !== 1) throw new CliError('oracle fuzz: one --arch at a time');
  const count = intFlag(flags.count, 'count', 100, 'oracle fuzz');
  const seed = intFlag(flags.seed, 'seed', 1, 'oracle fuzz');
  const batch = intFlag(flags.batch, 'batch', 50, 'oracle fuzz');
  if (count < 1 || batch < 1) throw new CliError('oracle fuzz: --count and --batch must be at least 1');
  const outDir = userPath(io, flags.out ?? `oracle-fuzz-${arch[0]}-${seed}`);
  const r = await runCampaign({ count, seed, arch: arch[0]!, batch, outDir, log: (s) => io.stderr.write(`${s}\n`) });
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  } else {
    for (const m of r.mismatched) {
      io.stdout.write(`mismatch ${m.id} (${m.policy}): ${m.scenario}\n`);
      for (const l of m.differences.slice(0, 10)) io.stdout.write(`  ${l}\n`);
    }
    for (const p of r.problems) io.stdout.write(`problem ${p.id}: ${p.problem}\n`);
    const boot = r.boots.reduce((a, b) => a + b.wallMs, 0);
    io.stdout.write(
      `${r.matched} of ${r.scenarios} scenarios (${r.steps} steps; ${r.stoppedEarly} stop early at a step user space cannot make) match the kernel on ${arch[0]}; ` +
        `${r.mismatched.length} mismatch(es), ${r.problems.length} guest problem(s); ${r.boots.length} boot(s), ${(boot / 1000).toFixed(1)} s in QEMU, ${(r.wallMs / 1000).toFixed(1)} s in all; ${outDir}/summary.json\n`,
    );
  }
  return r.mismatched.length === 0 && r.problems.length === 0 ? EXIT_OK : EXIT_CHECK_FAILED;
}
