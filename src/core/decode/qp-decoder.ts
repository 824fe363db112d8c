/**
 * qp-decoder.ts — streaming quoted-printable (RFC 2045 §6.7) decoder.
 *
 * Input: encoded bytes in any chunking; output: decoded bytes, one `out` call per write.
 * - `=XX` (hex, either case) → one byte.
 * - Soft line breaks: `=` CRLF, `=` LF, and `=` + SP/HT padding + (CR)LF (transport padding
 *   after the `=`, RFC 2045 says to strip it) → nothing.
 * - Malformed escapes (`=ZZ`, `=` at end of data, or padding longer than MAX_PAD) pass
 *   through literally: `=` is emitted and the following bytes are decoded normally.
 * - Trailing whitespace on hard line breaks is kept (RFC 2045 lets a decoder strip it; for
 *   scanning, keeping it loses nothing). Line endings are kept as received.
 * State between chunks: at most the bytes after one pending `=` (≤ MAX_PAD + 3).
 */
import type { Decoder } from './decoder.js';

const EQ = 0x3d;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const MAX_PAD = 64;

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

const NEED = -1;
const LITERAL = -2;

export class QpDecoder implements Decoder {
  /** Bytes from a pending `=` on, not yet decidable. */
  private pend: Uint8Array = new Uint8Array(0);

  write(chunk: Uint8Array, out: (b: Uint8Array) => void): void {
    let buf = chunk;
    if (this.pend.length > 0) {
      buf = new Uint8Array(this.pend.length + chunk.length);
      buf.set(this.pend);
      buf.set(chunk, this.pend.length);
      this.pend = new Uint8Array(0);
    }
    const n = this.decode(buf, false, out);
    if (n < buf.length) this.pend = buf.slice(n);
  }

  end(out: (b: Uint8Array) => void): void {
    const buf = this.pend;
    this.pend = new Uint8Array(0);
    if (buf.length > 0) this.decode(buf, true, out);
  }

  /** Decode buf; returns how many bytes were consumed (the rest waits for more data). */
  private decode(buf: Uint8Array, ending: boolean, out: (b: Uint8Array) => void): number {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    const o = new Uint8Array(buf.length);
    let n = 0;
    let i = 0;
    const len = buf.length;
    let plain = 0;
    while (i < len) {
      const c = buf[i]!;
      if (c !== EQ) {
        o[n++] = c;
        i++;
        if (++plain === 32) {
          // a long plain run (text): native search and copy for the rest of it
          const e = b.indexOf(EQ, i);
          const stop = e < 0 ? len : e;
          o.set(buf.subarray(i, stop), n);
          n += stop - i;
          i = stop;
          plain = 0;
        }
        continue;
      }
      plain = 0;
      // dense escapes (binary sent as QP) are decoded inline, without a call
      const h = i + 2 < len ? HEX[buf[i + 1]!]! : -1;
      const l = h >= 0 ? HEX[buf[i + 2]!]! : -1;
      if (l >= 0) {
        o[n++] = (h << 4) | l;
        i += 3;
        continue;
      }
      const r = escapeAt(buf, i, ending);
      if (r === NEED) break;
      if (r === LITERAL) {
        o[n++] = EQ;
        i++;
      } else if (r >= 0x100) {
        i = r - 0x100; // soft line break: skip to this index
      } else {
        o[n++] = r;
        i += 3;
      }
    }
    if (n > 0) out(o.subarray(0, n));
    return i;
  }
}

/**
 * What the `=` at buf[e] means: a byte value (0..255), 0x100 + index after a soft
 * line break, LITERAL, or NEED (not decidable before more data).
 */
function escapeAt(buf: Uint8Array, e: number, ending: boolean): number {
  const len = buf.length;
  if (e + 1 >= len) return ending ? LITERAL : NEED;
  const h = HEX[buf[e + 1]!]!;
  if (h >= 0) {
    if (e + 2 >= len) return ending ? LITERAL : NEED;
    const l = HEX[buf[e + 2]!]!;
    return l >= 0 ? (h << 4) | l : LITERAL;
  }
  // soft line break, possibly with transport padding between `=` and the line end
  let k = e + 1;
  while (k < len && k - e <= MAX_PAD + 1 && (buf[k] === SP || buf[k] === HT)) k++;
  if (k >= len) return ending || k - e > MAX_PAD + 1 ? LITERAL : NEED;
  if (buf[k] === LF) return 0x100 + k + 1;
  if (buf[k] === CR) {
    if (k + 1 >= len) return ending ? LITERAL : NEED;
    if (buf[k + 1] === LF) return 0x100 + k + 2;
  }
  return LITERAL;
}
