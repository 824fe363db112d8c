/**
 * zip-eocd-watch.ts — which end-of-central-directory record a client would use, for any
 * byte stream (a zip, a zip behind junk, or a file that is not a zip at all).
 *
 * Clients that open a zip by its central directory (Python's zipfile, unzip, 7-Zip,
 * Explorer) find it from the end of the file. This watcher follows Python's
 * _EndRecData exactly: the last 22 bytes when they are a record with no comment, else
 * the last "PK\5\6" that starts in the final 65558 bytes (22 bytes of it must exist);
 * ZIP64 values when a locator ("PK\6\7") sits right before the record and a ZIP64 end
 * record ("PK\6\6") right before the locator.
 *
 * Input: every byte of one file, in any chunking (write). Output: candidate() at the
 * end: the record's position, the central directory size and where that record puts the
 * directory (Python's start_dir), or null when such a client finds no record.
 * Memory: the last 79 bytes seen and the last KEEP records (98 bytes each).
 * Errors: none (a bad record is reported as what it says; callers judge plausibility).
 */
const SIG = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const PK = Buffer.from([0x50, 0x4b]);
/** Buffer's native search, called on plain Uint8Arrays too (no Buffer view per chunk). */
const indexOf = Buffer.prototype.indexOf as (this: Uint8Array, value: Uint8Array, byteOffset: number) => number;
const REC = 22;
const PRE = 76; // ZIP64 end record (56) + locator (20) before the record
const HIST = PRE + 3;
/** Enough to hold every record that can start in the last 22 bytes, plus the one before. */
const KEEP = 8;
const WINDOW = 65536 + REC;
const NO_HIST = new Uint8Array(0);

interface Occurrence {
  pos: number;
  /** pre[i] is the byte at pos - PRE + i (zero where the file had not started). */
  pre: Uint8Array;
  rec: Uint8Array;
  have: number;
}

export interface EocdCandidate {
  /** Absolute position of the "PK\5\6" record. */
  pos: number;
  /** Central directory size and where the record puts its start (Python's start_dir). */
  sizeCd: number;
  startDir: number;
  zip64: boolean;
}

export class EocdWatch {
  private total = 0;
  private hist: Uint8Array = NO_HIST; // allocated at the first write
  private histLen = 0;
  private occ: Occurrence[] = [];

  /** `localSigs`, if given, gets the offsets in `chunk` of every "PK\3\4" wholly inside it. */
  write(chunk: Uint8Array, localSigs?: number[]): void {
    if (chunk.length === 0) return;
    if (this.hist === NO_HIST) this.hist = new Uint8Array(HIST);
    // Fill records still collecting their 22 bytes.
    for (let i = 0; i < this.occ.length; i++) {
      const o = this.occ[i]!;
      if (o.have === REC) continue;
      const from = o.pos + o.have - this.total; // index in chunk
      const n = Math.min(REC - o.have, chunk.length - from);
      for (let k = 0; k < n; k++) o.rec[o.have + k] = chunk[from + k]!;
      if (n > 0) o.have += n;
    }
    // A signature straddling the previous chunk and this one (its start is in the history's last 3 bytes).
    const lastByte = this.histLen ? this.hist[this.histLen - 1] : -1;
    if (lastByte === 0x50 || lastByte === 0x4b || lastByte === 0x05)
      for (let k = Math.min(3, this.histLen); k >= 1; k--) {
        if (4 - k > chunk.length) continue;
        let ok = true;
        for (let q = 0; q < 4 && ok; q++) ok = (q < k ? this.hist[this.histLen - k + q] : chunk[q - k]) === SIG[q];
        if (ok) this.found(this.total - k, chunk);
      }
    // One pass for "PK": end records here, local headers for the caller's search (cheaper than two searches).
    for (let j = indexOf.call(chunk, PK, 0); j >= 0 && j + 3 < chunk.length; j = indexOf.call(chunk, PK, j + 2)) {
      const c2 = chunk[j + 2];
      if (c2 === 5 && chunk[j + 3] === 6) this.found(this.total + j, chunk);
      else if (c2 === 3 && chunk[j + 3] === 4) localSigs?.push(j);
    }
    // Keep the last HIST bytes (a byte loop: no view objects on this per-chunk path).
    const h = this.hist;
    if (chunk.length >= HIST) {
      for (let i = 0, f = chunk.length - HIST; i < HIST; i++) h[i] = chunk[f + i]!;
      this.histLen = HIST;
    } else {
      const keep = Math.min(this.histLen, HIST - chunk.length);
      h.copyWithin(0, this.histLen - keep, this.histLen);
      for (let i = 0; i < chunk.length; i++) h[keep + i] = chunk[i]!;
      this.histLen = keep + chunk.length;
    }
    this.total += chunk.length;
  }

  /** Byte at absolute position p while `chunk` (starting at this.total) is being written; -1 before the file. */
  private byteAt(p: number, chunk: Uint8Array): number {
    if (p < 0) return -1;
    if (p >= this.total) return chunk[p - this.total]!;
    return this.hist[this.histLen - (this.total - p)]!;
  }

  private found(pos: number, chunk: Uint8Array): void {
    const pre = new Uint8Array(PRE);
    for (let i = 0; i < PRE; i++) {
      const v = this.byteAt(pos - PRE + i, chunk);
      if (v >= 0) pre[i] = v;
    }
    const rec = new Uint8Array(REC);
    let have = 0;
    for (; have < REC && pos + have < this.total + chunk.length; have++) rec[have] = this.byteAt(pos + have, chunk);
    this.occ.push({ pos, pre, rec, have });
    if (this.occ.length > KEEP) this.occ.shift();
  }

  /** The record a central-directory client would use, once all input is written. */
  candidate(): EocdCandidate | null {
    if (this.occ.length === 0) return null;
    const end = this.total;
    let c = this.occ.find((o) => o.pos === end - REC && o.have === REC && o.rec[20] === 0 && o.rec[21] === 0);
    if (!c) {
      const last = this.occ[this.occ.length - 1];
      if (!last || last.pos < Math.max(end - WINDOW, 0) || last.have < REC) return null;
      c = last;
    }
    let sizeCd = u32(c.rec, 12);
    let zip64 = false;
    const p = c.pre;
    if (c.pos >= 20 && u32(p, 56) === 0x07064b50) {
      // Python refuses multi-disk archives here: no record it would use.
      if (u32(p, 60) !== 0 || u32(p, 72) > 1) return null;
      if (c.pos >= PRE && u32(p, 0) === 0x06064b50) {
        sizeCd = u64(p, 40);
        zip64 = true;
      }
    }
    if (Number.isNaN(sizeCd)) return null;
    return { pos: c.pos, sizeCd, startDir: c.pos - sizeCd - (zip64 ? PRE : 0), zip64 };
  }
}

/** Would a central-directory client find entries to extract there? (start_dir ≥ 0, a directory of at least one record.) */
export function opensAsZip(c: EocdCandidate | null): boolean {
  return c !== null && c.sizeCd >= 46 && c.startDir >= 0;
}

const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number): number => {
  const hi = u32(b, o + 4);
  return hi >= 0x200000 ? NaN : hi * 0x100000000 + u32(b, o);
};
