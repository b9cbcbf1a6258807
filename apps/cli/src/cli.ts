import { FoliolabError } from '@foliolab/ledger';
import { ScenarioError } from '@foliolab/scenario';
import { Argument, Command, CommanderError, Option } from 'commander';
import { cmdCheck, type CheckFlags } from './cmd-check.js';
import { cmdCompare, type CompareFlags } from './cmd-compare.js';
import { cmdExplain, type ExplainFlags } from './cmd-explain.js';
import { cmdOracleCheck, cmdOracleFuzz, cmdOracleRecord, cmdOracleSetup, cmdOracleTranslate, type OracleFlags } from './cmd-oracle.js';
import { cmdPageout, type PageoutFlags } from './cmd-pageout.js';
import { cmdRace, type RaceFlags } from './cmd-race.js';
import { cmdRun, type RunFlags } from './cmd-run.js';
import { cmdSchema } from './cmd-schema.js';
import { CliError, EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK } from './errors.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

/*
 * The command line: commander parses, the cmd-*.ts modules do the work and
 * return an exit code, and every error becomes one message on stderr with
 * the right code — never a stack trace (FOLIOLAB_DEBUG=1 adds it for
 * internal errors only).
 */

const EXIT_HELP = `
Exit codes: 0 ok; 1 a check failed (expectation, invariant, equivalence, lost data); 2 bad input
(scenario errors as path:line:col: message, bad flags, unknown commands, limits, no engine).
--json prints machine-readable output only; NO_COLOR or a non-TTY stdout turns colour off.`;

function withOutput(cmd: Command): Command {
  return cmd.option('--json', 'machine-readable output only').option('--no-color', 'no ANSI colour (also NO_COLOR=1 or a non-TTY stdout)');
}

function withLimits(cmd: Command): Command {
  return cmd
    .option('--max-memory <size>', 'largest simulated memory (and swap) a scenario may ask for (default 4G)')
    .option('--max-steps <n>', 'most steps a scenario may have (default 100000)');
}

function buildProgram(io: Io, setCode: (c: number) => void): Command {
  const program = new Command('foliolab')
    .description('foliolab: an executable model of how Linux unmaps large anonymous folios')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .addHelpText('after', EXIT_HELP);

  withOutput(
    program
      .command('pageout')
      .description('the headline experiment: map, memset(0), MADV_PAGEOUT; events, modeled time and ratios per arch and policy')
      .option('--size <size>', 'bytes of anonymous memory to page out', '256M')
      .option('--folio <size>', 'mTHP folio size (4K = small folios)', '64K')
      .option('--arch <list>', 'arm64 | x86 | all, or a comma list of arm64-contpte, arm64-nocont, x86', 'all')
      .option('--policy <list>', 'per-pte | mainline | batched | all, or a comma list', 'all')
      .option('--max-memory <size>', 'largest simulated memory the run may use (default 4G)')
      .option('--tlbi-range', 'arm64 profiles: the CPU has FEAT_TLBIRANGE (range TLBIs)')
      .option('--verify', 'read the range back after the pageout; lost data fails the run (exit 1)')
      .option('--no-progress', 'no progress line on stderr'),
  ).action(async (opts: PageoutFlags) => setCode(await cmdPageout(io, opts)));

  withLimits(
    withOutput(
      program
        .command('run')
        .description('run a scenario: each step with its ledger delta and the expectations')
        .argument('<scenario>', 'scenario file (.yaml, .yml or .json)')
        .option('--policy <policy>', 'per-pte | mainline | batched (default: the scenario config, else mainline)')
        .option('--arch <arch>', 'arm64 | arm64-contpte | arm64-nocont | x86 (default: the scenario config)')
        .option('--trace <file>', 'write a Chrome/Perfetto trace-event file (open in ui.perfetto.dev)')
        .option('--dump <file>', 'write the final foliolab.state/v1 dump'),
    ),
  ).action(async (file: string, opts: RunFlags) => setCode(await cmdRun(io, file, opts)));

  withLimits(
    withOutput(
      program
        .command('compare')
        .description('run a scenario under all three policies: end-state diff and events side by side')
        .argument('<scenario>', 'scenario file')
        .option('--arch <arch>', 'arm64 | arm64-contpte | arm64-nocont | x86'),
    ),
  ).action(async (file: string, opts: CompareFlags) => setCode(await cmdCompare(io, file, opts)));

  withLimits(
    withOutput(
      program
        .command('explain')
        .description('what one step did to every PTE, folio counter and swap slot')
        .argument('<scenario>', 'scenario file')
        .requiredOption('--step <n>', 'the step index (0-based, as `run` numbers them)')
        .option('--pte <addr>', 'only this address (hex, or a name bound in the scenario like buf+4K)')
        .option('--policy <policy>', 'per-pte | mainline | batched')
        .option('--arch <arch>', 'arm64 | arm64-contpte | arm64-nocont | x86'),
    ),
  ).action(async (file: string, opts: ExplainFlags) => setCode(await cmdExplain(io, file, opts)));

  withLimits(
    withOutput(
      program
        .command('check')
        .description('load and validate scenario files (and the limits) without running them; no engine needed')
        .argument('<scenario...>', 'scenario files'),
    ),
  ).action((files: string[], opts: CheckFlags) => setCode(cmdCheck(io, files, opts)));

  withOutput(
    program
      .command('race')
      .description('the folio flag-race explorer (every interleaving, lost updates)')
      .option('--preset <name>', 'a built-in race (see --list)', 'partially-mapped')
      .option('--list', 'list the presets'),
  ).action((opts: RaceFlags) => setCode(cmdRace(io, opts)));

  const oracle = program
    .command('oracle')
    .description('the real Linux 7.2.13 as the answer key: record what it answers under QEMU, compare the engine with it');
  oracle
    .command('setup')
    .description('check the host tools (QEMU, C compilers) and fetch the Debian 7.2.13 kernels into the cache (one time; needs the network)')
    .option('--arch <arch>', 'arm64 | x86 | all', 'all')
    .action((opts: OracleFlags) => setCode(cmdOracleSetup(io, opts)));
  oracle
    .command('translate')
    .description('print the C program a scenario becomes in the guest')
    .argument('<scenario>', 'scenario file')
    .option('--arch <arch>', 'arm64 | x86 (default: the scenario config)')
    .action((file: string, opts: OracleFlags) => setCode(cmdOracleTranslate(io, file, opts)));
  oracle
    .command('record')
    .description('boot the real kernel under QEMU, run the scenarios, write its answers (needs `oracle setup`)')
    .argument('<scenario...>', 'scenario files')
    .option('--arch <arch>', 'arm64 | x86 | all (default: each scenario config)')
    .option('--out <dir>', 'where the records go (default: the kernel-oracle package recorded/ directory)')
    .option('--batch <n>', 'scenarios per boot (default 40)')
    .option('--repeat <n>', 'boots per batch, the second in reverse order; what they disagree on is marked unstable (default 2)')
    .option('--no-trace', "do not count the kernel's own calls per step (ftrace; compared with the engine's ledger under mainline)")
    .option('--verbose', 'echo the guest console on stderr')
    .action(async (files: string[], opts: OracleFlags) => setCode(await cmdOracleRecord(io, files, opts)));
  withOutput(
    oracle
      .command('check')
      .description('compare the engine with recorded kernel answers (default: every shipped record); no QEMU needed')
      .argument('[record...]', 'record files (.json)')
      .option('--arch <arch>', 'arm64 | x86 | all')
      .option('--update-known', "rewrite recorded/known-differences.json for these records (keeps the reasons; a new entry needs one)"),
  ).action((files: string[], opts: OracleFlags) => setCode(cmdOracleCheck(io, files, opts)));

  withOutput(
    oracle
      .command('fuzz')
      .description('random scenarios through the real kernel (QEMU), each compared with the engine; every mismatch kept as a ready-to-run YAML')
      .option('--count <n>', 'scenarios', '100')
      .option('--seed <n>', 'first seed (scenario i uses seed + i)', '1')
      .option('--arch <arch>', 'arm64 | x86', 'arm64')
      .option('--batch <n>', 'scenarios per boot', '50')
      .option('--out <dir>', 'where scenarios, records and summary.json go (default ./oracle-fuzz-<arch>-<seed>)'),
  ).action(async (opts: OracleFlags) => setCode(await cmdOracleFuzz(io, opts)));

  program
    .command('schema')
    .description('print a JSON Schema: the scenario format, the state dump, or pageout --json')
    .addArgument(new Argument('<which>', 'scenario | state | pageout').choices(['scenario', 'state', 'pageout']))
    .addOption(new Option('--json', 'accepted for symmetry: the output is JSON anyway'))
    .action((which: string) => setCode(cmdSchema(io, which)));

  return program;
}

function errorCode(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // commander has already printed its message (or the help / version)
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT_OK;
    if (e.code === 'commander.help') return e.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    return EXIT_BAD_INPUT;
  }
  if (e instanceof ScenarioError) {
    io.stderr.write(`${e.message}\n`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof CliError) {
    io.stderr.write(`foliolab: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof FoliolabError) {
    io.stderr.write(`foliolab: ${e.message}\n`);
    return EXIT_BAD_INPUT;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(`foliolab: internal error: ${msg}\n`);
  if (io.env.FOLIOLAB_DEBUG && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
  return EXIT_CHECK_FAILED;
}

/** Run the CLI on `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  let code: number = EXIT_OK;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    return errorCode(e, io);
  }
}
