import { SCENARIO_SCHEMA, STATE_SCHEMA } from '@foliolab/scenario';
import { CliError, EXIT_OK } from './errors.js';
import type { Io } from './io.js';
import { PAGEOUT_SCHEMA } from './pageout.js';

/*
 * `foliolab schema scenario|state|pageout`: print a JSON Schema (the first
 * two live in @foliolab/scenario; `pageout` documents `pageout --json`).
 */

export const SCHEMAS: Readonly<Record<string, unknown>> = Object.freeze({
  scenario: SCENARIO_SCHEMA,
  state: STATE_SCHEMA,
  pageout: PAGEOUT_SCHEMA,
});

export function cmdSchema(io: Io, which: string): number {
  const schema = SCHEMAS[which];
  if (schema === undefined) throw new CliError(`schema: unknown schema ${JSON.stringify(which)}; one of ${Object.keys(SCHEMAS).join(', ')}`);
  io.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
  return EXIT_OK;
}
