/**
 * unpack-harness.ts — test helpers for src/core/unpack: run an unpacker over chunks and
 * record a trace; build zip and tar archives byte by byte (so tests can make the odd
 * ones real tools won't: lying sizes, data descriptors, ZIP64, encrypted flags).
 */
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/core/unpack/crc32.js';
import { createUnpacker } from '../../src/core/unpack/index.js';
import type { ArchiveFormat, UnpackBudget } from '../../src/core/unpack/unpack-types.js';

export interface Trace {
  /** Ordered events: entry/end/limit/corrupt/encrypted, with hashes at end. */
  events: string[];
  entries: { name: string; size: number; sha256: string; declaredSize?: number; ended: boolean }[];
  limits: string[];
  corrupt: string[];
  encrypted: string[];
}

export function budget(over: Partial<UnpackBudget> = {}): UnpackBudget {
  return {
    unpackedBytes: 0,
    maxUnpackedBytes: 512 * 1024 * 1024,
    entries: 0,
    maxEntries: 10_000,
    maxRatio: 250,
    ratioGraceBytes: 1024 * 1024,
    ...over,
  };
}

/** Run `format` over `chunks`; `keep` = also keep member bytes (small archives only). */
export function unpack(format: ArchiveFormat, chunks: Iterable<Uint8Array>, b: UnpackBudget = budget(), keep = false): Trace & { data: Uint8Array[] } {
  const t: Trace & { data: Uint8Array[] } = { events: [], entries: [], limits: [], corrupt: [], encrypted: [], data: [] };
  const u = createUnpacker(format, {
    onEntry(meta) {
      const rec = { name: meta.name, size: 0, sha256: '', declaredSize: meta.declaredSize, ended: false };
      t.entries.push(rec);
      t.events.push(`entry ${meta.name}`);
      const h = createHash('sha256');
      const parts: Uint8Array[] = [];
      return {
        write(c) {
          if (rec.ended) throw new Error('write after end');
          rec.size += c.length;
          h.update(c);
          if (keep) parts.push(c.slice());
        },
        end() {
          if (rec.ended) throw new Error('double end');
          rec.ended = true;
          rec.sha256 = h.digest('hex');
          if (keep) t.data.push(Buffer.concat(parts));
          t.events.push(`end ${meta.name} ${rec.size} ${rec.sha256.slice(0, 16)}`);
        },
      };
    },
    onLimit(which) {
      t.limits.push(which);
      t.events.push(`limit ${which}`);
    },
    onEncrypted(meta) {
      t.encrypted.push(meta.name);
      t.events.push(`encrypted ${meta.name}`);
    },
    onCorrupt(detail) {
      t.corrupt.push(detail);
      t.events.push(`corrupt ${detail}`);
    },
  }, b);
  for (const c of chunks) u.write(c);
  u.end();
  return t;
}

export const whole = (b: Uint8Array): Uint8Array[] => [b];
export function split(b: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
/** Split at the given cut points (sorted or not, out-of-range ignored). */
export function cutAt(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const pts = [...new Set(cuts.filter((c) => c > 0 && c < b.length))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let p = 0;
  for (const c of pts) {
    out.push(b.subarray(p, c));
    p = c;
  }
  out.push(b.subarray(p));
  return out;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Deterministic pseudo-random bytes (xorshift), compressible-ish when `text`. */
export function pseudoRandom(n: number, seed = 1, text = false): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  const words = ['virus ', 'mail ', 'stream ', 'midstream ', 'zip ', 'the ', 'a ', 'scan ', '\n'];
  for (let i = 0; i < n; ) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (text) {
      const w = words[x % words.length]!;
      for (let k = 0; k < w.length && i < n; k++) out[i++] = w.charCodeAt(k);
    } else out[i++] = x & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------- zip builder

export interface ZipSpec {
  name: string;
  data: Uint8Array;
  method?: number; // 0 stored, 8 deflate, other: data used raw
  descriptor?: 'none' | 'signed' | 'unsigned';
  zip64?: boolean;
  flags?: number; // extra flag bits (e.g. 1 = encrypted)
  /** Override header fields to make liars. */
  csize?: number;
  usize?: number;
  crc?: number;
  /** Already-compressed payload (then give crc and usize; `data` is ignored). */
  compressed?: Uint8Array;
}

const le16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const le64 = (v: number) => [...le32(v % 0x100000000), ...le32(Math.floor(v / 0x100000000))];

export function buildZip(specs: ZipSpec[], opts: { centralDirectory?: boolean } = {}): Uint8Array {
  const parts: number[][] = [];
  const out: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const s of specs) {
    const method = s.method ?? 8;
    const payload = s.compressed ?? (method === 8 ? new Uint8Array(deflateRawSync(s.data)) : s.data);
    const crc = s.crc ?? crc32(s.data);
    const desc = s.descriptor ?? 'none';
    const flags = (s.flags ?? 0) | (desc !== 'none' ? 8 : 0) | 2048;
    const name = Buffer.from(s.name, 'utf8');
    const csize = s.csize ?? payload.length;
    const usize = s.usize ?? s.data.length;
    const extra = s.zip64 ? [...le16(1), ...le16(16), ...le64(desc === 'none' ? usize : 0), ...le64(desc === 'none' ? csize : 0)] : [];
    const hdrSizes = desc !== 'none' ? [0, 0, 0] : [crc, s.zip64 ? 0xffffffff : csize, s.zip64 ? 0xffffffff : usize];
    const local = new Uint8Array([
      ...le32(0x04034b50), ...le16(s.zip64 ? 45 : 20), ...le16(flags), ...le16(method), ...le16(0), ...le16(0x21),
      ...le32(hdrSizes[0]!), ...le32(hdrSizes[1]!), ...le32(hdrSizes[2]!), ...le16(name.length), ...le16(extra.length),
      ...name, ...extra,
    ]);
    out.push(local, payload);
    let len = local.length + payload.length;
    if (desc !== 'none') {
      const d = new Uint8Array([
        ...(desc === 'signed' ? le32(0x08074b50) : []), ...le32(crc),
        ...(s.zip64 ? [...le64(csize), ...le64(usize)] : [...le32(csize), ...le32(usize)]),
      ]);
      out.push(d);
      len += d.length;
    }
    central.push(new Uint8Array([
      ...le32(0x02014b50), ...le16(20), ...le16(20), ...le16(flags), ...le16(method), ...le16(0), ...le16(0x21),
      ...le32(crc), ...le32(Math.min(csize, 0xffffffff)), ...le32(Math.min(usize, 0xffffffff)), ...le16(name.length),
      ...le16(0), ...le16(0), ...le16(0), ...le16(0), ...le32(0), ...le32(offset), ...name,
    ]));
    offset += len;
  }
  void parts;
  if (opts.centralDirectory !== false) {
    const cdSize = central.reduce((a, c) => a + c.length, 0);
    out.push(...central, new Uint8Array([
      ...le32(0x06054b50), ...le16(0), ...le16(0), ...le16(specs.length), ...le16(specs.length),
      ...le32(cdSize), ...le32(offset), ...le16(0),
    ]));
  }
  return Buffer.concat(out);
}

// ---------------------------------------------------------------- tar builder

export interface TarSpec {
  name: string;
  data?: Uint8Array;
  type?: string; // '0' default
  format?: 'ustar' | 'gnu' | 'v7';
  prefix?: string;
  base256?: boolean;
  linkname?: string;
  /** Declared size override (data still written as given). */
  size?: number;
  badChecksum?: boolean;
}

export function tarHeader(s: TarSpec): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, len: number, str: string) => h.set(Buffer.from(str, 'utf8').subarray(0, len), off);
  const size = s.size ?? s.data?.length ?? 0;
  put(0, 100, s.name);
  put(100, 8, '0000644\0');
  put(108, 8, '0001750\0');
  put(116, 8, '0001750\0');
  if (s.base256) {
    h[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      h[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else put(124, 12, size.toString(8).padStart(11, '0') + '\0');
  put(136, 12, '14174607135\0');
  put(156, 1, s.type ?? '0');
  if (s.linkname) put(157, 100, s.linkname);
  const fmt = s.format ?? 'ustar';
  if (fmt === 'ustar') {
    put(257, 6, 'ustar\0');
    put(263, 2, '00');
    if (s.prefix) put(345, 155, s.prefix);
  } else if (fmt === 'gnu') put(257, 8, 'ustar  \0');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (s.badChecksum) sum += 1;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

export function buildTar(specs: TarSpec[], end = true): Uint8Array {
  const out: Uint8Array[] = [];
  for (const s of specs) {
    out.push(tarHeader(s));
    const d = s.data ?? new Uint8Array(0);
    out.push(d, new Uint8Array((512 - (d.length % 512)) % 512));
  }
  if (end) out.push(new Uint8Array(1024));
  return Buffer.concat(out);
}

/** A pax extended header record set as an 'x' member. */
export function paxMember(records: Record<string, string>, type: 'x' | 'g' = 'x'): TarSpec {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    const bytes = Buffer.byteLength(rest, 'utf8'); // the length counts bytes, not characters
    let len = bytes + 1;
    while (String(len).length + bytes !== len) len++;
    body += `${len}${rest}`;
  }
  return { name: 'PaxHeaders/x', type, data: Buffer.from(body, 'utf8') };
}
