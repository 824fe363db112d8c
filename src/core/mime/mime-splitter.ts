/**
 * mime-splitter.ts — streaming, byte-level MIME splitter (RFC 5322 / 2045 / 2046).
 *
 * Input: raw message bytes in any chunking (CRLF or bare LF). Output: MimeHandler
 * callbacks (mime-events.ts) in document order: onHeader per field, then
 * onPartStart / onPartData* / onPartEnd per leaf, preamble and epilogue. Bodies are
 * never transfer-decoded here, and message/rfc822 is a leaf (the session re-parses it).
 *
 * Machine: three named states (State below) —
 *   Header        collect header lines (bounded accumulators), unfold, parse at the blank line
 *   Body          pass body bytes through, watching for `\n--` lines that match an open boundary
 *   BoundaryTail  skip the rest of a delimiter line (transport padding / junk), no storage
 * Between write() calls only the state, the header accumulators (≤ limits.headerLineBytes)
 * and a body carry (≤ longest open delimiter + 4 bytes) survive. Body data is searched with
 * indexOf for `\n--`, so a base64 body costs one native search per chunk, not per line.
 *
 * Decisions (the same ones Postfix makes where it has made one):
 * - The CRLF (or LF) before a delimiter belongs to the delimiter (RFC 2046) and is not
 *   part of the preceding body.
 * - A delimiter is matched by prefix (`--boundary` at line start, anything after it is
 *   tolerated with a `boundary-trailing-junk` warning); `--boundary--` closes. RFC 2046
 *   forbids a boundary inside content, so prefix matching is what the RFC implies. The
 *   line is checked against every open multipart; the longest match wins, and a match of
 *   an outer boundary closes the inner multiparts (warning `missing-close-boundary`); on a
 *   tie (a nested multipart reusing its parent's boundary) the innermost wins.
 * - Duplicate Content-Type / Content-Transfer-Encoding / Content-Disposition: the first
 *   wins (Postfix does the same); later ones give a `duplicate-<name>` warning.
 * - contentType is '' when the part has no valid Content-Type (implicit text/plain), except
 *   inside multipart/digest where the implicit type is reported: 'message/rfc822'.
 * - A line in a header block that is neither a field nor a continuation ends the header
 *   block and starts the body (warning `missing-header-separator`), like Postfix and
 *   Python's email package. A first-line mbox `From ` envelope line is skipped.
 * - onHeader paths: '' for the top-level header block, the part path for part headers.
 *
 * Limits (each reported once per message through onLimit, then degraded, still bounded):
 * - header-line: a field longer than headerLineBytes is truncated to that length.
 * - header-fields: fields past headerFields are neither emitted nor interpreted.
 * - header-bytes: the header block ends at byte headerBytes; the line in progress (up to
 *   headerLineBytes of it) and everything after it become body, so they are still scanned.
 * - boundary-length / mime-depth: that multipart becomes an opaque leaf (scanned raw).
 * - mime-parts: from the part that passes mimeParts on, the rest of the message is one
 *   opaque leaf and boundaries are no longer looked for.
 *
 * Raw offsets (for fronts that deliver the message while it is scanned and may cut it
 * short): inside every handler callback `offset` is a position in the raw input —
 * onPartStart: where the body begins; onPartData: the end of the slice; onPartEnd: where
 * the body ends (before the CRLF that belongs to a delimiter); onBlock: where the header
 * block or body begins. `delimiters` lists the open multiparts' delimiters, outermost first.
 *
 * Known gaps: bare CR line endings are not line endings; trailing whitespace in QP etc.
 * is the decoders' business; a header-line-limit overflow in a line that turns out to be
 * body (missing separator) loses the bytes past the limit (the limit verdict stands).
 */
import type { Limits } from '../limits.js';
import type { LimitName } from '../types.js';
import type { MimeHandler, PartInfo } from './mime-events.js';
import { latin1, latin1Bytes } from './charset.js';
import { parseContentType, parseDisposition, parseTransferEncoding, pickFilename } from './header-parse.js';

/** Every onWarning code this file emits (for log filters and docs). */
export const MIME_WARNINGS = [
  'missing-close-boundary', // EOF or an outer delimiter before a multipart's close delimiter
  'boundary-trailing-junk', // non-whitespace after a delimiter on its line
  'missing-header-separator', // a non-header line ended the header block
  'bad-header-continuation', // a folded line with no field to continue
  'mbox-from-line', // first line `From …` (mbox envelope) skipped
  'eof-in-header', // a part's header block never ended
  'multipart-without-boundary', // treated as a leaf
  'encoded-multipart', // multipart with base64/qp CTE: treated as a leaf
  'duplicate-content-type',
  'duplicate-content-transfer-encoding',
  'duplicate-content-disposition',
] as const;
export type MimeWarning = (typeof MIME_WARNINGS)[number];

export const State = { Header: 0, Body: 1, BoundaryTail: 2 } as const;
export type State = (typeof State)[keyof typeof State];
export const STATE_NAMES: Readonly<Record<State, string>> = { 0: 'Header', 1: 'Body', 2: 'BoundaryTail' };

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;
const COLON = 0x3a;
const NL_DASH_DASH = Buffer.from('\n--', 'latin1');
const EMPTY = new Uint8Array(0);
const IDENTITY_CTE = new Set(['', '7bit', '8bit', 'binary']);

/** matchDelimiter() results. */
const NO = 0;
const NEED = 1;
const MATCH = 2;

interface Multipart {
  /** `--` + boundary, as bytes. */
  delim: Uint8Array;
  path: string;
  depth: number;
  digest: boolean;
  children: number;
}

/** The entity (top-level message or part) whose header block is being read. */
interface Entity {
  path: string;
  depth: number;
  parent: Multipart | undefined;
  ct?: string;
  cte?: string;
  cd?: string;
  fields: number;
  bytes: number;
  lines: number;
}

/** Growable byte accumulator with a hard cap. */
class Acc {
  buf = new Uint8Array(256);
  len = 0;
  overflow = false;
  constructor(private readonly cap: number) {}
  push(src: Uint8Array, s: number, e: number): void {
    let n = e - s;
    if (this.len + n > this.cap) {
      this.overflow = true;
      n = this.cap - this.len;
      if (n <= 0) return;
    }
    if (this.len + n > this.buf.length) {
      const nb = new Uint8Array(Math.min(this.cap, Math.max(this.buf.length * 2, this.len + n)));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(src.subarray(s, s + n), this.len);
    this.len += n;
  }
  reset(): void {
    this.len = 0;
    this.overflow = false;
    if (this.buf.length > 4096) this.buf = new Uint8Array(256);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function childPath(mp: Multipart): string {
  return mp.path === '' ? String(mp.children) : `${mp.path}.${mp.children}`;
}

function aroundPath(mp: Multipart, what: '(preamble)' | '(epilogue)'): string {
  return mp.path === '' ? what : `${mp.path}/${what}`;
}

export class MimeSplitter {
  private state: State = State.Header;
  private afterTail: State = State.Header;
  private tailJunk = false;
  private tailPath = '';
  private readonly stack: Multipart[] = [];
  private ent: Entity = { path: '', depth: 0, parent: undefined, fields: 0, bytes: 0, lines: 0 };
  private readonly line: Acc;
  private readonly field: Acc;
  private fieldOpen = false;
  private carry: Uint8Array = EMPTY;
  private atBodyStart = true;
  private ending = false;
  private ended = false;
  private cur: { info: PartInfo; started: boolean } | null = null;
  private parts = 1;
  private readonly tripped = new Set<LimitName>();
  // matchDelimiter() outputs
  private mLevel = 0;
  private mClose = false;
  private mLen = 0;
  // Raw offsets: `base` = offset of buf[0] in the current run(), `total` = bytes written,
  // `at` = offset of the event being reported (see `offset`).
  private total = 0;
  private base = 0;
  private carryAt = 0;
  private lineAt = 0;
  private lineEndAt = 0;
  private at = 0;
  private tailBlock: { kind: 'header' | 'body'; path: string } | null = null;

  constructor(
    private readonly handler: MimeHandler,
    private readonly limits: Limits,
  ) {
    this.line = new Acc(limits.headerLineBytes + 1); // +1: the CR of a CRLF
    this.field = new Acc(limits.headerLineBytes);
  }

  /** Current state name, for logs and tests. */
  get stateName(): string {
    return STATE_NAMES[this.state];
  }

  /** Raw offset of the event being reported; meaningful inside handler callbacks (see header). */
  get offset(): number {
    return this.at;
  }

  /** Delimiters (`--` + boundary, latin1) of the open multiparts, outermost first. */
  get delimiters(): string[] {
    return this.stack.map((m) => latin1(m.delim));
  }

  /** Bytes kept between chunks (for the boundedness tests). */
  get carryBytes(): number {
    return this.carry.length + this.line.len + this.field.len;
  }

  write(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    const at = this.total;
    this.total += chunk.length;
    this.run(chunk, at);
  }

  end(): void {
    if (this.ended) return;
    this.ending = true;
    if (this.carry.length > 0) {
      const c = this.carry;
      this.carry = EMPTY;
      this.run(c, this.carryAt);
    }
    this.at = this.lineEndAt = this.total;
    if (this.state === State.Header) {
      if (this.line.len > 0 || this.line.overflow) this.headerLine(false);
      this.at = this.total;
      // a delimiter as the very last line opens a part with nothing in it: no part
      if (this.state === State.Header && !(this.ent.parent && this.ent.bytes === 0)) {
        this.flushField();
        if (this.ent.parent) this.warn('eof-in-header', this.ent.path);
        this.finishHeaders();
      }
    }
    this.at = this.total;
    this.endPart();
    while (this.stack.length > 0) this.warn('missing-close-boundary', this.stack.pop()!.path);
    this.ended = true;
  }

  // ---- driver -------------------------------------------------------------------------

  private run(chunk: Uint8Array, base: number): void {
    const outer = this.base; // run() nests for replays: restore the caller's base
    this.base = base;
    let buf = chunk;
    let i = 0;
    while (i < buf.length) {
      if (this.carry.length > 0) {
        // a step left a carry and stopped before the end of buf: rejoin (bounded copy)
        buf = concat(this.carry, buf.subarray(i));
        this.base = this.carryAt;
        this.carry = EMPTY;
        i = 0;
      }
      switch (this.state) {
        case State.Header:
          i = this.headerStep(buf, i);
          break;
        case State.Body:
          i = this.bodyStep(buf, i);
          break;
        case State.BoundaryTail:
          i = this.tailStep(buf, i);
          break;
      }
    }
    this.base = outer;
  }

  /** Keep buf[from..] for the next write (its raw offset goes with it). */
  private keep(buf: Uint8Array, from: number): void {
    this.carry = buf.slice(from);
    this.carryAt = this.base + from;
  }

  // ---- Header state -------------------------------------------------------------------

  private headerStep(buf: Uint8Array, i: number): number {
    if (this.line.len === 0 && !this.line.overflow) this.lineAt = this.base + i;
    const j = asBuffer(buf).indexOf(LF, i);
    const lineEnd = j < 0 ? buf.length : j;
    const seg = lineEnd - i + (j < 0 ? 0 : 1);
    const room = this.limits.headerBytes - this.ent.bytes;
    if (seg > room) {
      // The header block is too big. Stop exactly at byte headerBytes (a stream position,
      // so chunking cannot change it): the current line so far and everything after is body.
      const p = i + Math.max(0, room);
      this.line.push(buf, i, p);
      this.limit('header-bytes', this.ent.path);
      const replay = this.line.buf.slice(0, this.line.len);
      this.line.reset();
      this.flushField();
      this.at = this.lineAt;
      this.finishHeaders();
      if (replay.length > 0) this.run(replay, this.lineAt);
      return p;
    }
    this.ent.bytes += seg;
    this.line.push(buf, i, lineEnd);
    if (j < 0) return buf.length;
    this.lineEndAt = this.base + j + 1;
    this.headerLine(true);
    return j + 1;
  }

  /** A complete physical header line is in this.line (without its LF). */
  private headerLine(hadLf: boolean): void {
    const l = this.line.buf;
    let len = this.line.len;
    const overflow = this.line.overflow;
    if (overflow) this.limit('header-line', this.ent.path);
    if (len > 0 && l[len - 1] === CR && !overflow) len--;
    this.ent.lines++;
    if (this.stack.length > 0 && len >= 2 && l[0] === DASH && l[1] === DASH) {
      const r = this.matchDelimiter(l, 0, len, true);
      if (r === MATCH) {
        const m = { level: this.mLevel, close: this.mClose, len: this.mLen };
        if (!isPadding(l, m.len, len)) this.warn('boundary-trailing-junk', this.stack[m.level]!.path);
        this.line.reset();
        this.flushField();
        this.at = this.lineAt;
        this.finishHeaders();
        this.delimiter(m.level, m.close, false);
        return;
      }
    }
    if (len === 0) {
      this.line.reset();
      this.flushField();
      this.at = this.lineEndAt;
      this.finishHeaders();
      return;
    }
    const c0 = l[0]!;
    if (c0 === SP || c0 === HT) {
      if (this.fieldOpen) this.appendField(l, 0, len);
      else this.warn('bad-header-continuation', this.ent.path);
      this.line.reset();
      return;
    }
    if (isFieldLine(l, len)) {
      this.flushField();
      this.fieldOpen = true;
      this.appendField(l, 0, len);
      this.line.reset();
      return;
    }
    if (this.ent.parent === undefined && this.ent.lines === 1 && len >= 5 && latin1(l.subarray(0, 5)) === 'From ') {
      this.warn('mbox-from-line', this.ent.path);
      this.line.reset();
      return;
    }
    // Not a header line: the header block ends and this line is the first body line.
    this.warn('missing-header-separator', this.ent.path);
    const replay = new Uint8Array(this.line.len + (hadLf ? 1 : 0));
    replay.set(l.subarray(0, this.line.len));
    if (hadLf) replay[replay.length - 1] = LF;
    this.line.reset();
    this.flushField();
    this.at = this.lineAt;
    this.finishHeaders();
    this.run(replay, this.lineAt);
  }

  private appendField(l: Uint8Array, s: number, e: number): void {
    this.field.push(l, s, e);
    if (this.field.overflow) this.limit('header-line', this.ent.path);
  }

  private flushField(): void {
    if (!this.fieldOpen) return;
    this.fieldOpen = false;
    const text = latin1(this.field.buf.subarray(0, this.field.len));
    this.field.reset();
    const e = this.ent;
    if (++e.fields > this.limits.headerFields) {
      this.limit('header-fields', e.path);
      return;
    }
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).replace(/[ \t]+$/, '');
    const value = text.slice(colon + 1).replace(/^[ \t\r\n]+/, '');
    this.handler.onHeader?.(e.path, name, value);
    const lname = name.toLowerCase();
    if (lname === 'content-type') {
      if (e.ct === undefined) e.ct = value;
      else this.warn('duplicate-content-type', e.path);
    } else if (lname === 'content-transfer-encoding') {
      if (e.cte === undefined) e.cte = value;
      else this.warn('duplicate-content-transfer-encoding', e.path);
    } else if (lname === 'content-disposition') {
      if (e.cd === undefined) e.cd = value;
      else this.warn('duplicate-content-disposition', e.path);
    }
  }

  /** The header block of this.ent is complete: decide leaf vs multipart and enter Body. */
  private finishHeaders(): void {
    const e = this.ent;
    this.line.reset();
    this.field.reset();
    this.fieldOpen = false;
    this.state = State.Body;
    this.atBodyStart = true;
    const ct = parseContentType(e.ct);
    let type = ct.value;
    if (type === '' && e.parent?.digest) type = 'message/rfc822';
    const cte = parseTransferEncoding(e.cte);
    if (type.startsWith('multipart/')) {
      const boundary = (ct.params.get('boundary') ?? '').replace(/[ \t]+$/, '');
      if (boundary === '') this.warn('multipart-without-boundary', e.path);
      else if (boundary.length > this.limits.boundaryBytes) this.limit('boundary-length', e.path);
      else if (!IDENTITY_CTE.has(cte)) this.warn('encoded-multipart', e.path);
      else if (e.depth + 1 > this.limits.mimeDepth) this.limit('mime-depth', e.path);
      else {
        const mp: Multipart = {
          delim: latin1Bytes('--' + boundary),
          path: e.path,
          depth: e.depth,
          digest: type === 'multipart/digest',
          children: 0,
        };
        this.stack.push(mp);
        this.handler.onBlock?.('body', aroundPath(mp, '(preamble)'), '');
        this.cur = {
          info: { path: aroundPath(mp, '(preamble)'), role: 'preamble', depth: e.depth, contentType: '', transferEncoding: '', disposition: '' },
          started: false,
        };
        return;
      }
    }
    const cd = parseDisposition(e.cd);
    const info: PartInfo = {
      path: e.path === '' ? '1' : e.path,
      role: 'leaf',
      depth: e.depth,
      contentType: type,
      transferEncoding: cte,
      disposition: cd.value,
    };
    const filename = pickFilename(cd, ct);
    if (filename !== undefined) info.filename = filename;
    this.cur = { info, started: true };
    this.handler.onBlock?.('body', info.path, cte);
    this.handler.onPartStart(info);
  }

  // ---- Body state ---------------------------------------------------------------------

  private emit(buf: Uint8Array, s: number, e: number): void {
    if (e <= s) return;
    const cur = this.cur!;
    if (!cur.started) {
      cur.started = true;
      this.at = this.base + s;
      this.handler.onPartStart(cur.info);
    }
    this.at = this.base + e;
    this.handler.onPartData(buf.subarray(s, e));
  }

  private endPart(): void {
    const cur = this.cur;
    this.cur = null;
    if (cur?.started) this.handler.onPartEnd();
  }

  private bodyStep(buf: Uint8Array, i: number): number {
    const end = buf.length;
    if (this.stack.length === 0) {
      this.emit(buf, i, end); // no boundary can follow: pass everything through
      return end;
    }
    if (this.atBodyStart) {
      // the first body line has no preceding EOL but may already be a delimiter
      const r = this.matchDelimiter(buf, i, end, this.ending);
      if (r === NEED) {
        this.keep(buf, i);
        return end;
      }
      this.atBodyStart = false;
      if (r === MATCH) {
        this.at = this.base + i;
        this.delimiter(this.mLevel, this.mClose, true);
        return i + this.mLen;
      }
    }
    const b = asBuffer(buf);
    const runStart = i;
    let from = i;
    for (;;) {
      const j = b.indexOf(NL_DASH_DASH, from);
      if (j < 0) {
        // hold back a possible partial "\r\n--" at the very end
        let t = end;
        if (!this.ending && end - 1 >= runStart) {
          const a = buf[end - 1];
          if (a === LF || a === CR) t = end - 1;
          else if (a === DASH && end - 2 >= runStart && buf[end - 2] === LF) t = end - 2;
          if (t < end && t - 1 >= runStart && buf[t] === LF && buf[t - 1] === CR) t--;
        }
        this.emit(buf, runStart, t);
        if (t < end) this.keep(buf, t);
        return end;
      }
      const eol = j - 1 >= runStart && buf[j - 1] === CR ? j - 1 : j;
      const r = this.matchDelimiter(buf, j + 1, end, this.ending);
      if (r === NO) {
        from = j + 1;
        continue;
      }
      this.emit(buf, runStart, eol);
      if (r === NEED) {
        this.keep(buf, eol);
        return end;
      }
      this.at = this.base + eol;
      this.delimiter(this.mLevel, this.mClose, true);
      return j + 1 + this.mLen;
    }
  }

  /**
   * Does the line at buf[p..end) start with an open delimiter? Longest match over all
   * open multiparts. NEED when more bytes could change the answer (never when ending).
   */
  private matchDelimiter(buf: Uint8Array, p: number, end: number, ending: boolean): number {
    const avail = end - p;
    if (avail < 2) return ending ? NO : NEED;
    if (buf[p] !== DASH || buf[p + 1] !== DASH) return NO;
    let need = false;
    let best = -1;
    let bestLen = 0;
    for (let level = 0; level < this.stack.length; level++) {
      const d = this.stack[level]!.delim;
      const n = Math.min(d.length, avail);
      let k = 2;
      while (k < n && buf[p + k] === d[k]) k++;
      if (k < n) continue; // mismatch
      if (n < d.length) {
        need = true; // partial match up to the end of the data
        continue;
      }
      if (avail < d.length + 2 && (avail === d.length || buf[p + d.length] === DASH)) need = true;
      if (d.length >= bestLen) {
        // >=: on a tie (a child reusing its parent's boundary) the innermost wins, as in a
        // recursive parser
        best = level;
        bestLen = d.length;
      }
    }
    if (need && !ending) return NEED;
    if (best < 0) return NO;
    this.mLevel = best;
    this.mClose = avail >= bestLen + 2 && buf[p + bestLen] === DASH && buf[p + bestLen + 1] === DASH;
    this.mLen = bestLen + (this.mClose ? 2 : 0);
    return MATCH;
  }

  /** A delimiter of stack[level] was seen. `tail`: the rest of its line is still to be skipped. */
  private delimiter(level: number, close: boolean, tail: boolean): void {
    this.endPart();
    while (this.stack.length - 1 > level) this.warn('missing-close-boundary', this.stack.pop()!.path);
    const mp = this.stack[level]!;
    let next: State;
    if (close) {
      this.stack.pop();
      this.cur = {
        info: { path: aroundPath(mp, '(epilogue)'), role: 'epilogue', depth: mp.depth, contentType: '', transferEncoding: '', disposition: '' },
        started: false,
      };
      this.atBodyStart = true;
      next = State.Body;
    } else {
      mp.children++;
      const path = childPath(mp);
      if (++this.parts > this.limits.mimeParts) {
        // stop splitting: the rest of the message is one opaque leaf, scanned raw
        this.limit('mime-parts', path);
        this.stack.length = 0;
        const info: PartInfo = { path, role: 'leaf', depth: mp.depth + 1, contentType: '', transferEncoding: '', disposition: '' };
        this.cur = { info, started: true };
        this.handler.onPartStart(info);
        next = State.Body;
      } else {
        this.ent = { path, depth: mp.depth + 1, parent: mp, fields: 0, bytes: 0, lines: 0 };
        next = State.Header;
      }
    }
    // What begins after the delimiter line: the next part's header block or the epilogue
    // (the mime-parts leaf has already been announced).
    const block = close
      ? { kind: 'body' as const, path: aroundPath(mp, '(epilogue)') }
      : next === State.Header
        ? { kind: 'header' as const, path: this.ent.path }
        : null;
    if (tail) {
      this.state = State.BoundaryTail;
      this.afterTail = next;
      this.tailJunk = false;
      this.tailPath = mp.path;
      this.tailBlock = block;
    } else {
      this.state = next;
      if (block) {
        this.at = this.lineEndAt;
        this.handler.onBlock?.(block.kind, block.path, '');
      }
    }
  }

  // ---- BoundaryTail state -------------------------------------------------------------

  private tailStep(buf: Uint8Array, i: number): number {
    const j = asBuffer(buf).indexOf(LF, i);
    const e = j < 0 ? buf.length : j;
    if (!this.tailJunk && !isPadding(buf, i, e)) this.tailJunk = true;
    if (j < 0) return buf.length;
    if (this.tailJunk) this.warn('boundary-trailing-junk', this.tailPath);
    this.state = this.afterTail;
    const block = this.tailBlock;
    if (block) {
      this.tailBlock = null;
      this.at = this.base + j + 1;
      this.handler.onBlock?.(block.kind, block.path, '');
    }
    return j + 1;
  }

  // ---- reporting ----------------------------------------------------------------------

  private limit(which: LimitName, path: string): void {
    if (this.tripped.has(which)) return;
    this.tripped.add(which);
    this.handler.onLimit(which, path);
  }

  private warn(code: MimeWarning, path: string): void {
    this.handler.onWarning?.(code, path);
  }
}

/** Only SP / HT / CR in buf[s..e)? (transport padding after a delimiter) */
function isPadding(buf: Uint8Array, s: number, e: number): boolean {
  for (let k = s; k < e; k++) {
    const c = buf[k];
    if (c !== SP && c !== HT && c !== CR) return false;
  }
  return true;
}

/** `name:` or `name WSP* :` with name = printable ASCII except ':' (RFC 5322 + obs-syntax). */
function isFieldLine(l: Uint8Array, len: number): boolean {
  let k = 0;
  while (k < len && l[k]! > SP && l[k]! < 0x7f && l[k] !== COLON) k++;
  if (k === 0) return false;
  while (k < len && (l[k] === SP || l[k] === HT)) k++;
  return k < len && l[k] === COLON;
}
