import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FoliolabError } from '@foliolab/ledger';
import { evalAddr, formatAddr, formatSize, parseAddrExpr, parseSize } from './index.js';

describe('parseSize', () => {
  it('reads numbers, binary suffixes and hex', () => {
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('4K')).toBe(4096);
    expect(parseSize('64K')).toBe(65536);
    expect(parseSize('2M')).toBe(2 * 1024 * 1024);
    expect(parseSize('1G')).toBe(2 ** 30);
    expect(parseSize('1T')).toBe(2 ** 40);
    expect(parseSize('0x10000')).toBe(65536);
    expect(parseSize('0')).toBe(0);
  });

  it.each(['64Q', '4k', '1.5M', '-4K', '', 'K', '64 K', '0x', '4KB'])('rejects %j with EINVAL naming the value', (bad) => {
    expect(() => parseSize(bad)).toThrow(FoliolabError);
    expect(() => parseSize(bad)).toThrow(`bad size ${JSON.stringify(bad)}`);
  });

  it.each([-1, 1.5, Number.NaN])('rejects the number %d', (bad) => {
    expect(() => parseSize(bad)).toThrow(/bad size/);
  });

  it('rejects sizes beyond 2^53 bytes with ERANGE', () => {
    expect(() => parseSize(2 ** 60)).toThrow('is too large (more than 2^53 bytes)');
    expect(() => parseSize('9999999999T')).toThrow('size "9999999999T" is too large');
  });
});

describe('formatSize', () => {
  it('picks the largest exact suffix', () => {
    expect(formatSize(65536)).toBe('64K');
    expect(formatSize(2 * 1024 * 1024)).toBe('2M');
    expect(formatSize(3 * 2 ** 30)).toBe('3G');
    expect(formatSize(4097)).toBe('4097');
    expect(formatSize(0)).toBe('0');
  });

  it('round-trips through parseSize (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 22 }), fc.constantFrom(1, 1024, 4096, 2 ** 20, 2 ** 30), (n, unit) => {
        const bytes = n * unit;
        expect(parseSize(formatSize(bytes))).toBe(bytes);
      }),
      { numRuns: 300 },
    );
  });
});

describe('address expressions', () => {
  const names = new Map([['buf', 0x4000_0000], ['b2', 0x4020_0000]]);
  const lookup = (n: string): number | undefined => names.get(n);

  it('evaluates numbers, hex and name+offset sums', () => {
    expect(evalAddr(parseAddrExpr(0x1000), lookup)).toBe(0x1000);
    expect(evalAddr(parseAddrExpr('0x7f0000000000'), lookup)).toBe(0x7f00_0000_0000);
    expect(evalAddr(parseAddrExpr('buf+32K'), lookup)).toBe(0x4000_8000);
    expect(evalAddr(parseAddrExpr('buf + 64K - 4K'), lookup)).toBe(0x4000_f000);
    expect(evalAddr(parseAddrExpr('b2-0x5000'), lookup)).toBe(0x401f_b000);
  });

  it('rejects bad terms and unknown names, naming them', () => {
    expect(() => parseAddrExpr('buf+64Q')).toThrow('"64Q" is neither a name nor a size');
    expect(() => parseAddrExpr('buf++4K')).toThrow('empty term');
    expect(() => evalAddr(parseAddrExpr('bfu+4K'), lookup)).toThrow('unknown name "bfu"');
    expect(() => evalAddr(parseAddrExpr('buf-2G'), lookup)).toThrow('evaluates to');
  });

  it('formatAddr round-trips (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 }), (a) => {
        expect(formatAddr(a)).toMatch(/^0x[0-9a-f]+$/);
        expect(evalAddr(parseAddrExpr(formatAddr(a)), lookup)).toBe(a);
      }),
      { numRuns: 300 },
    );
  });

  it('name + formatted offset evaluates to the sum (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 20 }), fc.integer({ min: 0, max: 2 ** 16 }), (base, pages) => {
        const b = base * 4096;
        const off = pages * 4096;
        const m = new Map([['x', b]]);
        expect(evalAddr(parseAddrExpr(`x+${formatSize(off)}`), (n) => m.get(n))).toBe(b + off);
      }),
      { numRuns: 300 },
    );
  });
});
