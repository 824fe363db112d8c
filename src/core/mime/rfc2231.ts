/**
 * rfc2231.ts — assemble MIME parameters, with RFC 2231 continuations and charsets.
 *
 * Input: raw (name, value) pairs as tokenised from a header (names as sent, values
 * unquoted). Output: Map lower-case name → decoded string.
 *   name*=charset'lang'%XX…     one extended value
 *   name*0*=charset'lang'%XX…   extended section 0, then name*1*=… / name*1=…
 * Extended sections are percent-decoded to bytes and the whole value decoded with the
 * charset of section 0 (unknown charset → latin1). Plain values get RFC 2047 decoding
 * (senders put encoded-words in quoted names although RFC 2047 forbids it).
 * First occurrence of a name wins; an RFC 2231 value beats a plain one of the same name
 * (a 2231-aware sender adds the plain one only as a fallback). Sections stop at the
 * first gap and at MAX_SECTIONS.
 */
import { decodeCharset, latin1Bytes } from './charset.js';
import { decodeEncodedWords } from './rfc2047.js';

const MAX_SECTIONS = 1000;
const SECTION = /^([^*]+)\*(\d{1,4})?(\*)?$/;

interface Section {
  value: string;
  extended: boolean;
}

/** RFC 2231 %XX decoding; a `%` not followed by two hex digits is kept as it is. */
export function percentDecode(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out[n++] = parseInt(s.slice(i + 1, i + 3), 16);
      i += 2;
    } else out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

/** Split `charset'lang'data`; without two quotes the whole string is data. */
export function splitExtended(v: string): { charset: string | undefined; data: string } {
  const a = v.indexOf("'");
  const b = a < 0 ? -1 : v.indexOf("'", a + 1);
  if (a < 0 || b < 0) return { charset: undefined, data: v };
  return { charset: v.slice(0, a) || undefined, data: v.slice(b + 1) };
}

export function assembleParams(raw: ReadonlyArray<readonly [string, string]>): Map<string, string> {
  const plain = new Map<string, string>();
  const ext = new Map<string, Map<number, Section>>();
  for (const [rawName, value] of raw) {
    const name = rawName.trim().toLowerCase();
    if (!name) continue;
    const m = SECTION.exec(name);
    if (!m) {
      if (!plain.has(name)) plain.set(name, value);
      continue;
    }
    const base = m[1]!;
    const idx = m[2] === undefined ? -1 : Number(m[2]);
    let sections = ext.get(base);
    if (!sections) ext.set(base, (sections = new Map()));
    if (idx < 0) {
      if (!sections.has(-1)) sections.set(-1, { value, extended: true });
    } else if (!sections.has(idx)) sections.set(idx, { value, extended: m[3] === '*' });
  }
  const out = new Map<string, string>();
  for (const [name, v] of plain) out.set(name, decodeEncodedWords(v));
  for (const [name, sections] of ext) {
    const single = sections.get(-1);
    let decoded: string | undefined;
    if (sections.has(0)) {
      const parts: Uint8Array[] = [];
      let charset: string | undefined;
      for (let i = 0; i < MAX_SECTIONS; i++) {
        const s = sections.get(i);
        if (!s) break;
        if (s.extended) {
          let data = s.value;
          if (i === 0) ({ charset, data } = splitExtended(s.value));
          parts.push(percentDecode(data));
        } else parts.push(latin1Bytes(s.value));
      }
      decoded = decodeCharset(Buffer.concat(parts), charset);
    } else if (single) {
      const { charset, data } = splitExtended(single.value);
      decoded = decodeCharset(percentDecode(data), charset);
    }
    if (decoded !== undefined) out.set(name, decoded);
  }
  return out;
}
