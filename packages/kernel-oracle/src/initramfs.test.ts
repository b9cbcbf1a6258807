import { describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { cpioNewc, initramfs, readCpio, type CpioEntry } from './index.js';

/* The newc format of Documentation/driver-api/early-userspace/buffer-format.rst: 110-byte ASCII
 * headers with magic 070701, name and data each padded to 4 bytes, a TRAILER!!! entry last. */

const entries: CpioEntry[] = [
  { path: 'bin', type: 'dir', mode: 0o755 },
  { path: 'dev/console', type: 'chr', mode: 0o600, rdev: [5, 1] },
  { path: 'init', type: 'file', mode: 0o755, data: Buffer.from('#!ELF not really\n') },
  { path: 'bin/koracle', type: 'file', mode: 0o755, data: new Uint8Array([1, 2, 3]) },
  { path: 'tests', type: 'file', mode: 0o644, data: Buffer.from('a\nb\n') },
];

describe('initramfs (cpio newc)', () => {
  it('reads back what it wrote: paths, types and data, in order', () => {
    const back = readCpio(cpioNewc(entries));
    expect(back.map((e) => e.path)).toEqual(entries.map((e) => e.path));
    expect(back[0]!.mode).toBe(0o040755);
    expect(back[1]!.mode).toBe(0o020600);
    expect(back[2]!.mode).toBe(0o100755);
    expect(back[2]!.data.toString()).toBe('#!ELF not really\n');
    expect([...back[3]!.data]).toEqual([1, 2, 3]);
  });

  it('pads every header to 4 bytes and ends with the trailer', () => {
    const buf = cpioNewc(entries);
    expect(buf.length % 4).toBe(0);
    expect(buf.toString('ascii', 0, 6)).toBe('070701');
    expect(buf.includes(Buffer.from('TRAILER!!!\0'))).toBe(true);
    // the console device node carries major 5 minor 1 in rdevmajor/rdevminor (fields 9 and 10 after the magic)
    const at = buf.indexOf('dev/console') - 110;
    expect(Number.parseInt(buf.toString('ascii', at + 6 + 9 * 8, at + 6 + 10 * 8), 16)).toBe(5);
    expect(Number.parseInt(buf.toString('ascii', at + 6 + 10 * 8, at + 6 + 11 * 8), 16)).toBe(1);
  });

  it('gzips the archive for the kernel', () => {
    expect(gunzipSync(initramfs(entries)).equals(cpioNewc(entries))).toBe(true);
  });
});
