/**
 * mail-build.ts — build test messages in memory (no fixtures on disk needed).
 * Output is CRLF unless `lf` is set. Attachments are base64 with 76-char lines.
 */
import { zipSync, strToU8 } from 'fflate';
import { gzipSync } from 'node:zlib';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
export const EICAR_BYTES = Buffer.from(EICAR, 'latin1');

export interface Attachment {
  filename?: string;
  contentType?: string;
  content: Uint8Array | string;
  encoding?: 'base64' | 'quoted-printable' | '7bit';
}

export function b64lines(data: Uint8Array): string {
  const s = Buffer.from(data).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < s.length; i += 76) lines.push(s.slice(i, i + 76));
  return lines.join('\r\n');
}

function encodePart(a: Attachment): string {
  const bytes = typeof a.content === 'string' ? Buffer.from(a.content, 'latin1') : a.content;
  const enc = a.encoding ?? 'base64';
  const ct = a.contentType ?? 'application/octet-stream';
  const h = [`Content-Type: ${ct}${a.filename ? `; name="${a.filename}"` : ''}`];
  if (a.filename) h.push(`Content-Disposition: attachment; filename="${a.filename}"`);
  h.push(`Content-Transfer-Encoding: ${enc}`);
  const body = enc === 'base64' ? b64lines(bytes) : Buffer.from(bytes).toString('latin1');
  return h.join('\r\n') + '\r\n\r\n' + body;
}

/** A multipart/mixed message with a text part and the given attachments. */
export function multipartMessage(attachments: Attachment[], opts: { subject?: string; text?: string; boundary?: string } = {}): Buffer {
  const b = opts.boundary ?? 'midstream-test-boundary';
  const parts = [
    `Content-Type: text/plain; charset=us-ascii\r\n\r\n${opts.text ?? 'Hello, see attached.'}`,
    ...attachments.map(encodePart),
  ];
  const msg =
    `From: sender@example.com\r\nTo: rcpt@example.net\r\nSubject: ${opts.subject ?? 'test'}\r\n` +
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/mixed; boundary="${b}"\r\n\r\nThis is a MIME message.\r\n` +
    parts.map((p) => `--${b}\r\n${p}\r\n`).join('') +
    `--${b}--\r\n`;
  return Buffer.from(msg, 'latin1');
}

export function plainMessage(text: string, subject = 'plain'): Buffer {
  return Buffer.from(`From: a@example.com\r\nTo: b@example.net\r\nSubject: ${subject}\r\n\r\n${text}\r\n`, 'latin1');
}

export function zip(files: Record<string, Uint8Array | string>, level: 0 | 6 = 6): Uint8Array {
  const o: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [k, v] of Object.entries(files)) o[k] = [typeof v === 'string' ? strToU8(v, true) : v, { level }];
  return zipSync(o);
}

export function gzip(data: Uint8Array | string): Uint8Array {
  return gzipSync(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
}

/** Deterministic pseudo-random bytes (xorshift), so tests and benches are reproducible. */
export function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Split `data` into chunks of the given size (the last may be shorter). */
export function chunks(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, Math.min(data.length, i + size)));
  return out;
}
