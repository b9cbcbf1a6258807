#!/usr/bin/env node
// pnpm verify:pack — check what a user of the published packages gets, from the tarballs that
// `pnpm publish` would upload (CI runs the same script; see .github/workflows/ci.yml):
//
//   1. build every package (turbo, cached);
//   2. `pnpm pack` every public package, and read each tarball: LICENSE, README.md, CHANGELOG.md
//      (once `changeset version` wrote one), every file the manifest points at, every file of the
//      directories listed in `files` (kernel-oracle's guest/ and recorded/, scenario's scenarios/),
//      no tests or test fixtures, no `workspace:` ranges, the repository/homepage/bugs fields;
//   3. publint (--strict) and attw on each tarball;
//   4. an empty directory outside the workspace: `npm install` of the packed @foliolab/unmap-engine,
//      @foliolab/scenario and @foliolab/cli (the other @foliolab tarballs pinned by npm `overrides`,
//      so the `workspace:^` ranges, now real version ranges, resolve to these tarballs and never to
//      the registry), then there: ESM import, require() of every package (Node's require(esm)),
//      TypeScript consumers under `nodenext` (ESM and a .cts) and `bundler` resolution, and
//      `npx foliolab pageout --size 64M`.
//
// Needs the npm registry for the consumer's third-party dependencies (yaml, ajv, commander,
// typescript, @types/node). Options: --no-build (use the dist/ there is), --keep (keep the
// temporary directory and print it).
//
// attw: the rule `cjs-resolves-to-esm` is ignored. The packages are ESM only and declare
// engines.node >= 20.19, where require() of an ES module works (require(esm)); attw 0.18 checks with
// TypeScript 5.6, which predates require(esm) support (TypeScript 5.8, `module: nodenext`/`node20`).
// Step 4 tests both claims instead: require() of every package in Node, and a .cts consumer
// type-checked by TypeScript 6 under nodenext.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const BUILD = !args.has('--no-build');
const KEEP = args.has('--keep');
/** Installed into the consumer directly; the rest of @foliolab/* come in as their dependencies. */
const DIRECT = ['@foliolab/unmap-engine', '@foliolab/scenario', '@foliolab/cli'];
const ATTW_IGNORED = ['cjs-resolves-to-esm'];
const ATTW_IGNORED_KINDS = new Set(['CJSResolvesToESM']);
/** Nothing a user needs: tests, test support, fixtures, build and test configs, scratch output. */
const FORBIDDEN = [
  /\.test\.[cm]?[jt]sx?$/,
  /\.test-d\.ts$/,
  /(^|\/)test-[^/]*$/,
  /test-fixtures\.[cm]?[jt]s$/,
  /(^|\/)(fixtures|__tests__|tests?)\//,
  /(^|\/)\.[a-z]+-out(-[^/]*)?\//,
  /(^|\/)(vitest|tsup)\.config\./,
  /(^|\/)tsconfig(\.[^/]*)?\.json$/,
  /\.tsbuildinfo$/,
  /(^|\/)node_modules\//,
  /\.tgz$/,
];

const started = Date.now();
const failures = [];
const fail = (what) => {
  failures.push(what);
  console.log(`  FAIL ${what}`);
};
const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env } });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** Run, and on a non-zero exit record the failure with the command's output. */
function check(label, cmd, argv, opts) {
  const t0 = Date.now();
  const r = run(cmd, argv, opts);
  if (r.code === 0) console.log(`  ok   ${label} (${secs(t0)})`);
  else {
    fail(`${label}: exit ${r.code}`);
    console.log(indent(`${r.out}${r.err}`.trim()));
  }
  return r;
}

const indent = (s) => s.split('\n').map((l) => `       ${l}`).join('\n');
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** The public workspace packages: { dir (repo-relative), manifest }. */
function publicPackages() {
  const out = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(ROOT, group)).sort()) {
      const file = join(ROOT, group, name, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = readJson(file);
      if (manifest.private !== true) out.push({ dir: `${group}/${name}`, manifest });
    }
  }
  return out;
}

/** Every path a manifest points at: main, types, bin, and every exports target. */
function manifestTargets(m) {
  const out = new Set();
  const add = (p) => typeof p === 'string' && out.add(p.replace(/^\.\//, ''));
  add(m.main);
  add(m.types);
  if (typeof m.bin === 'string') add(m.bin);
  else for (const p of Object.values(m.bin ?? {})) add(p);
  const visit = (e) => (typeof e === 'string' ? add(e) : e && typeof e === 'object' && Object.values(e).forEach(visit));
  visit(m.exports);
  return [...out];
}

function checkManifest(pkg, packed, repoUrl) {
  const { dir } = pkg;
  const m = packed;
  if (m.license !== 'MIT') fail(`${m.name}: license is ${m.license}, not MIT`);
  if (m.repository?.url !== repoUrl) fail(`${m.name}: repository.url ${m.repository?.url} differs from ${repoUrl}`);
  if (m.repository?.directory !== dir) fail(`${m.name}: repository.directory ${m.repository?.directory}, expected ${dir}`);
  if (typeof m.homepage !== 'string' || !m.homepage.startsWith('https://')) fail(`${m.name}: no homepage`);
  if (typeof m.bugs?.url !== 'string') fail(`${m.name}: no bugs.url`);
  if (!m.engines?.node) fail(`${m.name}: no engines.node`);
  for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md']) if (!m.files?.includes(f)) fail(`${m.name}: files does not list ${f}`);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dep, range] of Object.entries(m[field] ?? {})) {
      if (String(range).startsWith('workspace:')) fail(`${m.name}: packed ${field}.${dep} is still ${range}`);
    }
  }
  const root = m.exports?.['.'];
  if (root !== undefined) {
    const keys = Object.keys(root);
    // require(esm) needs a condition that require() matches; types must come first for TypeScript.
    if (!keys.includes('default')) fail(`${m.name}: exports["."] has no "default" condition (require() would fail)`);
    else if (keys.includes('types') && keys.indexOf('types') > keys.indexOf('default')) fail(`${m.name}: exports["."].types must come before default`);
  }
}

function checkContents(pkg, packed, files) {
  const name = packed.name;
  const bad = files.filter((f) => FORBIDDEN.some((re) => re.test(f)));
  for (const f of bad) fail(`${name}: ships ${f}`);
  const have = new Set(files);
  for (const f of ['package.json', 'README.md', 'LICENSE', ...manifestTargets(packed)]) {
    if (!have.has(f)) fail(`${name}: ${f} is not in the tarball`);
  }
  if (existsSync(join(ROOT, pkg.dir, 'CHANGELOG.md')) && !have.has('CHANGELOG.md')) fail(`${name}: CHANGELOG.md exists but is not in the tarball`);
  // Every file of a directory that `files` lists whole (dist, guest, recorded, scenarios) ships.
  let dirs = 0;
  for (const entry of packed.files ?? []) {
    const abs = join(ROOT, pkg.dir, entry);
    if (/[*!]/.test(entry) || !existsSync(abs) || !statSync(abs).isDirectory()) continue;
    dirs++;
    for (const f of walk(abs).map((p) => relative(join(ROOT, pkg.dir), p).split('\\').join('/'))) {
      if (!have.has(f) && !FORBIDDEN.some((re) => re.test(f))) fail(`${name}: ${f} (under ${entry}/) is not in the tarball`);
    }
  }
  return { bad: bad.length, dirs };
}

function attwSummary(out) {
  const j = JSON.parse(out);
  const ep = j.analysis?.entrypoints?.['.'];
  if (j.analysis?.types === false || !ep) return { line: 'no types (a command, nothing to import)', problems: [] };
  const kinds = Object.entries(ep.resolutions).map(([k, r]) => `${k} ${r.resolution?.fileName ? (r.resolution.fileName.split('/node_modules/')[1] ?? r.resolution.fileName).replace(/^@foliolab\/[^/]+\//, '') : 'UNRESOLVED'}`);
  const problems = (j.analysis.problems ?? []).map((p) => `${p.kind}${p.resolutionKind ? `@${p.resolutionKind}` : ''}${ATTW_IGNORED_KINDS.has(p.kind) ? ' (ignored)' : ''}`);
  return { line: kinds.join(', '), problems };
}

function main() {
  const [maj, min] = process.versions.node.split('.').map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) {
    console.error(`verify:pack needs Node >= 20.19 (require(esm)); this is ${process.version}`);
    process.exit(2);
  }
  const work = mkdtempSync(join(tmpdir(), 'foliolab-verify-pack-'));
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  console.log(`verify:pack (Node ${process.version}, in ${work})`);

  // 1. build
  if (BUILD) {
    console.log('\n1. build');
    const r = check('pnpm build', 'pnpm', ['build'], { cwd: ROOT });
    if (r.code !== 0) return finish(work);
  }

  // 2. pack and read each tarball
  let t = Date.now();
  console.log('\n2. pack and inspect');
  const pkgs = publicPackages();
  const repoUrl = pkgs[0]?.manifest.repository?.url;
  const packedBy = new Map();
  const rows = [];
  for (const pkg of pkgs) {
    const name = pkg.manifest.name;
    const r = run('pnpm', ['pack', '--json', '--pack-destination', tarballs], { cwd: join(ROOT, pkg.dir) });
    if (r.code !== 0) {
      fail(`${name}: pnpm pack exit ${r.code}`);
      console.log(indent(r.err));
      continue;
    }
    const tgz = JSON.parse(r.out).filename;
    const files = run('tar', ['-tzf', tgz]).out.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')).sort();
    const packed = JSON.parse(run('tar', ['-xzOf', tgz, 'package/package.json']).out);
    const before = failures.length;
    checkManifest(pkg, packed, repoUrl);
    const c = checkContents(pkg, packed, files);
    packedBy.set(name, { tgz, packed, dir: pkg.dir });
    const kb = (statSync(tgz).size / 1024).toFixed(0);
    rows.push(`${name}@${packed.version}: ${files.length} files, ${kb} KiB, ${c.dirs} whole dirs, CHANGELOG ${files.includes('CHANGELOG.md') ? 'yes' : 'not yet'}`);
    if (failures.length === before) console.log(`  ok   ${rows.at(-1)}`);
  }

  console.log(`  (${secs(t)})`);

  // 3. publint and attw
  t = Date.now();
  console.log('\n3. publint --strict, attw');
  const bin = (b) => join(ROOT, 'node_modules', '.bin', b);
  for (const [name, { tgz }] of packedBy) {
    const p = run(bin('publint'), ['run', tgz, '--strict']);
    const pMsg = p.out.split('\n').filter((l) => l.trim() && !/^(Running publint|Unpacking tarball|Linting)/.test(l)).join(' | ');
    if (p.code !== 0) {
      fail(`${name}: publint exit ${p.code}`);
      console.log(indent(p.out + p.err));
    }
    const a = run(bin('attw'), [tgz, '--format', 'json', '--no-definitely-typed', '--ignore-rules', ...ATTW_IGNORED]);
    let aLine;
    try {
      const s = attwSummary(a.out);
      aLine = `${s.line}${s.problems.length ? `; ${s.problems.join(', ')}` : ''}`;
    } catch {
      aLine = `unreadable output: ${(a.out + a.err).slice(0, 300)}`;
    }
    if (a.code !== 0) fail(`${name}: attw exit ${a.code}: ${aLine}`);
    console.log(`  ${p.code === 0 && a.code === 0 ? 'ok  ' : 'FAIL'} ${name}: publint: ${pMsg || '(no output)'}; attw: ${aLine}`);
  }

  console.log(`  (${secs(t)})`);

  // 4. a user's empty directory
  console.log('\n4. install into an empty directory and run there');
  const user = join(work, 'consumer');
  mkdirSync(user);
  const spec = (name) => `file:${packedBy.get(name).tgz}`;
  const missing = DIRECT.filter((n) => !packedBy.has(n));
  if (missing.length) {
    fail(`not packed: ${missing.join(', ')}`);
    return finish(work);
  }
  const tsVersion = readJson(join(ROOT, 'node_modules', 'typescript', 'package.json')).version;
  const typesNode = readJson(join(ROOT, 'node_modules', '@types', 'node', 'package.json')).version;
  writeFileSync(
    join(user, 'package.json'),
    JSON.stringify(
      {
        name: 'foliolab-consumer',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(DIRECT.map((n) => [n, spec(n)])),
        devDependencies: { typescript: tsVersion, '@types/node': typesNode },
        overrides: Object.fromEntries([...packedBy.keys()].filter((n) => !DIRECT.includes(n)).map((n) => [n, spec(n)])),
      },
      null,
      2,
    ),
  );
  writeConsumerFiles(user, [...packedBy.keys()].filter((n) => n !== '@foliolab/cli'));
  const inst = check('npm install (3 tarballs + their @foliolab dependencies as tarballs)', 'npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: user });
  if (inst.code !== 0) return finish(work);
  const installed = readdirSync(join(user, 'node_modules', '@foliolab')).sort();
  console.log(`       node_modules/@foliolab: ${installed.join(' ')}`);
  const node = process.execPath;
  const tsc = join(user, 'node_modules', 'typescript', 'bin', 'tsc');
  check('ESM import: engine pageout, spec scenarios from the installed package, a scenario run, kernel-oracle data', node, ['esm.mjs'], { cwd: user });
  check(`require() of every library package (require(esm), Node ${process.version})`, node, ['cjs.cjs'], { cwd: user });
  check(`TypeScript ${tsVersion} consumer, module nodenext (ESM .ts and CommonJS .cts), skipLibCheck false`, node, [tsc, '-p', 'tsconfig.nodenext.json'], { cwd: user });
  check(`TypeScript ${tsVersion} consumer, moduleResolution bundler, skipLibCheck false`, node, [tsc, '-p', 'tsconfig.bundler.json'], { cwd: user });
  const cliVersion = packedBy.get('@foliolab/cli').packed.version;
  const v = check('npx @foliolab/cli --version', 'npx', ['@foliolab/cli', '--version'], { cwd: user });
  if (v.code === 0 && v.out.trim() !== cliVersion) fail(`npx @foliolab/cli --version printed ${v.out.trim()}, expected ${cliVersion}`);
  const po = check('npx foliolab pageout --size 64M', 'npx', ['foliolab', 'pageout', '--size', '64M'], { cwd: user });
  if (po.code === 0) console.log(indent(po.out.trim().split('\n').slice(-2).join('\n')));
  const pj = check('npx foliolab pageout --size 64M --json', 'npx', ['foliolab', 'pageout', '--size', '64M', '--json'], { cwd: user });
  if (pj.code === 0) {
    try {
      const j = JSON.parse(pj.out);
      if (j.schema !== 'foliolab.pageout/v1' || j.ok !== true || !(j.runs?.length > 0)) fail(`pageout --json: schema ${j.schema}, ok ${j.ok}, ${j.runs?.length} runs`);
      else console.log(`       ${j.runs.length} runs, ok, ratios: ${j.ratios.map((r) => `${r.arch} ${Number(r.modeled).toFixed(3)}`).join(', ')}`);
    } catch (e) {
      fail(`pageout --json is not JSON: ${e.message}`);
    }
  }
  const specDir = join(user, 'node_modules', '@foliolab', 'scenario', 'scenarios', 'spec');
  const specFiles = readdirSync(specDir).filter((f) => f.endsWith('.yaml')).map((f) => join(specDir, f));
  check(`npx foliolab check (the ${specFiles.length} shipped spec scenarios)`, 'npx', ['foliolab', 'check', ...specFiles], { cwd: user });
  check('npx foliolab run 02-pageout-exclusive-today.yaml --json', 'npx', ['foliolab', 'run', join(specDir, '02-pageout-exclusive-today.yaml'), '--json'], { cwd: user });
  return finish(work);
}

/** The consumer's programs: the checks of step 4. */
function writeConsumerFiles(dir, libraries) {
  const w = (f, s) => writeFileSync(join(dir, f), s);
  w(
    'esm.mjs',
    `import assert from 'node:assert/strict';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '@foliolab/unmap-engine';
import { loadScenarioFile, runScenario, specScenarioFiles, specScenariosDir } from '@foliolab/scenario';

// The engine: one 64K folio written, then MADV_PAGEOUT; the data comes back through swap-in.
const e = new Engine({ policy: 'batched', mthp: { '64K': 'always' } });
const pid = e.createProcess();
const a = e.mmap(pid, { addr: 0x4000_0000, len: 0x10000 });
e.write(pid, a, 0x10000);
e.madvise(pid, a, 0x10000, 'pageout');
const s = e.dump();
assert.equal(s.schema, 'foliolab.state/v1');
assert.deepEqual(s.processes[0].ptes.map((p) => p.kind), Array(16).fill('swap'));
assert.equal(s.invariants.ok, true);
assert.deepEqual(e.read(pid, a, 0x10000).lost, []);

// The scenario package finds its own scenarios/spec/ in node_modules, and runs one on the engine.
const pkgDir = realpathSync('node_modules/@foliolab/scenario');
assert.equal(realpathSync(specScenariosDir()), join(pkgDir, 'scenarios', 'spec'));
const files = specScenarioFiles();
assert.equal(files.length, 26);
const r = runScenario(loadScenarioFile(files.find((f) => f.includes('02-pageout'))), { policy: 'mainline' });
assert.equal(r.ok, true, r.failures.join('\\n'));

// kernel-oracle ships its recorded answers and the guest sources (a dependency of the CLI).
const k = await import('@foliolab/kernel-oracle');
assert.ok(k.recordFiles(k.recordedDir(), 'arm64').length > 0 && k.recordFiles(k.recordedDir(), 'x86').length > 0);
for (const f of ['init.c', 'koracle.c', 'koracle.h', 'trace-funcs']) assert.ok(existsSync(join(k.recordedDir(), '..', 'guest', f)), f);
// and checks them against the installed engine: the record's scenario is found in the installed @foliolab/scenario
const rec02 = k.recordFiles(k.recordedDir(), 'arm64').find((f) => f.includes('02-pageout'));
assert.deepEqual(k.checkRecord(rec02).policies.map((p) => p.differences.length), [0, 0, 0]);

// Every library package imports.
for (const n of ${JSON.stringify(libraries)}) assert.ok(Object.keys(await import(n)).length > 0, n);
`,
  );
  w(
    'cjs.cjs',
    `'use strict';
// CommonJS: require() of the ESM-only packages (Node >= 20.19 loads them through require(esm)).
const assert = require('node:assert/strict');
for (const n of ${JSON.stringify(libraries)}) {
  const m = require(n);
  assert.ok(Object.keys(m).length > 0, n);
}
const { Engine } = require('@foliolab/unmap-engine');
const e = new Engine();
e.mmap(e.createProcess(), { len: 0x10000 });
assert.equal(e.checkInvariants().ok, true);
`,
  );
  w(
    'consumer.ts',
    `import { Engine, type StateV1 } from '@foliolab/unmap-engine';
import { parseScenario, runScenario, type RunResult, type Scenario } from '@foliolab/scenario';

const e = new Engine({ policy: 'batched', mthp: { '64K': 'always' } });
const pid: number = e.createProcess();
const a: number = e.mmap(pid, { addr: 0x4000_0000, len: 0x10000 });
e.write(pid, a, 0x10000);
e.madvise(pid, a, 0x10000, 'pageout');
export const state: StateV1 = e.dump();
const sc: Scenario = parseScenario('name: x\\nprocesses: [{ name: p }]\\nsteps:\\n  - mmap: { process: p, len: 64K }\\n', 'x.yaml');
export const run: RunResult = runScenario(sc, { policy: 'mainline' });
// The types are the real ones, not any: a policy that does not exist must not compile.
// @ts-expect-error
new Engine({ policy: 'no-such-policy' });
`,
  );
  w(
    'consumer-cjs.cts',
    `// A CommonJS TypeScript file: import = require() of the ESM package (TypeScript >= 5.8, module nodenext).
import ledger = require('@foliolab/ledger');
const l = new ledger.Ledger();
l.charge(ledger.EV.PTE_READ, 1);
export const reads: number = ledger.nonZero(l.snapshot()).PTE_READ ?? 0;
// @ts-expect-error the types are real: charge takes an event id
l.charge('PTE_READ', 1);
`,
  );
  const base = { target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false };
  w('tsconfig.nodenext.json', JSON.stringify({ compilerOptions: { ...base, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['consumer.ts', 'consumer-cjs.cts'] }, null, 2));
  w('tsconfig.bundler.json', JSON.stringify({ compilerOptions: { ...base, module: 'preserve', moduleResolution: 'bundler' }, files: ['consumer.ts'] }, null, 2));
}

function finish(work) {
  console.log(`\nverify:pack: ${failures.length === 0 ? 'ok' : `${failures.length} failure(s)`} in ${secs(started)}`);
  for (const f of failures) console.log(`  - ${f}`);
  if (KEEP) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
  process.exit(failures.length === 0 ? 0 : 1);
}

main();
