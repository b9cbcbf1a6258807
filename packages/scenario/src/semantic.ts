import { didYouMean, type DataPath, type RawDiagnostic } from './diagnostics.js';
import { parsePath, pathRefs } from './path.js';
import { addrNames, addrOffset, formatSize, PAGE_SIZE, parseAddrExpr, parseSize, type AddrExpr } from './sizes.js';
import { STEP_KINDS, type StepKind } from './types.js';

/*
 * Checks a schema cannot express, on schema-valid data, in step order:
 * names are bound before use and bound once, processes exist and have not
 * exited, lengths are whole pages, range starts are page aligned, paths in
 * `expect` parse and name known processes and addresses.
 */

const MiB2 = 2 * 1024 * 1024;
/** Steps whose `addr` starts a range the kernel wants page aligned (EINVAL otherwise). */
const ALIGNED_ADDR = new Set<StepKind>(['mmap', 'munmap', 'mremap', 'mprotect', 'madvise', 'pageout', 'mlock', 'munlock', 'uffdwp']);
const LEN_KEYS = ['len', 'oldLen', 'newLen'] as const;

type Obj = Record<string, unknown>;

class Checker {
  readonly out: RawDiagnostic[] = [];
  readonly processes = new Map<string, 'alive' | 'exited'>();
  readonly names = new Set<string>();
  readonly handles = new Map<string, 'pinned' | 'unpinned'>();
  sawAction = false;

  err(path: DataPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.out.push({ path, at, message });
  }

  process(path: DataPath, name: unknown): void {
    if (typeof name !== 'string') return;
    const st = this.processes.get(name);
    const known = [...this.processes.keys()].join(', ') || 'none';
    if (st === undefined) this.err(path, `${pathText(path)}: unknown process \`${name}\`${didYouMean(name, this.processes.keys())} (known here: ${known})`);
    else if (st === 'exited') this.err(path, `${pathText(path)}: process \`${name}\` has exited by this step`);
  }

  bindName(path: DataPath, name: unknown): void {
    if (typeof name !== 'string') return;
    if (this.names.has(name)) this.err(path, `${pathText(path)}: duplicate name \`${name}\`: it is already bound by an earlier step`);
    this.names.add(name);
  }

  addr(path: DataPath, v: unknown, aligned: boolean): void {
    if (v === undefined) return;
    let e: AddrExpr;
    try {
      e = parseAddrExpr(v as number | string);
    } catch (x) {
      this.err(path, `${pathText(path)}: ${(x as Error).message.replace(/^parseAddrExpr: /, '')}`);
      return;
    }
    for (const n of addrNames(e)) {
      if (this.names.has(n)) continue;
      const bound = [...this.names].join(', ') || 'none';
      this.err(path, `${pathText(path)}: unknown name \`${n}\` in address ${JSON.stringify(e.text)}${didYouMean(n, this.names)} (bound so far: ${bound})`);
    }
    const off = addrOffset(e);
    if (aligned && off % PAGE_SIZE !== 0) this.err(path, `${pathText(path)}: address ${JSON.stringify(e.text)} is not page aligned (offset ${off} is not a multiple of 4K)`);
  }

  len(path: DataPath, v: unknown): void {
    if (v === undefined) return;
    let n: number;
    try {
      n = parseSize(v as number | string);
    } catch (e) {
      // a malformed size is the schema's to report (it wins on the same path); a huge one is ours
      this.err(path, `${pathText(path)}: ${(e as Error).message.replace(/^parseSize: /, '')}`);
      return;
    }
    if (n === 0) this.err(path, `${pathText(path)}: length must not be 0`);
    else if (n % PAGE_SIZE !== 0) this.err(path, `${pathText(path)}: length ${typeof v === 'number' ? v : `${JSON.stringify(v)} (${n} bytes)`} is not a multiple of 4K`);
  }
}

function pathText(path: DataPath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

function checkConfig(c: Checker, config: Obj | undefined): void {
  if (config === undefined) return;
  for (const key of ['memory', 'swap'] as const) {
    const v = config[key];
    if (v === undefined) continue;
    let n: number;
    try {
      n = parseSize(v as number | string);
    } catch (e) {
      c.err(['config', key], `config.${key}: ${(e as Error).message.replace(/^parseSize: /, '')}`);
      continue;
    }
    if (key === 'memory' && n === 0) c.err(['config', key], `config.memory: must not be 0`);
    else if (n % MiB2 !== 0) c.err(['config', key], `config.${key}: ${JSON.stringify(v)} (${formatSize(n)}) is not a multiple of 2M`);
  }
}

function checkArgs(c: Checker, base: DataPath, kind: StepKind, a: Obj): void {
  if ('process' in a) c.process([...base, 'process'], a.process);
  c.addr([...base, 'addr'], a.addr, ALIGNED_ADDR.has(kind));
  if (kind === 'mremap') c.addr([...base, 'fixed'], a.fixed, true);
  for (const k of LEN_KEYS) c.len([...base, k], a[k]);
  if (kind === 'reclaim') {
    if ((a.addr !== undefined || a.len !== undefined) && a.process === undefined) c.err(base, `${pathText(base)}: \`addr\`/\`len\` need a \`process\``);
    if ((a.addr === undefined) !== (a.len === undefined)) c.err(base, `${pathText(base)}: give both \`addr\` and \`len\`, or neither`);
  }
}

function checkBindings(c: Checker, base: DataPath, kind: StepKind, a: Obj): void {
  if (kind === 'fork' && typeof a.child === 'string') {
    if (c.processes.has(a.child)) c.err([...base, 'child'], `${pathText([...base, 'child'])}: duplicate process name \`${a.child}\``);
    c.processes.set(a.child, 'alive');
  }
  if (kind === 'exit' && typeof a.process === 'string' && c.processes.get(a.process) === 'alive') c.processes.set(a.process, 'exited');
  if ((kind === 'mmap' || kind === 'mremap') && a.as !== undefined) c.bindName([...base, 'as'], a.as);
  if (kind === 'pin' && typeof a.as === 'string') {
    if (c.handles.has(a.as)) c.err([...base, 'as'], `${pathText([...base, 'as'])}: duplicate pin handle \`${a.as}\``);
    c.handles.set(a.as, 'pinned');
  }
  if (kind === 'unpin' && typeof a.handle === 'string') {
    const st = c.handles.get(a.handle);
    const at: DataPath = [...base, 'handle'];
    const dym = didYouMean(a.handle, c.handles.keys());
    if (st === undefined) c.err(at, `${pathText(at)}: unknown pin handle \`${a.handle}\`${dym} (pin with \`as: ${a.handle}\` first)`);
    else if (st === 'unpinned') c.err(at, `${pathText(at)}: pin handle \`${a.handle}\` is already unpinned`);
    else c.handles.set(a.handle, 'unpinned');
  }
}

function checkExpect(c: Checker, base: DataPath, a: Obj): void {
  if (a.events !== undefined && !c.sawAction) c.err([...base, 'events'], `${pathText(base)}.events: there is no earlier step whose events to check`, 'key');
  const state = isObj(a.state) ? a.state : {};
  for (const text of Object.keys(state)) {
    const at: DataPath = [...base, 'state', text];
    try {
      const p = parsePath(text);
      const refs = pathRefs(p);
      for (const name of refs.processes) {
        if (!c.processes.has(name)) c.err(at, `${pathText(base)}.state: path "${text}": unknown process \`${name}\`${didYouMean(name, c.processes.keys())}`, 'key');
      }
      for (const name of refs.names) {
        if (!c.names.has(name)) c.err(at, `${pathText(base)}.state: path "${text}": unknown name \`${name}\`${didYouMean(name, c.names)}`, 'key');
      }
    } catch (e) {
      c.err(at, `${pathText(base)}.state: ${(e as Error).message}`, 'key');
    }
  }
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Semantic checks; [] when all hold. Runs on data the schema may have
 * rejected too (so one pass reports both kinds of problems): parts of the
 * wrong shape are skipped here, the schema reports them.
 */
export function semanticDiagnostics(data: unknown): RawDiagnostic[] {
  const c = new Checker();
  if (!isObj(data)) return c.out;
  if (isObj(data.config)) checkConfig(c, data.config);
  list(data.processes).forEach((p, i) => {
    if (!isObj(p) || typeof p.name !== 'string') return;
    const name = p.name;
    if (c.processes.has(name)) c.err(['processes', i, 'name'], `processes[${i}].name: duplicate process name \`${name}\``);
    c.processes.set(name, 'alive');
  });
  const steps = list(data.steps);
  steps.forEach((step, i) => {
    if (!isObj(step)) return;
    const kind = STEP_KINDS.find((k) => k in step);
    if (kind === undefined || !isObj(step[kind])) return;
    const base: DataPath = ['steps', i, kind];
    const a = step[kind];
    if (step.when !== undefined && (a.as !== undefined || a.child !== undefined)) {
      const why = 'later steps would not know them under other policies';
      c.err(['steps', i, 'when'], `steps[${i}]: a step with \`when\` cannot bind names (\`as\`/\`child\`): ${why}`, 'key');
    }
    if (kind === 'expect') checkExpect(c, base, a);
    else {
      checkArgs(c, base, kind, a);
      checkBindings(c, base, kind, a);
      c.sawAction = true;
    }
  });
  const max = isObj(data.config) && isObj(data.config.limits) ? data.config.limits.maxSteps : undefined;
  if (typeof max === 'number' && steps.length > max) c.err(['steps'], `steps: ${steps.length} steps, more than config.limits.maxSteps = ${max}`, 'key');
  return c.out;
}
