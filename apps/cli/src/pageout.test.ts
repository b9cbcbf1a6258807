import { EV, Ledger, modeledNsFor } from '@foliolab/ledger';
import type { EngineConfig, EngineFactory, EngineLike, InvariantReport } from '@foliolab/scenario';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { styleFor } from './io.js';
import { differingEvents, PAGEOUT_SCHEMA, pageoutMemory, parseArchList, parsePolicyList, planPageout, runPageout } from './pageout.js';
import { renderPageout } from './pageout-render.js';

/*
 * The experiment's plumbing, with a stand-in engine: it charges a fixed set
 * of events per folio on madvise(MADV_PAGEOUT) — more under mainline than
 * batched, as §8's worked example has it — so the counting, pricing, ratios
 * and rendering can be checked without @foliolab/unmap-engine.
 */

interface Calls {
  configs: EngineConfig[];
  writes: [number, number, number | undefined][];
}

function fakeFactory(calls: Calls, opts: { violate?: boolean } = {}): EngineFactory {
  return (config) => {
    calls.configs.push(config);
    const ledger = new Ledger();
    const policy = config.policy!;
    const report: InvariantReport = opts.violate
      ? { ok: false, violations: [{ rule: 'rss-census', where: 'pid 1', detail: 'off by one' }] }
      : { ok: true, violations: [] };
    const e = {
      ledger,
      createProcess: () => 1,
      mmap: (_pid: number, o: { addr?: number }) => o.addr ?? 0,
      write: (_pid: number, addr: number, len: number, token?: number) => {
        calls.writes.push([addr, len, token]);
        ledger.charge(EV.PTE_WRITE, len / 4096); // setup: must not be counted
      },
      madvise: (_pid: number, _addr: number, len: number) => {
        const folios = len / 65536;
        const oneByOne = policy !== 'batched';
        ledger.charge(EV.TLBI_VA, folios * (oneByOne ? 32 : 16));
        ledger.charge(EV.DSB_ISHST, folios * (oneByOne ? 17 : 1));
        ledger.charge(EV.RMAP_CALL, folios * (oneByOne ? 16 : 1));
        ledger.charge(EV.SWAP_SLOT_UPDATE, folios * 16);
      },
      checkInvariants: () => report,
      read: () => ({ pages: 0, lost: [] }),
      dump: () => ({ folios: Array.from({ length: 64 }, () => ({ order: 4 })) }),
    };
    return e as unknown as EngineLike;
  };
}

describe('planPageout: flags → plan (issue 6 defaults: 256M of 64K folios, every arch and policy)', () => {
  it('defaults', () => {
    const p = planPageout({});
    expect(p).toMatchObject({ sizeBytes: 256 * 2 ** 20, folioBytes: 65536, folio: '64K', tlbiRange: false, verify: false });
    expect(p.archs).toEqual(['arm64-contpte', 'arm64-nocont', 'x86']);
    expect(p.policies).toEqual(['per-pte', 'mainline', 'batched']);
    expect(p.memory).toBe(544 * 2 ** 20);
    expect(pageoutMemory(3 * 2 ** 20)).toBe(38 * 2 ** 20);
  });

  it('arch and policy lists: aliases, comma lists, canonical order, no duplicates', () => {
    expect(parseArchList('arm64,x86,arm64-contpte')).toEqual(['arm64-contpte', 'x86']);
    expect(parsePolicyList('batched,mainline')).toEqual(['mainline', 'batched']);
    expect(parsePolicyList('all,batched')).toEqual(['per-pte', 'mainline', 'batched']);
  });

  it.each([
    [{ size: '0' }, 'pageout: --size 0 must be a non-zero multiple of the folio size 64K'],
    [{ folio: '8K' }, 'pageout: --folio 8K is not a folio size anonymous memory uses; one of 4K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M (no 8K: anon never uses order 1)'],
    [{ size: '3G' }, 'pageout: --size 3G needs 6176M of simulated memory (twice the range plus 32M), more than the limit of 4G; raise it with --max-memory'],
    [{ maxMemory: 'lots' }, 'pageout: --max-memory "lots": bad size "lots": expected bytes as a number or a string like 4K, 64K, 2M, 1G or 0x10000'],
  ])('%j → CliError exit 2', (o, msg) => {
    expect(() => planPageout(o)).toThrow(CliError);
    expect(() => planPageout(o)).toThrow(msg);
  });
});

describe('runPageout with a stand-in engine', () => {
  const plan = planPageout({ size: '4M', arch: 'arm64,x86,arm64-nocont', verify: true });

  it('maps at 2M alignment, writes zero pages (memset 0), and counts the pageout call alone', () => {
    const calls: Calls = { configs: [], writes: [] };
    const seen: string[] = [];
    const r = runPageout(fakeFactory(calls), plan, (i, n, arch, policy) => seen.push(`${i + 1}/${n} ${arch} ${policy}`));
    expect(seen).toHaveLength(9);
    expect(seen[0]).toBe('1/9 arm64-contpte per-pte');
    expect(calls.writes[0]).toEqual([0x4000_0000, 4 * 2 ** 20, 0]);
    expect(calls.configs[0]).toMatchObject({ arch: 'arm64-contpte', policy: 'per-pte', mthp: { '64K': 'always' }, memory: 40 * 2 ** 20, swap: 40 * 2 ** 20 });
    const m = r.runs.find((x) => x.arch === 'arm64-contpte' && x.policy === 'mainline')!;
    expect(m.events).toEqual({ TLBI_VA: 64 * 32, DSB_ISHST: 64 * 17, RMAP_CALL: 64 * 16, SWAP_SLOT_UPDATE: 64 * 16 });
    expect(m.modeledNs).toBe(modeledNsFor(m.events, 'arm64'));
    expect(m.folios).toBe(64);
    expect(m.lost).toBe(0);
    expect(r.ok).toBe(true);
  });

  it('ratios: batched/mainline modeled beside A1 (arm64 0.466, x86 0.944); none for arm64-nocont; absolute numbers only for 256M', () => {
    const r = runPageout(fakeFactory({ configs: [], writes: [] }), plan);
    const arm = r.ratios.find((x) => x.arch === 'arm64-contpte')!;
    const b = r.runs.find((x) => x.arch === 'arm64-contpte' && x.policy === 'batched')!;
    const m = r.runs.find((x) => x.arch === 'arm64-contpte' && x.policy === 'mainline')!;
    expect(arm.modeled).toBeCloseTo(b.modeledNs / m.modeledNs, 12);
    expect(arm.published!.ratio).toBeCloseTo(0.4658, 4);
    expect(arm.published!.sameWorkload).toBe(false);
    expect(r.ratios.find((x) => x.arch === 'x86')!.published!.ratio).toBeCloseTo(0.9444, 4);
    expect(r.ratios.find((x) => x.arch === 'arm64-nocont')!.published).toBeNull();
    const v = new Ajv2020({ strict: false }).compile(PAGEOUT_SCHEMA);
    expect(v(JSON.parse(JSON.stringify(r))), JSON.stringify(v.errors)).toBe(true);
  });

  it('renders one table per arch with the differing events, modeled ms and the published ratio', () => {
    const r = runPageout(fakeFactory({ configs: [], writes: [] }), plan);
    const text = renderPageout(r, styleFor({ write: () => true }, {}));
    expect(text).toContain('MADV_PAGEOUT of 4M in 64K folios (64 folio(s), 1,024 PTEs');
    expect(text).toMatch(/TLBI_VA\s+2,048\s+2,048\s+1,024/);
    expect(text).not.toMatch(/SWAP_SLOT_UPDATE\s+1,024/); // equal under every policy: not shown
    expect(text).toContain('(1 more event kind(s) with equal counts under every policy not shown; --json has them all)');
    expect(text).toContain('published 0.466 (Linux VM on Apple M3, A1)');
    expect(text.split('\n').pop()).toBe('invariants, folio sizes and data: ok');
  });

  it('an invariant violation fails the run (exit 1 in the CLI) and is named', () => {
    const r = runPageout(fakeFactory({ configs: [], writes: [] }, { violate: true }), planPageout({ size: '1M', arch: 'x86', policy: 'batched' }));
    expect(r.ok).toBe(false);
    expect(r.ratios).toEqual([]);
    const text = renderPageout(r, styleFor({ write: () => true }, {}));
    expect(text).toContain('x86 batched: invariant rss-census violated at pid 1: off by one');
    expect(text.split('\n').pop()).toBe('invariants and folio sizes: FAILED');
  });
});

describe('differingEvents', () => {
  it('keeps events whose counts differ (all non-zero ones for a single run), in ledger order', () => {
    expect(differingEvents([{ events: { RMAP_CALL: 16, PTE_READ: 5 } }, { events: { RMAP_CALL: 1, PTE_READ: 5 } }])).toEqual(['RMAP_CALL']);
    expect(differingEvents([{ events: { RMAP_CALL: 16, PTE_READ: 5 } }])).toEqual(['PTE_READ', 'RMAP_CALL']);
    expect(differingEvents([{ events: {} }, { events: { TLBI_VA: 1 } }])).toEqual(['TLBI_VA']);
  });
});
