import { spawn, spawnSync } from 'node:child_process';
import { OracleError } from './errors.js';
import type { KernelTree } from './host.js';
import type { OracleArch } from './types.js';

/*
 * Booting the guest under QEMU with TCG (pure emulation: no KVM here), one
 * CPU (so per-CPU caches — LRU-add batches, swap cluster caches — cannot make
 * two runs differ), the root file system in ramfs (unevictable: node reclaim
 * sees only the scenario's memory), no CMA (a FOLL_LONGTERM pin would migrate
 * a folio out of it), and the console on the first serial port.
 */

export interface BootOptions {
  memory?: string;
  cpus?: number;
  timeoutMs?: number;
  /** Extra kernel command-line words. */
  append?: string;
  /** Called with each console line as it arrives. */
  onLine?: (line: string) => void;
}

export interface BootResult {
  lines: string[];
  wallMs: number;
  exitCode: number | null;
  timedOut: boolean;
  qemu: string;
  cpus: number;
  memory: string;
}

function qemuFor(arch: OracleArch): { bin: string; args: string[]; console: string } {
  return arch === 'arm64'
    ? // plain `-cpu max` emulates QARMA5 pointer authentication and boots ~3× slower
      { bin: 'qemu-system-aarch64', args: ['-M', 'virt', '-cpu', 'max,pauth-impdef=on'], console: 'ttyAMA0' }
    : { bin: 'qemu-system-x86_64', args: ['-M', 'q35', '-cpu', 'max'], console: 'ttyS0' };
}

/** `qemu-system-… --version`, first line. */
export function qemuVersion(arch: OracleArch): string {
  const r = spawnSync(qemuFor(arch).bin, ['--version'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n')[0]?.trim() ?? 'unknown';
}

/** The kernel command line the oracle boots with. */
export function kernelCmdline(arch: OracleArch, append = ''): string {
  return [
    `console=${qemuFor(arch).console}`,
    'panic=-1',
    'nokaslr',
    'norandmaps',
    'rootfstype=ramfs',
    'cma=0',
    'transparent_hugepage=never',
    'loglevel=4',
    append,
  ]
    .filter((w) => w !== '')
    .join(' ');
}

/** Boot `tree`'s kernel with `initrd` and collect the console until the guest powers off. */
export function boot(arch: OracleArch, tree: KernelTree, initrd: string, o: BootOptions = {}): Promise<BootResult> {
  const q = qemuFor(arch);
  const cpus = o.cpus ?? 1;
  const memory = o.memory ?? '2G';
  const args = [
    ...q.args,
    '-accel',
    'tcg',
    '-smp',
    String(cpus),
    '-m',
    memory,
    '-nographic',
    '-no-reboot',
    '-nic',
    'none',
    '-kernel',
    tree.image,
    '-initrd',
    initrd,
    '-append',
    kernelCmdline(arch, o.append),
  ];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(q.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 20 * 60_000);
    const take = (chunk: Buffer): void => {
      partial += chunk.toString('latin1');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        // firmware escape sequences (x86 SeaBIOS) and CRs are not part of what the guest printed
        // eslint-disable-next-line no-control-regex
        const line = partial.slice(0, nl).replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '');
        partial = partial.slice(nl + 1);
        lines.push(line);
        o.onLine?.(line);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new OracleError('EHOST', `${q.bin}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial !== '') lines.push(partial);
      resolve({ lines, wallMs: Date.now() - t0, exitCode: code, timedOut, qemu: qemuVersion(arch), cpus, memory });
    });
  });
}
