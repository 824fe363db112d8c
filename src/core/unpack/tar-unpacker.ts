/**
 * tar-unpacker.ts — push state machine for tar (v7, ustar, GNU, pax), read the ways
 * clients read it (Python's tarfile, GNU tar, libarchive).
 *
 * Input: the tar bytes, any chunking. Output: one entry per member whose data a client
 * extracts as a file: regular types ('0', NUL, '7'), every type Python's tarfile does not
 * know ('D', 'N', 'V', 'M', …: it extracts them as regular files), and sparse members
 * ('S', pax 0.0/0.1/1.0: rebuilt with their holes, tar-sparse.ts). Link and device,
 * directory and FIFO headers normally carry no data; when one declares some, readers
 * split (GNU tar and libarchive skip it as data, Python reads the next header there): we
 * emit it as a member (`tar-data-in-special`, recorded), whose sniffing unpacks it as a
 * tar when it holds headers — so both readings are scanned. Link names (hard and
 * symbolic) are policy-checked: clients create files by those names.
 * Names (EntryMeta.altNames): pax path, pax global path (Python applies it to every later
 * member), GNU.sparse.name, every GNU long name ('L'), the header name with and without
 * the ustar prefix, each cut at NUL and whole. The first of GNU.sparse.name, pax path,
 * long name, header name is the where-path name.
 * Numbers: readNumber() (tar-header.ts); where Python and GNU tar read a size or a
 * checksum differently, member boundaries differ between clients: anomaly
 * `tar-ambiguous-header` with a verdict. Likewise a pax global `size` (Python extracts
 * that many bytes but skips by the header's) and a sparse map a stream cannot follow
 * (`tar-sparse-map`; its stored bytes are scanned as they are).
 * End: a zero block ends the archive for clients, but GNU tar -i and Python's
 * ignore_zeros read on, and concatenated tars are common: later valid headers are read
 * too (`tar-after-end`, recorded); other blocks after the end are ignored.
 * Limits: archive-entries per member (links too); holes of sparse members are expansion
 * (unpacked-bytes, ratio against the member's stored bytes). Stored member bytes are not
 * counted as unpacked (they were counted when produced/decoded).
 * Carry: one 512-byte block, GNU long names ≤ 64 KiB (≤ 32 of them per member), pax
 * records ≤ 1 MiB, sparse maps ≤ 65 536 entries (we never allocate what a peer claims).
 * Errors (onCorrupt): a bad header checksum before the end, a bad size field,
 * truncation, oversize or garbled pax / long-name data.
 * Gaps: GNU tar's recovery scan after a bad header (we report corrupt instead); pax
 * global keys other than path, size and GNU.sparse.name; an 'S' member's pax size.
 */
import { decodeName, nameCandidates } from './name-decode.js';
import { newScope, type RatioScope } from './ratio-guard.js';
import { BLOCK, checksums, F, isZeroBlock, parseNumberPython, readNumber } from './tar-header.js';
import { checkSparseMap, gnuSparseEntries, Map10Reader, parseMap01, SparseRebuild, type SparseMap } from './tar-sparse.js';
import { UnpackerBase } from './unpack-base.js';
import type { EntryMeta, UnpackBudget, UnpackHandler } from './unpack-types.js';

export { parseNumber } from './tar-header.js';

const MAX_LONGNAME = 64 * 1024;
const MAX_PAX = 1024 * 1024;
const MAX_LONGNAMES = 32;
const ZEROS = new Uint8Array(64 * 1024);
/** Types whose data Python does not skip (it reads the next header there). */
const SPECIAL_TYPES = new Set(['1', '2', '3', '4', '5', '6']);
const LINK_TYPES = new Set(['1', '2']);

const enum S {
  Header,
  Data, // member bytes → sink
  Skip, // data nobody extracts
  Meta, // 'L', 'K', 'x', 'X', 'g' data collected
  Pad, // to the next 512-byte boundary
  SparseExt, // old GNU sparse extension blocks (not part of the size)
  SparseMap, // pax 1.0: the map at the start of the data
  Sparse, // stored regions of a sparse member
}

/** What extended headers said about the next member. */
interface Pending {
  longNames: string[];
  paxPath: string | null;
  paxSize: number | null;
  sparseName: string | null;
  /** pax sparse: 0.0/0.1 map and size, or 1.0 (map in the data). */
  sparse: { map: SparseMap | null; realSize: number | null; v10: boolean } | null;
}

const freshPending = (): Pending => ({ longNames: [], paxPath: null, paxSize: null, sparseName: null, sparse: null });

export class TarUnpacker extends UnpackerBase {
  private state = S.Header;
  private readonly block = new Uint8Array(BLOCK);
  private have = 0;
  private remaining = 0;
  private pad = 0;
  private zeroSeen = false;
  private afterEndNoted = false;
  private headersSeen = 0;
  private meta: Uint8Array | null = null;
  private metaLen = 0;
  private metaType = '';
  private pending: Pending = freshPending();
  private readonly global = { path: null as string | null, size: null as number | null, sparseName: null as string | null };
  // sparse member in progress
  private entryName = '';
  private sparseMap: SparseMap = [];
  private sparseReal = 0;
  private sparseStored = 0;
  private rebuild: SparseRebuild | null = null;
  private map10: Map10Reader | null = null;
  private sparseBase = 0; // member bytes consumed before its regions (header, extensions, map)
  private scope: RatioScope = newScope();

  constructor(handler: UnpackHandler, budget: UnpackBudget) {
    super(handler, budget);
  }

  protected step(buf: Uint8Array, i: number): number {
    switch (this.state) {
      case S.Header:
      case S.SparseExt:
      case S.SparseMap: {
        const n = Math.min(BLOCK - this.have, buf.length - i);
        this.block.set(buf.subarray(i, i + n), this.have);
        this.have += n;
        if (this.have === BLOCK) {
          this.have = 0;
          if (this.state === S.Header) this.header();
          else if (this.state === S.SparseExt) this.extensionBlock();
          else this.mapBlock();
        }
        return i + n;
      }
      case S.Data:
      case S.Skip:
      case S.Meta:
      case S.Sparse: {
        const n = Math.min(this.remaining, buf.length - i);
        const d = buf.subarray(i, i + n);
        if (this.state === S.Data) this.emitStored(d);
        else if (this.state === S.Sparse) {
          if (this.rebuild) this.rebuild.write(d);
          else this.emitStored(d);
        } else if (this.state === S.Meta) {
          this.meta!.set(d, this.metaLen);
          this.metaLen += n;
        }
        this.remaining -= n;
        if (this.remaining === 0 && !this.stopped) this.dataDone();
        return i + n;
      }
      case S.Pad: {
        const n = Math.min(this.pad, buf.length - i);
        this.pad -= n;
        if (this.pad === 0) this.state = S.Header;
        return i + n;
      }
    }
  }

  private header(): void {
    const h = this.block;
    if (isZeroBlock(h)) {
      this.zeroSeen = true;
      return;
    }
    const cs = checksums(h);
    if (!cs.python && !cs.gnu) {
      // After the end, junk is ignored (ignore-zeros readers skip it too).
      if (this.zeroSeen) return;
      return this.corrupt('tar: header checksum mismatch');
    }
    if (this.zeroSeen && !this.afterEndNoted) {
      this.afterEndNoted = true;
      this.handler.onAnomaly('tar-after-end', false);
    }
    if (cs.python !== cs.gnu) this.handler.onAnomaly('tar-ambiguous-header', true);
    this.headersSeen++;
    const sz = readNumber(h.subarray(F.SIZE[0], F.SIZE[0] + F.SIZE[1]));
    if (sz.value === null) return this.corrupt('tar: bad size field');
    if (sz.ambiguous) this.handler.onAnomaly('tar-ambiguous-header', true);
    let size = sz.value;
    const type = String.fromCharCode(h[F.TYPE]!);

    if (type === 'L' || type === 'K' || type === 'x' || type === 'X' || type === 'g') {
      const max = type === 'L' || type === 'K' ? MAX_LONGNAME : MAX_PAX;
      if (size > max) return this.corrupt(`tar: '${type}' header data too large`);
      this.metaType = type;
      this.meta = new Uint8Array(size);
      this.metaLen = 0;
      return this.startData(S.Meta, size);
    }

    const p = this.pending;
    this.pending = freshPending();
    const carriesData = !SPECIAL_TYPES.has(type);
    if (p.paxSize !== null) size = p.paxSize;
    else if (carriesData && this.global.size !== null && this.global.size !== size) this.handler.onAnomaly('tar-ambiguous-header', true);
    const [name, ...alts] = this.names(h, type, p);
    const meta: EntryMeta = { name: name!, encrypted: false, declaredSize: size };
    if (alts.length) meta.altNames = alts;
    this.entryName = name!;

    if (type === 'S') return this.gnuSparse(h, meta, size);
    if (p.sparse && carriesData) return this.paxSparse(p.sparse, meta, size);
    if (!carriesData) {
      if (size === 0) {
        // No data: links still give clients a file by this name.
        if (LINK_TYPES.has(type)) {
          if (!this.countOnly()) return;
          for (const n of [name!, ...alts]) this.handler.onAltName(name!, n);
        }
        return this.startData(S.Skip, 0);
      }
      this.handler.onAnomaly('tar-data-in-special', false, name);
    }
    if (!this.openEntry(meta)) return;
    this.startData(S.Data, size);
  }

  /** Every name clients may give the member, the where-path one first. */
  private names(h: Uint8Array, type: string, p: Pending): string[] {
    const own = nameCandidates(h.subarray(F.NAME[0], F.NAME[0] + F.NAME[1]));
    // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar  ") and v7 use those bytes
    // otherwise, yet Python joins any non-empty prefix except for GNU types.
    const posix = h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72 && h[262] === 0;
    const prefix = type === 'S' ? '' : decodeName(h.subarray(F.PREFIX[0], F.PREFIX[0] + F.PREFIX[1]));
    const joined = prefix ? own.map((n) => `${prefix}/${n}`) : [];
    const header = posix ? [...joined, ...own] : [...own, ...joined];
    const all = [p.sparseName, p.paxPath, ...p.longNames.slice().reverse(), ...header, this.global.sparseName, this.global.path];
    const out = [...new Set(all.filter((n): n is string => n !== null && n !== ''))];
    return out.length ? out : [''];
  }

  private startData(state: S, size: number): void {
    this.state = state;
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.dataDone();
  }

  private dataDone(): void {
    if (this.state === S.Data) this.closeEntry();
    else if (this.state === S.Sparse) {
      if (this.rebuild && !this.rebuild.end()) return;
      this.rebuild = null;
      this.closeEntry();
    } else if (this.state === S.Meta && !this.metaDone()) return;
    this.state = this.pad ? S.Pad : S.Header;
  }

  // ---- sparse members ---------------------------------------------------------------

  private gnuSparse(h: Uint8Array, meta: EntryMeta, size: number): void {
    this.sparseMap = [];
    gnuSparseEntries(h, 386, 4, this.sparseMap, parseNumberPython);
    this.sparseReal = readNumber(h.subarray(483, 495)).value ?? size;
    this.sparseStored = size;
    this.sparseBase = BLOCK;
    if (!this.openEntry(meta)) return;
    if (h[482]) {
      this.state = S.SparseExt;
      return;
    }
    this.beginRegions();
  }

  private extensionBlock(): void {
    this.sparseBase += BLOCK;
    if (!gnuSparseEntries(this.block, 0, 21, this.sparseMap, parseNumberPython)) return this.corrupt('tar: sparse map too large');
    if (this.block[504]) return; // another extension block follows
    this.beginRegions();
  }

  private paxSparse(sp: NonNullable<Pending['sparse']>, meta: EntryMeta, size: number): void {
    this.sparseBase = BLOCK;
    if (!this.openEntry(meta)) return;
    if (!sp.v10) {
      this.sparseMap = sp.map ?? [];
      this.sparseReal = sp.realSize ?? size;
      this.sparseStored = size;
      return this.beginRegions();
    }
    // 1.0: the map fills the first blocks of the data (part of the size).
    this.sparseReal = sp.realSize ?? size;
    this.map10 = new Map10Reader();
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size < BLOCK) return this.sparseUnreadable(size);
    this.state = S.SparseMap;
  }

  private mapBlock(): void {
    const r = this.map10!;
    r.block(this.block);
    this.remaining -= BLOCK;
    this.sparseBase += BLOCK;
    if (r.error) return this.sparseUnreadable(this.remaining);
    if (r.done) {
      this.map10 = null;
      this.sparseMap = r.map;
      this.sparseStored = this.remaining;
      return this.beginRegions();
    }
    if (this.remaining < BLOCK) this.sparseUnreadable(this.remaining);
  }

  /** A map we cannot read: a verdict, and the rest of the stored bytes scanned as they are. */
  private sparseUnreadable(rest: number): void {
    this.map10 = null;
    this.handler.onAnomaly('tar-sparse-map', true, this.entryName);
    this.rebuild = null;
    const pad = this.pad;
    this.startData(S.Sparse, rest);
    this.pad = pad;
  }

  /** The stored regions follow: rebuild them, or scan them as they are when the map cannot be followed. */
  private beginRegions(): void {
    const pad = (BLOCK - (this.sparseStored % BLOCK)) % BLOCK;
    if (checkSparseMap(this.sparseMap, this.sparseReal, this.sparseStored) !== null) {
      this.handler.onAnomaly('tar-sparse-map', true, this.entryName);
      this.rebuild = null;
    } else {
      this.scope = newScope();
      const rebuild: SparseRebuild = new SparseRebuild(this.sparseMap, this.sparseReal, {
        data: (d) => {
          this.emitStored(d);
          return !this.stopped;
        },
        zeros: (n) => {
          // Holes are expansion: ratio against what the member stored so far.
          this.scope.inBytes = this.sparseBase + rebuild.consumed;
          for (let left = n; left > 0; ) {
            const k = Math.min(left, ZEROS.length);
            if (!this.emitExpanded(ZEROS.subarray(0, k), [this.scope])) return false;
            left -= k;
          }
          return true;
        },
      });
      this.rebuild = rebuild;
    }
    this.sparseMap = [];
    this.state = S.Sparse;
    this.remaining = this.sparseStored;
    this.pad = pad;
    if (this.remaining === 0) this.dataDone();
  }

  // ---- extended headers -------------------------------------------------------------

  /** Apply a completed GNU long name or pax extended/global header to what follows. */
  private metaDone(): boolean {
    const d = this.meta!;
    this.meta = null;
    const p = this.pending;
    if (this.metaType === 'L' || this.metaType === 'K') {
      if (this.metaType === 'L') {
        if (p.longNames.length >= MAX_LONGNAMES) {
          this.corrupt('tar: too many long names for one member');
          return false;
        }
        p.longNames.push(...nameCandidates(d));
      }
      return true;
    }
    const global = this.metaType === 'g';
    const offsets: number[] = [];
    const numbytes: number[] = [];
    const rec = new Map<string, Uint8Array>();
    // Records: "<len> <key>=<value>\n", len counting the whole record in bytes; a NUL where a record would start ends them.
    for (let q = 0; q < d.length && d[q] !== 0; ) {
      let sp = q;
      let len = 0;
      while (sp < d.length && d[sp]! >= 0x30 && d[sp]! <= 0x39 && sp - q < 8) len = len * 10 + d[sp++]! - 0x30;
      if (sp >= d.length || d[sp] !== 0x20 || len < 5 || len <= sp - q + 1 || q + len > d.length || d[q + len - 1] !== 0x0a) {
        this.corrupt('tar: malformed pax record');
        return false;
      }
      const body = d.subarray(sp + 1, q + len - 1);
      const eq = body.indexOf(0x3d);
      if (eq > 0) {
        const key = Buffer.from(body.subarray(0, eq)).toString('latin1');
        const val = body.subarray(eq + 1);
        rec.set(key, val);
        if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
          const v = decimal(val);
          if (v === null || offsets.length + numbytes.length > 2 * 65_536) {
            this.corrupt('tar: bad pax sparse record');
            return false;
          }
          (key === 'GNU.sparse.offset' ? offsets : numbytes).push(v);
        }
      }
      q += len;
    }
    const str = (k: string): string | null => {
      const v = rec.get(k);
      return v === undefined ? null : nameCandidates(v)[0]!.replace(/\/+$/, '');
    };
    let size: number | null = null;
    if (rec.has('size')) {
      size = decimal(rec.get('size')!);
      if (size === null) {
        this.corrupt('tar: bad pax size');
        return false;
      }
    }
    if (global) {
      this.global.path = str('path') ?? this.global.path;
      this.global.sparseName = str('GNU.sparse.name') ?? this.global.sparseName;
      if (size !== null) this.global.size = size;
      return true;
    }
    if (rec.has('path')) p.paxPath = str('path');
    if (rec.has('GNU.sparse.name')) p.sparseName = str('GNU.sparse.name');
    if (size !== null) p.paxSize = size;
    // Python's order: 0.1 (map), 0.0 (size), 1.0 (major/minor).
    const num = (k: string) => (rec.has(k) ? decimal(rec.get(k)!) : null);
    if (rec.has('GNU.sparse.map')) {
      const map = parseMap01(Buffer.from(rec.get('GNU.sparse.map')!).toString('latin1'));
      if (!map) {
        this.corrupt('tar: bad pax sparse map');
        return false;
      }
      p.sparse = { map, realSize: num('GNU.sparse.size') ?? num('GNU.sparse.realsize'), v10: false };
    } else if (rec.has('GNU.sparse.size')) {
      const map: SparseMap = offsets.slice(0, numbytes.length).map((o, k) => [o, numbytes[k]!]);
      p.sparse = { map, realSize: num('GNU.sparse.size'), v10: false };
    } else if (str('GNU.sparse.major') === '1' && str('GNU.sparse.minor') === '0') {
      p.sparse = { map: null, realSize: num('GNU.sparse.realsize') ?? num('GNU.sparse.size'), v10: true };
    }
    return true;
  }

  protected finish(): void {
    if (this.state === S.Header && (this.have === 0 || this.zeroSeen)) {
      if (!this.zeroSeen && this.headersSeen === 0) return this.corrupt('tar: empty');
      return; // EOF at a header boundary (no end-of-archive blocks), or junk after the end
    }
    this.corrupt('tar: truncated');
  }
}

function decimal(b: Uint8Array): number | null {
  if (b.length === 0 || b.length > 16) return null;
  let v = 0;
  for (const c of b) {
    if (c < 0x30 || c > 0x39) return null;
    v = v * 10 + (c - 0x30);
  }
  return v;
}
