/**
 * charset.ts — bytes → JS string for header parameters and encoded-words.
 *
 * Input: raw bytes plus a declared charset label (or none). Output: a string.
 * Known labels go through TextDecoder (Node's ICU knows utf-8, iso-8859-*, windows-*,
 * shift_jis, …); an unknown label falls back to latin1 so a name is never lost.
 * Undeclared 8-bit bytes (RFC 6532 style raw UTF-8 in headers) are tried as UTF-8
 * first and read as latin1 when that fails. Never throws.
 */

import { TextDecoder } from 'node:util';

const decoders = new Map<string, TextDecoder | null>();

// Node's TextDecoder reads the WHATWG windows-1252 labels (latin1, iso-8859-1, us-ascii, …)
// as plain ISO-8859-1, so 0x80–0x9F would come out as C1 controls instead of € “ ” etc.
const CP1252_LABELS = new Set(['windows-1252', 'cp1252', 'x-cp1252', 'iso-8859-1', 'iso8859-1', 'latin1', 'l1', 'us-ascii', 'ascii', 'iso-ir-100', 'ibm819', 'cp819', 'csisolatin1', 'iso_8859-1']);
const CP1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

function cp1252(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    s += b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b);
  }
  return s;
}

function decoderFor(label: string): TextDecoder | null {
  const key = label.trim().toLowerCase();
  let d = decoders.get(key);
  if (d === undefined) {
    try {
      d = new TextDecoder(key);
    } catch {
      d = null; // unknown label: best effort latin1
    }
    if (decoders.size < 64) decoders.set(key, d);
  }
  return d;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export function latin1Bytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** Decode `bytes` declared as `charset`; no charset → UTF-8 if valid, else latin1. */
export function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  if (charset) {
    if (CP1252_LABELS.has(charset.trim().toLowerCase())) return cp1252(bytes);
    const d = decoderFor(charset);
    if (d) return d.decode(bytes);
    return latin1(bytes);
  }
  return utf8OrLatin1(bytes);
}

export function utf8OrLatin1(bytes: Uint8Array): string {
  let high = false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) { high = true; break; }
  if (!high) return latin1(bytes);
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return latin1(bytes);
  }
}

/** A header string holding raw bytes as latin1 chars → text (raw UTF-8 if it is valid UTF-8). */
export function rawHeaderText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x80-\xff]/.test(s) ? utf8OrLatin1(latin1Bytes(s)) : s;
}
