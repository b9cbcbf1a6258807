import { gzipSync } from 'node:zlib';

/*
 * A gzip'd cpio "newc" archive (the initramfs format the kernel unpacks,
 * Documentation/driver-api/early-userspace/buffer-format.rst), written
 * directly so that building the guest needs no cpio on the host.
 */

export interface CpioEntry {
  path: string;
  /** 'dir', 'file' (with data), or a character device. */
  type: 'dir' | 'file' | 'chr';
  mode: number;
  data?: Uint8Array;
  rdev?: [number, number];
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, size: number, nlink: number, rdev: [number, number], nameLen: number): string {
  return ['070701', hex8(ino), hex8(mode), hex8(0), hex8(0), hex8(nlink), hex8(0), hex8(size), hex8(0), hex8(0), hex8(rdev[0]), hex8(rdev[1]), hex8(nameLen), hex8(0)].join('');
}

/** The uncompressed newc archive of `entries` (parents before children), with the trailer. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    off += b.length;
  };
  const entry = (ino: number, e: CpioEntry | null): void => {
    const name = e === null ? 'TRAILER!!!' : e.path.replace(/^\/+/, '');
    const data = e?.data ?? new Uint8Array(0);
    const type = e === null ? 0 : e.type === 'dir' ? S_IFDIR : e.type === 'chr' ? S_IFCHR : S_IFREG;
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    push(Buffer.from(header(ino, type | (e?.mode ?? 0), data.length, e?.type === 'dir' ? 2 : 1, e?.rdev ?? [0, 0], nameBytes.length), 'ascii'));
    push(nameBytes);
    push(Buffer.alloc(pad4(off)));
    if (data.length > 0) {
      push(Buffer.from(data.buffer, data.byteOffset, data.length));
      push(Buffer.alloc(pad4(off)));
    }
  };
  entries.forEach((e, i) => entry(i + 1, e));
  entry(0, null);
  return Buffer.concat(parts);
}

/** The gzip'd initramfs. */
export function initramfs(entries: readonly CpioEntry[]): Buffer {
  return gzipSync(cpioNewc(entries), { level: 6 });
}

/** Parse a newc archive back (tests, and inspecting a built initramfs). */
export function readCpio(buf: Buffer): { path: string; mode: number; data: Buffer }[] {
  const out: { path: string; mode: number; data: Buffer }[] = [];
  let off = 0;
  for (;;) {
    const h = buf.toString('ascii', off, off + 110);
    if (h.slice(0, 6) !== '070701') throw new Error(`readCpio: bad magic at ${off}`);
    const field = (i: number): number => Number.parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameLen = field(11);
    off += 110;
    const name = buf.toString('utf8', off, off + nameLen - 1);
    off += nameLen;
    off += pad4(off);
    if (name === 'TRAILER!!!') return out;
    const data = buf.subarray(off, off + size);
    off += size;
    off += pad4(off);
    out.push({ path: name, mode, data });
  }
}
