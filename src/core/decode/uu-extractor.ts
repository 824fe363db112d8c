/**
 * uu-extractor.ts — finds uuencoded (and `begin-base64`) files embedded in decoded text.
 *
 * Input: decoded body bytes of a text part, any chunking. Output: for each
 *   `begin <octal mode> <name>` … `end`            (classic uuencode)
 *   `begin-base64 <octal mode> <name>` … `====`    (POSIX uuencode -m)
 * block, onFile(name) is called once and the returned ByteSink gets the decoded bytes,
 * then end(). Text outside blocks is ignored (the text part itself is scanned elsewhere).
 * Tolerance (a union of what decoders accept, Python's uu module included): the mode is
 * anything Python's int(x, 8) takes (`644`, `0o644`, `+644`, `6_44`) and the name may be
 * missing; spaces or tabs separate the fields. CRLF or LF; trailing spaces stripped by
 * transports are read as zero sextets; characters after the ones a line's length byte
 * needs are ignored (Python's "broken uuencoder" workaround); a missing `end` closes the
 * file after MAX_JUNK_LINES lines in a row whose needed characters are not uuencode (a
 * stray line in between is skipped, as ripmime does), or at end().
 * Gap: Python decodes a blank line inside a block as 42 zero bytes; it is skipped here.
 * Limits: a line is kept up to MAX_LINE bytes between chunks; longer lines are cut there
 * (a begin line's name is truncated; a longer uu line is not valid uuencode anyway).
 * Decoded bytes are handed to the sink once per write() call, not per line.
 */
import type { ByteSink } from '../types.js';
import { Base64Decoder } from './base64-decoder.js';
import { utf8OrLatin1 } from '../mime/charset.js';

const MAX_LINE = 1024;
/** Stray lines tolerated inside a uu block before it counts as ended (ripmime skips them). */
const MAX_JUNK_LINES = 4;
const EMPTY = new Uint8Array(0);
const LF = 0x0a;
const CR = 0x0d;
const B = 0x62; // 'b'
const B_UPPER = 0x42; // 'B': ripmime reads `BEGIN` too
/** `begin[-base64] <mode> [name]`; mode as Python's int(mode, 8) reads it. */
const BEGIN = /^begin(-base64)?[ \t]+[+-]?(?:0[oO]_?)?[0-7](?:_?[0-7])*(?:[ \t]+(.*?))?[ \t]*$/i;

const Mode = { Scan: 0, Uu: 1, B64: 2 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

export class UuExtractor {
  private mode: Mode = Mode.Scan;
  /** Allocated at the first line that needs keeping, dropped at end(): text parts that wait for a scan result hold none. */
  private line: Uint8Array | null = null;
  private lineLen = 0;
  /** In Scan mode, the current line cannot be a begin line: skip to its end unstored. */
  private skipping = false;
  private atLineStart = true;
  private sink: ByteSink | null = null;
  private b64: Base64Decoder | null = null;
  private out: Uint8Array[] = [];
  /** Consecutive lines inside a uu block that are no uu lines. */
  private junk = 0;

  constructor(private readonly onFile: (name: string) => ByteSink) {}

  write(chunk: Uint8Array): void {
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    while (i < chunk.length) {
      if (this.atLineStart && this.mode === Mode.Scan) {
        this.skipping = chunk[i] !== B && chunk[i] !== B_UPPER;
      }
      this.atLineStart = false;
      const j = b.indexOf(LF, i);
      const e = j < 0 ? chunk.length : j;
      if (!this.skipping) {
        const n = Math.min(e - i, MAX_LINE - this.lineLen);
        if (n > 0) {
          (this.line ??= new Uint8Array(MAX_LINE)).set(chunk.subarray(i, i + n), this.lineLen);
          this.lineLen += n;
        }
      }
      if (j < 0) break;
      if (!this.skipping) this.onLine();
      this.lineLen = 0;
      this.skipping = false;
      this.atLineStart = true;
      i = j + 1;
    }
    this.flushOut();
  }

  end(): void {
    if (this.lineLen > 0 && !this.skipping) this.onLine();
    this.lineLen = 0;
    this.flushOut();
    this.closeFile();
    this.line = null;
  }

  private onLine(): void {
    let len = this.lineLen;
    const line = this.line ?? EMPTY;
    while (len > 0 && (line[len - 1] === CR || line[len - 1] === 0x20 || line[len - 1] === 0x09)) len--;
    const l = line.subarray(0, len);
    if (this.mode === Mode.Uu) {
      if (len === 3 && (l[0]! | 0x20) === 0x65 && (l[1]! | 0x20) === 0x6e && (l[2]! | 0x20) === 0x64) return this.closeFile(); // "end"
      if (len === 0) return; // blank line inside a block (or the stripped "` " length-0 line)
      if (this.uuLine(l)) {
        this.junk = 0;
        return;
      }
      // ripmime reads on past a stray line inside a block; a run of them ends it (no `end`)
      if (++this.junk <= MAX_JUNK_LINES) return;
      this.closeFile(); // not uuencode: the block ended without "end"
    } else if (this.mode === Mode.B64) {
      if (len === 4 && l[0] === 0x3d && l[1] === 0x3d && l[2] === 0x3d && l[3] === 0x3d) return this.closeFile();
      this.b64!.write(l, (d) => this.out.push(d.slice()));
      return;
    }
    if (len < 6 || (l[0] !== B && l[0] !== B_UPPER)) return;
    const m = BEGIN.exec(Buffer.from(l.buffer, l.byteOffset, len).toString('latin1'));
    if (!m) return;
    this.flushOut();
    this.sink = this.onFile(utf8OrLatin1(Buffer.from(m[2] ?? '', 'latin1')));
    if (m[1]) {
      this.mode = Mode.B64;
      this.b64 = new Base64Decoder();
    } else {
      this.mode = Mode.Uu;
      this.junk = 0;
    }
  }

  /** Decode one uuencoded line into this.out; false if it is not a uu line. */
  private uuLine(l: Uint8Array): boolean {
    const n = (l[0]! - 0x20) & 0x3f;
    // the characters the length byte needs (Python: (n*4+5)//3); more are ignored
    const need = Math.min(l.length, Math.floor((n * 4 + 5) / 3));
    for (let k = 0; k < need; k++) if (l[k]! < 0x20 || l[k]! > 0x60) return false;
    if (n === 0) return true;
    const o = new Uint8Array(n);
    let w = 0;
    for (let k = 1; w < n; k += 4) {
      const s0 = k < l.length ? (l[k]! - 0x20) & 0x3f : 0;
      const s1 = k + 1 < l.length ? (l[k + 1]! - 0x20) & 0x3f : 0;
      const s2 = k + 2 < l.length ? (l[k + 2]! - 0x20) & 0x3f : 0;
      const s3 = k + 3 < l.length ? (l[k + 3]! - 0x20) & 0x3f : 0;
      o[w++] = (s0 << 2) | (s1 >> 4);
      if (w < n) o[w++] = ((s1 << 4) | (s2 >> 2)) & 0xff;
      if (w < n) o[w++] = ((s2 << 6) | s3) & 0xff;
    }
    this.out.push(o);
    return true;
  }

  private flushOut(): void {
    if (this.out.length === 0 || !this.sink) {
      this.out = [];
      return;
    }
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.sink.write(data);
  }

  private closeFile(): void {
    if (!this.sink) return;
    if (this.b64) this.b64.end((d) => this.out.push(d.slice()));
    this.flushOut();
    this.sink.end();
    this.sink = null;
    this.b64 = null;
    this.mode = Mode.Scan;
  }
}
