import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cRegistry, cSource } from './c-source.js';
import { OracleError } from './errors.js';
import { cacheDir, type KernelTree } from './host.js';
import { initramfs, type CpioEntry } from './initramfs.js';
import { packageDir } from './package-dir.js';
import type { GuestProgram } from './translate.js';
import type { OracleArch } from './types.js';

/*
 * Building a guest: the runtime (guest/koracle.c) and /init (guest/init.c)
 * are compiled once per arch and cached by source hash; each batch of
 * translated scenarios becomes one static binary `koracle <id>` (runtime +
 * one object per scenario + a registry), packed with /init and the modules
 * it loads (zram and loop, with their dependencies) into an initramfs.
 */

/** The guest C sources shipped with the package. */
export function guestDir(): string {
  return join(packageDir(), 'guest');
}

/** The C compiler for a guest arch. */
export function compilerFor(arch: OracleArch): string {
  return arch === 'arm64' ? 'aarch64-linux-gnu-gcc' : 'gcc';
}

const CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

function cc(arch: OracleArch, args: string[]): void {
  try {
    execFileSync(compilerFor(arch), [...CFLAGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new OracleError('EHOST', `${compilerFor(arch)} ${args.join(' ')}: ${(err.stderr ?? err.message).trim().split('\n').slice(0, 8).join('\n')}`);
  }
}

function sourceHash(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Compile the runtime object and the static /init of an arch (cached by source hash). */
export function buildRuntime(arch: OracleArch): { runtime: string; init: string } {
  const g = guestDir();
  const hash = sourceHash([join(g, 'koracle.c'), join(g, 'koracle.h'), join(g, 'init.c')]);
  const dir = join(cacheDir(), 'build', `${arch}-${hash}`);
  const runtime = join(dir, 'koracle.o');
  const init = join(dir, 'init');
  if (!existsSync(runtime) || !existsSync(init)) {
    mkdirSync(dir, { recursive: true });
    cc(arch, ['-c', '-o', runtime, join(g, 'koracle.c')]);
    cc(arch, ['-static', '-o', init, join(g, 'init.c')]);
  }
  return { runtime, init };
}

/** Compile a batch of translated scenarios into one static guest binary; returns its path. */
export function buildGuestBinary(arch: OracleArch, programs: readonly GuestProgram[], workDir: string): string {
  const { runtime } = buildRuntime(arch);
  mkdirSync(workDir, { recursive: true });
  const objs: string[] = [];
  for (const p of programs) {
    const c = join(workDir, `${p.id}.c`);
    writeFileSync(c, cSource(p));
    const o = join(workDir, `${p.id}.o`);
    cc(arch, ['-I', guestDir(), '-c', '-o', o, c]);
    objs.push(o);
  }
  const reg = join(workDir, 'registry.c');
  writeFileSync(reg, cRegistry(programs.map((p) => p.id)));
  const bin = join(workDir, 'koracle');
  cc(arch, ['-I', guestDir(), '-static', '-o', bin, reg, runtime, ...objs]);
  return bin;
}

/** The `depends=` list of a module (its .modinfo section), read from the decompressed .ko. */
function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const v = ko.toString('utf8', at + 9, end);
  return v === '' ? [] : v.split(',');
}

function decompress(path: string): Buffer {
  if (path.endsWith('.xz')) return execFileSync('xz', ['-dc', path], { maxBuffer: 256 << 20 });
  if (path.endsWith('.zst')) return execFileSync('zstd', ['-qdc', path], { maxBuffer: 256 << 20 });
  if (path.endsWith('.gz')) return execFileSync('gzip', ['-dc', path], { maxBuffer: 256 << 20 });
  return readFileSync(path);
}

function findModules(dir: string, out: Map<string, string>): void {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) findModules(p, out);
    else {
      const m = /^(.*)\.ko(\.(xz|zst|gz))?$/.exec(e);
      if (m !== null) out.set(m[1]!.replace(/-/g, '_'), p);
    }
  }
}

/** Modules the guest loads, with their dependencies first: name → decompressed .ko. */
export function guestModules(tree: KernelTree, wanted: readonly string[] = ['zram', 'loop']): [string, Buffer][] {
  const all = new Map<string, string>();
  findModules(join(tree.moddir, 'kernel'), all);
  const builtin = existsSync(join(tree.moddir, 'modules.builtin')) ? readFileSync(join(tree.moddir, 'modules.builtin'), 'utf8') : '';
  const out: [string, Buffer][] = [];
  const seen = new Set<string>();
  const add = (name: string): void => {
    const key = name.replace(/-/g, '_');
    if (seen.has(key)) return;
    seen.add(key);
    const path = all.get(key);
    if (path === undefined) {
      if (new RegExp(`/${name}\\.ko`).test(builtin)) return;
      throw new OracleError('EHOST', `module ${name} is neither built in nor in ${tree.moddir}`);
    }
    const ko = decompress(path);
    for (const d of moduleDepends(ko)) add(d);
    out.push([`${key}.ko`, ko]);
  };
  for (const w of wanted) add(w);
  return out;
}

/** The initramfs: /init, /bin/koracle, the modules, and /tests (the scenario ids, in order). */
export function buildInitramfs(arch: OracleArch, tree: KernelTree, binary: string, ids: readonly string[], out: string): string {
  const { init } = buildRuntime(arch);
  const mods = guestModules(tree);
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'lib/modules'].map((p): CpioEntry => ({ path: p, type: 'dir', mode: 0o755 })),
    { path: 'dev/console', type: 'chr', mode: 0o600, rdev: [5, 1] },
    { path: 'init', type: 'file', mode: 0o755, data: readFileSync(init) },
    { path: 'bin/koracle', type: 'file', mode: 0o755, data: readFileSync(binary) },
    ...mods.map(([name, data]): CpioEntry => ({ path: `lib/modules/${name}`, type: 'file', mode: 0o644, data })),
    { path: 'lib/modules/load-order', type: 'file', mode: 0o644, data: Buffer.from(mods.map(([n]) => `${n}\n`).join('')) },
    { path: 'tests', type: 'file', mode: 0o644, data: Buffer.from(ids.map((i) => `${i}\n`).join('')) },
    { path: 'trace-funcs', type: 'file', mode: 0o644, data: readFileSync(join(guestDir(), 'trace-funcs')) },
  ];
  writeFileSync(out, initramfs(entries));
  return out;
}

