/**
 * archive-build.ts — hand-made zip, tar and gzip bytes with every field under the
 * caller's control, so the hostile-mail generator can make archives that lie.
 *
 * Input: entry descriptions (names, data, methods, flags, and per-field overrides for the
 * central directory, local headers, data descriptors, tar types and pax/GNU records).
 * Output: Uint8Array. Deterministic (no timestamps from the clock).
 * Limits: in-memory, meant for test cases of a few KiB.
 * Errors: none by design: the point is to write what a well-behaved writer never would.
 * Why our own writer: fflate and zlib write only well-formed archives; these cases are
 * about the fields that disagree.
 */
import { deflateRawSync, gzipSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const bytes = (s: string | Uint8Array): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
export const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

// ---- zip ------------------------------------------------------------------------------

export interface ZipEntry {
  name: string | Uint8Array;
  data: string | Uint8Array;
  method?: 0 | 8;
  flags?: number;
  /** Extra fields (raw) in the local header and the central directory. */
  extra?: Uint8Array;
  centralExtra?: Uint8Array;
  /** Central directory disagreements. */
  centralName?: string | Uint8Array;
  centralMethod?: number;
  centralFlags?: number;
  /** Local header disagreement: the method the local header claims. */
  localMethod?: number;
  /** Data descriptor after the data (flag bit 3 is set for you): signed PK\7\8 or unsigned. */
  descriptor?: 'signed' | 'unsigned';
  /** Leave this entry out of the central directory. */
  noCentral?: boolean;
}

export interface ZipOptions {
  /** Bytes before the first local header (self-extractor stub). */
  prefix?: Uint8Array;
  comment?: Uint8Array;
  /** Extra central-directory-only entries pointing at `offset` of a local header inside earlier data. */
  centralOnly?: { name: string; method: 0 | 8; data: Uint8Array; offset: number }[];
}

/** One local header + data (+ descriptor), with its central record. */
function zipRecord(e: ZipEntry, offset: number): { local: Buffer; central: Buffer } {
  const name = bytes(e.name);
  const raw = bytes(e.data);
  const method = e.method ?? 0;
  const comp = method === 8 ? deflateRawSync(raw) : raw;
  const crc = crc32(raw);
  let flags = e.flags ?? 0;
  if (e.descriptor) flags |= 8;
  const extra = e.extra ? bytes(e.extra) : Buffer.alloc(0);
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  lh.writeUInt16LE(20, 4);
  lh.writeUInt16LE(flags, 6);
  lh.writeUInt16LE(e.localMethod ?? method, 8);
  lh.writeUInt32LE(0x21, 10); // 1980-01-01 00:00
  const inDesc = !!e.descriptor;
  lh.writeUInt32LE(inDesc ? 0 : crc, 14);
  lh.writeUInt32LE(inDesc ? 0 : comp.length, 18);
  lh.writeUInt32LE(inDesc ? 0 : raw.length, 22);
  lh.writeUInt16LE(name.length, 26);
  lh.writeUInt16LE(extra.length, 28);
  const parts = [lh, name, extra, comp];
  if (e.descriptor) {
    const d = Buffer.alloc(e.descriptor === 'signed' ? 16 : 12);
    let o = 0;
    if (e.descriptor === 'signed') d.writeUInt32LE(0x08074b50, (o += 4) - 4);
    d.writeUInt32LE(crc, o);
    d.writeUInt32LE(comp.length, o + 4);
    d.writeUInt32LE(raw.length, o + 8);
    parts.push(d);
  }
  const local = Buffer.concat(parts);
  const central = centralRecord({
    name: e.centralName !== undefined ? bytes(e.centralName) : name,
    flags: e.centralFlags ?? flags,
    method: e.centralMethod ?? method,
    crc, compSize: comp.length, size: raw.length, offset,
    extra: e.centralExtra ? bytes(e.centralExtra) : extra,
  });
  return { local, central };
}

function centralRecord(r: { name: Buffer; flags: number; method: number; crc: number; compSize: number; size: number; offset: number; extra: Buffer }): Buffer {
  const ch = Buffer.alloc(46);
  ch.writeUInt32LE(0x02014b50, 0);
  ch.writeUInt16LE(0x031e, 4); // made by: unix, 3.0
  ch.writeUInt16LE(20, 6);
  ch.writeUInt16LE(r.flags, 8);
  ch.writeUInt16LE(r.method, 10);
  ch.writeUInt32LE(0x21, 12);
  ch.writeUInt32LE(r.crc, 16);
  ch.writeUInt32LE(r.compSize, 20);
  ch.writeUInt32LE(r.size, 24);
  ch.writeUInt16LE(r.name.length, 28);
  ch.writeUInt16LE(r.extra.length, 30);
  ch.writeUInt32LE((0o100644 << 16) >>> 0, 38);
  ch.writeUInt32LE(r.offset, 42);
  return Buffer.concat([ch, r.name, r.extra]);
}

/** Local header + data alone (no central record): to hide inside another entry's data. */
export function zipLocalOnly(name: string, data: Uint8Array, method: 0 | 8): Buffer {
  return zipRecord({ name, data, method }, 0).local;
}

export function zipBuild(entries: ZipEntry[], opts: ZipOptions = {}): Buffer {
  const prefix = opts.prefix ? bytes(opts.prefix) : Buffer.alloc(0);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  // Offsets count from the start of the archive proper, as SFX writers that do not
  // adjust them do; Python's zipfile and Info-ZIP unzip correct for the prefix.
  let off = 0;
  for (const e of entries) {
    const r = zipRecord(e, off);
    locals.push(r.local);
    if (!e.noCentral) centrals.push(r.central);
    off += r.local.length;
  }
  for (const c of opts.centralOnly ?? []) {
    const raw = bytes(c.data);
    const comp = c.method === 8 ? deflateRawSync(raw) : raw;
    centrals.push(centralRecord({ name: bytes(c.name), flags: 0, method: c.method, crc: crc32(raw), compSize: comp.length, size: raw.length, offset: c.offset, extra: Buffer.alloc(0) }));
  }
  const cd = Buffer.concat(centrals);
  const comment = opts.comment ? bytes(opts.comment) : Buffer.alloc(0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length, 8);
  end.writeUInt16LE(centrals.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  end.writeUInt16LE(comment.length, 20);
  return Buffer.concat([prefix, ...locals, cd, end, comment]);
}

/** Info-ZIP Unicode Path extra field (0x7075): version 1, CRC-32 of the header name, UTF-8 name. */
export function unicodePathExtra(headerName: string, unicodeName: string): Buffer {
  const n = utf8(unicodeName);
  const b = Buffer.alloc(4 + 5 + n.length);
  b.writeUInt16LE(0x7075, 0);
  b.writeUInt16LE(5 + n.length, 2);
  b[4] = 1;
  b.writeUInt32LE(crc32(bytes(headerName)), 5);
  n.copy(b, 9);
  return b;
}

// ---- tar ------------------------------------------------------------------------------

export interface TarHeader {
  name: string;
  size: number;
  type?: string;
  linkname?: string;
  /** 'ustar' (POSIX, default), 'gnu' ("ustar  \0") or 'v7' (no magic at all). */
  magic?: 'ustar' | 'gnu' | 'v7';
  prefix?: string;
  /** Raw bytes for the GNU sparse header area (offset 386) of an old-style 'S' member. */
  gnuSparse?: { entries: [number, number][]; realSize: number };
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarHeader(h: TarHeader): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'latin1');
  b.write(octal(0o644, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  b.write(octal(h.size, 12), 124, 'latin1');
  b.write(octal(0, 12), 136, 'latin1');
  b.write(h.type ?? '0', 156, 'latin1');
  if (h.linkname) b.write(h.linkname, 157, 100, 'latin1');
  const magic = h.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\x0000', 257, 'latin1');
  else if (magic === 'gnu') b.write('ustar  \x00', 257, 'latin1');
  if (magic !== 'v7') {
    b.write('root', 265, 'latin1');
    b.write('root', 297, 'latin1');
  }
  if (h.prefix) b.write(h.prefix, 345, 155, 'latin1');
  if (h.gnuSparse) {
    let o = 386;
    for (const [off, len] of h.gnuSparse.entries.slice(0, 4)) {
      b.write(octal(off, 12), o, 'latin1');
      b.write(octal(len, 12), o + 12, 'latin1');
      o += 24;
    }
    b.write(octal(h.gnuSparse.realSize, 12), 483, 'latin1');
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

function pad512(data: Uint8Array): Buffer {
  const n = Math.ceil(data.length / 512) * 512;
  const b = Buffer.alloc(n);
  b.set(data);
  return b;
}

export type TarItem =
  | { kind: 'file'; header: Omit<TarHeader, 'size'>; data: string | Uint8Array }
  | { kind: 'raw'; bytes: Uint8Array };

/** A pax record "LEN key=value\n" (LEN counts itself). */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

export function tarBuild(items: TarItem[], trailer = true): Buffer {
  const out: Buffer[] = [];
  for (const it of items) {
    if (it.kind === 'raw') {
      out.push(bytes(it.bytes));
      continue;
    }
    const data = bytes(it.data);
    out.push(tarHeader({ ...it.header, size: data.length }), pad512(data));
  }
  if (trailer) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** A pax extended header ('x', or 'g' for global) carrying `records`, as a tar item. */
export function paxItem(records: [string, string][], type: 'x' | 'g' = 'x'): TarItem {
  return { kind: 'file', header: { name: 'PaxHeaders/x', type }, data: records.map(([k, v]) => paxRecord(k, v)).join('') };
}

/** A GNU long-name ('L') or long-link ('K') member for the next header. */
export function gnuLongItem(name: string, type: 'L' | 'K' = 'L'): TarItem {
  return { kind: 'file', header: { name: '././@LongLink', type, magic: 'gnu' }, data: name + '\0' };
}

// ---- gzip -----------------------------------------------------------------------------

export interface GzipOptions {
  /** FNAME field (the original file name). */
  name?: string;
  /** OR'ed into FLG (e.g. 0x20: a reserved bit). */
  extraFlags?: number;
}

export function gzipBuild(data: string | Uint8Array, o: GzipOptions = {}): Buffer {
  const raw = bytes(data);
  const body = deflateRawSync(raw);
  let flg = o.extraFlags ?? 0;
  const name = o.name !== undefined ? Buffer.concat([bytes(o.name), Buffer.from([0])]) : Buffer.alloc(0);
  if (o.name !== undefined) flg |= 8;
  const head = Buffer.from([0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(crc32(raw), 0);
  tail.writeUInt32LE(raw.length >>> 0, 4);
  return Buffer.concat([head, name, body, tail]);
}

export const gzipPlain = (data: string | Uint8Array): Buffer => gzipSync(bytes(data), { level: 6 });
