/**
 * tar-header.ts — reading one 512-byte tar header the ways clients read it.
 *
 * Numbers: Python's tarfile (nti: cut at NUL, strip whitespace, int(s, 8) — which takes
 * a sign, a "0o" prefix and underscores between digits; 0x80/0xFF base-256) and GNU tar
 * (from_header: an optional leading NUL and blanks, octal digits up to a NUL or blank,
 * 0x80/0xFF base-256) mostly agree; where they don't, the member boundaries differ
 * between clients, so readNumber() says so (`ambiguous`) and the caller names it.
 * Checksum: the header's sum with the checksum field as blanks, unsigned or signed
 * (old Sun/NeXT tars), compared with the field as either client reads it.
 * isTarHeader(): what makes Python's tarfile and GNU tar take a block as a header —
 * v7 (no magic) included: not all zeros, and a checksum that matches.
 * Errors: none (null / false for what no client accepts).
 */
export const BLOCK = 512;

/** Header field offsets/lengths (ustar; GNU and v7 share the first 257 bytes). */
export const F = { NAME: [0, 100], SIZE: [124, 12], CHKSUM: [148, 8], TYPE: 156, LINK: [157, 100], MAGIC: [257, 6], PREFIX: [345, 155] } as const;

/** Python's str.strip() whitespace among the ASCII bytes. */
const isPySpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
const isCSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

function base256(f: Uint8Array): number | null {
  if (f[0] === 0xff) return null; // negative: no size, sum or offset can be
  let v = 0;
  for (let i = 1; i < f.length; i++) {
    v = v * 256 + f[i]!;
    if (v > Number.MAX_SAFE_INTEGER) return null;
  }
  return v;
}

/** Python tarfile's nti() (3.11), or null where it raises. Negative values are null (no field we read may be). */
export function parseNumberPython(f: Uint8Array): number | null {
  if (f[0] === 0x80 || f[0] === 0xff) return base256(f);
  const nul = f.indexOf(0);
  const b = nul >= 0 ? f.subarray(0, nul) : f;
  let s = 0;
  let e = b.length;
  while (s < e && isPySpace(b[s]!)) s++;
  while (e > s && isPySpace(b[e - 1]!)) e--;
  if (s === e) return 0;
  for (let i = s; i < e; i++) if (b[i]! >= 0x80) return null; // ascii strict
  let t = Buffer.from(b.subarray(s, e)).toString('latin1');
  let neg = false;
  if (t[0] === '+' || t[0] === '-') {
    neg = t[0] === '-';
    t = t.slice(1);
  }
  if (/^0[oO]/.test(t)) t = t.slice(2).replace(/^_/, '');
  if (!/^[0-7](_?[0-7])*$/.test(t)) return null;
  const v = parseInt(t.replace(/_/g, ''), 8);
  if (neg) return v === 0 ? 0 : null;
  return Number.isSafeInteger(v) ? v : null;
}

/** GNU tar's from_header() for unsigned fields, or null where it reports an error. */
export function parseNumberGnu(f: Uint8Array): number | null {
  if (f.every((c) => c === 0 || c === 0x20)) return 0; // an empty field: zero (writers leave sizes of links so)
  let i = 0;
  if (f[0] === 0) i = 1; // "buggy tar of unknown vintage": a NUL left by an overflowing previous field
  while (i < f.length && isCSpace(f[i]!)) i++;
  if (i === f.length) return null; // blanks where a number is expected
  if (f[i] === 0x80 || f[i] === 0xff) return i === 0 ? base256(f) : null;
  let v = 0;
  let digits = 0;
  for (; i < f.length && f[i]! >= 0x30 && f[i]! <= 0x37; i++) {
    v = v * 8 + (f[i]! - 0x30);
    digits++;
  }
  if (digits === 0) return null;
  if (i < f.length && f[i] !== 0 && !isCSpace(f[i]!)) return null;
  return v;
}

/** The field as clients read it: the value (Python's where it has one) and whether they disagree. */
export function readNumber(f: Uint8Array): { value: number | null; ambiguous: boolean } {
  const p = parseNumberPython(f);
  const g = parseNumberGnu(f);
  return { value: p ?? g, ambiguous: p !== g };
}

/** The historical reading (kept for callers and tests): GNU's, which is the stricter on garbage. */
export function parseNumber(f: Uint8Array): number | null {
  return parseNumberGnu(f);
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Does the checksum match for Python, for GNU tar? (Unsigned or signed sum, as both accept.) */
export function checksums(h: Uint8Array): { python: boolean; gnu: boolean } {
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= F.CHKSUM[0] && i < F.CHKSUM[0] + F.CHKSUM[1] ? 0x20 : h[i]!;
    u += b;
    s += b > 127 ? b - 256 : b;
  }
  const field = h.subarray(F.CHKSUM[0], F.CHKSUM[0] + F.CHKSUM[1]);
  const p = parseNumberPython(field);
  const g = parseNumberGnu(field);
  return { python: p === u || p === s, gnu: g === u || g === s };
}

/** Bytes a checksum field can hold for either reader: digits, blanks, NUL, sign, "o", "_". */
const CHKSUM_BYTES = new Uint8Array(256);
for (const c of [0, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x2b, 0x2d, 0x4f, 0x5f, 0x6f, 0x80, 0xff]) CHKSUM_BYTES[c] = 1;
for (let c = 0x30; c <= 0x37; c++) CHKSUM_BYTES[c] = 2;

/** A block some client takes for a tar header (v7, ustar, GNU, pax): not zeros, checksum right, a size. */
export function isTarHeader(h: Uint8Array): boolean {
  if (h.length < BLOCK) return false;
  // Sniffing runs on every file: reject on the checksum field's bytes before summing 512.
  let digits = 0;
  for (let i = F.CHKSUM[0]; i < F.CHKSUM[0] + F.CHKSUM[1]; i++) {
    const k = CHKSUM_BYTES[h[i]!]!;
    if (k === 0) return false;
    if (k === 2) digits++;
  }
  if (digits === 0 || isZeroBlock(h.subarray(0, BLOCK))) return false;
  const c = checksums(h);
  return (c.python || c.gnu) && readNumber(h.subarray(F.SIZE[0], F.SIZE[0] + F.SIZE[1])).value !== null;
}
