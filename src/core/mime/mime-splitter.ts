/**
 * mime-splitter.ts — streaming, byte-level MIME splitter (RFC 5322 / 2045 / 2046): one
 * reading of a message; mime-readings.ts runs the copies that read it other ways.
 *
 * Input: raw message bytes in any chunking (CRLF, bare LF, and in a forked reading bare
 * CR). Output: MimeHandler callbacks (mime-events.ts) in document order: onHeader per
 * field, then onPartStart / onPartData* / onPartEnd per leaf, preamble and epilogue.
 * Bodies are never transfer-decoded here, and message/* is a leaf (the session re-parses).
 *
 * Machine: three named states (State below) —
 *   Header        collect header lines (bounded accumulators), unfold, parse at the blank line
 *   Body          pass body bytes through, watching for `--` at line starts that match a delimiter
 *   BoundaryTail  skip the rest of a delimiter line (transport padding / junk), no storage
 * Between write() calls only the state, the header accumulators (≤ limits.headerLineBytes)
 * and a body carry (≤ longest open delimiter + MAX_PAD + 4 bytes) survive. Body data is
 * searched with indexOf for `--`, so a base64 body costs one native search per chunk.
 *
 * Readings (the principle: read a mail every way a client might, or name the anomaly).
 * Where clients split the same bytes differently, this splitter keeps its own decision
 * (the "primary", below) and forks a copy of itself that takes the other one: the copy
 * gets its own handler (handler.onFork) and the same bytes from that point on (its input
 * queue is copied; MimeReadings feeds both and drops a copy again once it is in exactly
 * the same state as another at the start of a part). Forks happen only where the copy
 * has no part open, so every reading's events are complete and consistent:
 * - a header line that is no field: primary ends the header block there (Python,
 *   Postfix); fork skips it and reads on (mailparser, Thunderbird);
 * - `Name : value` (space before the colon): primary reads a field (mailparser); fork
 *   ends the header block (Python);
 * - a blank line or a BOM before the top-level header: fork skips it / strips the BOM;
 * - a bare CR inside a header line or next to a delimiter: fork reads CR as a line end
 *   from there on (Python reads \r, \n and \r\n as line ends; mailparser only \n);
 * - two Content-Type / Content-Transfer-Encoding fields (first and last), lenient
 *   readings of one value (header-parse.ts contentTypeReadings), an empty boundary, and a
 *   multipart under base64 / quoted-printable / uuencode: one reading each (a multipart
 *   under such a CTE is split raw by the primary, as Python and mailparser do, and a fork
 *   hands it over as a leaf so the session also reads the decoded bytes as multipart);
 * - delimiters: a line is a delimiter when it is `--boundary` [`--`] + spaces/tabs + line
 *   end (Python and mailparser). A line that only starts with an open delimiter
 *   (`--b1x`, `--b1--x`) is content in the primary and a delimiter in a fork (Postfix,
 *   Thunderbird match prefixes); a delimiter of several open multiparts (a reused
 *   boundary) is taken by the innermost in the primary and the outermost in a fork
 *   (Python); a delimiter of a multipart already closed is epilogue in the primary and
 *   reopens it in a fork.
 * Every one of these is also reported as an anomaly (onAnomaly, code as named in
 * MIME_ANOMALIES). Forking is bounded by MimeReadings (too many readings: anomaly verdict
 * `mime-readings`); a splitter run on its own (write/end) never forks.
 *
 * Other decisions (the same ones Postfix makes where it has made one):
 * - The EOL before a delimiter belongs to the delimiter (RFC 2046), not to the body.
 * - contentType is '' when the part has no valid Content-Type (implicit text/plain), except
 *   inside multipart/digest where the implicit type is reported: 'message/rfc822'.
 * - A first-line mbox `From ` envelope line is skipped (Python and mailparser do too).
 * - onHeader paths: '' for the top-level header block, the part path for part headers.
 *
 * Limits (each reported once per reading through onLimit, then degraded, still bounded):
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
 * the body ends (before the line end that belongs to a delimiter); onBlock: where the
 * header block or body begins. `delimiters` lists the open multiparts' delimiters,
 * outermost first. Each reading reports its own.
 *
 * Known gaps: a header-line-limit overflow in a line that turns out to be body (missing
 * separator) loses the bytes past the limit (the limit verdict stands); message/* bodies
 * are read as messages by the session, not here.
 */
import type { Limits } from '../limits.js';
import type { LimitName } from '../types.js';
import type { MimeHandler, PartInfo, SplitterView } from './mime-events.js';
import { latin1, latin1Bytes } from './charset.js';
import { contentTypeReadings, parseDisposition, parseTransferEncoding, pickFilename, parseContentType, soleTypeReading, type StructuredValue } from './header-parse.js';
import { NameCollector } from './names.js';

/** Every onWarning code this file emits (for log filters and docs). */
export const MIME_WARNINGS = [
  'missing-close-boundary', // EOF or an outer delimiter before a multipart's close delimiter
  'boundary-trailing-junk', // non-whitespace after a delimiter on its line (prefix reading)
  'missing-header-separator', // a non-header line ended the header block
  'bad-header-continuation', // a folded line with no field to continue
  'mbox-from-line', // first line `From …` (mbox envelope) skipped
  'eof-in-header', // a part's header block never ended
  'multipart-without-boundary', // treated as a leaf
  'duplicate-content-type',
  'duplicate-content-transfer-encoding',
  'duplicate-content-disposition',
  'header-junk-skipped', // a reading that skips non-field lines skipped one
] as const;
export type MimeWarning = (typeof MIME_WARNINGS)[number];

/** Every onAnomaly code this file emits (each forks a reading, unless marked verdict). */
export const MIME_ANOMALIES = [
  'header-junk-line', // a header line that is no field: ends the block, or is skipped
  'header-space-before-colon', // `Name : value`: a field, or the end of the header block
  'leading-blank-line', // a blank line before the top-level header
  'bom', // a byte-order mark before the top-level header
  'bare-cr', // a bare CR inside a header line or next to a delimiter
  'duplicate-content-type',
  'duplicate-content-transfer-encoding',
  'content-type-variant', // a Content-Type value lenient clients read as another type
  'boundary-variant', // a boundary read differently (repeated, RFC 2231, NUL, no `;`)
  'empty-boundary', // boundary="": Python splits at `--` lines
  'encoded-multipart', // multipart under base64/quoted-printable/uuencode
  'cte-variant', // a transfer encoding lenient clients decode (`"base64"`, `x-base64`)
  'boundary-prefix', // a line that only starts with a delimiter
  'boundary-tie', // a delimiter of several open multiparts
  'part-after-close', // a delimiter of a multipart after its close delimiter
  'boundary-loose', // a line ripmime takes for a delimiter (one dash, letters and digits as the boundary's)
  'mime-readings', // verdict: more readings than allowed
] as const;

export const State = { Header: 0, Body: 1, BoundaryTail: 2 } as const;
export type State = (typeof State)[keyof typeof State];
export const STATE_NAMES: Readonly<Record<State, string>> = { 0: 'Header', 1: 'Body', 2: 'BoundaryTail' };

/** What a splitter needs from the scheduler that runs its readings (MimeReadings). */
export interface ReadingHost {
  /** More than one reading exists: decisions wait for their turn (see MimeReadings). */
  readonly multi: boolean;
  canFork(): boolean;
  adopt(child: MimeSplitter): void;
  /** At the start of a part: true when another reading was in exactly this state here (drop this one). */
  sync(r: MimeSplitter, pos: number, sig: string): boolean;
  /** A reading set its `dead` flag (merged, or not a plausible reading after all). */
  died(): void;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;
const COLON = 0x3a;
const DASH_DASH = Buffer.from('--', 'latin1');
const EMPTY = new Uint8Array(0);
const LF_BYTES = Uint8Array.of(LF);
const CR_BYTES = Uint8Array.of(CR);
const CRLF_BYTES = Uint8Array.of(CR, LF);
const IDENTITY_CTE = new Set(['', '7bit', '8bit', 'binary']);
const UU_CTE = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);
/** Transport padding allowed on a delimiter line before it stops counting as one (mailparser: 998). */
const MAX_PAD = 998;
/** Distinct structural readings of one header block (Content-Type × CTE variants). */
const MAX_INTERPRETATIONS = 6;
/** Repeated Content-* fields kept per header block (every further one only warns). */
const MAX_REPEATS = 8;
/** Headers whose value some client uses as the file name (ripmime: Content-Location). */
const NAME_HEADERS = new Set(['content-name', 'x-sun-data-name', 'content-location']);
/** Closed multiparts remembered to notice their delimiter again. */
const MAX_GHOSTS = 4;

/** The one 'line' decision (its line end is in lineEol): no allocation per header line. */
const LINE = { kind: 'line' } as const;
const CRLINE = { kind: 'crline' } as const;
const SYNC = { kind: 'sync' } as const;
const DIE = { kind: 'die' } as const;

/**
 * Reader profiles: how a reading decides what clients disagree on. A fork flips one bit;
 * its forks inherit them. A lineage branches off each profile once (`forked`): the reading
 * with the bit set then decides every later case that way by itself.
 */
const M_SKIP_JUNK = 1; // mailparser: a header line that is no field is skipped
const M_COLON_ENDS = 2; // Python: `Name : value` ends the header block
const M_PREFIX = 4; // Postfix, Thunderbird: a line that starts with a delimiter is one
const M_OUTER_TIE = 8; // Python: a delimiter of several open multiparts is the outermost's
const M_REOPEN = 16; // a delimiter of a closed multipart reopens it
const M_CR = 32; // Python: CR is a line end too
const M_LOOSE = 64; // ripmime: a line starting with `-` whose letters and digits are the boundary's, the boundary within its first 4 bytes, is a separator

/** classify() result codes. */
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
  /** Only whole delimiter lines count (the empty boundary: every `--x` line would match). */
  strictOnly: boolean;
  /** Letters and digits in the boundary (ripmime compares lines by that count first). */
  alnum: number;
}

interface Ghost {
  mp: Multipart;
  /** Stack length once it closed: a delimiter of a level below drops the ghost. */
  atLen: number;
}

/** The entity (top-level message or part) whose header block is being read. */
interface Entity {
  path: string;
  depth: number;
  top: boolean;
  digest: boolean;
  cts: string[];
  ctes: string[];
  cds: string[];
  nameHeaders: string[];
  /**
   * munpack reads a quoted parameter that is never closed on into the next header fields:
   * the value so far and those fields, until one holds the closing quote (bounded).
   */
  quoteTail: string | null;
  quoteOpen: boolean;
  fields: number;
  bytes: number;
  lines: number;
  /** This reading skipped blank lines before this header block (ripmime, munpack). */
  leadSkip: boolean;
  /** The first Content-Type parsed strictly, once the block is complete (parsed once). */
  ct: StructuredValue | null;
}

interface Seg {
  buf: Uint8Array;
  i: number;
  /** Stream offset of buf[0]. */
  base: number;
}

interface Match {
  level: number;
  close: boolean;
  /** Bytes from the first `-` through the boundary (and the closing `--`). */
  len: number;
  ghost: boolean;
}

interface Alt {
  code: string;
  m: Match;
  /** The reader profile (M_*) the fork takes. */
  bit: number;
}

type Pending =
  | { kind: 'line' }
  | { kind: 'crline' }
  | { kind: 'die' }
  | { kind: 'cand'; eolLen: number; primary: Match | null; alts: Alt[] }
  | { kind: 'sync' };

interface Interpretation {
  multipart: boolean;
  type: string;
  boundary: string | undefined;
  cte: string;
  strictOnly: boolean;
  /** Leaf carrying the boundary of a multipart under a decoding CTE. */
  encodedBoundary: string | undefined;
  code: string;
  key: string;
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
  copyFrom(o: Acc): void {
    this.buf = o.buf.slice(0, Math.max(256, o.len));
    this.len = o.len;
    this.overflow = o.overflow;
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

/** The lists of an entity start as this (frozen: keep() replaces it, never pushes into it). */
const NO_VALUES: string[] = Object.freeze([]) as unknown as string[];

function newEntity(path: string, depth: number, top: boolean, digest: boolean): Entity {
  return {
    path, depth, top, digest, cts: NO_VALUES, ctes: NO_VALUES, cds: NO_VALUES, nameHeaders: NO_VALUES, quoteTail: null, quoteOpen: false, fields: 0, bytes: 0, lines: 0,
    leadSkip: false,
    ct: null,
  };
}

/**
 * The transfer encodings to read a part under: the first field (strict token), the last
 * one, and lenient spellings other decoders take (`"base64"`, `base64;`, `x-base64`:
 * ripmime; `base-64`: clamd).
 */
function cteReadings(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  const add = (cte: string, why: string) => {
    if (!out.some(([c]) => c === cte)) out.push([cte, why]);
  };
  raw.forEach((v, k) => {
    const strict = parseTransferEncoding(v);
    add(strict, k === 0 ? '' : 'duplicate-content-transfer-encoding');
    let loose = v.toLowerCase().replace(/["']/g, '').trim().split(/[\s;,(]/, 1)[0]!;
    if (loose.startsWith('x-') && cteClass(loose.slice(2)) !== 'identity') loose = loose.slice(2);
    const bare = loose.replace(/[-_]/g, '');
    if (bare === 'base64') loose = 'base64'; // base-64, base_64 (clamd decodes those)
    else if (bare === 'quotedprintable') loose = 'quoted-printable';
    if (cteClass(loose) !== cteClass(strict)) add(loose, 'cte-variant');
  });
  return out;
}

/** The common spellings: one token every decoder reads alike (no other reading to try). */
const PLAIN_CTE = /^[ \t]*(7bit|8bit|binary|base64|quoted-printable)[ \t]*$/i;

/** The CTE of a single field when it is a plain token (lower-cased), else null (cteReadings decides). */
function soleCte(v: string): string | null {
  const m = PLAIN_CTE.exec(v);
  return m ? m[1]!.toLowerCase() : null;
}

function cteClass(cte: string): string {
  if (cte === 'base64' || cte === 'quoted-printable') return cte;
  if (UU_CTE.has(cte)) return 'uu';
  return 'identity';
}

export class MimeSplitter implements SplitterView {
  private state: State = State.Header;
  private afterTail: State = State.Header;
  private tailJunk = false;
  private tailPath = '';
  private tailBlock: { kind: 'header' | 'body'; path: string } | null = null;
  private stack: Multipart[] = [];
  private ghosts: Ghost[] = [];
  private ent: Entity = newEntity('', 0, true, false);
  private readonly line: Acc;
  private readonly field: Acc;
  private fieldOpen = false;
  /** A skipped junk line swallows its continuation lines. */
  private junkOpen = false;
  private carry: Uint8Array = EMPTY;
  private carryBase = 0;
  private atBodyStart = true;
  private ending = false;
  /** The buffer a step works on is the last of the input (ending, and no other queued). */
  private atEnd = false;
  /** At end(): decisions are taken at once, nothing forks. */
  private final = false;
  private ended = false;
  private cur: { info: PartInfo; started: boolean } | null = null;
  private parts = 1;
  private tripped: Set<LimitName> | null = null;
  /** candidate() output for take(). */
  private cand: { eolLen: number; primary: Match | null; alts: Alt[]; recorded: Alt[] } | null = null;
  /** Reader profile bits (M_*) this reading follows, and those its lineage branched off. */
  private mode = 0;
  private forked = 0;
  /** A limit ended a reading that skipped blank lines for a header block: it dies at its turn. */
  private dying = false;
  // line-end handling: in crMode CR, LF and CRLF end lines (a forked reading)
  private crMode = false;
  /** This lineage already forked its CR reading (one is enough: it reads CR everywhere after). */
  private crForked = false;
  /**
   * CR reading: a line ended in CR as the last byte of the input so far; whether an LF
   * follows (CRLF) decides where the line end, and any decision there, is.
   */
  private crHeld = false;
  private lineStart = 0;
  private lineEol: Uint8Array = EMPTY;
  private lineReady = false;
  /** A bare CR was seen in the header line in progress (LF reading, no CR reading forked yet). */
  private crBare = false;
  private syncDue = false;
  // the input queue and the decision protocol with MimeReadings
  private segs: Seg[] = [];
  private base = 0;
  private inEnd = 0;
  private pending: Pending | null = null;
  private allowed = false;
  parked = false;
  parkPos = 0;
  dead = false;
  /** Birth order for the scheduler: the fork sequence numbers from the first reading. */
  key: number[] = [];
  private forkSeq = 0;

  /** Raw offset of the event being reported (see the header). */
  private at = 0;

  constructor(
    readonly handler: MimeHandler,
    private readonly limits: Limits,
    private readonly host: ReadingHost | null = null,
  ) {
    this.line = new Acc(limits.headerLineBytes + 1); // +1: the CR of a CRLF
    this.field = new Acc(limits.headerLineBytes);
    handler.attach?.(this);
  }

  /** Raw offset of the event being reported; meaningful inside handler callbacks. */
  get offset(): number {
    return this.at;
  }

  /** Delimiters (`--` + boundary, latin1) of the open multiparts, outermost first. */
  get delimiters(): string[] {
    return this.stack.map((m) => latin1(m.delim));
  }

  /** Current state name, for logs and tests. */
  get stateName(): string {
    return STATE_NAMES[this.state];
  }

  /** Bytes kept between chunks (for the boundedness tests). */
  get carryBytes(): number {
    let n = this.carry.length + this.line.len + this.field.len;
    for (const s of this.segs) n += s.buf.length - s.i;
    return n;
  }

  /** At the end of the input with nothing left to read: no decision can come from it any more. */
  get drained(): boolean {
    return this.ending && this.segs.length === 0 && this.carry.length === 0 && !this.crHeld;
  }

  /** Stream offset of the next byte this reading will look at. */
  get position(): number {
    if (this.carry.length > 0) return this.carryBase;
    for (const s of this.segs) if (s.i < s.buf.length) return s.base + s.i;
    return this.inEnd;
  }

  /** Run on its own (no other readings): feed, process. */
  write(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    this.input(chunk, this.inEnd);
    this.run();
    this.retain();
  }

  end(): void {
    if (this.ended) return;
    this.startEnding();
    this.finish();
  }

  // ---- driven by MimeReadings ------------------------------------------------------------

  input(chunk: Uint8Array, base: number): void {
    if (this.ended || chunk.length === 0) return;
    this.segs.push({ buf: chunk, i: 0, base });
    this.inEnd = base + chunk.length;
  }

  /** Copy what is left of the caller's chunks: write() must not keep them (bounded: a parked reading is at most a carry behind). */
  retain(): void {
    let w = 0;
    for (const s of this.segs) if (s.i < s.buf.length) this.segs[w++] = { buf: s.buf.slice(s.i), i: 0, base: s.base + s.i };
    this.segs.length = w;
  }

  startEnding(): void {
    this.ending = true;
  }

  /** Let a parked decision go ahead (the scheduler's turn). */
  resume(): void {
    this.parked = false;
    this.allowed = true;
  }

  /** Process queued input until it runs out or a decision has to wait for its turn. */
  run(): void {
    while (!this.dead && !this.ended) {
      if (this.syncDue) {
        this.syncDue = false;
        if (this.host?.multi && !this.final) this.pending = SYNC;
      }
      if (!this.pending && this.dying) {
        this.dying = false;
        this.pending = DIE;
      } else if (!this.pending && this.crBare) {
        this.crBare = false;
        this.pending = CRLINE;
      } else if (!this.pending && this.lineReady) {
        this.lineReady = false;
        this.pending = LINE;
      }
      if (this.pending) {
        if (this.host?.multi && !this.allowed && !this.final) {
          this.parked = true;
          this.parkPos = this.position;
          return;
        }
        this.allowed = false;
        const p = this.pending;
        this.pending = null;
        this.execute(p);
        continue;
      }
      const f = this.segs[0];
      if (!f) {
        if (this.ending && this.crHeld) {
          // the input ended after a CR: it was a line end by itself
          this.crHeld = false;
          if (this.state === State.Header) {
            this.lineEol = CR_BYTES;
            this.lineReady = true;
          } else this.endTail(this.inEnd);
          continue;
        }
        if (this.ending && this.carry.length > 0) {
          this.segs.push({ buf: this.carry, i: 0, base: this.carryBase });
          this.carry = EMPTY;
          continue;
        }
        return;
      }
      if (f.i >= f.buf.length) {
        this.segs.shift();
        continue;
      }
      if (this.carry.length > 0) {
        // a step left a carry: rejoin it with what follows (bounded copy)
        this.segs[0] = { buf: concat(this.carry, f.buf.subarray(f.i)), i: 0, base: this.carryBase };
        this.carry = EMPTY;
        continue;
      }
      this.base = f.base;
      this.atEnd = this.ending && this.segs.length === 1;
      switch (this.state) {
        case State.Header:
          f.i = this.headerStep(f.buf, f.i);
          break;
        case State.Body:
          f.i = this.bodyStep(f.buf, f.i);
          break;
        case State.BoundaryTail:
          f.i = this.tailStep(f.buf, f.i);
          break;
      }
    }
  }

  /** End of input: close what is open (decisions are taken at once now; nothing forks). */
  finish(): void {
    if (this.ended || this.dead) return;
    this.final = true;
    this.ending = true;
    this.run();
    if (this.state === State.Header) {
      if (this.line.len > 0 || this.line.overflow) {
        this.lineEol = EMPTY;
        this.headerLine();
        this.run(); // the line may have been put back as the first body line
      }
      // a delimiter as the very last line opens a part with nothing in it: no part
      if (this.state === State.Header && !(!this.ent.top && this.ent.bytes === 0)) {
        this.flushField();
        if (!this.ent.top) this.warn('eof-in-header', this.ent.path);
        this.finishHeaders(false, true, this.inEnd);
      }
    }
    this.at = this.inEnd;
    this.endPart();
    while (this.stack.length > 0) this.warn('missing-close-boundary', this.stack.pop()!.path);
    this.ended = true;
  }

  /** A state signature: two readings with the same one at the same position read the rest alike. */
  signature(): string {
    const mp = (m: Multipart) => `${latin1(m.delim)}\u0001${m.path}\u0001${m.depth}\u0001${+m.digest}\u0001${m.children}\u0001${+m.strictOnly}`;
    const e = this.ent;
    return [
      this.state, this.mode, +this.crMode,
      e.path, e.depth, +e.top, +e.digest, e.bytes, e.lines,
      this.stack.map(mp).join('\u0002'), this.ghosts.map((g) => `${mp(g.mp)}@${g.atLen}`).join('\u0002'),
    ].join('\u0003');
  }

  /** This reading goes on for `other` (dropped here as identical): take over what differs but does not matter for the future. */
  absorb(other: MimeSplitter): void {
    this.forked |= other.forked;
    this.crForked ||= other.crForked;
    this.parts = Math.max(this.parts, other.parts);
    if (other.tripped) for (const t of other.tripped) (this.tripped ??= new Set()).add(t);
  }

  /** Run the pending decision only (a sync at the same position as others: see MimeReadings). */
  decideOnly(): void {
    this.parked = false;
    const p = this.pending;
    this.pending = null;
    if (p) this.execute(p);
  }

  get pendingSync(): boolean {
    return this.pending === SYNC;
  }

  // ---- decisions and forks ------------------------------------------------------------

  private execute(p: Pending): void {
    if (p.kind === 'line') this.headerLine();
    else if (p.kind === 'crline') this.forkCrLine();
    else if (p.kind === 'die') this.die();
    else if (p.kind === 'cand') this.takeCandidate(p);
    else if (this.host && this.host.sync(this, this.position, this.signature())) this.die();
  }

  /**
   * Another reading takes the other decision here: a copy of this splitter in its current
   * state, with its own handler, adopted by the host, then changed by `apply`. Returns
   * false when there is no reading to fork (no host, end of input, cap: anomaly verdict).
   */
  /** Fork the reading with profile `bit`, once per lineage (later cases are only recorded). */
  private forkMode(bit: number, code: string, path: string, apply: (c: MimeSplitter) => void): boolean {
    if (this.forked & bit) {
      this.anomaly(code, path, false);
      return false;
    }
    this.forked |= bit;
    return this.fork(code, path, (c) => {
      c.mode |= bit;
      apply(c);
    });
  }

  /** `quiet`: the copy reports the anomaly itself once it turns out to be one (see leadSkip). */
  private fork(code: string, path: string, apply: (c: MimeSplitter) => void, quiet = false): boolean {
    if (!quiet) this.anomaly(code, path, false);
    if (!this.host || this.final) return false;
    if (!this.host.canFork()) {
      this.anomaly('mime-readings', path, true);
      return false;
    }
    const h = this.handler.onFork?.(code, path);
    if (!h) return false;
    const c = this.clone(h);
    c.key = [...this.key, this.forkSeq++];
    this.host.adopt(c);
    apply(c);
    return true;
  }

  private clone(h: MimeHandler): MimeSplitter {
    const c = new MimeSplitter(h, this.limits, this.host);
    c.state = this.state;
    c.afterTail = this.afterTail;
    c.tailJunk = this.tailJunk;
    c.tailPath = this.tailPath;
    c.tailBlock = this.tailBlock;
    c.stack = this.stack.map((m) => ({ ...m }));
    c.ghosts = this.ghosts.map((g) => ({ mp: { ...g.mp }, atLen: g.atLen }));
    const e = this.ent;
    c.ent = { ...e, cts: [...e.cts], ctes: [...e.ctes], cds: [...e.cds], nameHeaders: [...e.nameHeaders] };
    c.line.copyFrom(this.line);
    c.field.copyFrom(this.field);
    c.fieldOpen = this.fieldOpen;
    c.junkOpen = this.junkOpen;
    c.carry = this.carry.slice();
    c.carryBase = this.carryBase;
    c.atBodyStart = this.atBodyStart;
    c.ending = this.ending;
    c.parts = this.parts;
    c.tripped = this.tripped && new Set(this.tripped);
    c.mode = this.mode;
    c.forked = this.forked;
    c.crMode = this.crMode;
    c.crForked = this.crForked;
    c.crHeld = this.crHeld;
    c.lineStart = this.lineStart;
    c.lineEol = this.lineEol;
    c.segs = this.segs.map((s) => ({ ...s }));
    c.base = this.base;
    c.inEnd = this.inEnd;
    c.cur = null; // forks happen only where the copy has no part open
    return c;
  }

  private die(): void {
    this.dead = true;
    this.host?.died();
  }

  private anomaly(code: string, path: string, verdict: boolean): void {
    this.handler.onAnomaly?.(code, path, verdict);
  }

  /** Put bytes back in front of the input (a header line re-read as body or as other lines). */
  private unshift(buf: Uint8Array, base: number): void {
    if (buf.length > 0) this.segs.unshift({ buf, i: 0, base });
  }

  /** The current header line as received, with its line end. */
  private lineBytes(): Uint8Array {
    const out = new Uint8Array(this.line.len + this.lineEol.length);
    out.set(this.line.buf.subarray(0, this.line.len));
    out.set(this.lineEol, this.line.len);
    return out;
  }

  // ---- Header state -------------------------------------------------------------------

  private headerStep(buf: Uint8Array, i: number): number {
    if (this.crHeld) {
      this.crHeld = false;
      this.lineReady = true;
      if (buf[i] === LF) {
        this.lineEol = CRLF_BYTES;
        this.ent.bytes++;
        return i + 1;
      }
      this.lineEol = CR_BYTES;
      return i;
    }
    const b = asBuffer(buf);
    let j = b.indexOf(LF, i);
    if (this.crMode) {
      const r = b.indexOf(CR, i);
      if (r >= 0 && (j < 0 || r < j)) j = r;
    }
    let lineEnd = j < 0 ? buf.length : j;
    if (this.line.len === 0 && !this.line.overflow) this.lineStart = this.base + i;
    if (!this.crMode && !this.crForked && this.host && !this.final) {
      // A bare CR (not the CR of a CRLF) in a header line: Python ends the line there. The
      // decision is taken right after the CR, wherever the input happens to be cut.
      if (this.line.len > 0 && this.line.buf[this.line.len - 1] === CR && lineEnd > i) {
        this.crBare = true;
        return i;
      }
      const c = b.indexOf(CR, i);
      if (c >= 0 && c < lineEnd - 1) {
        this.crBare = true;
        j = -1;
        lineEnd = c + 1;
      }
    }
    const seg = lineEnd - i + (j < 0 ? 0 : 1);
    const room = this.limits.headerBytes - this.ent.bytes;
    if (seg > room) {
      // The header block is too big. Stop exactly at byte headerBytes (a stream position,
      // so chunking cannot change it): the current line so far and everything after is body.
      const p = i + Math.max(0, room);
      this.line.push(buf, i, p);
      this.limit('header-bytes', this.ent.path);
      if (this.dying) return p;
      const replay = this.line.buf.slice(0, this.line.len);
      this.line.reset();
      this.flushField();
      this.finishHeaders(false, true, this.lineStart);
      this.unshift(replay, this.lineStart);
      return p;
    }
    this.ent.bytes += seg;
    this.line.push(buf, i, lineEnd);
    if (j < 0) return lineEnd;
    let next = j + 1;
    this.lineEol = LF_BYTES;
    if (this.crMode && buf[j] === CR) {
      this.lineEol = CR_BYTES;
      if (j + 1 >= buf.length) {
        // CR or CRLF? the next byte says (the line is not ready before)
        this.crHeld = true;
        return next;
      }
      if (buf[j + 1] === LF) {
        this.lineEol = CRLF_BYTES;
        this.ent.bytes++;
        next++;
      }
    }
    this.lineReady = true;
    return next;
  }

  /** A complete physical header line is in this.line (line end in this.lineEol, EMPTY at EOF). */
  private headerLine(): void {
    const l = this.line.buf;
    let len = this.line.len;
    const overflow = this.line.overflow;
    const e = this.ent;
    if (overflow) this.limit('header-line', e.path);
    if (this.dying) return;
    if (!this.crMode && len > 0 && l[len - 1] === CR && !overflow) len--;
    e.lines++;
    const hadEol = this.lineEol.length > 0;
    if ((this.stack.length > 0 || this.ghosts.length > 0) && len >= 2 && l[0] === DASH && (l[1] === DASH || this.looseLive)) {
      const r = this.classify(l.subarray(0, len), false, true)!;
      for (const a of r.recorded) this.anomaly(a.code, a.m.ghost ? this.ghosts[a.m.level]!.mp.path : this.stack[a.m.level]!.path, false);
      if (r.primary) {
        this.forkAlts(r.alts, 0, true);
        this.line.reset();
        this.flushField();
        this.finishHeaders(false, true, this.lineStart);
        this.at = this.lineStart;
        this.takeDelimiter(r.primary, false);
        return;
      }
      // only a prefix/ghost reading takes it as a delimiter; for the primary it is no field
      this.forkAlts(r.alts, 0, true);
    }
    if (len === 0) {
      if (e.lines === 1 && e.leadSkip) {
        e.lines = 0; // still before the first header line
        this.line.reset();
        return;
      }
      // A blank line first: an empty header block for Python and mailparser; ripmime and
      // munpack skip it and read the header block after it. (A part without headers is
      // common: that reading dies at once when no field follows.)
      if (e.lines === 1 && hadEol) {
        this.fork(
          'leading-blank-line',
          e.path,
          (c) => {
            c.ent.lines = 0;
            c.ent.leadSkip = true;
            c.line.reset();
          },
          true,
        );
      }
      this.line.reset();
      this.flushField();
      this.finishHeaders(hadEol, true);
      return;
    }
    const c0 = l[0]!;
    if (e.leadSkip && e.lines === 1) {
      if ((c0 === SP || c0 === HT || fieldKind(l, len) === FIELD_NONE) && !(e.top && len >= 5 && latin1(l.subarray(0, 5)) === 'From ')) {
        // skipped blank lines, and no header field follows: nobody reads it this way
        this.line.reset();
        this.die();
        return;
      }
      // a header block after blank lines: the other readings took the blank line as its end
      this.anomaly('leading-blank-line', e.path, false);
    }
    if (c0 === SP || c0 === HT) {
      if (this.fieldOpen) this.appendField(l, 0, len);
      else this.warn('bad-header-continuation', e.path);
      this.line.reset();
      return;
    }
    const kind = fieldKind(l, len);
    if (kind === FIELD_WSP_COLON && hadEol) {
      // Python ends the header block at `Name : value`; mailparser reads a field
      const again = this.lineBytes();
      if (this.mode & M_COLON_ENDS) {
        this.endHeadersAt(again, this.lineStart);
        return;
      }
      this.forkMode(M_COLON_ENDS, 'header-space-before-colon', e.path, (c) => c.endHeadersAt(again, this.lineStart));
    }
    if (kind !== FIELD_NONE) {
      this.flushField();
      this.junkOpen = false;
      this.fieldOpen = true;
      this.appendField(l, 0, len);
      this.line.reset();
      return;
    }
    if (e.top && e.lines === 1 && len >= 5 && latin1(l.subarray(0, 5)) === 'From ') {
      this.warn('mbox-from-line', e.path);
      this.line.reset();
      return;
    }
    if (e.top && e.lines === 1 && hadEol && len >= 3 && l[0] === 0xef && l[1] === 0xbb && l[2] === 0xbf) {
      const again = this.lineBytes().subarray(3);
      const bytes = again.length + 3;
      const at = this.lineStart + 3;
      this.fork('bom', e.path, (c) => {
        c.ent.lines--;
        c.ent.bytes -= bytes;
        c.line.reset();
        c.unshift(again.slice(), at);
      });
    }
    if (this.mode & M_SKIP_JUNK) {
      // this reading skips non-field lines, as mailparser does (and their continuations)
      this.warn('header-junk-skipped', e.path);
      this.flushField();
      this.junkOpen = true;
      this.line.reset();
      return;
    }
    if (hadEol) {
      this.forkMode(M_SKIP_JUNK, 'header-junk-line', e.path, (c) => {
        c.flushField();
        c.junkOpen = true;
        c.warn('header-junk-skipped', e.path);
        c.line.reset();
      });
    } else this.anomaly('header-junk-line', e.path, false);
    // Not a header line: the header block ends and this line is the first body line.
    this.endHeadersAt(this.lineBytes(), this.lineStart);
  }

  /**
   * A bare CR in the header line in progress: fork a reading that takes CR (and CRLF) as
   * line ends from here on; it re-reads this line from its start.
   */
  private forkCrLine(): void {
    if (this.crForked || this.crMode) return;
    this.crForked = true;
    const again = this.lineReady ? this.lineBytes() : this.line.buf.slice(0, this.line.len);
    const at = this.lineStart;
    const e = this.ent;
    this.fork('bare-cr', e.path, (c) => {
      c.crMode = true;
      c.crForked = true;
      c.lineReady = false;
      c.ent.bytes -= again.length;
      c.line.reset();
      c.unshift(again, at);
    });
  }

  /** End the header block at the current line, which is re-read as the first body line. */
  private endHeadersAt(again: Uint8Array, at: number): void {
    this.warn('missing-header-separator', this.ent.path);
    this.line.reset();
    this.flushField();
    this.unshift(again, at);
    // the line was already tested as a delimiter: the body does not start with one
    this.finishHeaders(!this.final, false, at);
  }

  private appendField(l: Uint8Array, s: number, e: number): void {
    if (this.junkOpen) {
      this.warn('bad-header-continuation', this.ent.path);
      return;
    }
    this.field.push(l, s, e);
    if (this.field.overflow) this.limit('header-line', this.ent.path);
  }

  private flushField(): void {
    if (!this.fieldOpen) return;
    this.fieldOpen = false;
    const f = this.field;
    const e = this.ent;
    if (++e.fields > this.limits.headerFields) {
      f.reset();
      this.limit('header-fields', e.path);
      return;
    }
    // Only Content-* fields and X-Sun-Data-Name are read below (and any field inside an
    // open quote): skip the string work for the others unless a handler wants every field.
    const c0 = f.len > 0 ? f.buf[0]! | 0x20 : 0;
    if (c0 !== 0x63 && c0 !== 0x78 && !e.quoteOpen && this.handler.onHeader === undefined) {
      f.reset();
      return;
    }
    const text = latin1(f.buf.subarray(0, f.len));
    f.reset();
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).replace(/[ \t]+$/, '');
    const value = text.slice(colon + 1).replace(/^[ \t\r\n]+/, '');
    this.handler.onHeader?.(e.path, name, value);
    const lname = name.toLowerCase();
    if (e.quoteOpen) {
      e.quoteTail = `${e.quoteTail}\r\n${text}`.slice(0, this.limits.headerLineBytes);
      if (text.indexOf('"') >= 0) e.quoteOpen = false;
    } else if ((lname === 'content-type' || lname === 'content-disposition') && e.quoteTail === null && oddQuotes(value)) {
      e.quoteTail = value;
      e.quoteOpen = true;
    }
    if (lname === 'content-type') e.cts = this.keep(e.cts, value, 'duplicate-content-type');
    else if (lname === 'content-transfer-encoding') e.ctes = this.keep(e.ctes, value, 'duplicate-content-transfer-encoding');
    else if (lname === 'content-disposition') e.cds = this.keep(e.cds, value, 'duplicate-content-disposition');
    else if (NAME_HEADERS.has(lname) && e.nameHeaders.length < MAX_REPEATS) e.nameHeaders = [...e.nameHeaders, value];
  }

  /** The field's values with `value` added (a new list for the first: most fields come once). */
  private keep(list: string[], value: string, dup: MimeWarning): string[] {
    if (list.length === 0) return [value];
    this.warn(dup, this.ent.path);
    if (list.length < MAX_REPEATS) list.push(value);
    else list[list.length - 1] = value; // keep the last one: it is a reading too
    return list;
  }

  /** Every structural reading of the finished header block, the primary (first fields, strict parse) first. */
  private interpretations(): Interpretation[] {
    const e = this.ent;
    const out: Interpretation[] = [];
    if (e.cts.length <= 1 && e.ctes.length <= 1 && !e.digest) {
      // the common case: one Content-Type (or none), one CTE (or none), read one way only
      const r = soleTypeReading(e.cts[0], this.strictCt());
      const cte = e.ctes.length === 0 ? '' : soleCte(e.ctes[0]!);
      if (r !== null && cte !== null) {
        const multipart = r.type.startsWith('multipart/') && r.boundary !== undefined;
        if (!(multipart && (r.boundary === '' || cteClass(cte) !== 'identity'))) {
          return [{ multipart, type: r.type, boundary: multipart ? r.boundary : undefined, cte, strictOnly: false, encodedBoundary: undefined, code: '', key: '' }];
        }
      }
    }
    const cts = e.cts.length === 0 ? [undefined] : e.cts.length === 1 ? e.cts : [e.cts[0], e.cts[e.cts.length - 1]];
    const ctes = e.ctes.length === 0 ? [''] : e.ctes.length === 1 ? e.ctes : [e.ctes[0]!, e.ctes[e.ctes.length - 1]!];
    const add = (it: Omit<Interpretation, 'key'>) => {
      const key = it.multipart
        ? `M|${it.boundary}|${it.type === 'multipart/digest'}|${it.strictOnly}`
        : `L|${it.type.startsWith('message/') ? it.type : ''}|${cteClass(it.cte)}|${it.encodedBoundary ?? ''}`;
      if (out.length < MAX_INTERPRETATIONS && !out.some((o) => o.key === key)) out.push({ ...it, key });
    };
    cts.forEach((ct, ci) => {
      for (const r of contentTypeReadings(ct)) {
        cteReadings(ctes).forEach(([cte, cteWhy], ti) => {
          const why = ci > 0 ? 'duplicate-content-type' : ti > 0 ? cteWhy : r.code;
          const code = why || 'content-type-variant';
          const type = r.type === '' && e.digest ? 'message/rfc822' : r.type;
          const leaf = { multipart: false, type, boundary: undefined, cte, strictOnly: false, encodedBoundary: undefined, code };
          if (!type.startsWith('multipart/') || r.boundary === undefined) return add(leaf);
          if (r.boundary === '') {
            add(leaf);
            add({ ...leaf, multipart: true, boundary: '', strictOnly: true, code: why || 'empty-boundary' });
            return;
          }
          // Python and mailparser split a multipart whatever its CTE; a client that decodes
          // first reads the decoded bytes: the session does that with the leaf below.
          add({ ...leaf, multipart: true, boundary: r.boundary });
          if (cteClass(cte) !== 'identity') add({ ...leaf, encodedBoundary: r.boundary, code: why || 'encoded-multipart' });
        });
      }
    });
    return out;
  }

  /**
   * The header block of this.ent is complete: decide leaf vs multipart and enter Body.
   * `forks`: read every other plausible interpretation too (not at EOF, not past limits).
   */
  private finishHeaders(forks: boolean, atBodyStart: boolean, bodyAt: number = this.position): void {
    this.line.reset();
    this.field.reset();
    this.fieldOpen = false;
    this.junkOpen = false;
    const its = this.interpretations();
    for (let k = 1; k < its.length; k++) {
      const it = its[k]!;
      if (forks) this.fork(it.code, this.ent.path, (c) => c.apply(it, atBodyStart, bodyAt));
      else this.anomaly(it.code, this.ent.path, false);
    }
    this.apply(its[0]!, atBodyStart, bodyAt);
  }

  private apply(it: Interpretation, atBodyStart: boolean, bodyAt: number): void {
    const e = this.ent;
    this.state = State.Body;
    this.atBodyStart = atBodyStart;
    if (it.type.startsWith('multipart/') && it.encodedBoundary === undefined) {
      const boundary = it.boundary;
      if (boundary === undefined || (boundary === '' && !it.strictOnly)) this.warn('multipart-without-boundary', e.path);
      else if (boundary.length > this.limits.boundaryBytes) this.limit('boundary-length', e.path);
      else if (it.multipart && e.depth + 1 > this.limits.mimeDepth) this.limit('mime-depth', e.path);
      else if (it.multipart) {
        const mp: Multipart = {
          delim: latin1Bytes('--' + boundary),
          path: e.path,
          depth: e.depth,
          digest: it.type === 'multipart/digest',
          children: 0,
          strictOnly: it.strictOnly,
          alnum: countAlnum(latin1Bytes(boundary), 0, boundary.length),
        };
        this.stack.push(mp);
        this.at = bodyAt;
        this.handler.onBlock?.('body', aroundPath(mp, '(preamble)'), '');
        this.cur = {
          info: { path: aroundPath(mp, '(preamble)'), role: 'preamble', depth: e.depth, contentType: '', transferEncoding: '', disposition: '' },
          started: false,
        };
        return;
      }
    }
    const cd = parseDisposition(e.cds[0]);
    const info: PartInfo = {
      path: e.path === '' ? '1' : e.path,
      role: 'leaf',
      depth: e.depth,
      contentType: it.type,
      transferEncoding: it.cte,
      disposition: cd.value,
    };
    const filename = pickFilename(cd, this.strictCt());
    if (filename !== undefined) info.filename = filename;
    const names = this.names(filename);
    if (names.length > 0) info.names = names;
    if (it.encodedBoundary !== undefined) info.boundary = it.encodedBoundary;
    this.cur = { info, started: true };
    this.at = bodyAt;
    this.handler.onBlock?.('body', info.path, it.cte);
    this.handler.onPartStart(info);
  }

  /** The entity's first Content-Type, parsed strictly (once: interpretations and apply both need it). */
  private strictCt(): StructuredValue {
    const e = this.ent;
    return (e.ct ??= parseContentType(e.cts[0]));
  }

  private names(primary: string | undefined): string[] {
    const e = this.ent;
    // most parts carry no name at all: no work for them
    if (e.nameHeaders.length === 0 && e.quoteTail === null && !e.cds.some(hasName) && !e.cts.some(hasName)) return primary === undefined ? [] : [primary];
    const nc = new NameCollector();
    if (primary !== undefined) nc.add(primary);
    for (const v of e.cds) nc.addStructured(v);
    for (const v of e.cts) nc.addStructured(v);
    for (const v of e.nameHeaders) nc.addPlain(v);
    if (e.quoteTail !== null) nc.addStructured(e.quoteTail);
    return nc.names;
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

  /** Lines starting with a single `-` matter: this is the ripmime reading, or may still fork it. */
  private get looseLive(): boolean {
    return this.host !== null && ((this.mode & M_LOOSE) !== 0 || (this.forked & M_LOOSE) === 0);
  }

  /** Is a byte before `--` a line end here? LF always; CR in a CR reading, or as a fork trigger. */
  private eolByte(c: number | undefined): boolean {
    return c === LF || (c === CR && (this.crMode || (!this.crForked && this.host !== null)));
  }

  private bodyStep(buf: Uint8Array, i: number): number {
    const end = buf.length;
    if (this.stack.length === 0 && this.ghosts.length === 0) {
      this.emit(buf, i, end); // no boundary can follow: pass everything through
      return end;
    }
    if (this.atBodyStart) {
      // the first body line has no line end before it but may already be a delimiter
      const r = this.candidate(buf, i, i);
      if (r === NEED) {
        this.carry = buf.slice(i);
        this.carryBase = this.base + i;
        return end;
      }
      this.atBodyStart = false;
      if (r === MATCH) return this.take(buf, i);
    }
    const b = asBuffer(buf);
    const runStart = i;
    let from = i;
    // a line starting with `-` may be a ripmime delimiter; else only `--` lines matter
    const needle: Buffer | number = this.looseLive ? DASH : DASH_DASH;
    for (;;) {
      const d = b.indexOf(needle, from);
      if (d < 0) {
        // hold back a possible partial "\r\n--" at the very end
        let t = end;
        if (!this.atEnd) {
          let k = end;
          if (k - 1 >= runStart && buf[k - 1] === DASH) k--;
          if (k - 1 >= runStart && (buf[k - 1] === LF || buf[k - 1] === CR)) {
            k--;
            if (buf[k] === LF && k - 1 >= runStart && buf[k - 1] === CR) k--;
            t = k;
          }
        }
        this.emit(buf, runStart, t);
        if (t < end) {
          this.carry = buf.slice(t);
          this.carryBase = this.base + t;
        }
        return end;
      }
      const prev = d > 0 ? buf[d - 1] : undefined;
      if (d === runStart || !this.eolByte(prev)) {
        // not at a line start: skip the whole run of dashes
        from = d + 1;
        while (from < end && buf[from] === DASH) from++;
        continue;
      }
      let eol = d - 1;
      if (buf[eol] === LF && eol - 1 >= runStart && buf[eol - 1] === CR) eol--;
      const r = this.candidate(buf, eol, d);
      if (r === NO) {
        from = d + 1;
        while (from < end && buf[from] === DASH) from++;
        continue;
      }
      this.emit(buf, runStart, eol);
      if (r === NEED) {
        this.carry = buf.slice(eol);
        this.carryBase = this.base + eol;
        return end;
      }
      return this.take(buf, eol);
    }
  }

  /**
   * A line at buf[p] starting with `--`, its line end at buf[eol..p). NO: not a delimiter
   * in any reading. NEED: more bytes could change that. MATCH: bytes up to `eol` may be
   * emitted, then take(): the delimiter when it is one in every reading, or a pending
   * decision (readings differ) that the run loop takes or parks.
   */
  private candidate(buf: Uint8Array, eol: number, p: number): number {
    if (buf.length - p < 2) return this.atEnd ? NO : NEED;
    if (buf[p] !== DASH || (buf[p + 1] !== DASH && !this.looseLive)) return NO;
    const r = this.classify(buf.subarray(p), p - eol === 1 && buf[eol] === CR, this.atEnd);
    if (r === null) return NEED;
    if (!r.primary && r.alts.length === 0 && r.recorded.length === 0) return NO;
    this.cand = { eolLen: p - eol, primary: r.primary, alts: r.alts, recorded: r.recorded };
    return MATCH;
  }

  /** After candidate() gave MATCH and the bytes before `eol` went out: the position to go on from. */
  private take(buf: Uint8Array, eol: number): number {
    const c = this.cand!;
    this.cand = null;
    // cases this lineage already reads another way too: recorded here, at the line
    for (const a of c.recorded) this.anomaly(a.code, a.m.ghost ? this.ghosts[a.m.level]!.mp.path : this.stack[a.m.level]!.path, false);
    if (c.alts.length === 0) {
      const m = c.primary;
      if (!m) {
        // content in this reading: the line end and the `--` go to the part
        this.emit(buf, eol, eol + c.eolLen + 2);
        return eol + c.eolLen + 2;
      }
      this.at = this.base + eol;
      this.takeDelimiter(m, true);
      return eol + c.eolLen + m.len;
    }
    this.pending = { kind: 'cand', eolLen: c.eolLen, primary: c.primary, alts: c.alts };
    return eol;
  }

  /** A pending delimiter decision at the current position (the line end before the `--`). */
  private takeCandidate(p: Extract<Pending, { kind: 'cand' }>): void {
    const f = this.segs[0]!;
    this.base = f.base;
    this.forkAlts(p.alts, p.eolLen, false);
    if (p.primary) {
      this.at = f.base + f.i;
      f.i += p.eolLen + p.primary.len;
      this.takeDelimiter(p.primary, true);
    } else {
      // content in this reading: the line end and the `--` go to the part
      this.emit(f.buf, f.i, f.i + p.eolLen + 2);
      f.i += p.eolLen + 2;
    }
  }

  /** Fork one reading per alternative delimiter decision (from a header line or a body line). */
  private forkAlts(alts: readonly Alt[], eolLen: number, inHeader: boolean): void {
    for (const a of alts) {
      const path = a.m.ghost ? this.ghosts[a.m.level]!.mp.path : this.stack[a.m.level]!.path;
      if (a.bit === M_CR) {
        if (this.crForked) continue;
        this.crForked = true;
      } else if (this.forked & a.bit) {
        this.anomaly(a.code, path, false);
        continue;
      } else this.forked |= a.bit;
      this.fork(a.code, path, (c) => {
        if (a.bit === M_CR) {
          c.crMode = true;
          c.crForked = true;
        } else c.mode |= a.bit;
        if (inHeader) {
          c.line.reset();
          c.flushField();
          c.finishHeaders(false, true, this.lineStart);
          c.at = this.lineStart;
          c.takeDelimiter(a.m, false);
        } else {
          c.segs[0]!.i += eolLen + a.m.len;
          c.takeDelimiter(a.m, true);
        }
      });
    }
  }

  /** Take a delimiter match: of an open multipart, or of a closed one, which it reopens. */
  private takeDelimiter(m: Match, tail: boolean): void {
    let level = m.level;
    if (m.ghost) {
      // a reader that never closed it: it is open again, its delimiter a separator or a close
      const g = this.ghosts.splice(level, 1)[0]!;
      while (this.stack.length > g.atLen) this.warn('missing-close-boundary', this.stack.pop()!.path);
      this.stack.push(g.mp);
      level = this.stack.length - 1;
    }
    this.delimiter(level, m.close, tail);
  }

  /**
   * Classify the line at line[0..] (starting with `--`) against the open delimiters and
   * the closed ones. `bareCrBefore`: the line end before it is a bare CR, which only a
   * CR reading takes for one. `complete`: the
   * line is whole (no more bytes can change the answer). null: need more bytes.
   */
  private classify(line: Uint8Array, bareCrBefore: boolean, complete: boolean): { primary: Match | null; alts: Alt[]; recorded: Alt[] } | null {
    // line ends that count in this reading, and in a CR reading
    const crLine = this.crMode;
    let strictInner: Match | null = null;
    let strictOuter: Match | null = null;
    let prefixLong: Match | null = null;
    let crStrict: Match | null = null;
    let ghost: Match | null = null;
    let need = false;
    const test = (d: Uint8Array, level: number, isGhost: boolean, strictOnly: boolean) => {
      const avail = line.length;
      const n = Math.min(d.length, avail);
      for (let k = 2; k < n; k++) if (line[k] !== d[k]) return;
      if (n < d.length) {
        if (!complete) need = true;
        return;
      }
      // what follows the boundary: `--`? padding? a line end?
      let q = d.length;
      let close = false;
      if (q < avail && line[q] === DASH) {
        if (q + 1 >= avail) {
          if (!complete) need = true;
        } else if (line[q + 1] === DASH) {
          close = true;
          q += 2;
        }
      }
      const lenM = close ? d.length + 2 : d.length;
      let w = q;
      while (w < avail && w - q <= MAX_PAD && (line[w] === SP || line[w] === HT)) w++;
      let strictLf = false;
      let strictCr = false;
      let undecided = false;
      if (w - q > MAX_PAD) {
        // too much padding: no reader's delimiter any more
      } else if (w >= avail) {
        if (complete) strictLf = strictCr = true;
        else undecided = true;
      } else {
        strictCr = line[w] === CR || line[w] === LF;
        let c = w;
        while (c < avail && c - w <= MAX_PAD && line[c] === CR) c++;
        if (c >= avail) {
          if (complete) strictLf = true;
          else undecided = true;
        } else strictLf = line[c] === LF;
      }
      if (undecided) need = true;
      const strict = crLine ? strictCr : strictLf;
      const m: Match = { level, close, len: lenM, ghost: isGhost };
      if (isGhost) {
        if (strict && !ghost) ghost = m;
        return;
      }
      if (strict) {
        if (!strictOuter) strictOuter = m; // levels are tested outermost first
        strictInner = m;
      } else if (!strictOnly) {
        const pm: Match = { level, close, len: lenM, ghost: false };
        if (!prefixLong || d.length >= this.stack[prefixLong.level]!.delim.length) prefixLong = pm;
      }
      if (!crLine && strictCr && !strict) crStrict = m;
    };
    const dashDash = line.length >= 2 && line[1] === DASH;
    if (dashDash) {
      for (let level = 0; level < this.stack.length; level++) {
        const mp = this.stack[level]!;
        test(mp.delim, level, false, mp.strictOnly);
      }
      if (!strictInner && !prefixLong) for (let g = this.ghosts.length - 1; g >= 0; g--) test(this.ghosts[g]!.mp.delim, g, true, true);
    }
    // ripmime's test: the line up to its end (at most LOOSE_LINE bytes) has as many letters
    // and digits as the boundary, which starts within its first 4 bytes; innermost first
    let loose: Match | null = null;
    if (this.looseLive && this.stack.length > 0) {
      let e = 0;
      while (e < line.length && e < LOOSE_LINE && line[e] !== LF && line[e] !== CR) e++;
      if (e >= line.length && e < LOOSE_LINE && !complete) need = true;
      else {
        const n = countAlnum(line, 0, e);
        for (let level = this.stack.length - 1; level >= 0 && !loose; level--) {
          const mp = this.stack[level]!;
          if (mp.alnum !== n || mp.delim.length <= 2) continue;
          const blen = mp.delim.length - 2;
          for (let k = 0; k < 4 && k + blen <= e && !loose; k++) {
            let j = 0;
            while (j < blen && line[k + j] === mp.delim[2 + j]) j++;
            if (j === blen) loose = { level, close: false, len: 1, ghost: false };
          }
        }
      }
    }
    if (need && !complete) return null;
    const alts: Alt[] = [];
    let primary: Match | null = null;
    const si = strictInner as Match | null;
    const so = strictOuter as Match | null;
    const pl = prefixLong as Match | null;
    const gh = ghost as Match | null;
    const cs = crStrict as Match | null;
    const lo = loose as Match | null;
    const mode = this.mode;
    if (mode & M_LOOSE) {
      // the ripmime reading takes its own rule only (every hit a separator)
      primary = lo;
    } else if (si) {
      const tie = so !== null && so.level !== si.level;
      primary = tie && mode & M_OUTER_TIE ? so : si;
      if (tie && !(mode & M_OUTER_TIE)) alts.push({ code: 'boundary-tie', m: so!, bit: M_OUTER_TIE });
    } else if (pl) {
      if (mode & M_PREFIX) primary = pl;
      else alts.push({ code: 'boundary-prefix', m: pl, bit: M_PREFIX });
    } else if (gh) {
      if (mode & M_REOPEN) primary = gh;
      else alts.push({ code: 'part-after-close', m: gh, bit: M_REOPEN });
    }
    if (lo && !(mode & M_LOOSE) && (!primary || primary.level !== lo.level)) alts.push({ code: 'boundary-loose', m: lo, bit: M_LOOSE });
    // A bare CR before the `--` or right after the delimiter: a CR reading sees a delimiter
    // line where this one does not (or a different one).
    if (!crLine && !this.crForked && this.host) {
      const m = cs ?? (bareCrBefore ? si ?? gh : null);
      if (m && (bareCrBefore || cs !== null)) alts.push({ code: 'bare-cr', m, bit: M_CR });
    }
    if (bareCrBefore && !crLine) {
      // in this (LF) reading a bare CR does not end a line: the `--` is not at a line start
      return { primary: null, alts: alts.filter((a) => a.bit === M_CR), recorded: [] };
    }
    // a lineage that already branched a profile off records the case and does not wait
    const live = alts.filter((a) => (a.bit === M_CR ? !this.crForked : !(this.forked & a.bit)));
    const recorded = alts.filter((a) => !live.includes(a));
    return { primary, alts: live, recorded };
  }

  /** A delimiter of stack[level] was seen. `tail`: the rest of its line is still to be skipped. */
  private delimiter(level: number, close: boolean, tail: boolean): void {
    this.endPart();
    while (this.stack.length - 1 > level) this.warn('missing-close-boundary', this.stack.pop()!.path);
    // a delimiter of an outer multipart also closes what a never-closing reader kept open
    this.ghosts = this.ghosts.filter((g) => g.atLen <= level);
    const mp = this.stack[level]!;
    let next: State;
    if (close) {
      this.stack.pop();
      this.ghosts.push({ mp, atLen: this.stack.length });
      if (this.ghosts.length > MAX_GHOSTS) this.ghosts.shift();
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
        this.ghosts.length = 0;
        const info: PartInfo = { path, role: 'leaf', depth: mp.depth + 1, contentType: '', transferEncoding: '', disposition: '' };
        this.cur = { info, started: true };
        this.handler.onPartStart(info);
        next = State.Body;
      } else {
        this.ent = newEntity(path, mp.depth + 1, false, mp.digest);
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
      if (next === State.Header) this.syncDue = true;
      if (block) {
        this.at = this.position;
        this.handler.onBlock?.(block.kind, block.path, '');
      }
    }
  }

  // ---- BoundaryTail state -------------------------------------------------------------

  private tailStep(buf: Uint8Array, i: number): number {
    if (this.crHeld) {
      this.crHeld = false;
      const next = buf[i] === LF ? i + 1 : i;
      this.endTail(this.base + next);
      return next;
    }
    const b = asBuffer(buf);
    let j = b.indexOf(LF, i);
    if (this.crMode) {
      const r = b.indexOf(CR, i);
      if (r >= 0 && (j < 0 || r < j)) j = r;
    }
    const e = j < 0 ? buf.length : j;
    if (!this.tailJunk && !isPadding(buf, i, e)) this.tailJunk = true;
    if (j < 0) return buf.length;
    if (this.tailJunk) this.warn('boundary-trailing-junk', this.tailPath);
    let next = j + 1;
    if (this.crMode && buf[j] === CR) {
      if (j + 1 >= buf.length) {
        this.crHeld = true; // CR or CRLF: the next byte says
        return next;
      }
      if (buf[j + 1] === LF) next++;
    }
    this.endTail(this.base + next);
    return next;
  }

  private endTail(at: number): void {
    this.state = this.afterTail;
    if (this.state === State.Header) this.syncDue = true;
    const block = this.tailBlock;
    if (block) {
      this.tailBlock = null;
      this.at = at;
      this.handler.onBlock?.(block.kind, block.path, '');
    }
  }

  // ---- reporting ----------------------------------------------------------------------

  private limit(which: LimitName, path: string): void {
    if (this.ent.leadSkip && this.ent.fields === 0 && this.state === State.Header) {
      // a reading that skipped blank lines for a header block, and the first line is too
      // big for one: nobody reads the message this way (the other readings go on)
      this.dying = true;
      return;
    }
    if (this.tripped?.has(which)) return;
    (this.tripped ??= new Set()).add(which);
    this.handler.onLimit(which, path);
  }

  private warn(code: MimeWarning, path: string): void {
    this.handler.onWarning?.(code, path);
  }
}

function oddQuotes(v: string): boolean {
  let n = 0;
  for (let k = v.indexOf('"'); k >= 0; k = v.indexOf('"', k + 1)) if (v[k - 1] !== '\\') n++;
  return n % 2 === 1;
}

function hasName(v: string): boolean {
  return /name/i.test(v);
}

/** Bytes of a line ripmime compares against boundaries (its line buffer). */
const LOOSE_LINE = 1023;

function countAlnum(b: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let k = s; k < e; k++) {
    const c = b[k]!;
    if ((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)) n++;
  }
  return n;
}

/** Only SP / HT / CR in buf[s..e)? (transport padding after a delimiter) */
function isPadding(buf: Uint8Array, s: number, e: number): boolean {
  for (let k = s; k < e; k++) {
    const c = buf[k];
    if (c !== SP && c !== HT && c !== CR) return false;
  }
  return true;
}

const FIELD_NONE = 0;
const FIELD_STRICT = 1;
const FIELD_WSP_COLON = 2;

/**
 * `name:` (FIELD_STRICT) or `name WSP+ :` (FIELD_WSP_COLON), name = printable ASCII except
 * ':' (RFC 5322 + obs-syntax); anything else (no colon, a colon first, 8-bit or control
 * bytes in the name) is no field (FIELD_NONE).
 */
function fieldKind(l: Uint8Array, len: number): number {
  let k = 0;
  while (k < len && l[k]! > SP && l[k]! < 0x7f && l[k] !== COLON) k++;
  if (k === 0 || k >= len) return FIELD_NONE;
  if (l[k] === COLON) return FIELD_STRICT;
  while (k < len && (l[k] === SP || l[k] === HT)) k++;
  return k < len && l[k] === COLON ? FIELD_WSP_COLON : FIELD_NONE;
}
