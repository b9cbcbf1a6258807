import { isAbsolute, resolve } from 'node:path';

/*
 * Where the CLI writes and how it styles text. Commands never touch
 * `process` directly: they get an Io, so tests can run `main()` in-process
 * and the rules for colour live in one place.
 */

/** A text sink (process.stdout / stderr, or a buffer in tests). */
export interface Sink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface Io {
  readonly stdout: Sink;
  readonly stderr: Sink;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The directory relative paths on the command line are relative to. */
  readonly cwd: string;
}

/**
 * The Io of this process. Run through the workspace script (`pnpm foliolab`,
 * which pnpm starts with cwd = apps/cli), relative paths are the user's: pnpm
 * keeps the directory it was started in as INIT_CWD.
 */
export function processIo(env: Io['env'] = process.env, cwd: string = process.cwd()): Io {
  const viaScript = env.npm_lifecycle_event === 'foliolab' && env.INIT_CWD !== undefined && env.INIT_CWD !== '';
  return { stdout: process.stdout, stderr: process.stderr, env, cwd: viaScript ? env.INIT_CWD! : cwd };
}

/** A user path, resolved against the Io's cwd. */
export function userPath(io: Io, p: string): string {
  return isAbsolute(p) ? p : resolve(io.cwd, p);
}

/** ANSI styling that is a no-op when colour is off. */
export interface Style {
  readonly enabled: boolean;
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly red: (s: string) => string;
  readonly green: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly cyan: (s: string) => string;
}

const wrap =
  (on: boolean, open: number, close: number) =>
  (s: string): string =>
    on ? `\u001b[${open}m${s}\u001b[${close}m` : s;

/** Styling for a sink: off for non-TTY output, NO_COLOR (any non-empty value) or --no-color; FORCE_COLOR turns it on. */
export function styleFor(sink: Sink, env: Io['env'], colorFlag = true): Style {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  const force = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0';
  const on = colorFlag && !noColor && (force || sink.isTTY === true);
  return {
    enabled: on,
    bold: wrap(on, 1, 22),
    dim: wrap(on, 2, 22),
    red: wrap(on, 31, 39),
    green: wrap(on, 32, 39),
    yellow: wrap(on, 33, 39),
    cyan: wrap(on, 36, 39),
  };
}

/** Visible length of a string (ANSI escapes removed). */
export function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '').length;
}

/** Progress on stderr for long runs: only on a TTY, one line rewritten in place. */
export interface Progress {
  update(text: string): void;
  done(): void;
}

export function progressFor(io: Io, enabled: boolean): Progress {
  const on = enabled && io.stderr.isTTY === true;
  let shown = false;
  return {
    update(text) {
      if (!on) return;
      io.stderr.write(`\r\u001b[2K${text}`);
      shown = true;
    },
    done() {
      if (on && shown) io.stderr.write('\r\u001b[2K');
      shown = false;
    },
  };
}
