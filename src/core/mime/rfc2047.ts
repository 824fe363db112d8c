/**
 * rfc2047.ts — decode RFC 2047 encoded-words (`=?charset?B|Q?text?=`) in a header string.
 *
 * Input: an unfolded, bounded header value (latin1 string). Output: text.
 * Whitespace between two adjacent encoded-words is dropped (RFC 2047 §6.2); adjacent
 * words with the same charset are joined at the byte level before decoding, so a
 * multibyte character split across two words (common in the wild) survives.
 * Tolerant: encoded-words inside quoted strings and words with an RFC 2231 `*lang`
 * suffix are decoded too; malformed words are left as they are. Never throws.
 */
import { decodeCharset, rawHeaderText } from './charset.js';

const WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

function qDecode(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f) out[n++] = 0x20; // '_' is space in Q
    else if (c === 0x3d && i + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out[n++] = parseInt(text.slice(i + 1, i + 3), 16);
      i += 2;
    } else out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

function wordBytes(enc: string, text: string): Uint8Array {
  return enc === 'b' || enc === 'B' ? Buffer.from(text, 'base64') : qDecode(text);
}

/** `force`: decode every word's bytes with this charset instead of the declared one (name variants). */
export function decodeEncodedWords(s: string, force?: string): string {
  if (s.indexOf('=?') < 0) return rawHeaderText(s);
  let out = '';
  let last = 0;
  let pendCharset: string | null = null;
  let pend: Uint8Array[] = [];
  const flush = () => {
    if (pendCharset !== null) out += decodeCharset(Buffer.concat(pend), force ?? pendCharset);
    pendCharset = null;
    pend = [];
  };
  WORD.lastIndex = 0;
  for (let m = WORD.exec(s); m; m = WORD.exec(s)) {
    const gap = s.slice(last, m.index);
    const charset = m[1]!.replace(/\*.*$/, '').toLowerCase();
    if (pendCharset !== null && /^[ \t]*$/.test(gap)) {
      // adjacent words: drop the whitespace between them
      if (charset !== pendCharset) flush();
    } else {
      flush();
      out += rawHeaderText(gap);
    }
    pendCharset = charset;
    pend.push(wordBytes(m[2]!, m[3]!));
    last = m.index + m[0].length;
  }
  flush();
  return out + rawHeaderText(s.slice(last));
}
