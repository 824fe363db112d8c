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

export function parseStructured(v: string): StructuredValue {
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
  return { value, params: assembleParams(raw) };
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
