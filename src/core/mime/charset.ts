/**
 * charset.ts — bytes → JS string for header parameters and encoded-words.
 *
 * Input: raw bytes plus a declared charset label (or none). Output: a string.
 * Known labels go through TextDecoder (Node's ICU knows utf-8, iso-8859-*, windows-*,
 * shift_jis, …); an unknown label falls back to latin1 so a name is never lost.
 * Undeclared 8-bit bytes (RFC 6532 style raw UTF-8 in headers) are tried as UTF-8
 * first and read as latin1 when that fails. Never throws.
 * WHATWG TextDecoder has no UTF-7 and no UTF-32, which Outlook and others do decode in
 * names, so both are done here (a few lines each; no maintained npm package covers both).
 * charsetVariants() gives every plausible reading of a name's bytes (declared charset,
 * both byte orders of an unmarked UTF-16/32, UTF-8, windows-1252) for the banned checks.
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
    const key = charset.trim().toLowerCase();
    if (CP1252_LABELS.has(key)) return cp1252(bytes);
    if (UTF7_LABELS.has(key)) return utf7(bytes);
    if (UTF32_LABELS.has(key)) return utf32(bytes, key.endsWith('le') || (key !== 'utf-32be' && bytes[0] === 0xff && bytes[1] === 0xfe));
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

const UTF7_LABELS = new Set(['utf-7', 'utf7', 'unicode-1-1-utf-7', 'csunicode11utf7', 'x-unicode-2-0-utf-7', 'unicode-2-0-utf-7']);
const UTF32_LABELS = new Set(['utf-32', 'utf32', 'utf-32le', 'utf-32be', 'ucs-4', 'iso-10646-ucs-4', 'csucs4']);
const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** RFC 2152: `+` opens modified base64 of UTF-16BE up to `-` or any non-base64 byte; `+-` is `+`. */
function utf7(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i++]!;
    if (c !== 0x2b) {
      s += String.fromCharCode(c);
      continue;
    }
    if (bytes[i] === 0x2d) {
      s += '+';
      i++;
      continue;
    }
    let acc = 0;
    let bits = 0;
    const units: number[] = [];
    while (i < bytes.length && bytes[i]! < 128 && B64[bytes[i]!]! >= 0) {
      acc = ((acc << 6) | B64[bytes[i++]!]!) & 0xffffff;
      bits += 6;
      if (bits >= 16) {
        bits -= 16;
        units.push((acc >> bits) & 0xffff);
      }
    }
    if (bytes[i] === 0x2d) i++; // the `-` that ends a shifted run is absorbed
    s += String.fromCharCode(...units);
  }
  return s;
}

function utf32(bytes: Uint8Array, le: boolean): string {
  let s = '';
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    const cp = le
      ? (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0
      : ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    if (cp === 0xfeff && i === 0) continue; // BOM
    s += cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
  }
  return s;
}

/**
 * Every plausible text of a name's bytes, the declared charset first: an unmarked
 * UTF-16/UTF-32 in both byte orders, then UTF-8 (when valid) and windows-1252, so a
 * name that a client reads as `a.exe` under some charset is seen as such here.
 */
export function charsetVariants(bytes: Uint8Array, charset: string | undefined): string[] {
  const out: string[] = [];
  const add = (s: string) => {
    if (!out.includes(s)) out.push(s);
  };
  add(decodeCharset(bytes, charset));
  const key = (charset ?? '').trim().toLowerCase();
  if (key.startsWith('utf-16') || key === 'utf16' || key.startsWith('ucs-2') || key === 'unicode') {
    add(new TextDecoder('utf-16le').decode(bytes));
    add(new TextDecoder('utf-16be').decode(bytes));
  }
  if (UTF32_LABELS.has(key)) {
    add(utf32(bytes, true));
    add(utf32(bytes, false));
  }
  add(utf8OrLatin1(bytes));
  add(cp1252(bytes));
  return out;
}
