/**
 * smtp-reader.ts — byte-level reader for the inbound SMTP stream: command lines, then
 * DATA content with dot-unstuffing and end-of-data detection.
 *
 * Input: socket chunks (`push`), pulled out as events with `next()`; the caller handles
 * each event (possibly asynchronously) before pulling the next one, which is how
 * backpressure and PIPELINING both work: nothing is read ahead of the command being served.
 * Output events: `command` (one line, line ending stripped), `command-too-long`,
 * `data` (un-dot-stuffed content, CRLF-normalised), `data-end` (after CRLF "." CRLF).
 *
 * DATA rules (strict, chunk-invariant; only the state and a held CR survive a chunk):
 *   - End of data is only `CRLF . CRLF` (or `. CRLF` as the very first line). Never a
 *     bare-LF variant: that is the SMTP smuggling vector.
 *   - A line starting with "." loses that dot (RFC 5321 4.5.2).
 *   - A bare LF is emitted as CRLF, and the line after it is plain content: its dot is
 *     neither unstuffed nor a terminator (the downstream client re-stuffs it).
 *   - A bare CR (not followed by LF) is emitted as a space, like Postfix 3.12's smtpd.
 *   So no bare CR or LF ever leaves this reader; both are counted for the log.
 * Limits: a command line longer than `maxLineBytes` is discarded up to its LF and reported
 * once as `command-too-long`; the carry is at most `maxLineBytes`. DATA has no carry.
 * Errors: none thrown for peer input. Calling push() before next() returned null is a bug
 * and throws.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Uint8Array.of(CR, LF);
const SPACE = Uint8Array.of(0x20);

/** Named states of the DATA decoder. */
export const DataState = {
  /** At the start of a line that followed a CRLF (or the DATA command). */
  LineStart: 0,
  /** Inside a line, or at the start of a line that followed a bare LF. */
  InLine: 1,
  /** Saw CR inside a line; it is held until we know whether LF follows. */
  Cr: 2,
  /** Saw "." at LineStart; it is never emitted (stuffing dot or terminator). */
  Dot: 3,
  /** Saw ". CR" at LineStart. */
  DotCr: 4,
  /** Saw CRLF . CRLF; the decoder consumes nothing more. */
  Done: 5,
} as const;
export type DataStateValue = (typeof DataState)[keyof typeof DataState];
export const DATA_STATE_NAMES: Readonly<Record<DataStateValue, string>> = Object.freeze(
  Object.fromEntries(Object.entries(DataState).map(([k, v]) => [v, k])) as Record<DataStateValue, string>,
);

export interface DecodeResult {
  /** Content slices in order; mostly subarrays of the input (no copy). */
  out: Uint8Array[];
  /** Input bytes consumed from `start`; less than available only when `done`. */
  consumed: number;
  /** True when the terminator was consumed. */
  done: boolean;
}

/**
 * The DATA content decoder: dot-stuffed SMTP bytes in, message bytes out.
 * Usable on its own (tests, other fronts); SmtpReader wraps it.
 */
export class DataDecoder {
  state: DataStateValue = DataState.LineStart;
  bareCr = 0;
  bareLf = 0;
  /** Content bytes emitted so far. */
  bytes = 0;

  reset(): void {
    this.state = DataState.LineStart;
    this.bareCr = 0;
    this.bareLf = 0;
    this.bytes = 0;
  }

  decode(chunk: Uint8Array, start = 0): DecodeResult {
    const out: Uint8Array[] = [];
    const n = chunk.length;
    let i = start;
    // Bytes in [runStart, i) pass through verbatim; they are flushed as one subarray.
    let runStart = i;
    // Index of a held CR inside this chunk, or -1 when it was held from the previous one.
    let crAt = -1;
    let st = this.state;
    const emit = (b: Uint8Array) => {
      out.push(b);
      this.bytes += b.length;
    };
    const flush = (end: number) => {
      if (end > runStart) emit(chunk.subarray(runStart, end));
    };
    // Next CR / LF at or after i in this chunk (n = none), found with native indexOf and
    // kept while still ahead of i: O(n) per chunk even for LF-only or CR-free input.
    let nextCr = -1;
    let nextLf = -1;
    while (i < n) {
      switch (st) {
        case DataState.InLine: {
          // Hot path: most bytes are ordinary line content; jump to the line end.
          if (nextCr < i) {
            nextCr = chunk.indexOf(CR, i);
            if (nextCr < 0) nextCr = n;
          }
          if (nextLf < i) {
            nextLf = chunk.indexOf(LF, i);
            if (nextLf < 0) nextLf = n;
          }
          i = nextCr < nextLf ? nextCr : nextLf;
          if (i >= n) break;
          const b = chunk[i];
          if (b === CR) {
            crAt = i;
            i++;
            st = DataState.Cr;
          } else {
            // Bare LF: normalise to CRLF, but do not let the next line act as a dot line.
            flush(i);
            emit(CRLF);
            this.bareLf++;
            i++;
            runStart = i;
          }
          break;
        }
        case DataState.Cr:
          if (chunk[i] === LF) {
            if (crAt < 0) {
              emit(CRLF);
              runStart = i + 1;
            }
            i++;
            st = DataState.LineStart;
          } else {
            if (crAt >= 0) flush(crAt);
            emit(SPACE);
            this.bareCr++;
            runStart = i; // reprocess this byte as line content
            st = DataState.InLine;
          }
          crAt = -1;
          break;
        case DataState.LineStart:
          if (chunk[i] === DOT) {
            flush(i);
            i++;
            runStart = i;
            st = DataState.Dot;
          } else {
            st = DataState.InLine;
          }
          break;
        case DataState.Dot:
          if (chunk[i] === CR) {
            i++;
            runStart = i;
            st = DataState.DotCr;
          } else {
            // Stuffing dot dropped; the byte is ordinary content (a bare LF is handled there).
            st = DataState.InLine;
          }
          break;
        case DataState.DotCr:
          if (chunk[i] === LF) {
            i++;
            this.state = DataState.Done;
            return { out, consumed: i - start, done: true };
          }
          // ". CR x": the dot was a stuffing dot, the CR is bare.
          emit(SPACE);
          this.bareCr++;
          runStart = i;
          st = DataState.InLine;
          break;
        case DataState.Done:
          return { out, consumed: i - start, done: true };
      }
    }
    flush(st === DataState.Cr && crAt >= 0 ? crAt : n);
    this.state = st;
    return { out, consumed: n - start, done: st === DataState.Done };
  }
}

export type ReaderEvent =
  | { type: 'command'; line: Buffer }
  | { type: 'command-too-long' }
  | { type: 'data'; chunk: Uint8Array }
  | { type: 'data-end' };

export interface SmtpReaderOptions {
  /** Longest accepted command line without its line ending (bytes). */
  maxLineBytes?: number;
}

/** Postfix's line_limit is 2048; XFORWARD and MAIL with all ESMTP parameters fit easily. */
export const DEFAULT_MAX_LINE_BYTES = 4096;

export class SmtpReader {
  readonly data = new DataDecoder();
  private readonly maxLine: number;
  private mode: 'command' | 'data' = 'command';
  private chunk: Uint8Array | null = null;
  private off = 0;
  /** Partial command line from earlier chunks (copied, at most maxLine bytes). */
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** Inside an over-long command line: drop bytes until its LF. */
  private discarding = false;
  private pendingEnd = false;

  constructor(opts: SmtpReaderOptions = {}) {
    this.maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  get inData(): boolean {
    return this.mode === 'data';
  }

  /** Hand over the next socket chunk. Only after next() has returned null. */
  push(chunk: Uint8Array): void {
    if (this.chunk !== null || this.pendingEnd) throw new Error('SmtpReader.push() before the previous chunk was consumed');
    if (chunk.length > 0) {
      this.chunk = chunk;
      this.off = 0;
    }
  }

  /** Switch to DATA mode; call after sending 354 and before the next next(). */
  startData(): void {
    this.mode = 'data';
    this.data.reset();
  }

  /** Bytes received but not yet turned into events (for "pipelined after DATA" checks). */
  get buffered(): number {
    return (this.chunk ? this.chunk.length - this.off : 0) + this.carryLen;
  }

  next(): ReaderEvent | null {
    if (this.pendingEnd) {
      this.pendingEnd = false;
      this.mode = 'command';
      return { type: 'data-end' };
    }
    const chunk = this.chunk;
    if (chunk === null) return null;
    return this.mode === 'data' ? this.nextData(chunk) : this.nextCommand(chunk);
  }

  private consumeChunk(upTo: number): void {
    this.off = upTo;
    if (this.off >= (this.chunk as Uint8Array).length) this.chunk = null;
  }

  private nextData(chunk: Uint8Array): ReaderEvent | null {
    const r = this.data.decode(chunk, this.off);
    this.consumeChunk(this.off + r.consumed);
    if (r.done) this.pendingEnd = true;
    if (r.out.length === 0) return r.done ? this.next() : this.chunk ? this.next() : null;
    const bytes = r.out.length === 1 ? r.out[0] : Buffer.concat(r.out);
    return { type: 'data', chunk: bytes };
  }

  private nextCommand(chunk: Uint8Array): ReaderEvent | null {
    for (;;) {
      const lf = chunk.indexOf(LF, this.off);
      if (lf < 0) {
        const rest = chunk.length - this.off;
        if (!this.discarding) {
          if (this.carryLen + rest > this.maxLine + 1) {
            // +1: the CR of a CRLF split across chunks may still arrive.
            this.carry = [];
            this.carryLen = 0;
            this.discarding = true;
          } else if (rest > 0) {
            this.carry.push(Buffer.from(chunk.subarray(this.off)));
            this.carryLen += rest;
          }
        }
        this.chunk = null;
        return null;
      }
      const piece = chunk.subarray(this.off, lf);
      this.consumeChunk(lf + 1);
      if (this.discarding) {
        this.discarding = false;
        return { type: 'command-too-long' };
      }
      let line = this.carryLen ? Buffer.concat([...this.carry, piece]) : Buffer.from(piece.buffer, piece.byteOffset, piece.length);
      this.carry = [];
      this.carryLen = 0;
      // Commands accept CRLF and, like Postfix's smtpd, a bare LF.
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLine) return { type: 'command-too-long' };
      return { type: 'command', line };
    }
  }
}
