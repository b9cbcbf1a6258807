import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OracleError } from './errors.js';
import type { OracleArch } from './types.js';

/*
 * The host side of the oracle's set-up: where it caches things, which host
 * tools it needs, and the Debian kernel it boots — fetched with a private apt
 * configuration (its own sources list, lists and cache under the oracle's
 * cache directory), so the host's own apt sources are never touched and no
 * root is needed for it. Only QEMU and the C compilers come from the host's
 * packages (`foliolab oracle setup` prints the one apt-get line).
 */

/** The kernel the oracle boots: Linux 7.2.13 as Debian ships it (sid). */
export const KERNEL: Readonly<Record<OracleArch, { debArch: string; image: string; version: string }>> = {
  arm64: { debArch: 'arm64', image: 'linux-image-7.2.13+deb14-arm64', version: '7.2.13-1' },
  x86: { debArch: 'amd64', image: 'linux-image-7.2.13+deb14-amd64', version: '7.2.13-1' },
};
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEBIAN_SUITE = 'sid';

/** The cache directory: $FOLIOLAB_CACHE/kernel-oracle, else $XDG_CACHE_HOME or ~/.cache. */
export function cacheDir(): string {
  const base = process.env.FOLIOLAB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'foliolab');
  return join(base, 'kernel-oracle');
}

/** Host tools per arch: [command, Debian package]. */
export function hostTools(arch: OracleArch): [string, string][] {
  const common: [string, string][] = [
    ['apt-get', 'apt'],
    ['dpkg-deb', 'dpkg'],
    ['xz', 'xz-utils'],
  ];
  return arch === 'arm64'
    ? [...common, ['qemu-system-aarch64', 'qemu-system-arm'], ['aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu']]
    : [...common, ['qemu-system-x86_64', 'qemu-system-x86'], ['gcc', 'gcc']];
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Missing host tools, with the one command that installs them (Debian 12; `-t bookworm` once sid is in the sources). */
export function missingTools(arch: OracleArch): { missing: string[]; install: string } {
  const missing = hostTools(arch).filter(([c]) => !onPath(c));
  const pkgs = [...new Set(missing.map(([, p]) => p))];
  if (arch === 'arm64' && missing.some(([c]) => c === 'aarch64-linux-gnu-gcc')) pkgs.push('libc6-dev-arm64-cross');
  return { missing: missing.map(([c]) => c), install: pkgs.length === 0 ? '' : `apt-get install -t bookworm --no-install-recommends ${pkgs.join(' ')}` };
}

/** Throws an OracleError naming what to install when a host tool is missing. */
export function requireTools(arch: OracleArch): void {
  const m = missingTools(arch);
  if (m.missing.length > 0) throw new OracleError('ENOTOOLS', `the ${arch} oracle needs ${m.missing.join(', ')}; as root: ${m.install}`);
}

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new OracleError('EHOST', `${cmd} ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' | ')}`);
  }
}

/** apt options of the oracle's private apt configuration for one Debian arch. */
function aptOptions(dir: string, debArch: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(dir, 'no-parts')),
    ...o('Dir::Etc::Preferences', join(dir, 'no-preferences')),
    ...o('Dir::Etc::PreferencesParts', join(dir, 'no-parts')),
    ...o('Dir::State::Lists', join(dir, 'lists')),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('APT::Architecture', debArch),
    ...o('APT::Architectures::', debArch),
    ...o('Debug::NoLocking', '1'),
    '-q',
  ];
}

function aptSetup(arch: OracleArch): { dir: string; opts: string[] } {
  const { debArch } = KERNEL[arch];
  const dir = join(cacheDir(), 'apt', debArch);
  for (const d of ['lists/partial', 'cache/archives/partial', 'no-parts']) mkdirSync(join(dir, d), { recursive: true });
  const list = join(dir, 'sources.list');
  const line = `deb [arch=${debArch}] ${DEBIAN_MIRROR} ${DEBIAN_SUITE} main\n`;
  if (!existsSync(list) || readFileSync(list, 'utf8') !== line) writeFileSync(list, line);
  if (!existsSync(join(dir, 'no-preferences'))) writeFileSync(join(dir, 'no-preferences'), '');
  return { dir, opts: aptOptions(dir, debArch) };
}

/** The unpacked kernel of an arch: image, config, modules. */
export interface KernelTree {
  arch: OracleArch;
  release: string;
  image: string;
  config: string;
  moddir: string;
  package: string;
}

/** Download (once) and unpack the kernel image, binary and modules packages into the cache. */
export function fetchKernel(arch: OracleArch, log: (s: string) => void = () => {}): KernelTree {
  const { image, version, debArch } = KERNEL[arch];
  const root = join(cacheDir(), 'kernel', `${image}_${version}`);
  const done = join(root, '.unpacked');
  if (!existsSync(done)) {
    requireTools(arch);
    const apt = aptSetup(arch);
    if (readdirSync(join(apt.dir, 'lists')).filter((f) => f.endsWith('_Packages') || f.includes('Packages')).length === 0) {
      log(`apt-get update (private ${debArch} sources: ${DEBIAN_MIRROR} ${DEBIAN_SUITE})`);
      run('apt-get', [...apt.opts, 'update']);
    }
    const show = run('apt-cache', [...apt.opts, 'show', `${image}=${version}`]);
    const deps = (/^Depends: (.*)$/m.exec(show)?.[1] ?? '')
      .split(',')
      .map((d) => d.trim().split(/[\s(|]/)[0]!)
      .filter((d) => /^linux-(binary|modules|base)-/.test(d));
    const debs = join(cacheDir(), 'debs');
    mkdirSync(debs, { recursive: true });
    mkdirSync(root, { recursive: true });
    for (const pkg of [image, ...deps]) {
      const file = `${pkg}_${version}_${debArch}.deb`;
      if (!existsSync(join(debs, file))) {
        log(`apt-get download ${pkg}=${version}`);
        run('apt-get', [...apt.opts, 'download', `${pkg}=${version}`], debs);
      }
      log(`unpack ${file}`);
      run('dpkg-deb', ['-x', join(debs, file), root]);
    }
    writeFileSync(done, `${image} ${version}\n`);
  }
  const modules = join(root, 'usr/lib/modules');
  const release = readdirSync(modules).find((d) => /^\d/.test(d));
  if (release === undefined) throw new OracleError('EHOST', `no lib/modules/<release> in ${root}`);
  const moddir = join(modules, release);
  const imagePath = join(moddir, 'vmlinuz');
  if (!existsSync(imagePath)) throw new OracleError('EHOST', `no vmlinuz in ${moddir}`);
  return { arch, release, image: imagePath, config: join(moddir, 'config'), moddir, package: `${image} ${version}` };
}

/** `CONFIG_X` values of a kernel config, for the facts a record states. */
export function configFacts(tree: KernelTree, names: readonly string[]): Record<string, string> {
  const text = existsSync(tree.config) ? readFileSync(tree.config, 'utf8') : '';
  const out: Record<string, string> = {};
  for (const n of names) {
    const m = new RegExp(`^CONFIG_${n}=(.*)$`, 'm').exec(text);
    out[n] = m !== null ? m[1]! : new RegExp(`^# CONFIG_${n} is not set$`, 'm').test(text) ? 'n' : 'absent';
  }
  return out;
}

/** The config options a record reports. */
export const FACT_OPTIONS = [
  'ARM64_4K_PAGES',
  'ARM64_CONTPTE',
  'TRANSPARENT_HUGEPAGE',
  'THP_SWAP',
  'ZRAM',
  'ZSWAP',
  'USERFAULTFD',
  'PTE_MARKER_UFFD_WP',
  'MEMCG',
  'PAGE_MAPCOUNT',
  'NO_PAGE_MAPCOUNT',
  'MM_ID',
  'LRU_GEN',
  'MEM_SOFT_DIRTY',
  'MEMORY_FAILURE',
  'DEBUG_VM',
] as const;
