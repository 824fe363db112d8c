/**
 * smtp-reader.ts — byte-level reader for the inbound SMTP stream: command lines, then
 * DATA content as two views of the same bytes.
 *
 * Input: socket chunks (`push`), pulled out as events with `next()`; the caller handles
 * each event (possibly asynchronously) before pulling the next one, which is how
 * backpressure and PIPELINING both work: nothing is read ahead of the command being served.
 * Output events: `command` (one line, line ending stripped), `command-too-long`,
 * `data` (one socket chunk's DATA bytes: `wire` to forward, `view` for the scanner),
 * `data-end` (after CRLF "." CRLF).
 *
 * DATA: what we forward is what we received. `wire` is the received bytes, dot-stuffed,
 * as they came (subarrays of the socket chunk, no copy), without the final ".\r\n";
 * `view` is the message as the after-filter smtpd will store and deliver it (subarrays
 * too): stuffing dots removed, and read the way Postfix's smtpd reads lines (smtp_get()
 * ends a line at LF and strips every CR before it). Where the two readings could differ,
 * the wire is rewritten so that the downstream reads it as `view` says, never the other
 * way round. Rules (chunk-invariant; only the state and counters survive a chunk):
 *   - End of data is only `CRLF . CRLF` (or `. CRLF` as the very first line). Never a
 *     bare-LF or `. CR CR LF` variant: those are SMTP smuggling vectors.
 *   - A line starting with "." loses that dot in `view` (RFC 5321 4.5.2); `wire` keeps it.
 *   - A bare CR inside a line is content, unchanged in both (Postfix keeps it; rewriting it
 *     would break DKIM body hashes).
 *   - CRs right before a line's CRLF are dropped from `view` (Postfix drops them on
 *     receipt, so the delivered line has none) and forwarded as received.
 *   - A bare LF ends a line like CRLF (Postfix 3.9's smtpd_forbid_bare_newline=normalize
 *     reads it so; older Postfix too) and becomes CRLF on the wire. The line after it is
 *     plain content: its leading dot is neither unstuffed nor a terminator, so on the wire
 *     that dot is doubled.
 *   - A line "." ended by a bare LF or by more than one CR (which Postfix would read as the
 *     end of data, and we do not) is an empty line in `view` and goes on the wire as CRLF.
 *   So no bare LF ever leaves this reader, and the wire never holds a line the downstream
 *   could read as the end of data. Bare LFs and dropped CRs are counted.
 * Ownership (src/core/chunk-ownership.ts): every piece is a subarray of the pushed chunk or
 * a shared constant, valid as long as the chunk is; the socket's chunks are never reused,
 * so the downstream socket may keep `wire` pieces until written. Nothing is copied.
 * Limits: a command line longer than `maxLineBytes` is discarded up to its LF and reported
 * once as `command-too-long`; the carry is at most `maxLineBytes`. DATA has no carry.
 * Errors: none thrown for peer input. Calling push() before next() returned null is a bug
 * and throws.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Uint8Array.of(CR, LF);
const DOT_ONE = Uint8Array.of(DOT);
/** Held CRs are re-emitted from this (a run of CRs may span any number of chunks). */
const CRS = new Uint8Array(1024).fill(CR);

/** Named states of the DATA decoder (between bytes; the counters below complete them). */
export const DataState = {
  /** At the start of a line that followed a CRLF (or the DATA command): dots are special. */
  LineStart: 0,
  /** At the start of a line that followed a bare LF: a dot here is plain content. */
  LfStart: 1,
  /** Inside a line; `crs` CRs at its current end are held back from `view`. */
  InLine: 2,
  /** A line-start "." and `crs` CRs after it: terminator, empty line or stuffing dot, still open. */
  Dot: 3,
  /** Saw CRLF . CRLF; the decoder consumes nothing more. */
  Done: 4,
} as const;
export type DataStateValue = (typeof DataState)[keyof typeof DataState];
export const DATA_STATE_NAMES: Readonly<Record<DataStateValue, string>> = Object.freeze(
  Object.fromEntries(Object.entries(DataState).map(([k, v]) => [v, k])) as Record<DataStateValue, string>,
);

export interface DecodeResult {
  /** The message bytes, as the downstream will deliver them (scan these). */
  view: Uint8Array[];
  /** The bytes to forward, dot-stuffed as received, without the terminator. */
  wire: Uint8Array[];
  /** Input bytes consumed from `start`; less than available only when `done`. */
  consumed: number;
  /** True when the terminator was consumed. */
  done: boolean;
}

/**
 * The DATA decoder: dot-stuffed SMTP bytes in, the wire and view pieces out.
 * Usable on its own (tests, fuzzing); SmtpReader wraps it.
 */
export class DataDecoder {
  state: DataStateValue = DataState.LineStart;
  /** CRs held at the end of the current line (InLine) or after its line-start dot (Dot). */
  private crs = 0;
  /** CRs dropped from the view because they came right before a line's CRLF. */
  bareCr = 0;
  /** LFs not preceded by CR (each forwarded as CRLF). */
  bareLf = 0;
  /** Message bytes in `view` so far (the size the log reports). */
  bytes = 0;
  /** Bytes in `wire` so far. */
  wireBytes = 0;

  reset(): void {
    this.state = DataState.LineStart;
    this.crs = 0;
    this.bareCr = 0;
    this.bareLf = 0;
    this.bytes = 0;
    this.wireBytes = 0;
  }

  /**
   * Decode `chunk` from `start`. Fresh arrays each call: nothing here keeps a reference to
   * the chunk once the caller drops the result (an idle connection holds no socket buffer).
   */
  decode(chunk: Uint8Array, start = 0): DecodeResult {
    const view: Uint8Array[] = [];
    const wire: Uint8Array[] = [];
    const n = chunk.length;
    let i = start;
    // Runs [vStart, i) and [wStart, i) pass through verbatim; flushed as one subarray each.
    let vStart = i;
    let wStart = i;
    let st = this.state;
    // CRs held from earlier chunks (not in this chunk's runs); `this.crs` counts all of them.
    let held = st === DataState.InLine || st === DataState.Dot ? this.crs : 0;
    let crs = this.crs;
    // Index of a line-start dot in this chunk (-1: it came in an earlier chunk).
    let dotAt = -1;
    let vBytes = 0;
    let wBytes = 0;
    const pushV = (b: Uint8Array) => {
      view.push(b);
      vBytes += b.length;
    };
    const pushW = (b: Uint8Array) => {
      wire.push(b);
      wBytes += b.length;
    };
    const flushV = (end: number) => {
      if (end > vStart) pushV(chunk.subarray(vStart, end));
    };
    const flushW = (end: number) => {
      if (end > wStart) pushW(chunk.subarray(wStart, end));
    };
    const pushCrs = (k: number, into: (b: Uint8Array) => void) => {
      for (; k > CRS.length; k -= CRS.length) into(CRS);
      if (k > 0) into(CRS.subarray(0, k));
    };
    let done = false;
    while (i < n) {
      if (st === DataState.LineStart) {
        if (chunk[i] === DOT) {
          // Terminator, empty line or stuffing dot: the view never takes it; the wire run
          // goes on over it (the usual case, a stuffing dot) and is cut back if need be.
          flushV(i);
          dotAt = i;
          i++;
          vStart = i;
          crs = held = 0;
          st = DataState.Dot;
          continue;
        }
        st = DataState.InLine;
        crs = held = 0;
      } else if (st === DataState.LfStart) {
        if (chunk[i] === DOT) {
          // The downstream would take this dot for a stuffing dot (or a terminator): double it.
          flushW(i);
          pushW(DOT_ONE);
          wStart = i;
        }
        st = DataState.InLine;
        crs = held = 0;
      } else if (st === DataState.Dot) {
        while (i < n && chunk[i] === CR) {
          i++;
          crs++;
        }
        if (i >= n) break;
        if (chunk[i] === LF) {
          i++;
          // The wire up to the dot (an earlier chunk already sent what came before it).
          if (dotAt >= 0) flushW(dotAt);
          if (crs === 1) {
            done = true;
            break;
          }
          // ". LF" or ". CR CR… LF": the downstream would end DATA here; we read an empty line.
          pushV(CRLF);
          pushW(CRLF);
          vStart = wStart = i;
          if (crs === 0) this.bareLf++;
          else this.bareCr += crs - 1;
          st = crs === 0 ? DataState.LfStart : DataState.LineStart;
          crs = held = 0;
          continue;
        }
        // A stuffing dot; CRs after it are content (not before the line end). In this
        // chunk the wire run already holds them; else they come back as constants.
        if (dotAt < 0) {
          pushW(DOT_ONE);
          pushCrs(held, pushW);
        }
        pushCrs(held, pushV);
        crs = held = 0;
        st = DataState.InLine;
        continue;
      } else if (held > 0) {
        // InLine at the start of a chunk with CRs held from the previous one.
        while (i < n && chunk[i] === CR) {
          i++;
          crs++;
        }
        if (i >= n) break;
        if (chunk[i] === LF) {
          // Those CRs ended the line: the view gets one CRLF.
          this.bareCr += crs - 1;
          if (i > start) vStart = i - 1;
          else {
            pushV(CRLF);
            vStart = i + 1;
          }
          i++;
          crs = held = 0;
          st = DataState.LineStart;
          continue;
        }
        pushCrs(held, pushV);
        crs = held = 0;
      }
      // InLine: jump to the line end.
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        // The line goes on in the next chunk; CRs at this chunk's end are held from the view.
        let k = 0;
        while (n - 1 - k >= i && chunk[n - 1 - k] === CR) k++;
        flushV(n - k);
        vStart = n;
        crs = k;
        i = n;
        break;
      }
      let k = 0;
      while (lf - 1 - k >= i && chunk[lf - 1 - k] === CR) k++;
      if (k === 0) {
        // Bare LF: CRLF in both, and the next line is plain content.
        flushV(lf);
        pushV(CRLF);
        flushW(lf);
        pushW(CRLF);
        vStart = wStart = lf + 1;
        this.bareLf++;
        st = DataState.LfStart;
      } else {
        if (k > 1) {
          // CRs before the CRLF: Postfix drops them, so the view does too.
          flushV(lf - k);
          vStart = lf - 1;
          this.bareCr += k - 1;
        }
        st = DataState.LineStart;
      }
      i = lf + 1;
    }
    if (done) {
      this.state = DataState.Done;
      this.crs = 0;
    } else {
      if (st === DataState.LineStart || st === DataState.LfStart || (st === DataState.InLine && i === n && crs === 0)) {
        flushV(n);
        flushW(n);
      } else if (st === DataState.InLine) {
        // Held CRs are not in [vStart, n): flushV already ran up to them.
        flushW(n);
      }
      // Dot: the wire up to the dot; the dot and its CRs are resolved by the next chunk.
      else if (st === DataState.Dot && dotAt >= 0) flushW(dotAt);
      this.state = st;
      this.crs = crs;
    }
    this.bytes += vBytes;
    this.wireBytes += wBytes;
    return { view, wire, consumed: (done ? i : n) - start, done };
  }
}

export type ReaderEvent =
  | { type: 'command'; line: Buffer }
  | { type: 'command-too-long' }
  | { type: 'data'; view: readonly Uint8Array[]; wire: readonly Uint8Array[] }
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

  /** The next event, or null when the chunk is used up. */
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
    if (r.view.length === 0 && r.wire.length === 0) return this.next();
    return { type: 'data', view: r.view, wire: r.wire };
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
