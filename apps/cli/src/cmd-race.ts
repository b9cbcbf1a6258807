import { RACE_PRESETS, racePreset, runRacePreset, type RacePreset, type RaceReport } from '@foliolab/folio-flags';
import { CliError, EXIT_OK } from './errors.js';
import { styleFor, type Io, type Style } from './io.js';
import { renderTable } from './table.js';

/*
 * `foliolab race [--preset NAME]`: the flag-race explorer of folio-flags
 * (seed 004), rendered: the CPU programs, how many interleavings exist and
 * how many lose an update, each reachable final flag word, and the first
 * losing interleaving step by step. Exploring is not a check: a preset that
 * shows the pre-fix lost update exits 0.
 */

export interface RaceFlags {
  preset?: string;
  list?: boolean;
  json?: boolean;
  color?: boolean;
}

/** The report of one preset as text (no trailing newline). */
export function renderRace(preset: RacePreset, r: RaceReport, st: Style): string {
  const lines = [st.bold(`${preset.name}: ${preset.title}`), `  ${preset.description}`, st.dim(`  source: ${preset.source}`), ''];
  lines.push(`folio: order ${r.folio.order} at pfn ${r.folio.head}; words of page(s) ${r.pages.map((p) => `[${p}]`).join(' ')}`);
  for (const c of r.cpus) {
    lines.push(`  cpu${c.cpu}: ${c.ops.map((o) => `${o.label}${o.steps > 1 ? st.dim(' (non-atomic: load, store)') : ''}`).join('; ')}`);
  }
  const verdict =
    r.losing === 0
      ? st.green('no interleaving loses an update')
      : st.red(`${r.losing} of ${r.interleavings} interleaving(s) lose an update: ${r.lostFlags.map((f) => `PG_${f}`).join(', ')}`);
  lines.push('', `interleavings: ${r.interleavings}; ${verdict}`, '');
  const rows = r.outcomes.map((o, i) => [
    String(i + 1),
    String(o.count),
    o.losing > 0 ? st.red(String(o.losing)) : '0',
    o.flags.map((f, j) => `page[${r.pages[j]}]: ${f.join(' ') || '(none)'}`).join('  '),
  ]);
  lines.push(renderTable(['outcome', 'runs', 'losing', 'final flag words'], rows, { indent: '  ', align: ['right', 'right', 'right', 'left'], rule: st.dim }));
  const first = r.runs.find((x) => x.lost.length > 0);
  if (first !== undefined) {
    lines.push('', `first losing interleaving (#${first.index}):`);
    for (const s of first.steps) lines.push(`  ${s}`);
    for (const l of first.lost) {
      lines.push(st.red(`  lost: cpu${l.cpu}'s ${l.change} of PG_${l.flag} on page[${l.page}] (${l.op}) overwritten by cpu${l.byCpu}'s stale store (${l.byOp})`));
    }
  }
  return lines.join('\n');
}

export function cmdRace(io: Io, flags: RaceFlags): number {
  const st = styleFor(io.stdout, io.env, flags.color !== false);
  if (flags.list === true) {
    if (flags.json === true) io.stdout.write(`${JSON.stringify(RACE_PRESETS.map((p) => ({ name: p.name, title: p.title })), null, 2)}\n`);
    else io.stdout.write(`${RACE_PRESETS.map((p) => `${st.bold(p.name.padEnd(32))} ${p.title}`).join('\n')}\n`);
    return EXIT_OK;
  }
  const name = flags.preset ?? 'partially-mapped';
  let preset: RacePreset;
  try {
    preset = racePreset(name);
  } catch {
    throw new CliError(`race: unknown preset ${JSON.stringify(name)}; known: ${RACE_PRESETS.map((p) => p.name).join(', ')}`);
  }
  const report = runRacePreset(name);
  if (flags.json === true) io.stdout.write(`${JSON.stringify({ schema: 'foliolab.race/v1', preset, report }, null, 2)}\n`);
  else io.stdout.write(`${renderRace(preset, report, st)}\n`);
  return EXIT_OK;
}
