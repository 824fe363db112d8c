/**
 * bzip2-block.ts — decode one bzip2 block (or the end-of-stream record) from a byte buffer.
 *
 * Format (bzip2 1.0.x): 48-bit block magic 0x314159265359, block CRC, randomised bit,
 * 24-bit origPtr, symbol map, 2–6 Huffman tables, selectors (MTF-coded), then
 * Huffman → RUNA/RUNB run lengths + MTF → the BWT of ≤ level×100k bytes; the end of
 * stream is magic 0x177245385090 + combined CRC. Blocks are not byte aligned.
 * parseBlock() is all-or-nothing: it throws NEED_MORE when the buffer ends before the
 * block does (the caller retries with more bytes), Bzip2Error for corrupt data.
 * BlockOutput then inverts the BWT and the initial RLE in bounded pieces.
 * Memory: tt (4 bytes × block size ≤ 3.6 MB) owned by the caller and reused.
 * "Randomised" blocks (written only by bzip2 < 0.9.5) are read: BlockOutput undoes the
 * mask (bzip2-rand.ts) as libbz2 does.
 */
import { RandMask } from './bzip2-rand.js';

export class Bzip2Error extends Error {
  readonly code = 'BZIP2_CORRUPT';
}
/** Thrown (not an Error: cheap) when the input ends inside the block. */
export const NEED_MORE: unique symbol = Symbol('bzip2-need-more');

const MAX_GROUPS = 6;
const MAX_ALPHA = 258;
const MAX_CODE_LEN = 20;
const MAX_SELECTORS = 18002; // bzip2 1.0.8 reads up to 32767, keeps 18002 (CVE-2019-12900)
const GROUP_SIZE = 50;

/** MSB-first bit reader over data[start..end), positioned at an absolute bit offset. */
class BitReader {
  private p: number;
  private bb = 0;
  private bc = 0;
  constructor(private readonly d: Uint8Array, bit: number, private readonly end: number) {
    this.p = bit >>> 3;
    if (bit & 7) this.bits(bit & 7);
  }
  bits(n: number): number {
    while (this.bc < n) {
      if (this.p >= this.end) throw NEED_MORE;
      this.bb = ((this.bb << 8) | this.d[this.p++]!) >>> 0;
      this.bc += 8;
    }
    this.bc -= n;
    return (this.bb >>> this.bc) & ((1 << n) - 1);
  }
  bit(): number {
    return this.bits(1);
  }
  get position(): number {
    return this.p * 8 - this.bc;
  }
}

export type BlockResult =
  | { kind: 'block'; nextBit: number; crc: number; origPtr: number; nblock: number; randomised: boolean }
  | { kind: 'eos'; nextBit: number; crc: number };

/**
 * Parse the block starting at bit `bit` of data[0..end). Fills tt[0..nblock) with the
 * BWT bytes (low 8 bits) and counts with their histogram.
 */
export function parseBlock(data: Uint8Array, bit: number, end: number, maxBlock: number, tt: Uint32Array, counts: Int32Array): BlockResult {
  const br = new BitReader(data, bit, end);
  const m1 = br.bits(24);
  const m2 = br.bits(24);
  const crc = ((br.bits(16) << 16) | br.bits(16)) >>> 0;
  if (m1 === 0x177245 && m2 === 0x385090) return { kind: 'eos', nextBit: br.position, crc };
  if (m1 !== 0x314159 || m2 !== 0x265359) throw new Bzip2Error('bad block magic');
  const randomised = br.bit() === 1;
  const origPtr = br.bits(24);

  // Symbol map: which byte values occur.
  const seqToUnseq = new Uint8Array(256);
  let nInUse = 0;
  const used16 = br.bits(16);
  for (let i = 0; i < 16; i++)
    if (used16 & (0x8000 >> i)) {
      const v = br.bits(16);
      for (let j = 0; j < 16; j++) if (v & (0x8000 >> j)) seqToUnseq[nInUse++] = i * 16 + j;
    }
  if (nInUse === 0) throw new Bzip2Error('no symbols in use');
  const alphaSize = nInUse + 2;

  const nGroups = br.bits(3);
  if (nGroups < 2 || nGroups > MAX_GROUPS) throw new Bzip2Error('bad Huffman group count');
  const nSelectorsRaw = br.bits(15);
  if (nSelectorsRaw < 1) throw new Bzip2Error('no selectors');
  const nSelectors = Math.min(nSelectorsRaw, MAX_SELECTORS);
  const selector = new Uint8Array(nSelectors);
  const pos = new Uint8Array(MAX_GROUPS);
  for (let i = 0; i < nGroups; i++) pos[i] = i;
  for (let i = 0; i < nSelectorsRaw; i++) {
    let j = 0;
    while (br.bit()) if (++j >= nGroups) throw new Bzip2Error('bad selector');
    if (i >= MAX_SELECTORS) continue;
    const v = pos[j]!;
    for (; j > 0; j--) pos[j] = pos[j - 1]!;
    pos[0] = v;
    selector[i] = v;
  }

  // Code lengths (delta coded) and canonical decode tables per group.
  const limit: Int32Array[] = [];
  const base: Int32Array[] = [];
  const perm: Int32Array[] = [];
  const minLens = new Int32Array(nGroups);
  const len = new Uint8Array(MAX_ALPHA);
  for (let t = 0; t < nGroups; t++) {
    let curr = br.bits(5);
    let minLen = 32;
    let maxLen = 0;
    for (let i = 0; i < alphaSize; i++) {
      for (;;) {
        if (curr < 1 || curr > MAX_CODE_LEN) throw new Bzip2Error('bad code length');
        if (!br.bit()) break;
        curr += br.bit() ? -1 : 1;
      }
      len[i] = curr;
      if (curr < minLen) minLen = curr;
      if (curr > maxLen) maxLen = curr;
    }
    const lim = new Int32Array(MAX_CODE_LEN + 2);
    const bas = new Int32Array(MAX_CODE_LEN + 2);
    const per = new Int32Array(MAX_ALPHA);
    let pp = 0;
    for (let i = minLen; i <= maxLen; i++) for (let j = 0; j < alphaSize; j++) if (len[j] === i) per[pp++] = j;
    for (let i = 0; i < alphaSize; i++) bas[len[i]! + 1]!++;
    for (let i = 1; i < bas.length; i++) bas[i]! += bas[i - 1]!;
    let vec = 0;
    for (let i = minLen; i <= maxLen; i++) {
      vec += bas[i + 1]! - bas[i]!;
      lim[i] = vec - 1;
      vec <<= 1;
    }
    for (let i = minLen + 1; i <= maxLen; i++) bas[i] = ((lim[i - 1]! + 1) << 1) - bas[i]!;
    for (let i = maxLen + 1; i < lim.length; i++) lim[i] = -1; // longer than any code: keep reading until "bad code"
    limit.push(lim);
    base.push(bas);
    perm.push(per);
    minLens[t] = minLen;
  }

  // Huffman → RUNA/RUNB + MTF → BWT bytes.
  const mtf = new Uint8Array(256);
  for (let i = 0; i < 256; i++) mtf[i] = i;
  counts.fill(0);
  const EOB = nInUse + 1;
  let nblock = 0;
  let groupNo = -1;
  let groupPos = 0;
  let lim = limit[0]!;
  let bas = base[0]!;
  let per = perm[0]!;
  let minLen = 0;
  let run = 0;
  let runPos = 0;
  for (;;) {
    if (groupPos === 0) {
      if (++groupNo >= nSelectors) throw new Bzip2Error('ran out of selectors');
      groupPos = GROUP_SIZE;
      const g = selector[groupNo]!;
      lim = limit[g]!;
      bas = base[g]!;
      per = perm[g]!;
      minLen = minLens[g]!;
    }
    groupPos--;
    let zn = minLen;
    let zvec = br.bits(zn);
    while (zvec > lim[zn]!) {
      if (++zn > MAX_CODE_LEN) throw new Bzip2Error('bad Huffman code');
      zvec = (zvec << 1) | br.bit();
    }
    const idx = zvec - bas[zn]!;
    if (idx < 0 || idx >= alphaSize) throw new Bzip2Error('bad Huffman code');
    const sym = per[idx]!;

    if (sym <= 1) {
      if (runPos === 0) {
        runPos = 1;
        run = 0;
      }
      run += runPos << sym; // RUNA adds runPos, RUNB 2×runPos (bijective base 2)
      runPos <<= 1;
      if (run > maxBlock) throw new Bzip2Error('run exceeds block size');
      continue;
    }
    if (runPos) {
      if (nblock + run > maxBlock) throw new Bzip2Error('block exceeds declared size');
      const uc = seqToUnseq[mtf[0]!]!;
      counts[uc]! += run;
      tt.fill(uc, nblock, nblock + run);
      nblock += run;
      runPos = 0;
    }
    if (sym === EOB) break;
    let k = sym - 1;
    const v = mtf[k]!;
    for (; k > 0; k--) mtf[k] = mtf[k - 1]!;
    mtf[0] = v;
    if (nblock >= maxBlock) throw new Bzip2Error('block exceeds declared size');
    const uc = seqToUnseq[v]!;
    counts[uc]!++;
    tt[nblock++] = uc;
  }
  if (nblock === 0 || origPtr >= nblock) throw new Bzip2Error('bad origPtr');
  return { kind: 'block', nextBit: br.position, crc, origPtr, nblock, randomised };
}

/** bzip2's CRC: CRC-32 polynomial 0x04c11db7, MSB first (not the zip/gzip reflected one). */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** Inverse BWT + initial-RLE decoding of one parsed block, produced in bounded pieces. */
export class BlockOutput {
  private tPos: number;
  private left: number; // BWT bytes still to read
  private last = -1;
  private same = 0;
  private repeat = 0; // pending copies of `last` from a run-length byte
  private crc = 0xffffffff;
  private readonly rand: RandMask | null;

  constructor(private readonly tt: Uint32Array, counts: Int32Array, origPtr: number, nblock: number, randomised = false) {
    this.rand = randomised ? new RandMask() : null;
    const cftab = new Int32Array(257);
    for (let i = 0; i < 256; i++) cftab[i + 1] = cftab[i]! + counts[i]!;
    for (let i = 0; i < nblock; i++) {
      const uc = tt[i]! & 0xff;
      tt[cftab[uc]!++]! |= i << 8;
    }
    this.tPos = tt[origPtr]! >>> 8;
    this.left = nblock;
  }

  get done(): boolean {
    return this.left === 0 && this.repeat === 0;
  }

  /** The block CRC, valid once done. */
  get blockCrc(): number {
    return ~this.crc >>> 0;
  }

  /** Fill out[0..n) with the next bytes; returns n (0 when done). */
  fill(out: Uint8Array): number {
    const tt = this.tt;
    let n = 0;
    let crc = this.crc;
    let { tPos, left, last, same, repeat } = this;
    const rand = this.rand;
    while (n < out.length) {
      if (repeat > 0) {
        out[n++] = last;
        crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ last) & 0xff]!;
        repeat--;
        continue;
      }
      if (left === 0) break;
      const e = tt[tPos]!;
      const ch = rand ? (e & 0xff) ^ rand.next() : e & 0xff;
      tPos = e >>> 8;
      left--;
      if (same === 4) {
        repeat = ch;
        same = 0;
        continue;
      }
      if (ch === last) same++;
      else {
        last = ch;
        same = 1;
      }
      out[n++] = ch;
      crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ ch) & 0xff]!;
    }
    Object.assign(this, { tPos, left, last, same, repeat });
    this.crc = crc >>> 0;
    return n;
  }
}
