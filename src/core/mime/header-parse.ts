/**
 * header-parse.ts — structured MIME header values: Content-Type, Content-Disposition,
 * Content-Transfer-Encoding, and the attachment file name.
 *
 * Input: one unfolded header value as a latin1 string (bounded by the splitter's
 * header-line limit, so plain string work is fine here). Output: lower-cased tokens and
 * a parameter map (RFC 2231 assembled, RFC 2047 decoded; see rfc2231.ts).
 * Tolerant like common MUAs: comments `( … )` are skipped, unterminated quotes run to
 * the end, unquoted values run to the next `;` (so `name=my file.exe` keeps its space),
 * junk between parameters is skipped. Never throws.
 */
import { assembleParams } from './rfc2231.js';

export interface StructuredValue {
  /** Lower-cased value before the first `;`, comments and whitespace removed. */
  value: string;
  params: Map<string, string>;
}

const TOKEN_TYPE = /^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Skip whitespace and (nested) comments from i; returns the new index. */
function skipCfws(s: string, i: number): number {
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') i++;
    else if (c === '(') {
      let depth = 0;
      for (; i < s.length; i++) {
        const d = s[i];
        if (d === '\\') i++;
        else if (d === '(') depth++;
        else if (d === ')' && --depth === 0) {
          i++;
          break;
        }
      }
    } else break;
  }
  return i;
}

function stripComments(s: string): string {
  if (s.indexOf('(') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; ) {
    if (s[i] === '(') i = skipCfws(s, i);
    else out += s[i++];
  }
  return out;
}

/** The value's parameters as sent: (name, unquoted value) pairs in order, nothing assembled. */
export function rawParams(v: string): [string, string][] {
  return tokenize(v).raw;
}

export function parseStructured(v: string): StructuredValue {
  const t = tokenize(v);
  return { value: t.value, params: assembleParams(t.raw) };
}

function tokenize(v: string): { value: string; raw: [string, string][] } {
  let i = 0;
  let q = false;
  // the head ends at the first `;` outside quotes
  for (; i < v.length; i++) {
    const c = v[i];
    if (c === '"') q = !q;
    else if (c === ';' && !q) break;
  }
  const value = stripComments(v.slice(0, i)).trim().toLowerCase();
  const raw: [string, string][] = [];
  while (i < v.length) {
    i++; // past ';'
    i = skipCfws(v, i);
    let j = i;
    while (j < v.length && v[j] !== '=' && v[j] !== ';') j++;
    const name = stripComments(v.slice(i, j)).trim();
    i = j;
    if (i >= v.length || v[i] === ';') continue; // attribute without value: ignore
    i = skipCfws(v, i + 1);
    let value2 = '';
    if (v[i] === '"') {
      for (i++; i < v.length && v[i] !== '"'; i++) {
        if (v[i] === '\\' && i + 1 < v.length) i++;
        value2 += v[i];
      }
      i++; // closing quote
      while (i < v.length && v[i] !== ';') i++; // junk after the quoted string
    } else {
      j = i;
      while (j < v.length && v[j] !== ';') j++;
      value2 = v.slice(i, j).trim();
      i = j;
    }
    if (name) raw.push([name, value2]);
  }
  return { value, raw };
}

/** `type/subtype` lower-cased, or '' when absent or not a valid media type. */
export function parseContentType(v: string | undefined): StructuredValue {
  if (v === undefined) return { value: '', params: new Map() };
  const s = parseStructured(v);
  s.value = s.value.replace(/[ \t]*\/[ \t]*/, '/'); // tolerate `text / plain`
  if (!TOKEN_TYPE.test(s.value)) s.value = '';
  return s;
}

export function parseDisposition(v: string | undefined): StructuredValue {
  if (v === undefined) return { value: '', params: new Map() };
  const s = parseStructured(v);
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(s.value)) s.value = '';
  return s;
}

/** Lower-cased CTE token ('' when absent); comments and whitespace removed. */
export function parseTransferEncoding(v: string | undefined): string {
  if (v === undefined) return '';
  return stripComments(v).replace(/\s+/g, '').toLowerCase();
}

/** Content-Disposition filename wins over Content-Type name; '' counts as absent. */
export function pickFilename(cd: StructuredValue, ct: StructuredValue): string | undefined {
  const f = cd.params.get('filename');
  if (f) return f;
  const n = ct.params.get('name');
  return n ? n : undefined;
}

/** One way a client could read a Content-Type value: the media type and the boundary it splits by. */
export interface TypeReading {
  /** Lower-cased `type/subtype`, '' when invalid (read as text/plain). */
  type: string;
  /** The boundary parameter, trailing whitespace removed; undefined when absent. */
  boundary: string | undefined;
  /** Why this reading exists beside the strict one (anomaly code); '' for the strict reading. */
  code: string;
}

const MAX_TYPE_READINGS = 8;

/**
 * Every plausible reading of one Content-Type value, the strict one (parseContentType,
 * first boundary parameter) first. The others are what lenient clients make of the same
 * bytes: a quoted type (`"multipart/mixed"`: mailparser unquotes it, Python does not), a
 * missing `;` before a parameter, a repeated or RFC 2231 `boundary` (first or last),
 * a boundary cut at NUL (C clients). Distinct (type, boundary) pairs only, bounded.
 * `strict`: v already parsed by parseContentType, when the caller has it.
 */
export function contentTypeReadings(v: string | undefined, strict: StructuredValue = parseContentType(v)): TypeReading[] {
  const out: TypeReading[] = [{ type: strict.value, boundary: cleanBoundary(strict.params.get('boundary')), code: '' }];
  if (v === undefined || !needsVariants(v, strict.value)) return out;
  const add = (type: string, boundary: string | undefined, code: string) => {
    if (out.length >= MAX_TYPE_READINGS) return;
    const b = cleanBoundary(boundary);
    if (!out.some((r) => r.type === type && r.boundary === b)) out.push({ type, boundary: b, code });
  };
  const t = tokenize(v);
  // the head without quotes (`"multipart/mixed"`) and cut at the first whitespace
  // (`multipart/mixed boundary=b`: a missing `;`)
  const head = stripComments(v.split(';', 1)[0]!).trim();
  const unquoted = head.replace(/"/g, '').trim().toLowerCase();
  const firstWord = unquoted.split(/[ \t\r\n]+/, 1)[0]!.replace(/[ \t]*\/[ \t]*/, '/');
  const types = new Set<string>([strict.value]);
  for (const cand of [unquoted.replace(/[ \t]*\/[ \t]*/, '/'), firstWord]) if (TOKEN_TYPE.test(cand)) types.add(cand);
  // boundary values: every plain occurrence, the RFC 2231 one, and `boundary=` written
  // without a `;` before it
  const bounds: string[] = [];
  for (const [n, val] of t.raw) if (n.trim().toLowerCase() === 'boundary') bounds.push(val);
  const ext = assembleParams(t.raw.filter(([n]) => /^boundary\*/i.test(n.trim()))).get('boundary');
  if (ext !== undefined) bounds.push(ext);
  const loose = /(?:^|[\s;])boundary[ \t]*=[ \t]*("([^"]*)"?|[^\s;"]+)/gi;
  for (let m = loose.exec(v); m; m = loose.exec(v)) bounds.push(m[2] ?? m[1]!);
  const withCuts: string[] = [];
  for (const b of bounds) {
    withCuts.push(b);
    const nul = b.indexOf('\0');
    if (nul >= 0) withCuts.push(b.slice(0, nul));
  }
  for (const type of types) {
    add(type, strict.params.get('boundary'), 'content-type-variant');
    for (const b of withCuts) add(type, b, 'boundary-variant');
  }
  return out;
}

/**
 * The only reading of a Content-Type value no client reads differently (most values), or
 * null when contentTypeReadings has more to say. Allocates nothing else: the common path.
 */
export function soleTypeReading(v: string | undefined, strict: StructuredValue): TypeReading | null {
  if (v !== undefined && needsVariants(v, strict.value)) return null;
  return { type: strict.value, boundary: cleanBoundary(strict.params.get('boundary')), code: '' };
}

/** Cheap test: could a lenient client read this value differently at all? (Most values: no.) */
function needsVariants(v: string, strictType: string): boolean {
  if (v.indexOf('\0') >= 0) return true;
  const semi = v.indexOf(';');
  const head = semi < 0 ? v : v.slice(0, semi);
  if (head.indexOf('"') >= 0 || strictType === '') return true;
  const b = v.search(/boundary/i);
  if (b < 0) return false;
  // a second boundary, an RFC 2231 one, or one in the head (no `;` before it)
  return b < head.length || /boundary[ \t]*\*/i.test(v) || v.slice(b + 8).search(/boundary/i) >= 0;
}

function cleanBoundary(b: string | undefined): string | undefined {
  return b === undefined ? undefined : b.replace(/[ \t]+$/, '');
}
