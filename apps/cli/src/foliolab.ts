import { main } from './cli.js';
import { processIo } from './io.js';

// The `foliolab` binary: parse, run, and leave the exit code to Node (so stdout drains first).
process.exitCode = await main(process.argv.slice(2), processIo());
