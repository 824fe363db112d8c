/**
 * ndb-parse.ts — one ClamAV extended (.ndb) signature line → a compiled body pattern.
 *
 * Input:  `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]` (ClamAV "extended
 *         signature format"; hex syntax from "Body-based Signature Content Format").
 * Output: BodySig — the signature split into segments at `*` and `{…}` gaps (except
 *         `{n}` with n < 128, which ClamAV itself inlines as n `??`), each segment
 *         expanded into one or more fixed-length *forms* (byte values + masks, plus
 *         per-position checks for byte classes and negated multi-byte alternatives).
 *         Multi-byte and variable-length alternatives `(aabb|cc)` and the `[x-y]`
 *         notation are expanded into separate forms (capped at MAX_FORMS).
 *
 * Supported: hex bytes, `??`, nibbles `a?`/`?a`, `*`, `{n}` `{-n}` `{n-}` `{n-m}`,
 *   `[x-y]`, `(aa|bb)`, `!(aa|bb)`, multi-byte `(aabb|ccdd)` and `!(aabb|ccdd)`,
 *   variable-length `(aa|bbcc)`, `(W)`; offsets `*`, `n`, `n,m`, `EOF-n`, `EOF-n,m`.
 * Target type: parsed and validated, then ignored — this engine has no file-type
 *   detection, so every signature applies to every file (types 3/7 were written for
 *   ClamAV's normalised HTML/text and will rarely fire on raw bytes).
 * Skipped (valid ClamAV, not implemented; returned as a reason, counted by the db):
 *   PE/ELF/Mach-O offsets (EP+n, Sx+n, SEx, SL+n), `(B)`/`(L)` classes, segments
 *   without a run of ≥ 2 static bytes (ClamAV refuses those too), more than
 *   MAX_FORMS expansions, forms longer than MAX_FORM_LEN, EOF-n beyond MAX_EOF_DISTANCE,
 *   MinFL above or MaxFL below ENGINE_FLEVEL.
 * Errors: anything that does not parse throws SignatureFileError(SIG_SYNTAX).
 */
import { SIG_ERROR_CODES, SignatureFileError } from './sig-errors.js';

/** The ClamAV functionality level we claim (1.5.x) when filtering on MinFL/MaxFL. */
export const ENGINE_FLEVEL = 230;
/** Expansions of one segment (alternatives × [x-y] choices) we accept. */
export const MAX_FORMS = 256;
/** Longest single form (bytes): bounds the per-stream history carry. */
export const MAX_FORM_LEN = 8192;
/** Largest n in `EOF-n`: bounds the per-stream tail buffer. */
export const MAX_EOF_DISTANCE = 65536;

/** A per-position check beyond value/mask: a byte class, or "not one of these strings". */
export type FormCheck =
  | { kind: 'class'; pos: number; bits: Uint8Array /* 32 bytes, bit b set = byte b allowed */ }
  | { kind: 'not'; pos: number; len: number; alts: { vals: Uint8Array; masks: Uint8Array }[] };

/** One fixed-length alternative of a segment. masks[i]: 0xff exact, 0xf0/0x0f nibble, 0 any. */
export interface PatternForm {
  vals: Uint8Array;
  masks: Uint8Array;
  checks: FormCheck[] | null;
}

/** gapMin/gapMax: bytes allowed between the previous segment's end and this one's start. */
export interface PatternSegment {
  gapMin: number;
  gapMax: number; // Infinity for `*` and `{n-}`
  forms: PatternForm[];
}

/** Where the signature's first byte may lie. abs: [min,max]; eof: [size-n, size-n+shift]. */
export type SigOffset =
  | { kind: 'any' }
  | { kind: 'abs'; min: number; max: number }
  | { kind: 'eof'; n: number; shift: number };

export interface BodySig {
  name: string;
  target: number;
  offset: SigOffset;
  segments: PatternSegment[];
}

export type SkipReason =
  | 'pe-offset'
  | 'char-class'
  | 'no-static-run'
  | 'too-many-forms'
  | 'form-too-long'
  | 'eof-too-far'
  | 'flevel';

export type NdbLineResult = { ok: true; sig: BodySig } | { ok: false; skip: SkipReason };

/** Internal: thrown inside the hex parser, turned into SignatureFileError by the caller. */
class HexSyntax extends Error {}
/** Internal: valid syntax we do not implement. */
class Unsupported extends Error {
  constructor(readonly reason: SkipReason) {
    super(reason);
  }
}

// ---- hex-signature elements (before expansion) ----
interface ByteEl {
  t: 'b';
  v: number;
  m: number;
}
type Elem =
  | ByteEl
  | { t: 'class'; bits: Uint8Array }
  | { t: 'alt'; alts: ByteEl[][] }
  | { t: 'not'; alts: ByteEl[][] }
  | { t: 'range'; min: number; max: number };

interface RawSegment {
  gapMin: number;
  gapMax: number;
  elems: Elem[];
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function parseUint(s: string, what: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) throw new HexSyntax(`bad ${what} '${s}'`);
  return Number(s);
}

/** Parse a 2-character byte token (`ab`, `??`, `a?`, `?a`) at s[i]. */
function parseByte(s: string, i: number): ByteEl {
  if (i + 1 >= s.length) throw new HexSyntax(`odd number of hex digits at ${i}`);
  const a = s.charCodeAt(i);
  const b = s.charCodeAt(i + 1);
  const ha = a === 0x3f ? -2 : hexVal(a);
  const hb = b === 0x3f ? -2 : hexVal(b);
  if (ha === -1 || hb === -1) throw new HexSyntax(`bad hex '${s.slice(i, i + 2)}' at ${i}`);
  let v = 0;
  let m = 0;
  if (ha >= 0) {
    v |= ha << 4;
    m |= 0xf0;
  }
  if (hb >= 0) {
    v |= hb;
    m |= 0x0f;
  }
  return { t: 'b', v, m };
}

const isByteStart = (c: number) => c === 0x3f || hexVal(c) >= 0;

/** Split the hex signature into segments of elements. */
export function parseHex(s: string): RawSegment[] {
  if (s.length === 0) throw new HexSyntax('empty hex signature');
  const segs: RawSegment[] = [];
  let cur: RawSegment = { gapMin: 0, gapMax: 0, elems: [] };
  const split = (min: number, max: number) => {
    if (cur.elems.length === 0) throw new HexSyntax('gap at start of signature or two gaps in a row');
    segs.push(cur);
    cur = { gapMin: min, gapMax: max, elems: [] };
  };
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (isByteStart(c)) {
      cur.elems.push(parseByte(s, i));
      i += 2;
    } else if (c === 0x2a /* * */) {
      split(0, Infinity);
      i++;
    } else if (c === 0x7b /* { */) {
      const close = s.indexOf('}', i);
      if (close < 0) throw new HexSyntax(`unterminated '{' at ${i}`);
      const body = s.slice(i + 1, close);
      const dash = body.indexOf('-');
      if (dash < 0) {
        const n = parseUint(body, '{n}');
        // ClamAV inlines small fixed gaps as ?? so they do not split the signature.
        if (n < 128) for (let k = 0; k < n; k++) cur.elems.push({ t: 'b', v: 0, m: 0 });
        else split(n, n);
      } else {
        const lo = body.slice(0, dash);
        const hi = body.slice(dash + 1);
        if (lo === '' && hi === '') throw new HexSyntax(`empty range '{-}' at ${i}`);
        const min = lo === '' ? 0 : parseUint(lo, 'range');
        const max = hi === '' ? Infinity : parseUint(hi, 'range');
        if (max < min) throw new HexSyntax(`range {${body}} has max < min`);
        split(min, max);
      }
      i = close + 1;
    } else if (c === 0x5b /* [ */) {
      const close = s.indexOf(']', i);
      if (close < 0) throw new HexSyntax(`unterminated '[' at ${i}`);
      const m = /^([0-9]+)-([0-9]+)$/.exec(s.slice(i + 1, close));
      if (!m) throw new HexSyntax(`bad [x-y] at ${i}`);
      const min = Number(m[1]);
      const max = Number(m[2]);
      if (max < min || max > 32) throw new HexSyntax(`bad [x-y] bounds at ${i} (need x <= y <= 32)`);
      cur.elems.push({ t: 'range', min, max });
      i = close + 1;
    } else if (c === 0x21 /* ! */ || c === 0x28 /* ( */) {
      const neg = c === 0x21;
      if (neg && s.charCodeAt(i + 1) !== 0x28) throw new HexSyntax(`'!' not followed by '(' at ${i}`);
      const open = neg ? i + 1 : i;
      const close = s.indexOf(')', open);
      if (close < 0) throw new HexSyntax(`unterminated '(' at ${open}`);
      const body = s.slice(open + 1, close);
      if (!neg && (body === 'B' || body === 'L')) throw new Unsupported('char-class');
      if (!neg && body === 'W') {
        const bits = new Uint8Array(32);
        for (let b = 0; b < 256; b++) {
          const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
          if (!alnum) bits[b >> 3]! |= 1 << (b & 7);
        }
        cur.elems.push({ t: 'class', bits });
        i = close + 1;
        continue;
      }
      const alts: ByteEl[][] = body.split('|').map((a) => {
        if (a.length === 0 || a.length % 2 !== 0) throw new HexSyntax(`bad alternative '${a}' at ${open}`);
        const out: ByteEl[] = [];
        for (let k = 0; k < a.length; k += 2) {
          if (!isByteStart(a.charCodeAt(k))) throw new HexSyntax(`bad alternative '${a}' at ${open}`);
          out.push(parseByte(a, k));
        }
        return out;
      });
      if (alts.length < 2 && !neg) throw new HexSyntax(`alternative with one choice at ${open}`);
      const allSingle = alts.every((a) => a.length === 1);
      if (allSingle) {
        // One position: a byte class (also covers nibble-wildcard members).
        const bits = new Uint8Array(32);
        for (let b = 0; b < 256; b++) {
          const hit = alts.some((a) => ((b ^ a[0]!.v) & a[0]!.m) === 0);
          if (hit !== neg) bits[b >> 3]! |= 1 << (b & 7);
        }
        cur.elems.push({ t: 'class', bits });
      } else if (neg) {
        if (!alts.every((a) => a.length === alts[0]!.length))
          throw new HexSyntax(`negated alternatives of different lengths at ${i}`);
        cur.elems.push({ t: 'not', alts });
      } else {
        cur.elems.push({ t: 'alt', alts });
      }
      i = close + 1;
    } else {
      throw new HexSyntax(`unexpected '${s[i]}' at ${i}`);
    }
  }
  if (cur.elems.length === 0) throw new HexSyntax('signature ends with a gap');
  segs.push(cur);
  return segs;
}

// ---- expansion into fixed-length forms ----
type Pos = ByteEl | { t: 'class'; bits: Uint8Array } | { t: 'not'; alts: ByteEl[][] };

function expand(elems: Elem[]): PatternForm[] {
  let forms: Pos[][] = [[]];
  for (const e of elems) {
    if (e.t === 'b' || e.t === 'class' || e.t === 'not') {
      for (const f of forms) f.push(e);
    } else if (e.t === 'alt') {
      const next: Pos[][] = [];
      for (const f of forms) for (const a of e.alts) next.push([...f, ...a]);
      forms = next;
    } else {
      const next: Pos[][] = [];
      for (const f of forms)
        for (let k = e.min; k <= e.max; k++) {
          const g = f.slice();
          for (let j = 0; j < k; j++) g.push({ t: 'b', v: 0, m: 0 });
          next.push(g);
        }
      forms = next;
    }
    if (forms.length > MAX_FORMS) throw new Unsupported('too-many-forms');
  }
  return forms.map(toForm);
}

function toForm(ps: Pos[]): PatternForm {
  let len = 0;
  for (const p of ps) len += p.t === 'not' ? p.alts[0]!.length : 1;
  if (len > MAX_FORM_LEN) throw new Unsupported('form-too-long');
  const vals = new Uint8Array(len);
  const masks = new Uint8Array(len);
  let checks: FormCheck[] | null = null;
  let at = 0;
  for (const p of ps) {
    if (p.t === 'b') {
      vals[at] = p.v & p.m;
      masks[at] = p.m;
      at++;
    } else if (p.t === 'class') {
      (checks ??= []).push({ kind: 'class', pos: at, bits: p.bits });
      at++;
    } else {
      const n = p.alts[0]!.length;
      const alts = p.alts.map((a) => ({
        vals: Uint8Array.from(a, (x) => x.v & x.m),
        masks: Uint8Array.from(a, (x) => x.m),
      }));
      (checks ??= []).push({ kind: 'not', pos: at, len: n, alts });
      at += n;
    }
  }
  // ClamAV requires two static bytes in a row in every sub-signature; so do we (anchoring).
  let run = 0;
  let best = 0;
  for (let k = 0; k < len; k++) {
    run = masks[k] === 0xff ? run + 1 : 0;
    if (run > best) best = run;
  }
  if (best < 2) throw new Unsupported('no-static-run');
  return { vals, masks, checks };
}

function parseOffset(s: string): SigOffset {
  let base = s;
  let shift = 0;
  const comma = s.indexOf(',');
  if (comma >= 0) {
    base = s.slice(0, comma);
    shift = parseUint(s.slice(comma + 1), 'offset shift');
  }
  if (base === '*') {
    if (comma >= 0) throw new HexSyntax(`'*' offset with a shift`);
    return { kind: 'any' };
  }
  if (/^[0-9]+$/.test(base)) {
    const n = parseUint(base, 'offset');
    return { kind: 'abs', min: n, max: n + shift };
  }
  const eof = /^EOF-([0-9]+)$/.exec(base);
  if (eof) {
    const n = parseUint(eof[1]!, 'EOF offset');
    if (n > MAX_EOF_DISTANCE) throw new Unsupported('eof-too-far');
    return { kind: 'eof', n, shift };
  }
  if (/^(EP[+-][0-9]+|S[0-9]+[+-][0-9]+|SE[0-9]+|SL[+-][0-9]+)$/.test(base)) throw new Unsupported('pe-offset');
  throw new HexSyntax(`bad offset '${s}'`);
}

/**
 * Parse one .ndb line (already stripped of CR/LF; blank and `#` lines are the caller's).
 * Throws SignatureFileError for syntax errors; returns {ok:false} for skipped signatures.
 */
export function parseNdbLine(line: string, file: string, lineNo: number): NdbLineResult {
  const fail = (reason: string): never => {
    throw new SignatureFileError(SIG_ERROR_CODES.syntax, file, lineNo, reason);
  };
  const f = line.split(':');
  if (f.length < 4 || f.length > 6) fail(`expected 4 to 6 ':'-separated fields, got ${f.length}`);
  const [name, target, offset, hex, minFl, maxFl] = f as [string, string, string, string, string?, string?];
  if (name.length === 0) fail('empty signature name');
  if (!/^[0-9]+$/.test(target)) fail(`bad target type '${target}'`);
  // FLEVEL first: a signature for a newer engine may use syntax we do not know.
  if (minFl !== undefined && minFl !== '') {
    if (!/^[0-9]+$/.test(minFl)) fail(`bad MinFL '${minFl}'`);
    if (Number(minFl) > ENGINE_FLEVEL) return { ok: false, skip: 'flevel' };
  }
  if (maxFl !== undefined && maxFl !== '') {
    if (!/^[0-9]+$/.test(maxFl)) fail(`bad MaxFL '${maxFl}'`);
    if (Number(maxFl) < ENGINE_FLEVEL) return { ok: false, skip: 'flevel' };
  }
  try {
    const off = parseOffset(offset);
    const raw = parseHex(hex);
    const segments = raw.map((r) => ({ gapMin: r.gapMin, gapMax: r.gapMax, forms: expand(r.elems) }));
    return { ok: true, sig: { name, target: Number(target), offset: off, segments } };
  } catch (e) {
    if (e instanceof Unsupported) return { ok: false, skip: e.reason };
    if (e instanceof HexSyntax) return fail(e.message);
    throw e;
  }
}
