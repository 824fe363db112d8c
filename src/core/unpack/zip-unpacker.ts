/**
 * zip-unpacker.ts — push state machine over a zip's local headers (APPNOTE 6.3.x).
 *
 * Streams entry by entry from the local headers; the central directory is never
 * needed and parsing stops at its first record (PK\1\2, or PK\5\6 / PK\6\6 / PK\6\8).
 * Methods: 0 stored and 8 deflate are unpacked; any other method with a known
 * compressed size is emitted *raw* (its compressed bytes) so scanners still see them.
 * Sizes: ZIP64 extra field (0x0001) is honoured; declared sizes are checked, never
 * used for allocation. Data descriptors (flag bit 3): for deflate the stream's own end
 * delimits the data; for stored entries we scan for a signed descriptor
 * (PK\7\8 + CRC + sizes) whose CRC and size match the bytes so far — an unsigned
 * descriptor cannot be found and ends as onCorrupt at end of input.
 * Encrypted (flag bit 0, or AES method 99): onEncrypted, data skipped by its compressed
 * size; if that size is unknown (bit 3) → onCorrupt. Directories ("name/", no data) are
 * counted but not opened.
 * Limits: archive-entries per entry; unpacked-bytes and ratio per deflate output, with
 * two ratio scopes: the entry's deflate stream and all deflate streams of this zip.
 * Carry: ≤ 30 + 2×65535 header bytes, 24 bytes of descriptor look-behind, one
 * inflate staging slice.
 * Errors (onCorrupt): bad signature, truncation, corrupt deflate, CRC or size mismatch
 * (including sizes that lie), missing central directory.
 * Gaps: central-directory-only entries, prepended data (SFX) and multi-disk archives
 * are not followed (clamd gets the raw archive elsewhere in the pipeline if configured);
 * names use UTF-8 or latin-1 (not CP437); the 0x7075 Unicode-path extra is ignored.
 */
import { crc32 } from './crc32.js';
import { InflateError, InflateStream } from './inflate-stream.js';
import { decodeName } from './name-decode.js';
import { newScope, type RatioScope } from './ratio-guard.js';
import { UnpackerBase } from './unpack-base.js';
import type { EntryMeta, UnpackBudget, UnpackHandler } from './unpack-types.js';

/** Little-endian record signatures ("PK" + two bytes). */
export const ZIP_SIG = {
  LOCAL: 0x04034b50,
  CENTRAL: 0x02014b50,
  END: 0x06054b50,
  END64: 0x06064b50,
  END64_LOCATOR: 0x07064b50,
  ARCHIVE_EXTRA: 0x08064b50,
  DIGITAL_SIG: 0x05054b50,
  DESCRIPTOR: 0x08074b50, // also the "spanned archive" marker when first
  SPANNED_OLD: 0x30304b50, // "PK00"
} as const;

const FLAG = { ENCRYPTED: 1, DESCRIPTOR: 8, STRONG_ENC: 64, UTF8: 2048 } as const;
const METHOD = { STORED: 0, DEFLATE: 8, AES: 99 } as const;
const U32_MAX = 0xffffffff;

const enum S {
  Sig,
  Local, // 26 fixed bytes after the signature
  LocalVar, // name + extra
  Stored, // known size
  Deflate,
  StoredScan, // stored + bit 3: look for a signed data descriptor
  Raw, // unsupported method, known size: emit as-is
  Skip, // encrypted: discard known size
  Descriptor,
  Done,
}

interface Entry {
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  zip64: boolean;
  name: string;
}

export class ZipUnpacker extends UnpackerBase {
  private state = S.Sig;
  private hdr = new Uint8Array(30);
  private have = 0;
  private need = 4;
  private first = true;
  private e: Entry | null = null;
  private remaining = 0;
  private crc = 0;
  private outSize = 0;
  private inSize = 0; // compressed bytes of the current entry
  private inflate: InflateStream | null = null;
  private entryScope: RatioScope = newScope();
  private readonly zipScope = newScope();
  private carry: Uint8Array = new Uint8Array(0); // StoredScan look-behind

  constructor(handler: UnpackHandler, budget: UnpackBudget) {
    super(handler, budget);
  }

  protected step(buf: Uint8Array, i: number): number {
    switch (this.state) {
      case S.Sig:
      case S.Local:
      case S.LocalVar:
      case S.Descriptor: {
        const n = Math.min(this.need - this.have, buf.length - i);
        this.hdr.set(buf.subarray(i, i + n), this.have);
        this.have += n;
        if (this.have === this.need) this.collected();
        return i + n;
      }
      case S.Stored:
      case S.Raw:
      case S.Skip: {
        const n = Math.min(this.remaining, buf.length - i);
        const data = buf.subarray(i, i + n);
        this.remaining -= n;
        if (this.state !== S.Skip) {
          this.crc = crc32(data, this.crc);
          this.outSize += n;
          this.emitStored(data);
        }
        if (this.remaining === 0) this.dataDone();
        return i + n;
      }
      case S.Deflate: {
        const inf = this.inflate!;
        const limited = !(this.e!.flags & FLAG.DESCRIPTOR);
        const n = limited ? Math.min(this.remaining, buf.length - i) : buf.length - i;
        let took: number;
        try {
          took = inf.push(buf.subarray(i, i + n));
          if (limited) {
            this.remaining -= took;
            if (this.remaining === 0 && !inf.done) inf.flush();
          }
        } catch (err) {
          if (err instanceof InflateError) this.corrupt(`zip: ${this.e!.name}: ${err.message}`);
          else throw err;
          return buf.length;
        }
        if (limited && this.remaining === 0 && !inf.done && !this.stopped)
          this.corrupt(`zip: ${this.e!.name}: deflate data longer than declared compressed size`);
        return i + took;
      }
      case S.StoredScan:
        return this.scanDescriptor(buf, i);
      case S.Done:
        return buf.length;
    }
  }

  protected override takeTail(): Uint8Array | null {
    const inf = this.inflate;
    if (this.state !== S.Deflate || !inf?.done) return null;
    const e = this.e!;
    this.inflate = null;
    const tail = inf.tail;
    this.inSize -= tail.length;
    if (!(e.flags & FLAG.DESCRIPTOR)) {
      // Deflate ended inside the declared size: the size lies (or junk follows).
      if (this.remaining > 0 || tail.length > 0) {
        this.corrupt(`zip: ${e.name}: deflate data shorter than declared compressed size`);
        return null;
      }
    }
    this.dataDone();
    return tail;
  }

  /** A fixed-size piece (signature, header, descriptor) is complete. */
  private collected(): void {
    const h = this.hdr;
    switch (this.state) {
      case S.Sig: {
        const sig = u32(h, 0);
        const wasFirst = this.first;
        this.first = false;
        if (sig === ZIP_SIG.LOCAL) return this.expect(S.Local, 26);
        if (wasFirst && (sig === ZIP_SIG.DESCRIPTOR || sig === ZIP_SIG.SPANNED_OLD)) return this.expect(S.Sig, 4);
        if (
          sig === ZIP_SIG.CENTRAL ||
          sig === ZIP_SIG.END ||
          sig === ZIP_SIG.END64 ||
          sig === ZIP_SIG.ARCHIVE_EXTRA ||
          sig === ZIP_SIG.DIGITAL_SIG
        ) {
          this.state = S.Done;
          return;
        }
        return this.corrupt('zip: bad record signature');
      }
      case S.Local: {
        const nameLen = u16(h, 22);
        const extraLen = u16(h, 24);
        this.e = {
          flags: u16(h, 2),
          method: u16(h, 4),
          crc: u32(h, 10),
          csize: u32(h, 14),
          usize: u32(h, 18),
          zip64: false,
          name: '',
        };
        this.lens = [nameLen, extraLen];
        const need = nameLen + extraLen;
        if (this.hdr.length < need) this.hdr = new Uint8Array(need);
        if (need === 0) return this.headerDone();
        return this.expect(S.LocalVar, need);
      }
      case S.LocalVar:
        return this.headerDone();
      case S.Descriptor:
        return this.descriptorCollected();
    }
  }

  private lens: [number, number] = [0, 0];

  private headerDone(): void {
    const e = this.e!;
    const [nameLen, extraLen] = this.lens;
    e.name = decodeName(this.hdr.subarray(0, nameLen));
    if (!this.parseExtra(this.hdr.subarray(nameLen, nameLen + extraLen))) return;
    if (this.hdr.length > 4096) this.hdr = new Uint8Array(30); // don't keep a 128 KiB header buffer
    const descriptor = (e.flags & FLAG.DESCRIPTOR) !== 0;
    const sizeKnown = !descriptor || e.csize > 0;
    const meta: EntryMeta = { name: e.name, encrypted: false };
    if (!descriptor) meta.declaredSize = e.usize;
    this.crc = 0;
    this.outSize = 0;
    this.inSize = 0;

    if (e.flags & (FLAG.ENCRYPTED | FLAG.STRONG_ENC) || e.method === METHOD.AES) {
      meta.encrypted = true;
      if (!this.encryptedEntry(meta)) return;
      if (!sizeKnown) return this.corrupt(`zip: ${e.name}: encrypted entry of unknown size`);
      return this.startData(S.Skip, e.csize);
    }
    // A directory has nothing to scan: counted, its (empty) data checked, no sink opened.
    const isDir = e.name.endsWith('/') && e.usize === 0 && !descriptor;
    const open = (): boolean => (isDir ? this.countOnly() : this.openEntry(meta));
    if (e.method === METHOD.DEFLATE) {
      if (!open()) return;
      this.entryScope = newScope();
      this.inflate = new InflateStream(
        (out) => {
          this.crc = crc32(out, this.crc);
          this.outSize += out.length;
          return this.emitExpanded(out, [this.entryScope, this.zipScope]);
        },
        (n) => {
          this.inSize += n;
          this.entryScope.inBytes += n;
          this.zipScope.inBytes += n;
        },
      );
      this.remaining = descriptor ? 0 : e.csize;
      this.state = S.Deflate;
      if (!descriptor && e.csize === 0) this.corrupt(`zip: ${e.name}: empty deflate data`);
      return;
    }
    if (e.method === METHOD.STORED) {
      if (!descriptor && e.csize !== e.usize) return this.corrupt(`zip: ${e.name}: stored sizes differ`);
      if (!open()) return;
      if (sizeKnown) return this.startData(S.Stored, e.csize);
      this.carry = new Uint8Array(0);
      this.state = S.StoredScan;
      return;
    }
    // Unsupported method (bzip2, lzma, deflate64, ...): scanners get the raw bytes.
    if (!sizeKnown) return this.corrupt(`zip: ${e.name}: method ${e.method} with unknown size`);
    if (!open()) return;
    this.startData(S.Raw, e.csize);
  }

  /** ZIP64 extended information (0x0001): 8-byte sizes for fields saturated at 0xFFFFFFFF. */
  private parseExtra(x: Uint8Array): boolean {
    const e = this.e!;
    for (let p = 0; p + 4 <= x.length; ) {
      const id = u16(x, p);
      const len = u16(x, p + 2);
      const body = x.subarray(p + 4, Math.min(x.length, p + 4 + len));
      p += 4 + len;
      if (id !== 0x0001) continue;
      e.zip64 = true;
      let q = 0;
      const take = (): number | null => {
        if (q + 8 > body.length) return null;
        const v = u64(body, q);
        q += 8;
        return v;
      };
      // Local headers must carry both sizes; accept the sequential form for saturated fields too.
      if (e.usize === U32_MAX || body.length >= 16) {
        const v = take();
        if (v !== null && e.usize === U32_MAX) e.usize = v;
      }
      if (e.csize === U32_MAX || body.length >= 16) {
        const v = take();
        if (v !== null && e.csize === U32_MAX) e.csize = v;
      }
      if (Number.isNaN(e.usize) || Number.isNaN(e.csize)) {
        this.corrupt(`zip: ${e.name}: ZIP64 size too large`);
        return false;
      }
    }
    return true;
  }

  private startData(state: S, size: number): void {
    this.remaining = size;
    this.state = state;
    if (size === 0) this.dataDone();
  }

  /** The entry's data is over: check it, then a descriptor or the next record. */
  private dataDone(): void {
    const e = this.e!;
    const st = this.state;
    if (st === S.Stored || st === S.Raw || st === S.Skip) this.inSize = e.csize;
    if ((st === S.Deflate || st === S.Stored) && !(e.flags & FLAG.DESCRIPTOR)) {
      if (this.crc !== e.crc) return this.corrupt(`zip: ${e.name}: CRC mismatch`);
      if (this.outSize !== e.usize) return this.corrupt(`zip: ${e.name}: uncompressed size mismatch`);
    }
    if (st === S.Deflate || st === S.Stored || st === S.Raw) this.closeEntry();
    if (e.flags & FLAG.DESCRIPTOR && this.state !== S.StoredScan) return this.expect(S.Descriptor, 4);
    this.expect(S.Sig, 4);
  }

  /** Descriptor: [PK\7\8] crc32 csize usize, sizes 8 bytes each for ZIP64 entries. */
  private descriptorCollected(): void {
    const e = this.e!;
    const sizeBytes = e.zip64 ? 8 : 4;
    const body = 4 + 2 * sizeBytes; // crc + sizes
    if (this.need === 4) {
      // First 4 bytes: the optional signature, or already the CRC.
      // Keep the 4 bytes collected (have = 4) and collect the rest after them.
      this.need = u32(this.hdr, 0) === ZIP_SIG.DESCRIPTOR ? 4 + body : body;
      return;
    }
    const b = this.need === body ? 0 : 4;
    const crc = u32(this.hdr, b);
    const csize = sizeBytes === 8 ? u64(this.hdr, b + 4) : u32(this.hdr, b + 4);
    const usize = sizeBytes === 8 ? u64(this.hdr, b + 12) : u32(this.hdr, b + 8);
    // CRC and size describe plaintext: only checkable for what we decoded ourselves.
    const decoded = !(e.flags & (FLAG.ENCRYPTED | FLAG.STRONG_ENC)) && (e.method === METHOD.STORED || e.method === METHOD.DEFLATE);
    if (decoded && crc !== this.crc) return this.corrupt(`zip: ${e.name}: data descriptor CRC mismatch`);
    if (csize !== this.inSize % (sizeBytes === 4 ? 0x100000000 : Infinity))
      return this.corrupt(`zip: ${e.name}: data descriptor compressed size mismatch`);
    if (decoded && usize !== this.outSize % (sizeBytes === 4 ? 0x100000000 : Infinity))
      return this.corrupt(`zip: ${e.name}: data descriptor size mismatch`);
    this.expect(S.Sig, 4);
  }

  /**
   * Stored data of unknown length: pass bytes through while looking for
   * PK\7\8 + crc + csize + usize that matches everything before it.
   */
  private scanDescriptor(buf: Uint8Array, off: number): number {
    const e = this.e!;
    const descLen = e.zip64 ? 24 : 16;
    const carryLen = this.carry.length;
    let data: Uint8Array;
    if (carryLen === 0) data = buf.subarray(off);
    else {
      data = new Uint8Array(carryLen + buf.length - off);
      data.set(this.carry);
      data.set(buf.subarray(off), carryLen);
    }
    let pos = 0; // bytes of data passed to the sink
    let i = 0;
    for (;;) {
      i = data.indexOf(0x50, i);
      if (i < 0 || i + descLen > data.length) break;
      if (data[i + 1] === 0x4b && data[i + 2] === 0x07 && data[i + 3] === 0x08) {
        this.passStored(data.subarray(pos, i));
        pos = i;
        const crc = u32(data, i + 4);
        const csize = e.zip64 ? u64(data, i + 8) : u32(data, i + 8);
        const usize = e.zip64 ? u64(data, i + 16) : u32(data, i + 12);
        const n = e.zip64 ? this.outSize : this.outSize % 0x100000000;
        if (crc === this.crc && csize === n && usize === n) {
          this.inSize = this.outSize;
          this.carry = new Uint8Array(0);
          this.closeEntry();
          this.expect(S.Sig, 4);
          return off + (i + descLen - carryLen);
        }
      }
      i++;
    }
    const keepFrom = Math.max(pos, data.length - (descLen - 1));
    this.passStored(data.subarray(pos, keepFrom));
    this.carry = data.slice(keepFrom);
    return buf.length;
  }

  private passStored(d: Uint8Array): void {
    if (!d.length) return;
    this.crc = crc32(d, this.crc);
    this.outSize += d.length;
    this.emitStored(d);
  }

  private expect(state: S, n: number): void {
    this.state = state;
    this.have = 0;
    this.need = n;
  }

  protected finish(): void {
    if (this.state === S.Deflate && this.inflate) {
      const e = this.e!;
      // A known size not reached is truncation (a sized entry flushes itself at its size).
      if (!(e.flags & FLAG.DESCRIPTOR)) return this.corrupt(`zip: ${e.name}: truncated`);
      try {
        this.inflate.flush();
      } catch (err) {
        if (err instanceof InflateError) return this.corrupt(`zip: ${e.name}: ${err.message}`);
        throw err;
      }
      if (this.stopped) return;
      if (!this.inflate.done) return this.corrupt(`zip: ${e.name}: truncated`);
      this.drive(new Uint8Array(0)); // the tail may hold further (small) entries
      if (this.stopped) return;
      return this.finish();
    }
    if (this.state === S.Done) return this.closeEntry();
    if (this.state === S.Sig && this.have === 0 && !this.first) return this.corrupt('zip: truncated (no central directory)');
    this.corrupt('zip: truncated');
  }
}

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
/** 64-bit little-endian as a safe integer, or NaN when above 2^53. */
const u64 = (b: Uint8Array, o: number): number => {
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return NaN;
  return hi * 0x100000000 + u32(b, o);
};
