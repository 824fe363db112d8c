/**
 * unpack-harness.ts — test helpers for src/core/unpack: run an unpacker over chunks and
 * record a trace; build zip and tar archives byte by byte (so tests can make the odd
 * ones real tools won't: lying sizes, data descriptors, ZIP64, encrypted flags).
 */
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/core/unpack/crc32.js';
import { createEmbeddedZipUnpacker, createUnpacker } from '../../src/core/unpack/index.js';
import type { ArchiveFormat, UnpackBudget, UnpackHandler } from '../../src/core/unpack/unpack-types.js';

export interface Trace {
  /** Ordered events: entry/end/limit/corrupt/encrypted, with hashes at end. */
  events: string[];
  entries: { name: string; size: number; sha256: string; declaredSize?: number; ended: boolean }[];
  limits: string[];
  corrupt: string[];
  encrypted: string[];
  /** `code` (record only) or `code!` (a verdict), with `@member` when given. */
  anomalies: string[];
  /** Alternative names: `member -> alt` (from EntryMeta.altNames and onAltName). */
  altNames: string[];
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
/** `zip-embedded`: the zip reading the session gives files not sniffed as zip. */
export function unpack(format: ArchiveFormat | 'zip-embedded', chunks: Iterable<Uint8Array>, b: UnpackBudget = budget(), keep = false): Trace & { data: Uint8Array[] } {
  const t: Trace & { data: Uint8Array[] } = { events: [], entries: [], limits: [], corrupt: [], encrypted: [], anomalies: [], altNames: [], data: [] };
  const make = (h: UnpackHandler) => (format === 'zip-embedded' ? createEmbeddedZipUnpacker(h, b) : createUnpacker(format, h, b));
  const u = make({
    onEntry(meta) {
      const rec = { name: meta.name, size: 0, sha256: '', declaredSize: meta.declaredSize, ended: false };
      t.entries.push(rec);
      t.events.push(`entry ${meta.name}`);
      for (const alt of meta.altNames ?? []) t.altNames.push(`${meta.name} -> ${alt}`);
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
      for (const alt of meta.altNames ?? []) t.altNames.push(`${meta.name} -> ${alt}`);
      t.encrypted.push(meta.name);
      t.events.push(`encrypted ${meta.name}`);
    },
    onCorrupt(detail) {
      t.corrupt.push(detail);
      t.events.push(`corrupt ${detail}`);
    },
    onAnomaly(code, verdict, member) {
      const a = `${code}${verdict ? '!' : ''}${member !== undefined ? '@' + member : ''}`;
      t.anomalies.push(a);
      t.events.push(`anomaly ${a}`);
    },
    onAltName(member, alt) {
      t.altNames.push(`${member} -> ${alt}`);
      t.events.push(`altname ${member} -> ${alt}`);
    },
  });
  // What reaches the members (Unpacker.decided / unpackedRanges), merged over the writes: it
  // must not depend on the chunking either, so it is part of the trace.
  const marked: number[] = [];
  let decided = 0;
  let written = 0;
  for (const c of chunks) {
    u.write(c);
    written += c.length;
    const r = u.unpackedRanges?.() ?? [];
    const now = u.decided ?? written;
    if (now < decided || now > written) throw new Error(`decided ${now} outside [${decided}, ${written}]`);
    for (let i = 0; i < r.length; i += 2) {
      const a = r[i]!;
      const b = r[i + 1]!;
      if (a < decided || b > now || a >= b || (marked.length > 0 && a < marked[marked.length - 1]!)) throw new Error(`range [${a}, ${b}) outside [${decided}, ${now}) or out of order`);
      if (marked.length > 0 && marked[marked.length - 1] === a) marked[marked.length - 1] = b;
      else marked.push(a, b);
    }
    decided = now;
  }
  u.end();
  t.events.push(`unpacked [${marked.join(' ')}] decided ${decided}/${written}`);
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
  /** Raw name bytes (NULs, non-UTF-8), instead of `name`. */
  nameBytes?: Uint8Array;
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
  /** More local extra fields (raw). */
  extra?: Uint8Array;
  /** Central record overrides, or false: no central record (a local-only entry). */
  cd?: Partial<CentralFields> | false;
}

export interface CentralFields {
  nameBytes: Uint8Array;
  method: number;
  flags: number;
  crc: number;
  csize: number;
  usize: number;
  /** Local header offset as stored (relative to the writer's offset base). */
  offset: number;
  extra: Uint8Array;
}

const le16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const le64 = (v: number) => [...le32(v % 0x100000000), ...le32(Math.floor(v / 0x100000000))];

/** Info-ZIP Unicode Path extra field (0x7075) for `name`, claiming the CRC of `headerName`. */
export function unicodePathExtra(name: string, headerName: Uint8Array): Uint8Array {
  const n = Buffer.from(name, 'utf8');
  return new Uint8Array([...le16(0x7075), ...le16(5 + n.length), 1, ...le32(crc32(headerName)), ...n]);
}

/**
 * Writes zips piece by piece, so tests can make the odd ones: junk before or between,
 * local headers hidden in other data, central records that disagree or point anywhere.
 */
export class ZipWriter {
  private readonly out: Uint8Array[] = [];
  private readonly central: Uint8Array[] = [];
  /** Absolute position of the next byte. */
  pos = 0;

  /** `base`: where offsets count from (0 = file start; the archive start for unadjusted junk in front). */
  constructor(readonly base = 0) {}

  raw(b: Uint8Array): this {
    this.out.push(b);
    this.pos += b.length;
    return this;
  }

  /** The bytes of one local entry (header, data, descriptor) without adding them. */
  static localBytes(s: ZipSpec): { bytes: Uint8Array; fields: CentralFields; headerLen: number } {
    const method = s.method ?? 8;
    const payload = s.compressed ?? (method === 8 ? new Uint8Array(deflateRawSync(s.data)) : s.data);
    const crc = s.crc ?? crc32(s.data);
    const desc = s.descriptor ?? 'none';
    const flags = (s.flags ?? 0) | (desc !== 'none' ? 8 : 0) | (s.nameBytes ? 0 : 2048);
    const name = s.nameBytes ?? Buffer.from(s.name, 'utf8');
    const csize = s.csize ?? payload.length;
    const usize = s.usize ?? s.data.length;
    const z64 = s.zip64 ? [...le16(1), ...le16(16), ...le64(desc === 'none' ? usize : 0), ...le64(desc === 'none' ? csize : 0)] : [];
    const extra = [...z64, ...(s.extra ?? [])];
    const hdrSizes = desc !== 'none' ? [0, 0, 0] : [crc, s.zip64 ? 0xffffffff : csize, s.zip64 ? 0xffffffff : usize];
    const local = new Uint8Array([
      ...le32(0x04034b50), ...le16(s.zip64 ? 45 : 20), ...le16(flags), ...le16(method), ...le16(0), ...le16(0x21),
      ...le32(hdrSizes[0]!), ...le32(hdrSizes[1]!), ...le32(hdrSizes[2]!), ...le16(name.length), ...le16(extra.length),
      ...name, ...extra,
    ]);
    const parts: Uint8Array[] = [local, payload];
    if (desc !== 'none')
      parts.push(new Uint8Array([
        ...(desc === 'signed' ? le32(0x08074b50) : []), ...le32(crc),
        ...(s.zip64 ? [...le64(csize), ...le64(usize)] : [...le32(csize), ...le32(usize)]),
      ]));
    const fields: CentralFields = { nameBytes: name, method, flags, crc, csize, usize, offset: 0, extra: new Uint8Array(0) };
    return { bytes: Buffer.concat(parts), fields, headerLen: local.length };
  }

  /** Append an entry and (unless spec.cd === false) its central record. Returns the header's absolute position. */
  entry(s: ZipSpec): number {
    const at = this.pos;
    const { bytes, fields } = ZipWriter.localBytes(s);
    this.raw(bytes);
    if (s.cd !== false) this.centralRecord({ ...fields, offset: at - this.base, ...s.cd });
    return at;
  }

  centralRecord(f: CentralFields): this {
    const big = f.csize >= 0xffffffff || f.usize >= 0xffffffff || f.offset >= 0xffffffff;
    const z64 = big ? [...le16(1), ...le16(24), ...le64(f.usize), ...le64(f.csize), ...le64(f.offset)] : [];
    const extra = [...z64, ...f.extra];
    const sat = (v: number) => (big ? 0xffffffff : v);
    this.central.push(new Uint8Array([
      ...le32(0x02014b50), ...le16(20), ...le16(big ? 45 : 20), ...le16(f.flags), ...le16(f.method), ...le16(0), ...le16(0x21),
      ...le32(f.crc), ...le32(sat(f.csize)), ...le32(sat(f.usize)), ...le16(f.nameBytes.length),
      ...le16(extra.length), ...le16(0), ...le16(0), ...le16(0), ...le32(0), ...le32(sat(f.offset)), ...f.nameBytes, ...extra,
    ]));
    return this;
  }

  /** Central directory (unless `noCentral`) and end record; returns the whole file. */
  finish(opts: { comment?: Uint8Array; zip64?: boolean; count?: number; noCentral?: boolean } = {}): Uint8Array {
    const cdAt = this.pos;
    if (!opts.noCentral) {
      for (const c of this.central) this.raw(c);
      const cdSize = this.pos - cdAt;
      const count = opts.count ?? this.central.length;
      if (opts.zip64) {
        const e64At = this.pos;
        this.raw(new Uint8Array([
          ...le32(0x06064b50), ...le64(44), ...le16(45), ...le16(45), ...le32(0), ...le32(0), ...le64(count), ...le64(count),
          ...le64(cdSize), ...le64(cdAt - this.base),
        ]));
        this.raw(new Uint8Array([...le32(0x07064b50), ...le32(0), ...le64(e64At - this.base), ...le32(1)]));
      }
      const comment = opts.comment ?? new Uint8Array(0);
      this.raw(new Uint8Array([
        ...le32(0x06054b50), ...le16(0), ...le16(0), ...le16(opts.zip64 ? 0xffff : count), ...le16(opts.zip64 ? 0xffff : count),
        ...le32(opts.zip64 ? 0xffffffff : cdSize), ...le32(opts.zip64 ? 0xffffffff : cdAt - this.base), ...le16(comment.length),
      ]));
      this.raw(comment);
    }
    return Buffer.concat(this.out);
  }
}

export function buildZip(specs: ZipSpec[], opts: { centralDirectory?: boolean } = {}): Uint8Array {
  const w = new ZipWriter();
  for (const s of specs) w.entry(s);
  return w.finish({ noCentral: opts.centralDirectory === false });
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
  /** Change header bytes before the checksum is computed (odd fields, GNU sparse maps). */
  patch?: (h: Uint8Array) => void;
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
  s.patch?.(h);
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
