/**
 * The one error class foliolab packages throw for misuse of an API (bad
 * argument, impossible state). `code` is stable for programs; `message` names
 * the function and the offending values for people.
 */
export class FoliolabError extends Error {
  override readonly name = 'FoliolabError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** Throw a FoliolabError unless `cond` holds. */
export function check(cond: boolean, code: string, message: string, details?: Record<string, unknown>): asserts cond {
  if (!cond) throw new FoliolabError(code, message, details);
}
