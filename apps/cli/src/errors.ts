/*
 * Exit codes (issue 6): 0 ok, 1 a check failed (expectation, invariant,
 * equivalence, lost data), 2 bad input (scenario errors, bad flags, unknown
 * commands, exceeded limits, and an engine that is not available).
 */

export const EXIT_OK = 0;
export const EXIT_CHECK_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

export type ExitCode = typeof EXIT_OK | typeof EXIT_CHECK_FAILED | typeof EXIT_BAD_INPUT;

/** An error the CLI reports as one message (never a stack trace) with an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT_BAD_INPUT,
  ) {
    super(message);
  }
}

/** Thrown by the engine factory when @foliolab/unmap-engine cannot be loaded. */
export class EngineUnavailableError extends CliError {
  constructor(command: string) {
    super(
      `${command}: engine not available: @foliolab/unmap-engine could not be loaded (it has no entry point yet, or is not installed); ` +
        '`foliolab check` still validates scenarios without it',
      EXIT_BAD_INPUT,
    );
  }
}
