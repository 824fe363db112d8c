/**
 * zip-unpacker.ts — push state machine over zip archives (APPNOTE 6.3.x), read both ways
 * clients read them.
 *
 * Streaming clients walk the local headers in order; Python's zipfile, unzip, 7-Zip and
 * Explorer go by the central directory (CD) found from the end of the file. We walk the
 * local headers, scanning every entry as it streams, and keep a bounded index of what we
 * walked (one record per local header, so never more than the archive-entries budget).
 * When the CD and its end record (EOCD) arrive we check them against the index exactly
 * as Python resolves them (start_dir, "concat" for prepended data, ZIP64 records): any
 * CD entry we did not walk (a local header hidden in another entry's data, a CD-only
 * entry), and any disagreement in name, method, encryption flag, sizes, CRC, count or
 * directory position, is anomaly `zip-directory-mismatch` with a verdict (policy
 * rejects by default) — never a clean pass. Local-only entries were scanned; they are
 * recorded (`zip-local-only-entry`).
 *
 * Segments: a zip is one segment (local headers … CD … EOCD). After an EOCD, and from
 * the start when `embedded` (a file not sniffed as zip: self-extractor stubs, junk in
 * front), we search for the next "PK\3\4" and walk what follows as a further,
 * speculative segment (`zip-embedded-archive`, recorded): a second archive in the
 * comment or appended after the first is scanned too. A speculative segment that does
 * not hold up is dropped quietly (`zip-embedded-corrupt`, recorded) and the search goes
 * on from a position that does not depend on chunking. At the end, EocdWatch tells
 * which EOCD a CD client would use; unless it is one we validated, that client would
 * extract something we did not check: anomaly `zip-hidden-archive` with a verdict.
 * Bytes between records of a known archive (an APK signing block before the CD) are
 * skipped to the next record signature (`zip-data-between-records`, recorded): CD
 * clients skip them too, and the CD check vouches for whatever they would extract.
 *
 * Methods: 0 stored and 8 deflate are unpacked; any other method with a known size is
 * emitted raw (its compressed bytes: bzip2 is then sniffed and unpacked one level
 * down). Sizes: ZIP64 extra fields are honoured; declared sizes are checked, never
 * used for allocation. Data descriptors (flag bit 3): deflate ends itself; stored data
 * ends at the first signed descriptor (PK\7\8 + CRC + sizes) or unsigned one (CRC +
 * sizes followed by the next record's signature) that matches the bytes so far.
 * Encrypted (flag bit 0/6, AES method 99): onEncrypted, data skipped by its size.
 * Names (EntryMeta.altNames): cut at NUL and whole, the Info-ZIP Unicode Path extra
 * (0x7075) in the local header and, via onAltName, in the CD.
 * Limits: archive-entries per local header; unpacked-bytes and ratio per deflate output
 * (two ratio scopes: the entry and all deflate streams of this unpacker).
 * Memory: a header buffer (≤ 46 + 3×65535 bytes, released after use), 24 bytes of
 * descriptor look-behind, one inflate slice, the index and CD list (≤ entries budget,
 * names over 64 bytes kept as SHA-256), EocdWatch's ~900 bytes.
 * Errors (onCorrupt, first segment of a sniffed zip only): bad signature, truncation,
 * corrupt deflate, CRC or size mismatch, lying sizes, a missing central directory.
 * Gaps: names are read as UTF-8 or latin-1, not CP437 (only the extension matters for
 * policy, and CP437 maps no byte above 0x7f to an ASCII letter or dot); methods other
 * than stored/deflate(/bzip2 via sniffing) are scanned as raw bytes; a strong-encrypted
 * CD is not checked (the encrypted policy decides); multi-disk archives are mismatches.
 */
import { createHash } from 'node:crypto';
import { crc32 } from './crc32.js';
import { InflateError, InflateStream } from './inflate-stream.js';
import { nameCandidates } from './name-decode.js';
import { newScope, type RatioScope } from './ratio-guard.js';
import { UnpackerBase } from './unpack-base.js';
import type { EntryMeta, UnpackBudget, UnpackHandler } from './unpack-types.js';
import { EocdWatch, opensAsZip } from './zip-eocd-watch.js';

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

const LOCAL_SIG = Buffer.from([0x50, 0x4b, 3, 4]);
const FLAG = { ENCRYPTED: 1, DESCRIPTOR: 8, STRONG_ENC: 64, UTF8: 2048 } as const;
const ENC_FLAGS = FLAG.ENCRYPTED | FLAG.STRONG_ENC;
const METHOD = { STORED: 0, DEFLATE: 8, BZIP2: 12, AES: 99 } as const;
/** Methods APPNOTE assigns: a speculative header with another method is not a header. */
const KNOWN_METHODS = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 16, 18, 19, 20, 93, 94, 95, 96, 97, 98, 99]);
const U32_MAX = 0xffffffff;
const EMPTY = new Uint8Array(0);
/** A placeholder scope, replaced per deflate entry (never counted against). */
const ZERO_SCOPE: RatioScope = Object.freeze({ inBytes: 0, outBytes: 0 }) as RatioScope;
/** Header buffer: the largest fixed record part (a CD record's 46 bytes). */
const MIN_HDR = 46;
/** Names longer than this are compared by SHA-256 (bounded index memory). */
const KEY_BYTES = 64;

const enum S {
  Search, // looking for "PK\3\4" (embedded mode, after an end record)
  Resync, // inside an archive, after bytes that are no record: looking for the next record
  Sig,
  Local, // 26 fixed bytes after the signature
  LocalVar, // name + extra
  Stored, // known size
  Deflate,
  Scan, // unknown size (bit 3, not deflate): look for the data descriptor
  Raw, // unsupported method, known size: emit as-is
  Skip, // encrypted: discard known size
  Descriptor,
  Central, // 42 fixed bytes of a CD record
  CentralVar, // name + extra + comment
  End64, // 52 fixed bytes of the ZIP64 end record
  Locator, // 16 bytes of the ZIP64 locator
  End, // 18 fixed bytes of the end record
  SigSize, // 2-byte size of a digital signature record
  ExtraSize, // 4-byte size of an archive extra data record
  Discard, // bytes of a record we skip, then a signature
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

/** What we walked for one local header (the index CD records are checked against). */
interface LocalRec {
  key: string;
  name: string;
  method: number;
  flags: number;
  crc: number;
  csize: number;
  usize: number;
  done: boolean;
  referenced: boolean;
}

interface CdRec {
  offset: number;
  key: string;
  name: string;
  method: number;
  flags: number;
  crc: number;
  csize: number;
  usize: number;
}

/** One archive: local headers … central directory … end record. */
class Segment {
  readonly index = new Map<number, LocalRec>();
  readonly cd: CdRec[] = [];
  cdStart = -1;
  cdEnd = -1;
  cdCount = 0;
  end64At = -1;
  end64: { sizeCd: number; offsetCd: number; total: number; entriesDisk: number; disk: number; diskCd: number } | null = null;
  locatorAt = -1;
  locatorMultiDisk = false;
  mismatch = false;
  constructor(readonly strict: boolean) {}
}

export interface ZipOptions {
  /** The file was not sniffed as zip: search for archives inside it, speculatively. */
  embedded?: boolean;
}

export class ZipUnpacker extends UnpackerBase {
  private state: S;
  private hdr: Uint8Array = EMPTY; // allocated at the first record (most searched files have none)
  private have = 0;
  private need = 4;
  private e: Entry | null = null;
  private rec: LocalRec | null = null;
  private names: string[] = [];
  private remaining = 0;
  private crc = 0;
  private outSize = 0;
  private inSize = 0; // compressed bytes of the current entry
  private inflate: InflateStream | null = null;
  private entryScope: RatioScope = ZERO_SCOPE;
  private zipScope: RatioScope | null = null;
  private carry: Uint8Array = EMPTY; // Scan look-behind
  /** Scan: pass the bytes on (stored, raw) and check CRC and size (stored only). */
  private scanEmit = false;
  private scanDecoded = false;
  /** Bytes already taken that must be parsed again (a look-behind that held the next record's start). */
  private replay: Uint8Array | null = null;
  /** Resync: the last bytes seen (a signature may start in them). */
  private resyncCarry: Uint8Array = EMPTY;
  private lens: [number, number, number] = [0, 0, 0];

  private readonly embedded: boolean;
  private seg: Segment | null;
  /** Absolute input position of the next byte step() consumes (tails re-read move it back). */
  private abs = 0;
  /** Where the fixed piece being collected started (a record's signature, for headers). */
  private pieceAt = 0;
  private recordAt = 0;
  private dataAt = 0;
  private searchHave = 0;
  private lastValidEnd = -1;
  private readonly watch = new EocdWatch();
  /** Offsets of "PK\3\4" in the chunk being written (found by the watch's pass over it). */
  private readonly sigs: number[] = [];
  private sigIx = 0;
  private sigsOf: Uint8Array | null = null;

  constructor(handler: UnpackHandler, budget: UnpackBudget, opts: ZipOptions = {}) {
    super(handler, budget);
    this.embedded = opts.embedded === true;
    this.seg = this.embedded ? null : new Segment(true);
    this.state = this.embedded ? S.Search : S.Sig;
  }

  protected override take(chunk: Uint8Array): void {
    this.sigs.length = 0;
    this.sigIx = 0;
    this.watch.write(chunk, this.sigs);
    if (this.state === S.Search && this.searchHave === 0 && this.sigs.length === 0 && this.replay === null) {
      // Nothing to find in this chunk (the common case for files that are no zip): keep only
      // where we are and a signature's start at its end.
      this.abs += chunk.length;
      this.searchHave = partialSig(chunk, chunk.length);
      return;
    }
    this.sigsOf = chunk;
    this.drive(chunk);
    this.sigsOf = null;
  }

  protected step(buf: Uint8Array, i: number): number {
    switch (this.state) {
      case S.Search:
        return this.search(buf, i);
      case S.Resync:
        return this.resync(buf, i);
      case S.Sig:
      case S.Local:
      case S.LocalVar:
      case S.Descriptor:
      case S.Central:
      case S.CentralVar:
      case S.End64:
      case S.Locator:
      case S.End:
      case S.SigSize:
      case S.ExtraSize: {
        const n = Math.min(this.need - this.have, buf.length - i);
        if (this.have + n > this.hdr.length) this.grow(this.need);
        this.hdr.set(buf.subarray(i, i + n), this.have);
        this.have += n;
        this.abs += n;
        if (this.state === S.LocalVar && this.firstSpeculative() && this.hdr.subarray(this.have - n, Math.min(this.have, this.lens[0])).some((c) => c < 0x20)) {
          // Not a name: this was no header (and we need not read 64 KiB of "name" to know).
          this.notAHeader(Buffer.concat([this.fixed, this.hdr.subarray(0, this.have)]));
          return i + n;
        }
        if (this.have === this.need) this.collected();
        return i + n;
      }
      case S.Stored:
      case S.Raw:
      case S.Skip:
      case S.Discard: {
        const n = Math.min(this.remaining, buf.length - i);
        const data = buf.subarray(i, i + n);
        this.remaining -= n;
        this.abs += n;
        if (this.state === S.Stored || this.state === S.Raw) {
          this.crc = crc32(data, this.crc);
          this.outSize += n;
          this.emitStored(data);
        }
        if (this.remaining === 0) {
          if (this.state === S.Discard) this.expect(S.Sig, 4);
          else this.dataDone();
        }
        return i + n;
      }
      case S.Deflate:
        return this.deflateStep(buf, i);
      case S.Scan: {
        const j = this.scanDescriptor(buf, i);
        this.abs += j - i;
        return j;
      }
    }
  }

  private deflateStep(buf: Uint8Array, i: number): number {
    const inf = this.inflate!;
    const e = this.e!;
    const limited = !(e.flags & FLAG.DESCRIPTOR);
    const n = limited ? Math.min(this.remaining, buf.length - i) : buf.length - i;
    const absAtI = this.abs;
    let took = 0;
    try {
      took = inf.push(buf.subarray(i, i + n));
      this.abs += took;
      if (limited) {
        this.remaining -= took;
        if (this.remaining === 0 && !inf.done) inf.flush();
      }
    } catch (err) {
      if (!(err instanceof InflateError)) throw err;
      // The failing slice ends at dataAt + inSize: resume there (chunking-independent).
      const resume = this.dataAt + this.inSize;
      this.abs = resume;
      this.fail(`zip: ${e.name}: ${err.message}`);
      return i + (resume - absAtI);
    }
    if (limited && this.remaining === 0 && !inf.done && !this.stopped) this.fail(`zip: ${e.name}: deflate data longer than declared compressed size`);
    return i + took;
  }

  /** Member data of the first (strict) segment only is marked: a speculative segment may be no archive at all. */
  protected override inflating(): InflateStream | null {
    return this.state === S.Deflate && this.seg?.strict === true ? this.inflate : null;
  }

  protected override marking(): boolean {
    return this.seg?.strict === true;
  }

  /** Stored data of unknown size: the descriptor look-behind is passed on (or not) later. */
  protected override heldBack(): number {
    return this.state === S.Scan && this.scanEmit && this.seg?.strict === true ? this.carry.length : 0;
  }

  protected override takeTail(): Uint8Array | null {
    if (this.replay) {
      const r = this.replay;
      this.replay = null;
      return r;
    }
    const inf = this.inflate;
    if (this.state !== S.Deflate || !inf?.done) return null;
    const e = this.e!;
    this.inflate = null;
    const tail = inf.tail;
    this.inSize -= tail.length;
    this.abs -= tail.length;
    if (!(e.flags & FLAG.DESCRIPTOR) && (this.remaining > 0 || tail.length > 0)) {
      // Deflate ended inside the declared size: the size lies (or junk follows).
      this.fail(`zip: ${e.name}: deflate data shorter than declared compressed size`);
      return this.stopped ? null : tail;
    }
    this.dataDone();
    return tail;
  }

  // ---- searching (embedded mode, after an end record) -------------------------------

  private search(buf: Uint8Array, i: number): number {
    if (this.searchHave > 0) {
      let k = this.searchHave;
      let p = i;
      while (k < 4 && p < buf.length && buf[p] === LOCAL_SIG[k]) {
        k++;
        p++;
      }
      if (k === 4) {
        this.abs += p - i;
        this.searchHave = 0;
        this.foundLocal(this.abs - 4);
        return p;
      }
      if (p === buf.length) {
        this.searchHave = k;
        this.abs += p - i;
        return p;
      }
      this.searchHave = 0; // "PK\3\4" cannot overlap itself: search afresh from i
    }
    let j: number;
    if (buf === this.sigsOf) {
      // The watch already found this chunk's "PK\3\4"s (in order; the search only moves forward).
      while (this.sigIx < this.sigs.length && this.sigs[this.sigIx]! < i) this.sigIx++;
      j = this.sigIx < this.sigs.length ? this.sigs[this.sigIx]! : -1;
    } else j = (Buffer.prototype.indexOf as (this: Uint8Array, v: Uint8Array, o: number) => number).call(buf, LOCAL_SIG, i);
    if (j >= 0) {
      this.abs += j + 4 - i;
      this.foundLocal(this.abs - 4);
      return j + 4;
    }
    this.searchHave = partialSig(buf.subarray(i), buf.length - i);
    this.abs += buf.length - i;
    return buf.length;
  }

  /** Find the next record signature (local, central, end, ZIP64 end or locator) after data between records. */
  private resync(buf: Uint8Array, i: number): number {
    const carryLen = this.resyncCarry.length;
    const data = carryLen ? Buffer.concat([this.resyncCarry, buf.subarray(i)]) : buf.subarray(i);
    for (let k = data.indexOf(0x50); k >= 0 && k + 4 <= data.length; k = data.indexOf(0x50, k + 1)) {
      if (data[k + 1] !== 0x4b) continue;
      const sig = u32(data, k);
      if (sig !== ZIP_SIG.LOCAL && sig !== ZIP_SIG.CENTRAL && sig !== ZIP_SIG.END && sig !== ZIP_SIG.END64 && sig !== ZIP_SIG.END64_LOCATOR) continue;
      const used = k + 4 - carryLen; // bytes of buf up to the signature's end (≥ 1: it was not whole before)
      this.resyncCarry = EMPTY;
      this.abs += used;
      this.expect(S.Sig, 4);
      this.pieceAt = this.abs - 4;
      this.hdr.set(data.subarray(k, k + 4));
      this.have = 4;
      this.collected();
      return i + used;
    }
    this.resyncCarry = copy(data.subarray(Math.max(0, data.length - 3)));
    this.abs += buf.length - i;
    return buf.length;
  }

  private foundLocal(at: number): void {
    this.seg = new Segment(false);
    this.recordAt = at;
    this.expect(S.Local, 26);
  }

  // ---- records ----------------------------------------------------------------------

  /** A fixed-size piece (signature, header, record, descriptor) is complete. */
  private collected(): void {
    const h = this.hdr;
    switch (this.state) {
      case S.Sig: {
        const sig = u32(h, 0);
        this.recordAt = this.pieceAt;
        if (sig === ZIP_SIG.LOCAL) return this.expect(S.Local, 26);
        if (this.pieceAt === 0 && !this.embedded && (sig === ZIP_SIG.DESCRIPTOR || sig === ZIP_SIG.SPANNED_OLD)) return this.expect(S.Sig, 4);
        if (sig === ZIP_SIG.CENTRAL) return this.expect(S.Central, 42);
        if (sig === ZIP_SIG.END) return this.expect(S.End, 18);
        if (sig === ZIP_SIG.END64) return this.expect(S.End64, 52);
        if (sig === ZIP_SIG.END64_LOCATOR) return this.expect(S.Locator, 16);
        if (sig === ZIP_SIG.DIGITAL_SIG) return this.expect(S.SigSize, 2);
        if (sig === ZIP_SIG.ARCHIVE_EXTRA) return this.expect(S.ExtraSize, 4);
        // Data between records (an APK signing block before the directory, padding): central-
        // directory readers skip it, so do we — the directory check still vouches for every
        // entry they would extract. Only inside an archive we know (after its first record).
        if (this.seg?.strict && (this.seg.index.size > 0 || this.seg.cdStart >= 0)) {
          this.handler.onAnomaly('zip-data-between-records', false);
          this.resyncCarry = copy(h.subarray(1, 4));
          this.state = S.Resync;
          return;
        }
        return this.fail('zip: bad record signature');
      }
      case S.Local:
        return this.localFixed();
      case S.LocalVar:
        return this.headerDone();
      case S.Descriptor:
        return this.descriptorCollected();
      case S.Central: {
        const need = u16(h, 24) + u16(h, 26) + u16(h, 28);
        this.lens = [u16(h, 24), u16(h, 26), u16(h, 28)];
        this.centralFixed = h.slice(0, 42);
        if (need === 0) return this.centralDone();
        return this.expect(S.CentralVar, need);
      }
      case S.CentralVar:
        return this.centralDone();
      case S.End64: {
        const seg = this.seg!;
        seg.end64At = this.recordAt;
        seg.end64 = {
          disk: u32(h, 12), diskCd: u32(h, 16), entriesDisk: u64(h, 20), total: u64(h, 28), sizeCd: u64(h, 36), offsetCd: u64(h, 44),
        };
        const size = u64(h, 0);
        // The record's own size counts the 44 bytes after the size field; the rest is extensible data.
        if (Number.isNaN(size) || size < 44) {
          this.mismatch('ZIP64 end record size');
          return this.expect(S.Sig, 4);
        }
        return this.discard(size - 44);
      }
      case S.Locator: {
        const seg = this.seg!;
        seg.locatorAt = this.recordAt;
        seg.locatorMultiDisk = u32(h, 0) !== 0 || u32(h, 12) > 1;
        return this.expect(S.Sig, 4);
      }
      case S.End:
        return this.endRecord();
      case S.SigSize:
        return this.discard(u16(h, 0));
      case S.ExtraSize: {
        // An archive extra data record precedes a strong-encrypted central directory:
        // the directory cannot be read, so the archive is encrypted for policy.
        this.handler.onEncrypted({ name: '(central directory)', encrypted: true });
        this.endSegment();
        return;
      }
    }
  }

  private centralFixed: Uint8Array = EMPTY;
  private fixed: Uint8Array = EMPTY;

  /** The 26 fixed bytes of a local header. */
  private localFixed(): void {
    const h = this.hdr;
    const seg = this.seg!;
    const nameLen = u16(h, 22);
    const extraLen = u16(h, 24);
    this.e = { flags: u16(h, 2), method: u16(h, 4), crc: u32(h, 10), csize: u32(h, 14), usize: u32(h, 18), zip64: false, name: '' };
    this.fixed = h.slice(0, 26);
    if (this.firstSpeculative() && !plausible(u16(h, 0), this.e.method, nameLen)) return this.notAHeader(this.fixed);
    this.lens = [nameLen, extraLen, 0];
    if (nameLen + extraLen === 0) return this.headerDone();
    this.expect(S.LocalVar, nameLen + extraLen);
  }

  private headerDone(): void {
    const e = this.e!;
    const seg = this.seg!;
    const [nameLen, extraLen] = this.lens;
    const nameBytes = this.hdr.subarray(0, nameLen);
    const names = nameCandidates(nameBytes);
    e.name = names[0]!;
    const key = nameKey(nameBytes);
    if (!this.parseLocalExtra(this.hdr.subarray(nameLen, nameLen + extraLen), names)) return;
    this.shrink();
    if (!seg.strict && seg.index.size === 0) this.handler.onAnomaly('zip-embedded-archive', false);
    const descriptor = (e.flags & FLAG.DESCRIPTOR) !== 0;
    const sizeKnown = !descriptor || e.csize > 0;
    const meta: EntryMeta = { name: e.name, encrypted: false };
    const alts = [...new Set(names.slice(1))].filter((n) => n !== e.name);
    if (alts.length) meta.altNames = alts;
    if (!descriptor) meta.declaredSize = e.usize;
    this.crc = 0;
    this.outSize = 0;
    this.inSize = 0;
    this.rec = { key, name: e.name, method: e.method, flags: e.flags, crc: e.crc, csize: e.csize, usize: e.usize, done: false, referenced: false };
    seg.index.set(this.recordAt, this.rec);

    if (e.flags & ENC_FLAGS || e.method === METHOD.AES) {
      meta.encrypted = true;
      if (!this.encryptedEntry(meta)) return;
      if (!sizeKnown) return this.startScan(false, false);
      return this.startData(S.Skip, e.csize);
    }
    // A directory has nothing to scan: counted, its (empty) data checked, no sink opened.
    const isDir = e.name.endsWith('/') && e.usize === 0 && !descriptor;
    const open = (): boolean => (isDir ? this.countOnly() : this.openEntry(meta));
    if (e.method === METHOD.DEFLATE) {
      if (!open()) return;
      this.entryScope = newScope();
      const zipScope = (this.zipScope ??= newScope());
      this.inflate = new InflateStream(
        (out) => {
          this.crc = crc32(out, this.crc);
          this.outSize += out.length;
          return this.emitExpanded(out, [this.entryScope, zipScope]);
        },
        (n) => {
          this.inSize += n;
          this.entryScope.inBytes += n;
          zipScope.inBytes += n;
        },
      );
      this.remaining = descriptor ? 0 : e.csize;
      this.dataAt = this.abs;
      this.state = S.Deflate;
      if (!descriptor && e.csize === 0) this.fail(`zip: ${e.name}: empty deflate data`);
      return;
    }
    if (e.method === METHOD.STORED) {
      if (!descriptor && e.csize !== e.usize) return this.fail(`zip: ${e.name}: stored sizes differ`);
      if (!open()) return;
      if (sizeKnown) return this.startData(S.Stored, e.csize);
      return this.startScan(true, true);
    }
    // Other methods: scanners get the raw bytes. bzip2 (12) is a bzip2 stream the member's
    // sniffing unpacks; anything else a client decodes and we cannot: not scanned as the
    // client sees it, so a verdict (policy decides; clamd, if configured, decodes more).
    if (e.method !== METHOD.BZIP2) this.handler.onAnomaly('zip-unsupported-method', true, e.name);
    if (!open()) return;
    if (!sizeKnown) return this.startScan(true, false);
    this.startData(S.Raw, e.csize);
  }

  private startScan(emit: boolean, decoded: boolean): void {
    this.carry = EMPTY;
    this.scanEmit = emit;
    this.scanDecoded = decoded;
    this.dataAt = this.abs;
    this.state = S.Scan;
  }

  /** ZIP64 sizes (0x0001) and Info-ZIP Unicode Path (0x7075) names of a local header. */
  private parseLocalExtra(x: Uint8Array, names: string[]): boolean {
    const e = this.e!;
    for (let p = 0; p + 4 <= x.length; ) {
      const id = u16(x, p);
      const len = u16(x, p + 2);
      const body = x.subarray(p + 4, Math.min(x.length, p + 4 + len));
      p += 4 + len;
      if (id === 0x7075) {
        unicodePath(body, names);
        continue;
      }
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
        this.fail(`zip: ${e.name}: ZIP64 size too large`);
        return false;
      }
    }
    return true;
  }

  private startData(state: S, size: number): void {
    this.remaining = size;
    this.dataAt = this.abs;
    this.state = state;
    if (size === 0) this.dataDone();
  }

  /** The entry's data is over: check it, then a descriptor or the next record. */
  private dataDone(): void {
    const e = this.e!;
    const st = this.state;
    if (st === S.Stored || st === S.Raw || st === S.Skip) this.inSize = e.csize;
    const decoded = st === S.Deflate || st === S.Stored;
    if (decoded && !(e.flags & FLAG.DESCRIPTOR)) {
      if (this.crc !== e.crc) return this.fail(`zip: ${e.name}: CRC mismatch`);
      if (this.outSize !== e.usize) return this.fail(`zip: ${e.name}: uncompressed size mismatch`);
    }
    if (st === S.Deflate || st === S.Stored || st === S.Raw) this.closeEntry();
    const r = this.rec!;
    r.csize = this.inSize;
    if (decoded) {
      r.usize = this.outSize;
      r.crc = this.crc;
    }
    if (e.flags & FLAG.DESCRIPTOR) return this.expect(S.Descriptor, 4);
    r.done = true;
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
    const decoded = !(e.flags & ENC_FLAGS) && (e.method === METHOD.STORED || e.method === METHOD.DEFLATE);
    const wrap = sizeBytes === 4 ? 0x100000000 : Infinity;
    if (decoded && crc !== this.crc) return this.fail(`zip: ${e.name}: data descriptor CRC mismatch`);
    if (csize !== this.inSize % wrap) return this.fail(`zip: ${e.name}: data descriptor compressed size mismatch`);
    if (decoded && usize !== this.outSize % wrap) return this.fail(`zip: ${e.name}: data descriptor size mismatch`);
    const r = this.rec!;
    if (!decoded) {
      r.crc = crc;
      r.usize = usize;
    }
    r.done = true;
    this.expect(S.Sig, 4);
  }

  /**
   * Data of unknown length (stored, raw or encrypted with flag bit 3): pass bytes on while
   * looking for a descriptor that matches everything before it — signed (PK\7\8 crc csize
   * usize) or unsigned (crc csize usize, then the next record's signature). The compressed
   * size must match; for stored data also the CRC and size. Candidates are tried in the
   * order of where the data would end.
   */
  private scanDescriptor(buf: Uint8Array, off: number): number {
    const e = this.e!;
    const sizeBytes = e.zip64 ? 8 : 4;
    const unsignedLen = 4 + 2 * sizeBytes;
    const lookBehind = unsignedLen + 4; // longest candidate: unsigned descriptor + next signature
    const carryLen = this.carry.length;
    const dataAt = this.posOf(off) - carryLen; // input position of data[0]
    let data: Uint8Array;
    if (carryLen === 0) data = buf.subarray(off);
    else {
      data = new Uint8Array(carryLen + buf.length - off);
      data.set(this.carry);
      data.set(buf.subarray(off), carryLen);
    }
    // Candidate data ends, from every "PK" signature in data.
    const ends: number[] = [];
    for (let i = data.indexOf(0x50); i >= 0 && i + 4 <= data.length; i = data.indexOf(0x50, i + 1)) {
      if (data[i + 1] !== 0x4b) continue;
      const s = u32(data, i);
      if (s === ZIP_SIG.DESCRIPTOR) ends.push(i);
      if ((s === ZIP_SIG.LOCAL || s === ZIP_SIG.CENTRAL || s === ZIP_SIG.END) && i >= unsignedLen) ends.push(i - unsignedLen);
    }
    ends.sort((x, y) => x - y);
    let pos = 0; // bytes of data passed on
    for (const end of ends) {
      const signed = u32(data, end) === ZIP_SIG.DESCRIPTOR;
      const f = signed ? end + 4 : end;
      if (f + unsignedLen + (signed ? 0 : 4) > data.length) break; // wait for more
      if (end < pos) continue;
      this.passScanned(data.subarray(pos, end), dataAt + pos);
      pos = end;
      const crc = u32(data, f);
      const csize = e.zip64 ? u64(data, f + 4) : u32(data, f + 4);
      const usize = e.zip64 ? u64(data, f + 12) : u32(data, f + 8);
      const n = e.zip64 ? this.inSize : this.inSize % 0x100000000;
      if (csize !== n || (this.scanDecoded && (crc !== this.crc || usize !== n))) continue;
      this.carry = EMPTY;
      this.closeEntry();
      const r = this.rec!;
      r.csize = this.inSize;
      r.usize = this.scanDecoded ? this.outSize : usize;
      r.crc = this.scanDecoded ? this.crc : crc;
      r.done = true;
      // The descriptor is ours; what follows it (perhaps partly in the look-behind) is the next record.
      const rel = f + unsignedLen - carryLen;
      this.expect(S.Sig, 4);
      this.pieceAt = this.abs + rel;
      if (rel >= 0) return off + rel;
      this.replay = copy(data.subarray(f + unsignedLen, carryLen));
      this.abs += rel;
      return off;
    }
    const keepFrom = Math.max(pos, data.length - (lookBehind - 1));
    this.passScanned(data.subarray(pos, keepFrom), dataAt + pos);
    this.carry = copy(data.subarray(keepFrom));
    return buf.length;
  }

  /** `at`: input position of d[0] (d may be a copy that joins the look-behind and the chunk). */
  private passScanned(d: Uint8Array, at: number): void {
    if (!d.length) return;
    this.inSize += d.length;
    if (this.scanDecoded) {
      this.crc = crc32(d, this.crc);
      this.outSize += d.length;
    }
    if (this.scanEmit) this.emitStored(d, at);
  }

  // ---- central directory ------------------------------------------------------------

  private centralDone(): void {
    const seg = this.seg!;
    const h = this.centralFixed;
    const [nameLen, extraLen] = this.lens;
    const nameBytes = this.hdr.subarray(0, nameLen);
    const name = nameCandidates(nameBytes)[0]!;
    if (seg.cdStart < 0) seg.cdStart = seg.cdEnd = this.recordAt;
    if (this.recordAt !== seg.cdEnd) this.mismatch('central directory not contiguous', name);
    seg.cdEnd = this.abs;
    seg.cdCount++;
    const c: CdRec = {
      offset: u32(h, 38), key: nameKey(nameBytes), name, method: u16(h, 6), flags: u16(h, 4), crc: u32(h, 12), csize: u32(h, 16), usize: u32(h, 20),
    };
    const alts: string[] = [];
    const x = this.hdr.subarray(nameLen, nameLen + extraLen);
    for (let p = 0; p + 4 <= x.length; ) {
      const id = u16(x, p);
      const body = x.subarray(p + 4, Math.min(x.length, p + 4 + u16(x, p + 2)));
      p += 4 + u16(x, p + 2);
      if (id === 0x7075) unicodePath(body, alts);
      if (id !== 0x0001) continue;
      // Python's order: only the saturated fields are present.
      let q = 0;
      const take = (): number => {
        const v = q + 8 <= body.length ? u64(body, q) : NaN;
        q += 8;
        return v;
      };
      if (c.usize === U32_MAX) c.usize = take();
      if (c.csize === U32_MAX) c.csize = take();
      if (c.offset === U32_MAX) c.offset = take();
    }
    this.shrink();
    for (const a of alts) if (a !== name) this.handler.onAltName(name, a);
    if (seg.cd.length >= seg.index.size) this.mismatch('more central directory entries than local headers', name);
    else seg.cd.push(c);
    this.expect(S.Sig, 4);
  }

  /** The end record: check the segment as a central-directory client (Python) reads it. */
  private endRecord(): void {
    const seg = this.seg!;
    const h = this.hdr;
    const at = this.recordAt;
    let disk = u16(h, 0);
    let diskCd = u16(h, 2);
    let entriesDisk = u16(h, 4);
    let total = u16(h, 6);
    let sizeCd = u32(h, 8);
    let offsetCd = u32(h, 12);
    const locator = seg.locatorAt === at - 20;
    if (locator && seg.locatorMultiDisk) this.mismatch('multi-disk archive');
    const zip64 = locator && seg.end64 !== null && seg.end64At === at - 76;
    if (zip64) ({ disk, diskCd, entriesDisk, total, sizeCd, offsetCd } = seg.end64!);
    const startDir = at - sizeCd - (zip64 ? 76 : 0);
    const concat = startDir - offsetCd;
    if (disk !== 0 || diskCd !== 0) this.mismatch('multi-disk archive');
    if (seg.cdStart < 0 ? sizeCd !== 0 : seg.cdStart !== startDir || seg.cdEnd - seg.cdStart !== sizeCd)
      this.mismatch('central directory not where the end record puts it');
    if (total !== seg.cdCount || entriesDisk !== seg.cdCount) this.mismatch('central directory entry count');
    for (const c of seg.cd) {
      if (seg.mismatch) break;
      const l = seg.index.get(c.offset + concat);
      if (!l) {
        this.mismatch('entry only in the central directory', c.name);
        break;
      }
      l.referenced = true;
      if (!l.done || c.key !== l.key || c.method !== l.method || (c.flags ^ l.flags) & ENC_FLAGS || c.csize !== l.csize || c.usize !== l.usize || c.crc !== l.crc)
        this.mismatch('central directory and local header disagree', c.name);
    }
    if (!seg.mismatch) {
      for (const l of seg.index.values()) if (!l.referenced) this.handler.onAnomaly('zip-local-only-entry', false, l.name);
      this.lastValidEnd = at;
    }
    this.endSegment();
  }

  private endSegment(): void {
    this.seg = null;
    this.enterSearch();
  }

  /** One disagreement per segment is enough: a verdict, the rest is not compared. */
  private mismatch(_detail: string, member?: string): void {
    const seg = this.seg!;
    if (seg.mismatch) return;
    seg.mismatch = true;
    this.handler.onAnomaly('zip-directory-mismatch', true, member);
  }

  // ---- plumbing -----------------------------------------------------------------------

  /**
   * The data does not hold up. In the first segment of a sniffed zip that is corrupt
   * input; in a speculative segment it was no archive: drop it and search on.
   */
  private fail(detail: string): void {
    if (this.seg?.strict) return this.corrupt(detail);
    this.closeEntry();
    this.inflate = null;
    this.handler.onAnomaly('zip-embedded-corrupt', false);
    this.endSegment();
  }

  /**
   * A "PK\3\4" found by searching was not the start of an archive (implausible header or
   * name): search on from just after its signature, re-reading the header bytes taken.
   */
  private notAHeader(taken: Uint8Array): void {
    this.seg = null;
    this.replay = taken;
    this.abs -= taken.length;
    this.enterSearch();
  }

  /** Reading the first header of a segment found by searching (not yet known to be one). */
  private firstSpeculative(): boolean {
    return this.seg !== null && !this.seg.strict && this.seg.index.size === 0;
  }

  private enterSearch(): void {
    this.state = S.Search;
    this.searchHave = 0;
    this.shrink();
  }

  private discard(n: number): void {
    if (n === 0) return this.expect(S.Sig, 4);
    this.remaining = n;
    this.state = S.Discard;
  }

  private expect(state: S, n: number): void {
    this.state = state;
    this.have = 0;
    this.need = n;
    this.pieceAt = this.abs;
    if (n > this.hdr.length) this.grow(Math.max(n, MIN_HDR));
  }

  private grow(n: number): void {
    const h = new Uint8Array(n);
    h.set(this.hdr.subarray(0, this.have));
    this.hdr = h;
  }

  /** Don't keep a 192 KiB header buffer after a long record. */
  private shrink(): void {
    if (this.hdr.length > 4096) this.hdr = new Uint8Array(MIN_HDR);
  }

  protected finish(): void {
    if (this.state === S.Deflate && this.inflate) {
      const e = this.e!;
      // A known size not reached is truncation (a sized entry flushes itself at its size).
      if (!(e.flags & FLAG.DESCRIPTOR)) this.fail(`zip: ${e.name}: truncated`);
      else {
        try {
          this.inflate.flush();
          if (!this.stopped && !this.inflate.done) this.fail(`zip: ${e.name}: truncated`);
        } catch (err) {
          if (!(err instanceof InflateError)) throw err;
          this.fail(`zip: ${e.name}: ${err.message}`);
        }
        if (this.stopped) return;
        if (this.state === S.Deflate) {
          this.drive(new Uint8Array(0)); // the tail may hold further (small) entries
          if (this.stopped) return;
          return this.finish();
        }
      }
      if (this.stopped) return;
    }
    if (this.firstSpeculative() && (this.state === S.Local || this.state === S.LocalVar)) {
      // Input ended inside the first header of a searched-for segment: no header; search what was taken.
      this.notAHeader(this.state === S.Local ? this.hdr.slice(0, this.have) : Buffer.concat([this.fixed, this.hdr.subarray(0, this.have)]));
      this.drive(new Uint8Array(0));
      if (this.stopped) return;
      return this.finish();
    }
    if (this.seg) {
      const seg = this.seg;
      const noCd = this.state === S.Sig && this.have === 0 && seg.index.size > 0 && seg.cdStart < 0;
      this.fail(noCd ? 'zip: truncated (no central directory)' : 'zip: truncated');
      if (this.stopped) return;
    }
    this.closeEntry();
    const c = this.watch.candidate();
    // A central-directory client would open the archive at an end record we did not validate.
    if (opensAsZip(c) && c!.pos !== this.lastValidEnd) this.handler.onAnomaly('zip-hidden-archive', true);
  }
}

/** How many of "PK\3\4"'s first bytes end `b` (0–3): a signature that may finish in the next chunk. */
function partialSig(b: Uint8Array, len: number): number {
  for (let k = Math.min(3, len); k > 0; k--) {
    let ok = true;
    for (let q = 0; q < k && ok; q++) ok = b[len - k + q] === LOCAL_SIG[q];
    if (ok) return k;
  }
  return 0;
}

/** Reject "PK\3\4" by chance in other data: a version a writer uses, a known method, a name. */
function plausible(version: number, method: number, nameLen: number): boolean {
  return (version & 0xff) <= 100 && KNOWN_METHODS.has(method) && nameLen >= 1 && nameLen <= 4096;
}

/** Info-ZIP Unicode Path extra field: version 1, CRC-32 of the header name, UTF-8 name. */
function unicodePath(body: Uint8Array, out: string[]): void {
  if (body.length < 5 || body[0] !== 1) return;
  for (const n of nameCandidates(body.subarray(5))) if (!out.includes(n)) out.push(n);
}

/** A copy of borrowed bytes (Buffer#slice would be a view; see chunk-ownership.ts). */
const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

function nameKey(b: Uint8Array): string {
  if (b.length <= KEY_BYTES) return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  return '#' + createHash('sha256').update(b).digest('hex');
}

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
/** 64-bit little-endian as a safe integer, or NaN when above 2^53. */
const u64 = (b: Uint8Array, o: number): number => {
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return NaN;
  return hi * 0x100000000 + u32(b, o);
};
