/**
 * tar-sparse.ts — sparse tar members, rebuilt the way clients extract them.
 *
 * A sparse member stores only its data regions; a map of (offset, size) pairs says
 * where each goes in a file of `realSize` bytes, the rest being holes (zeros). Maps come
 * from the old GNU header ('S': 4 entries in the header, 21 per extension block), pax
 * records (0.0: repeated GNU.sparse.offset/numbytes; 0.1: GNU.sparse.map) or the start
 * of the member data (1.0: decimal lines). Python's tarfile writes each region at its
 * offset, then truncates to realSize; so do we, as a stream: holes are zeros, data past
 * realSize is dropped. Scanners need the real file (hash signatures, PE layouts), not
 * the concatenated regions.
 *
 * Input: the map, realSize, then the stored region bytes in order (write), end().
 * Output: through `out`: data(bytes) for stored bytes, zeros(n) for holes (the caller
 * counts those as expansion: ratio and unpacked-bytes guard them); false = stop.
 * Limits: MAX_SPARSE_ENTRIES map entries. Errors: check() names a map a stream cannot
 * follow (regions out of order or overlapping, sizes that do not add up to the stored
 * data): the caller gives the anomaly verdict and scans the stored bytes as they are.
 */
export const MAX_SPARSE_ENTRIES = 65_536;

export type SparseMap = [offset: number, size: number][];

export interface SparseOut {
  data(d: Uint8Array): boolean;
  zeros(n: number): boolean;
}

/** Why a stream cannot rebuild this map as Python would, or null. `stored`: bytes of region data. */
export function checkSparseMap(map: SparseMap, realSize: number, stored: number): string | null {
  let end = 0;
  let sum = 0;
  for (const [off, n] of map) {
    if (n === 0) continue;
    if (off < end) return 'regions out of order or overlapping';
    end = off + n;
    sum += n;
  }
  if (sum !== stored) return 'region sizes do not add up to the stored data';
  if (!Number.isSafeInteger(realSize) || realSize < 0) return 'bad real size';
  return null;
}

export class SparseRebuild {
  /** Stored bytes taken so far (before a hole is emitted: those of the regions before it). */
  consumed = 0;
  private i = 0;
  private pos = 0; // position in the rebuilt file
  private left = 0; // stored bytes left in the current region
  private readonly map: SparseMap;

  constructor(map: SparseMap, private readonly realSize: number, private readonly out: SparseOut) {
    this.map = map.filter(([, n]) => n > 0);
  }

  /** Stored region bytes, in order. False once `out` said stop. */
  write(d: Uint8Array): boolean {
    let p = 0;
    while (p < d.length) {
      if (this.left === 0) {
        const r = this.map[this.i++];
        if (!r) return true; // more data than the map holds: checkSparseMap rules this out
        if (!this.hole(r[0])) return false;
        this.left = r[1];
      }
      const n = Math.min(this.left, d.length - p);
      const keep = Math.max(0, Math.min(n, this.realSize - this.pos));
      if (keep > 0 && !this.out.data(d.subarray(p, p + keep))) return false;
      this.pos += n;
      this.left -= n;
      this.consumed += n;
      p += n;
    }
    return true;
  }

  /** The trailing hole, up to realSize. */
  end(): boolean {
    return this.hole(this.realSize);
  }

  /** Zeros from here to `to`, never past realSize; the position moves to `to` either way. */
  private hole(to: number): boolean {
    const target = Math.min(to, this.realSize);
    if (target > this.pos && !this.out.zeros(target - this.pos)) return false;
    this.pos = Math.max(this.pos, to);
    return true;
  }
}

/**
 * Entries of an old GNU sparse map: `count` (offset, size) pairs of 12-byte numbers from
 * `at`. Like Python, a field it cannot read ends the list (no error). False when the map
 * is over MAX_SPARSE_ENTRIES.
 */
export function gnuSparseEntries(block: Uint8Array, at: number, count: number, into: SparseMap, num: (f: Uint8Array) => number | null): boolean {
  for (let k = 0; k < count; k++) {
    const o = num(block.subarray(at + 24 * k, at + 24 * k + 12));
    const n = num(block.subarray(at + 24 * k + 12, at + 24 * k + 24));
    if (o === null || n === null) break;
    if (n > 0) into.push([o, n]);
    if (into.length > MAX_SPARSE_ENTRIES) return false;
  }
  return true;
}

/** pax 0.1 "GNU.sparse.map": "offset,size,offset,size,…"; null if not a list of numbers. */
export function parseMap01(v: string): SparseMap | null {
  if (v === '') return [];
  const nums = v.split(',').map((x) => (/^\d{1,16}$/.test(x) ? Number(x) : NaN));
  if (nums.some((x) => !Number.isSafeInteger(x)) || nums.length / 2 > MAX_SPARSE_ENTRIES) return null;
  const m: SparseMap = [];
  for (let i = 0; i + 1 < nums.length; i += 2) m.push([nums[i]!, nums[i + 1]!]);
  return m;
}

/**
 * pax 1.0: the map at the start of the member data — decimal lines: count, then count
 * (offset, size) pairs — padded to whole blocks. Feed block by block; `done` once complete.
 */
export class Map10Reader {
  map: SparseMap = [];
  done = false;
  error: string | null = null;
  private count = -1;
  private nums: number[] = [];
  private line = '';

  /** One 512-byte block of the map area. */
  block(b: Uint8Array): void {
    for (let i = 0; i < b.length && !this.done && !this.error; i++) {
      const c = b[i]!;
      if (c !== 0x0a) {
        if (c < 0x30 || c > 0x39 || this.line.length >= 16) this.error = 'bad sparse map number';
        else this.line += String.fromCharCode(c);
        continue;
      }
      if (this.line === '') {
        this.error = 'bad sparse map number';
        break;
      }
      const v = Number(this.line);
      this.line = '';
      if (this.count < 0) {
        if (v > MAX_SPARSE_ENTRIES) this.error = 'sparse map too large';
        this.count = v;
      } else this.nums.push(v);
      if (this.count >= 0 && this.nums.length === 2 * this.count) {
        for (let k = 0; k < this.count; k++) this.map.push([this.nums[2 * k]!, this.nums[2 * k + 1]!]);
        this.done = true;
      }
    }
  }
}
