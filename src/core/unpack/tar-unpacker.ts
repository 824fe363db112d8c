/**
 * tar-unpacker.ts — push state machine for tar: v7, ustar, GNU and pax (POSIX.1-2001).
 *
 * Input: the tar bytes, any chunking. Output: one entry per regular file ('0', NUL,
 * '7', and — as POSIX asks — any unknown type flag, so odd types cannot hide data).
 * Links, devices, directories and FIFOs carry no data; GNU 'L'/'K' long names and pax
 * 'x' records (path=, size=) apply to the next header; pax 'g' and GNU 'D'/'N'/'V'
 * data is skipped. Names: pax path > GNU long name > ustar prefix/name.
 * Sizes: octal (NUL/space terminated) or GNU base-256; pax size= overrides.
 * Limits: archive-entries per regular file. Tar is a container, not a decompressor:
 * its bytes are not counted as unpacked (they were counted when produced/decoded).
 * Carry: one 512-byte header, GNU long names ≤ 64 KiB, pax records ≤ 1 MiB
 * (longer ones are onCorrupt: we never allocate what a peer claims).
 * Errors (onCorrupt): header checksum mismatch, bad size field, truncation inside a
 * header or member, oversize/garbled pax or long-name data.
 * End: two zero blocks (a lone zero block or EOF at a header boundary is accepted).
 * Gaps: GNU sparse ('S') members are emitted as their stored data (holes not expanded);
 * pax global ('g') records are not applied to later members.
 */
import { decodeName } from './name-decode.js';
import { UnpackerBase } from './unpack-base.js';
import type { UnpackBudget, UnpackHandler } from './unpack-types.js';

const BLOCK = 512;
const MAX_LONGNAME = 64 * 1024;
const MAX_PAX = 1024 * 1024;

/** Header field offsets/lengths (ustar). */
const F = { NAME: [0, 100], SIZE: [124, 12], CHKSUM: [148, 8], TYPE: 156, MAGIC: [257, 6], PREFIX: [345, 155] } as const;

/** Type flags with no data to scan (their data, if any, is skipped). */
const NO_DATA_TYPES = new Set(['1', '2', '3', '4', '5', '6']);
const SKIP_DATA_TYPES = new Set(['g', 'D', 'N', 'V']);

const enum S {
  Header,
  Data, // regular member → sink
  Skip, // data we don't scan
  Meta, // 'L', 'K', 'x' data collected
  Pad, // to the next 512-byte boundary
  Done,
}

export class TarUnpacker extends UnpackerBase {
  private state = S.Header;
  private readonly block = new Uint8Array(BLOCK);
  private have = 0;
  private remaining = 0;
  private pad = 0;
  private zeroBlocks = 0;
  private headersSeen = 0;
  private meta: Uint8Array | null = null;
  private metaLen = 0;
  private metaType = '';
  private longName: string | null = null;
  private paxPath: string | null = null;
  private paxSize: number | null = null;

  constructor(handler: UnpackHandler, budget: UnpackBudget) {
    super(handler, budget);
  }

  protected step(buf: Uint8Array, i: number): number {
    switch (this.state) {
      case S.Header: {
        const n = Math.min(BLOCK - this.have, buf.length - i);
        this.block.set(buf.subarray(i, i + n), this.have);
        this.have += n;
        if (this.have === BLOCK) {
          this.have = 0;
          this.header();
        }
        return i + n;
      }
      case S.Data:
      case S.Skip:
      case S.Meta: {
        const n = Math.min(this.remaining, buf.length - i);
        const d = buf.subarray(i, i + n);
        if (this.state === S.Data) this.emitStored(d);
        else if (this.state === S.Meta) {
          this.meta!.set(d, this.metaLen);
          this.metaLen += n;
        }
        this.remaining -= n;
        if (this.remaining === 0) this.dataDone();
        return i + n;
      }
      case S.Pad: {
        const n = Math.min(this.pad, buf.length - i);
        this.pad -= n;
        if (this.pad === 0) this.state = S.Header;
        return i + n;
      }
      case S.Done:
        return buf.length;
    }
  }

  private header(): void {
    const h = this.block;
    if (isZero(h)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.state = S.Done;
      return;
    }
    if (this.zeroBlocks > 0) return this.corrupt('tar: data after a zero block');
    if (!checksumOk(h)) return this.corrupt('tar: header checksum mismatch');
    this.headersSeen++;
    let size = parseNumber(h.subarray(F.SIZE[0], F.SIZE[0] + F.SIZE[1]));
    if (size === null) return this.corrupt('tar: bad size field');
    const type = String.fromCharCode(h[F.TYPE]!);

    if (type === 'L' || type === 'K' || type === 'x') {
      const max = type === 'x' ? MAX_PAX : MAX_LONGNAME;
      if (size > max) return this.corrupt(`tar: '${type}' header data too large`);
      this.metaType = type;
      this.meta = new Uint8Array(size);
      this.metaLen = 0;
      return this.startData(S.Meta, size);
    }
    if (this.paxSize !== null) size = this.paxSize;
    const name = this.paxPath ?? this.longName ?? ustarName(h);
    this.paxPath = this.paxSize = this.longName = null;

    if (NO_DATA_TYPES.has(type)) return this.startData(S.Skip, 0);
    if (SKIP_DATA_TYPES.has(type)) return this.startData(S.Skip, size);
    if (!this.openEntry({ name, declaredSize: size, encrypted: false })) return;
    this.startData(S.Data, size);
  }

  private startData(state: S, size: number): void {
    this.state = state;
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.dataDone();
  }

  private dataDone(): void {
    if (this.state === S.Data) this.closeEntry();
    else if (this.state === S.Meta && !this.metaDone()) return;
    this.state = this.pad ? S.Pad : S.Header;
  }

  /** Apply a completed GNU long name or pax extended header to the next member. */
  private metaDone(): boolean {
    const d = this.meta!;
    this.meta = null;
    if (this.metaType !== 'x') {
      const name = decodeName(d);
      if (this.metaType === 'L') this.longName = name;
      return true;
    }
    // Records: "<len> <key>=<value>\n", len counting the whole record in bytes.
    for (let p = 0; p < d.length; ) {
      let sp = p;
      let len = 0;
      while (sp < d.length && d[sp]! >= 0x30 && d[sp]! <= 0x39 && sp - p < 8) len = len * 10 + d[sp++]! - 0x30;
      if (sp >= d.length || d[sp] !== 0x20 || len <= sp - p + 1 || p + len > d.length || d[p + len - 1] !== 0x0a) {
        if (d.subarray(p).every((b) => b === 0)) break; // NUL padding after the last record
        this.corrupt('tar: malformed pax record');
        return false;
      }
      const rec = d.subarray(sp + 1, p + len - 1);
      const eq = rec.indexOf(0x3d);
      if (eq > 0) {
        const key = Buffer.from(rec.subarray(0, eq)).toString('latin1');
        const val = rec.subarray(eq + 1);
        if (key === 'path') this.paxPath = decodeName(val);
        else if (key === 'size') {
          const v = parseDecimal(val);
          if (v === null) {
            this.corrupt('tar: bad pax size');
            return false;
          }
          this.paxSize = v;
        }
      }
      p += len;
    }
    return true;
  }

  protected finish(): void {
    if (this.state === S.Done) return;
    if (this.state === S.Header && this.have === 0) {
      if (this.zeroBlocks === 0 && this.headersSeen === 0) return this.corrupt('tar: empty');
      return; // EOF at a header boundary: accepted (no end-of-archive blocks)
    }
    this.corrupt('tar: truncated');
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Sum of header bytes with the checksum field as spaces; writers differ on signedness. */
function checksumOk(h: Uint8Array): boolean {
  const want = parseNumber(h.subarray(F.CHKSUM[0], F.CHKSUM[0] + F.CHKSUM[1]));
  if (want === null) return false;
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= F.CHKSUM[0] && i < F.CHKSUM[0] + F.CHKSUM[1] ? 0x20 : h[i]!;
    u += b;
    s += b > 127 ? b - 256 : b;
  }
  return want === u || want === s;
}

/** Octal (leading spaces, NUL/space terminated) or GNU base-256 (high bit set). Null if invalid. */
export function parseNumber(f: Uint8Array): number | null {
  if (f[0]! & 0x80) {
    if (f[0] === 0xff) return null; // negative
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) {
      v = v * 256 + f[i]!;
      if (v > Number.MAX_SAFE_INTEGER) return null;
    }
    return v;
  }
  let i = 0;
  while (i < f.length && f[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < f.length; i++) {
    const c = f[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return null;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < f.length; i++) if (f[i] !== 0 && f[i] !== 0x20) return null;
  return digits || f.every((c) => c === 0 || c === 0x20) ? v : null;
}

function parseDecimal(b: Uint8Array): number | null {
  if (b.length === 0 || b.length > 16) return null;
  let v = 0;
  for (const c of b) {
    if (c < 0x30 || c > 0x39) return null;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function ustarName(h: Uint8Array): string {
  const name = decodeName(h.subarray(F.NAME[0], F.NAME[0] + F.NAME[1]));
  // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar  ") uses those bytes otherwise.
  const posix = h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72 && h[262] === 0;
  if (!posix) return name;
  const prefix = decodeName(h.subarray(F.PREFIX[0], F.PREFIX[0] + F.PREFIX[1]));
  return prefix ? `${prefix}/${name}` : name;
}
