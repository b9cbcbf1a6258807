import { EVENT_NAMES } from '@foliolab/ledger';
import type { ArchName } from '@foliolab/scenario';
import type { Style } from './io.js';
import { differingEvents, type PageoutReport, type PageoutRun } from './pageout.js';
import { fmtCount, fmtMs, fmtRatio, renderTable } from './table.js';

/*
 * The human form of the headline experiment: one table per arch profile,
 * events as rows (only those whose counts differ between the policies),
 * policies as columns, then modeled time, the unevented estimate, the wall
 * time of the simulation, the invariants, and the batched/mainline ratio
 * beside the published one.
 */

const ARCH_TITLE: Readonly<Record<ArchName, string>> = {
  'arm64-contpte': 'arm64-contpte (prices: PRICES_ARM64, Apple M3-class VM)',
  'arm64-nocont': 'arm64-nocont (contpte off; prices: PRICES_ARM64)',
  x86: 'x86 (prices: PRICES_X86, bare-metal server)',
};

function invariantsCell(r: PageoutRun, nrFolios: number, st: Style): string {
  const parts: string[] = [];
  if (!r.invariants.ok) parts.push(`${r.invariants.violations.length} violation(s)`);
  if ((r.lost ?? 0) > 0) parts.push(`${r.lost} lost`);
  if (r.folios !== undefined && r.folios !== nrFolios) parts.push(`${r.folios}/${nrFolios} folios`);
  return parts.length === 0 ? st.green('ok') : st.red(parts.join(', '));
}

function archTable(report: PageoutReport, arch: ArchName, st: Style): string[] {
  const runs = report.runs.filter((r) => r.arch === arch);
  if (runs.length === 0) return [];
  const events = differingEvents(runs);
  const same = EVENT_NAMES.filter((e) => !events.includes(e) && runs.some((r) => (r.events[e] ?? 0) !== 0)).length;
  const header = ['', ...runs.map((r) => st.bold(r.policy))];
  const rows: string[][] = events.map((e) => [e, ...runs.map((r) => fmtCount(r.events[e] ?? 0))]);
  rows.push(
    [st.bold('modeled ms'), ...runs.map((r) => st.bold(fmtMs(r.modeledNs)))],
    [st.dim('+ unevented est. ms'), ...runs.map((r) => st.dim(fmtMs(r.uneventedNs)))],
    ['wall ms (simulation)', ...runs.map((r) => r.wallMs.toFixed(1))],
    [report.config.verify ? 'checks (--verify)' : 'checks', ...runs.map((r) => invariantsCell(r, report.config.nrFolios, st))],
  );
  const out = [st.bold(ARCH_TITLE[arch]), renderTable(header, rows, { indent: '  ', rule: st.dim })];
  if (same > 0) out.push(st.dim(`  (${same} more event kind(s) with equal counts under every policy not shown; --json has them all)`));
  const ratio = report.ratios.find((x) => x.arch === arch);
  if (ratio !== undefined) {
    let line = `  batched/mainline: modeled ${st.bold(fmtRatio(ratio.modeled))} (${fmtRatio(ratio.modeledWithUnevented)} with the unevented estimate)`;
    const p = ratio.published;
    if (p !== null) {
      const abs = p.sameWorkload ? `${(p.vanillaNs / 1e6).toFixed(1)} → ${(p.patchedNs / 1e6).toFixed(1)} ms, ` : '';
      line += `   published ${st.bold(fmtRatio(p.ratio))} ${st.dim(`(${abs}${p.machine}, A1)`)}`;
    } else line += st.dim('   published: — (no published result for this profile/folio size)');
    out.push(line);
  }
  return out;
}

/** The whole report as text (no trailing newline). */
export function renderPageout(report: PageoutReport, st: Style): string {
  const c = report.config;
  const lines: string[] = [
    st.bold(`MADV_PAGEOUT of ${c.size} in ${c.folio} folios`) +
      ` (${fmtCount(c.nrFolios)} folio(s), ${fmtCount(c.nrPtes)} PTEs; mmap + memset(0) first, as in anchors A1)` +
      (c.tlbiRange ? ' — FEAT_TLBIRANGE on' : ''),
    '',
  ];
  for (const arch of c.archs) lines.push(...archTable(report, arch, st), '');
  lines.push(
    st.dim(
      'modeled = Σ events × ledger price (sourced, uncalibrated); unevented = zero scan + shrink_folio_list work with no event (estimate, not in modeled).',
    ),
  );
  for (const r of report.runs) {
    for (const v of r.invariants.violations.slice(0, 5)) lines.push(st.red(`${r.arch} ${r.policy}: invariant ${v.rule} violated at ${v.where}: ${v.detail}`));
    if (r.folios !== undefined && r.folios !== c.nrFolios) {
      lines.push(st.red(`${r.arch} ${r.policy}: only ${r.folios} of ${c.nrFolios} ${c.folio} folios were mapped when the pageout started (the faults fell back to smaller folios)`));
    }
    if ((r.lost ?? 0) > 0) lines.push(st.red(`${r.arch} ${r.policy}: ${r.lost} page(s) did not read back what was written`));
  }
  const what = report.config.verify ? 'invariants, folio sizes and data' : 'invariants and folio sizes';
  lines.push(report.ok ? `${what}: ${st.green('ok')}` : `${what}: ${st.red('FAILED')}`);
  return lines.join('\n');
}
