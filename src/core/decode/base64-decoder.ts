/**
 * base64-decoder.ts — streaming, tolerant base64 (RFC 2045 §6.8) decoder.
 *
 * Input: encoded bytes in any chunking; output: decoded bytes, one `out` call per
 * SCRATCH_BYTES of output at most. The output is a scratch buffer (chunk-ownership.ts):
 * borrowed, overwritten after `out` returns.
 * Tolerance (what MUAs and clamd do): whitespace and any non-alphabet byte are skipped;
 * line length is irrelevant; a missing final padding is accepted (a trailing 2 or 3
 * sextets still yield 1 or 2 bytes at end()). Decision on `=`: it ends the current
 * quantum (flushing 1 or 2 bytes for 2 or 3 pending sextets) and decoding continues
 * after it, so concatenated base64 blobs (`QQ==QkI=`) decode fully instead of hiding
 * the second one. A lone dangling sextet is dropped.
 * Two readings: that is what mailparser (libbase64) does; Python's email instead skips a
 * `=` inside a quantum and reads on (stopping at a complete padding). They differ only
 * when data follows a `=` that cut a quantum short; at the first such place the decoder
 * reports it once (onDiverge) with a second decoder in `skip` mode, started in the state
 * before the `=` and given the rest of the write, so the caller can read both ways.
 * State between chunks: ≤ 3 pending sextets and whether the last byte ended a line.
 *
 * Speed: regular bodies (equal lines whose length is a multiple of 4, no `=`, `-`, `_`)
 * go through Node's native base64 decoder (Buffer#write, ~3.5× our loop) a run of whole
 * lines at a time. Node's decoder differs from ours on `=` (it stops) and on `-`/`_` (it
 * reads base64url), so runs containing those bytes never take it; it skips every other
 * non-alphabet byte, as we do. A run is accepted only when its output length proves it
 * held exactly the expected number of alphabet bytes (the line ends at their expected
 * places are skipped bytes, so there cannot be more; fewer shows in the length), which
 * leaves no partial quantum behind; otherwise it is decoded again by the table loop below
 * (a 256-entry lookup, four characters per 32-bit load), which handles everything else.
 */
import type { Decoder } from './decoder.js';
import { SCRATCH_BYTES, giveScratch, takeScratch } from '../chunk-ownership.js';

const SKIP = 0xff;
const PAD = 0xfe;
const TABLE = new Uint8Array(256).fill(SKIP);
{
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) TABLE[a.charCodeAt(i)] = i;
  // No URL-safe '-'/'_': MUAs skip them in MIME bodies, so decoding them would let a
  // sender shift our decoding out of step with what the recipient sees.
  TABLE[0x3d] = PAD;
}
const LF = 0x0a;
const CR = 0x0d;
/** Input per output buffer: ≤ 3/4 of it decoded, plus ≤ 3 bytes of flushed quanta and 1 scratch byte. */
const MAX_IN = Math.floor((SCRATCH_BYTES - 8) / 3) * 4;
/** Fewest whole lines worth handing to the native decoder (its call costs a string). */
const MIN_NATIVE_LINES = 4;

export class Base64Decoder implements Decoder {
  private acc = 0;
  private k = 0;
  /** The byte before the next one is a line feed (or there was none). */
  private lineStart = true;
  /** A `=` cut a quantum short (padK ≥ 1): the state before it, until the next data byte. */
  private padAcc = 0;
  private padK = 0;
  private padFlushed = 0;
  /** Index in the current chunk where the readings part (set by tableLoop), or -1. */
  private divergeAt = -1;
  /** Set by the caller to read the skip-`=` way too; called at most once, then cleared. */
  onDiverge: ((alt: Base64Decoder, rest: Uint8Array, dropTail: number) => void) | null = null;

  /** `skip`: `=` is ignored like junk (Python's reading); `reset` (default): it ends a quantum. */
  constructor(private readonly mode: 'reset' | 'skip' = 'reset') {}

  write(chunk: Uint8Array, out: (b: Uint8Array) => void): void {
    const len = chunk.length;
    if (len === 0) return;
    for (let i = 0; i < len; ) {
      const end = Math.min(len, i + MAX_IN);
      const o = takeScratch();
      const n = this.decodeRange(chunk, i, end, o);
      if (n > 0) out(o.subarray(0, n));
      giveScratch(o);
      if (this.divergeAt >= 0) {
        i = this.divergeAt;
        this.divergeAt = -1;
        this.diverge(chunk.subarray(i));
        continue;
      }
      i = end;
    }
    this.lineStart = chunk[len - 1] === LF;
  }

  /** Data after a `=` that cut a quantum short: hand the skip reading to the caller. */
  private diverge(rest: Uint8Array): void {
    const cb = this.onDiverge;
    this.onDiverge = null;
    const alt = new Base64Decoder('skip');
    alt.acc = this.padAcc;
    alt.k = this.padK;
    alt.lineStart = false;
    const drop = this.padFlushed;
    this.padK = 0;
    cb?.(alt, rest, drop);
  }

  end(out: (b: Uint8Array) => void): void {
    this.padK = 0;
    this.onDiverge = null;
    const o = new Uint8Array(2);
    const n = flushQuantum(o, 0, this.acc, this.k);
    this.acc = 0;
    this.k = 0;
    this.lineStart = true;
    if (n > 0) out(o.subarray(0, n));
  }

  /** Decode chunk[from, to) into o; returns the bytes written. */
  private decodeRange(chunk: Uint8Array, from: number, to: number, o: Uint8Array): number {
    let n = 0;
    let ob: Buffer | null = null; // a Buffer view of o, for Buffer#write
    let p = from;
    let native = true; // cleared for the rest of the range once a run is refused
    while (p < to) {
      if (native && this.k === 0 && this.padK === 0 && (p === 0 ? this.lineStart : chunk[p - 1] === LF)) {
        const r = this.nativeRun(chunk, p, to, (ob ??= Buffer.from(o.buffer, o.byteOffset, o.length)), n);
        if (r !== null) {
          p = r[0];
          n = r[1];
          continue;
        }
        native = false;
      }
      // The table loop up to the next line start (where a native run may begin), or to `to`.
      let e = to;
      if (native) {
        const lf = chunk.indexOf(LF, p);
        if (lf >= 0 && lf < to) e = lf + 1;
      }
      n = this.tableLoop(chunk, p, e, o, n);
      if (this.divergeAt >= 0) return n;
      p = e;
    }
    return n;
  }

  /**
   * From line start p with no pending sextets: the longest run of whole lines shaped like
   * the first, decoded natively into o at n. Returns [end of run, new n], or null when
   * the run is too short, irregular or holds a byte Node reads differently.
   */
  private nativeRun(chunk: Uint8Array, p: number, to: number, o: Buffer, n: number): [number, number] | null {
    const lf = chunk.indexOf(LF, p);
    if (lf < 0 || lf >= to) return null;
    const crlf = lf > p && chunk[lf - 1] === CR ? 1 : 0;
    const content = lf - p - crlf;
    const stride = lf - p + 1;
    if (content === 0 || content % 4 !== 0) return null;
    let lines = Math.floor((to - p) / stride);
    if (lines < MIN_NATIVE_LINES) return null;
    // Every line ends where the first one does (else stop the run there).
    for (let j = 1; j < lines; j++) {
      const at = p + j * stride + stride - 1;
      if (chunk[at] !== LF || (crlf === 1 && chunk[at - 1] !== CR)) {
        lines = j;
        break;
      }
    }
    if (lines < MIN_NATIVE_LINES) return null;
    const runLen = lines * stride;
    const view = Buffer.from(chunk.buffer, chunk.byteOffset + p, runLen);
    if (view.indexOf(0x3d) >= 0 || view.indexOf(0x2d) >= 0 || view.indexOf(0x5f) >= 0) return null;
    const expect = (lines * content * 3) / 4;
    const got = o.write(view.toString('latin1'), n, 'base64');
    // `got` = expect proves exactly lines × content alphabet bytes (see the header).
    if (got !== expect) return null;
    return [p + runLen, n + got];
  }

  /** The portable decoder: chunk[from, to) into o at n, carrying sextets in acc/k. */
  private tableLoop(chunk: Uint8Array, from: number, to: number, o: Uint8Array, n: number): number {
    const T = TABLE;
    const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
    const od = new DataView(o.buffer, o.byteOffset, o.length);
    let acc = this.acc;
    let k = this.k;
    let i = from;
    while (i < to) {
      if (k === 0 && this.padK === 0) {
        // fast path: whole clean quads, one 32-bit load each
        while (i + 4 <= to) {
          const w = dv.getInt32(i);
          const a = T[w >>> 24]!;
          const b = T[(w >>> 16) & 0xff]!;
          const c = T[(w >>> 8) & 0xff]!;
          const d = T[w & 0xff]!;
          if ((a | b | c | d) & 0xc0) break;
          // 3 bytes + 1 scratch byte that the next write overwrites (o has slack)
          od.setInt32(n, (a << 26) | (b << 20) | (c << 14) | (d << 8));
          n += 3;
          i += 4;
        }
        if (i >= to) break;
      }
      const v = T[chunk[i++]!]!;
      if (v < 64) {
        if (this.padK > 0) {
          if (this.onDiverge) {
            // the two readings part here: stop, the caller hands the rest to both
            this.divergeAt = i - 1;
            break;
          }
          this.padK = 0;
        }
        acc = (acc << 6) | v;
        if (++k === 4) {
          o[n] = acc >> 16;
          o[n + 1] = (acc >> 8) & 0xff;
          o[n + 2] = acc & 0xff;
          n += 3;
          acc = 0;
          k = 0;
        }
      } else if (v === PAD && this.mode === 'reset') {
        if (k > 0) {
          this.padAcc = acc;
          this.padK = k;
          this.padFlushed = k === 1 ? 0 : k - 1;
        }
        n = flushQuantum(o, n, acc, k);
        acc = 0;
        k = 0;
      }
    }
    this.acc = acc;
    this.k = k;
    return n;
  }
}

/** Emit the bytes of a partial quantum of k sextets (2 → 1 byte, 3 → 2 bytes). */
function flushQuantum(o: Uint8Array, n: number, acc: number, k: number): number {
  if (k === 2) o[n++] = (acc >> 4) & 0xff;
  else if (k === 3) {
    o[n++] = (acc >> 10) & 0xff;
    o[n++] = (acc >> 2) & 0xff;
  }
  return n;
}
