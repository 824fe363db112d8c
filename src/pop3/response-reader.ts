/**
 * response-reader.ts — byte-level reader for the upstream POP3 server's responses:
 * status lines, and the bodies of multi-line responses with their dot-stuffing undone.
 *
 * Input: upstream socket chunks (`push`), pulled out as events with `next()`; the caller
 * handles each event (possibly asynchronously) before pulling the next, so nothing is
 * read ahead of the response being served (backpressure, pipelining). Which responses
 * are multi-line is not in the bytes: the session queues one expectation per command it
 * sends (`expect`), in order, and the reader pops them as responses complete.
 *   'single' — a status line only;
 *   'multi'  — a status line, then, if it is +OK, a body up to the terminating "." line;
 *   'sasl'   — status lines; "+ …" continuations (RFC 5034) keep the expectation open.
 * Output events: `status` (the line as received, CRLF included), `data` (body pieces),
 * `end` (the terminator line as received), `status-too-long`, `unsolicited`.
 *
 * Body rules (RFC 1939 §3; chunk-invariant, only the state survives a chunk):
 *   - lines end at LF (CRLF as servers send it; a bare LF ends a line too, as in
 *     Python's poplib and fetchmail, so we end where the clients end);
 *   - a line that is exactly "." (before CRLF or LF) ends the body;
 *   - any other line starting with "." loses that first dot (RFC 1939; poplib only
 *     strips it before a second dot — a server that stuffs properly, as Dovecot does,
 *     never sends ".x", so both readings agree on real servers).
 * A `data` event carries Pieces: `bytes` is content (what the message holds), and the
 * wire bytes are `.` + bytes when `dot` is set, else bytes — so the caller forwards the
 * exact wire bytes and feeds the scanner the exact content, without copying.
 * Limits: a status line longer than maxStatusBytes → `status-too-long` (the session
 * closes: a real server never sends one). Body lines have no limit and no carry.
 * Errors: none thrown for peer input. push() before next() returned null throws (a bug).
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const NL_DOT = Buffer.from('\n.', 'latin1');
const CR_BYTE = Uint8Array.of(CR);

export type Expect = 'single' | 'multi' | 'sasl';

/** Content bytes; on the wire they are preceded by a stuffing dot when `dot` is set. */
export interface Piece {
  bytes: Uint8Array;
  dot: boolean;
}

export type ResponseEvent =
  | { type: 'status'; line: Buffer; ok: boolean; continuation: boolean; multi: boolean }
  | { type: 'data'; pieces: Piece[] }
  | { type: 'end'; line: Buffer }
  | { type: 'status-too-long' }
  | { type: 'unsolicited'; line: Buffer };

/** Named states. */
export const RespState = {
  /** Reading a status line. */
  Status: 0,
  /** At the start of a body line. */
  LineStart: 1,
  /** Inside a body line. */
  InLine: 2,
  /** Saw "." at the start of a body line: a stuffing dot or the terminator. */
  Dot: 3,
  /** Saw "." CR at the start of a body line. */
  DotCr: 4,
} as const;
export type RespStateValue = (typeof RespState)[keyof typeof RespState];
export const RESP_STATE_NAMES: Readonly<Record<RespStateValue, string>> = Object.freeze(
  Object.fromEntries(Object.entries(RespState).map(([k, v]) => [v, k])) as Record<RespStateValue, string>,
);

export class ResponseReader {
  private state: RespStateValue = RespState.Status;
  private readonly expects: Expect[] = [];
  private buf: Buffer | null = null;
  private pos = 0;
  private status: Buffer[] = [];
  private statusLen = 0;
  private pendingEnd: Buffer | null = null;
  /** After status-too-long nothing more is read (the session closes). */
  private dead = false;
  /** Body content bytes of the current response. */
  contentBytes = 0;

  constructor(private readonly maxStatusBytes = 8192) {}

  /** The response to a command just sent upstream (or the greeting). */
  expect(e: Expect): void {
    this.expects.push(e);
  }

  /** Responses still expected (including the one being read). */
  get outstanding(): number {
    return this.expects.length;
  }

  get stateName(): string {
    return RESP_STATE_NAMES[this.state];
  }

  /** True while a multi-line body is being read. */
  get inBody(): boolean {
    return this.state !== RespState.Status;
  }

  push(chunk: Buffer): void {
    if (this.dead) return;
    if (this.buf !== null && this.pos < this.buf.length) throw new Error('ResponseReader.push before the previous chunk was read');
    this.buf = chunk;
    this.pos = 0;
  }

  next(): ResponseEvent | null {
    if (this.pendingEnd) {
      const line = this.pendingEnd;
      this.pendingEnd = null;
      this.finishResponse();
      this.contentBytes = 0;
      return { type: 'end', line };
    }
    const buf = this.buf;
    if (buf === null || this.pos >= buf.length || this.dead) return null;
    return this.state === RespState.Status ? this.readStatus(buf) : this.readBody(buf);
  }

  private readStatus(buf: Buffer): ResponseEvent | null {
    const j = buf.indexOf(LF, this.pos);
    const end = j < 0 ? buf.length : j + 1;
    if (this.statusLen + (end - this.pos) > this.maxStatusBytes) {
      this.pos = buf.length;
      this.dead = true;
      return { type: 'status-too-long' };
    }
    this.status.push(buf.subarray(this.pos, end));
    this.statusLen += end - this.pos;
    this.pos = end;
    if (j < 0) return null;
    const line = this.status.length === 1 ? Buffer.from(this.status[0]!) : Buffer.concat(this.status);
    this.status = [];
    this.statusLen = 0;
    const head = this.expects[0];
    if (head === undefined) return { type: 'unsolicited', line };
    const ok = line.length >= 3 && line[0] === 0x2b && (line[1] === 0x4f || line[1] === 0x6f) && (line[2] === 0x4b || line[2] === 0x6b);
    const continuation = !ok && line[0] === 0x2b && (line.length === 1 || line[1] === 0x20 || line[1] === CR || line[1] === LF);
    const multi = head === 'multi' && ok;
    if (multi) {
      this.state = RespState.LineStart;
      this.contentBytes = 0;
    } else if (!(head === 'sasl' && continuation)) this.finishResponse();
    return { type: 'status', line, ok, continuation, multi };
  }

  private finishResponse(): void {
    this.expects.shift();
    this.state = RespState.Status;
  }

  /** Body bytes from this.pos to the end of the chunk or the terminator. */
  private readBody(buf: Buffer): ResponseEvent | null {
    const n = buf.length;
    const pieces: Piece[] = [];
    let i = this.pos;
    let runStart = i;
    let runDot = false;
    let crAt = -1; // index of a "." CR's CR in this chunk
    let st = this.state;
    const flush = (end: number) => {
      if (end > runStart || runDot) {
        pieces.push({ bytes: buf.subarray(runStart, end), dot: runDot });
        this.contentBytes += end - runStart;
      }
      runDot = false;
    };
    while (i < n) {
      if (st === RespState.InLine) {
        // Hot path: only lines that start with "." need attention.
        const k = buf.indexOf(NL_DOT, i);
        if (k < 0) {
          st = buf[n - 1] === LF ? RespState.LineStart : RespState.InLine;
          i = n;
          break;
        }
        i = k + 1;
        st = RespState.LineStart;
        continue;
      }
      if (st === RespState.LineStart) {
        if (buf[i] === DOT) {
          flush(i);
          i++;
          runStart = i;
          st = RespState.Dot;
        } else st = RespState.InLine;
        continue;
      }
      if (st === RespState.Dot) {
        const b = buf[i];
        if (b === CR) {
          crAt = i;
          i++;
          st = RespState.DotCr;
          continue;
        }
        if (b === LF) return this.terminate(buf, pieces, i + 1, '.\n');
        // a stuffed line: its content starts here, the dot before it stays on the wire only
        runStart = i;
        runDot = true;
        st = RespState.InLine;
        continue;
      }
      // DotCr
      if (buf[i] === LF) return this.terminate(buf, pieces, i + 1, '.\r\n');
      // "." CR x: a stuffed line whose content starts with that CR
      if (crAt >= 0) {
        runStart = crAt;
        runDot = true;
      } else {
        pieces.push({ bytes: CR_BYTE, dot: true });
        this.contentBytes += 1;
        runStart = i;
        runDot = false;
      }
      st = RespState.InLine;
    }
    // Dot / DotCr at the end of the chunk: nothing after runStart is content yet.
    flush(st === RespState.Dot || st === RespState.DotCr ? runStart : n);
    this.state = st;
    this.pos = n;
    return pieces.length > 0 ? { type: 'data', pieces } : null;
  }

  private terminate(buf: Buffer, pieces: Piece[], after: number, line: string): ResponseEvent {
    this.pos = after;
    this.state = RespState.Status;
    this.pendingEnd = Buffer.from(line, 'latin1');
    if (pieces.length > 0) return { type: 'data', pieces };
    return this.next()!;
  }
}
