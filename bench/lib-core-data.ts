/**
 * lib-core-data.ts — deterministic workloads for bench/core-bench.ts.
 *
 * Synthetic .ndb signatures (same mix as bench/sigs-bench.ts: ~70 % static 8–32 bytes,
 * ~12 % with ??/nibble wildcards, ~10 % two segments joined by `*` or `{n-m}`, ~8 %
 * alternatives) and the benchmark messages: CRLF, a text part plus one attachment in
 * base64 with 76-character lines, built from Buffers so a 100 MB attachment does not
 * go through a 137 MB JS string. Attachment payloads are pseudo-random (incompressible,
 * no MZ/ELF magic, so no banned-type verdict), named data.bin / data.bin.gz / data.zip,
 * plus 1 MiB of text-like markup gzipped (report.xml.gz: deflate that really expands).
 * The real-world shapes of the peer benchmark (bench/lib/messages.ts: a .docx as Word
 * writes it, a 5 MB zip of mixed files, 20 small attachments, a PDF with FlateDecode
 * streams, a compressible executable gzipped) are here too, as the same bytes the peer
 * bench sends (its bodies, dot-stuffing undone).
 */
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { pseudoRandom } from '../test/helpers/mail-build.js';
import { workloads as peerWorkloads } from './lib/messages.js';

export interface SynthSigs {
  text: string; // .ndb file contents
  probe: Uint8Array; // bytes the last static signature matches (to check a clamd reload)
}

/** `n` synthetic body signatures, deterministic for a given n (staticOnly: only the 8–32-byte static kind). */
export function synthSignatures(n: number, staticOnly = false): SynthSigs {
  let seed = 0x12345678;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const ri = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const hexBytes = (k: number) => Array.from({ length: k }, () => ri(0, 255).toString(16).padStart(2, '0')).join('');
  const lines: string[] = [];
  let probe: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const p = staticOnly ? 0 : rnd();
    let body: string;
    if (p < 0.7) {
      body = hexBytes(ri(8, 32));
      probe = Buffer.from(body, 'hex'); // the last static one: not in any smaller set
    } else if (p < 0.82) body = hexBytes(ri(4, 10)) + (rnd() < 0.5 ? '??' : hexBytes(1)[0] + '?') + hexBytes(ri(4, 10));
    else if (p < 0.92) body = hexBytes(ri(6, 12)) + (rnd() < 0.5 ? '*' : `{${ri(0, 10)}-${ri(11, 200)}}`) + hexBytes(ri(6, 12));
    else body = hexBytes(ri(5, 10)) + `(${hexBytes(1)}|${hexBytes(1)}|${hexBytes(2)})` + hexBytes(ri(5, 10));
    lines.push(`Bench.Synthetic.${i}:0:*:${body}`);
  }
  return { text: lines.join('\n') + '\n', probe: probe ?? new Uint8Array(0) };
}

const HEAD =
  'From: sender@example.com\r\nTo: rcpt@example.net\r\nSubject: bench\r\n' +
  'Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n' +
  'Content-Type: multipart/mixed; boundary="bench-boundary"\r\n\r\nThis is a MIME message.\r\n' +
  '--bench-boundary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello, see attached.\r\n';

/** Base64 with 76-char CRLF lines (57 input bytes per line), built blockwise. */
export function base64Lines(data: Uint8Array): Buffer {
  const LINES = 1024;
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 57 * LINES) {
    const s = Buffer.from(data.buffer, data.byteOffset + i, Math.min(57 * LINES, data.length - i)).toString('base64');
    const out = Buffer.alloc(s.length + Math.ceil(s.length / 76) * 2);
    let o = 0;
    for (let j = 0; j < s.length; j += 76) {
      o += out.write(s.slice(j, j + 76), o, 'latin1');
      out[o++] = 13;
      out[o++] = 10;
    }
    parts.push(out.subarray(0, o));
  }
  return Buffer.concat(parts);
}

export interface AttachedMessage {
  raw: Buffer;
  /** offset of the first base64 character of the attachment in `raw` */
  bodyStart: number;
}

/** The bench message: text part + one base64 attachment. */
export function attachmentMessage(content: Uint8Array, filename: string, contentType: string): AttachedMessage {
  const head = Buffer.from(
    HEAD +
      `--bench-boundary\r\nContent-Type: ${contentType}; name="${filename}"\r\n` +
      `Content-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    'latin1',
  );
  const tail = Buffer.from('--bench-boundary--\r\n', 'latin1');
  return { raw: Buffer.concat([head, base64Lines(content), tail]), bodyStart: head.length };
}

/** Offset in `raw` of the last base64 character needed to decode attachment byte `i`. */
export function rawOffsetOfDecodedByte(bodyStart: number, i: number): number {
  const ci = Math.floor(i / 3) * 4 + 3; // last char of the quantum holding byte i
  return bodyStart + ci + Math.floor(ci / 76) * 2;
}

/** ~4 KB plain-text message (a reply with quoted text). */
export function textMessage(): Buffer {
  const words = 'the quick brown fox jumps over a lazy dog while invoices are due on monday please confirm receipt'.split(' ');
  let x = 7;
  const lines: string[] = [];
  let size = 0;
  while (size < 3900) {
    let line = '';
    while (line.length < 66) {
      x = (x * 1103515245 + 12345) >>> 0;
      line += (line ? ' ' : '') + words[x % words.length];
    }
    if (lines.length % 9 > 5) line = '> ' + line;
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from(
    'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: Re: the quarterly figures\r\n' +
      'Message-ID: <text-bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n' +
      lines.join('\r\n') +
      '\r\n',
    'latin1',
  );
}

export interface Workload {
  id: string;
  label: string;
  raw: Buffer;
  /** Bytes an archive workload decompresses to (its members), for MB/s of decompressed bytes. */
  unpacked?: number;
  /** `unpacked` is measured by the bench (the core's count of decompressed bytes) before the timed runs. */
  measureUnpacked?: boolean;
}

/** A peer-bench body (dot-stuffed, CRLF) as the message the core sees. */
function unstuff(body: Buffer): Buffer {
  let t = body.toString('latin1').replace(/\r\n\.\./g, '\r\n.');
  if (t.startsWith('..')) t = t.slice(1);
  return Buffer.from(t, 'latin1');
}

/** The peer benchmark's archive-heavy workloads (bench/lib/messages.ts), same bytes. */
function realWorld(): Workload[] {
  const peer = new Map(peerWorkloads().map((w) => [w.key, w]));
  const take = (key: string, id: string, label: string): Workload => {
    const w = peer.get(key)!;
    return { id, label, raw: unstuff(w.bodies[w.bodies.length - 1]!), measureUnpacked: true };
  };
  return [
    take('gz-1m', 'gzexe-1m', 'peer gz-1m: 1 MB executable gzipped (4:1)'),
    take('docx', 'docx', 'peer docx: .docx of 1 MB (XML, photos)'),
    take('zip-5m', 'zip-5m', 'peer zip-5m: zip of mixed files, 5 MB'),
    take('att20', 'att20', 'peer att20: 20 small attachments'),
    take('pdf', 'pdf', 'peer pdf: PDF with FlateDecode, 0.8 MB'),
  ];
}

/** Deterministic text-like bytes (words, numbers, markup) that deflate to about a third. */
export function textLike(n: number, seed = 5): Uint8Array {
  const words = ['<w:p>', '<w:r>', '<w:t>', 'the', 'invoice', 'total', 'amount', 'customer', 'please', 'find', 'attached', 'report', 'quarterly', 'figures', '</w:t>', '</w:r>', '</w:p>', '\n'];
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; ) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0;
    const w = r % 7 === 0 ? String(r % 100000) : words[r % words.length]!;
    for (let k = 0; k < w.length && i < n; k++) out[i++] = w.charCodeAt(k);
    if (i < n) out[i++] = 0x20;
  }
  return out;
}

/** The benchmark messages; `big` = the 100 MB attachment (omitted in --quick runs). */
export function workloads(big: boolean): Workload[] {
  const one = pseudoRandom(1 << 20, 7);
  const text = textLike(1 << 20);
  const w: Workload[] = [
    { id: 'text-4k', label: '4 KB text mail', raw: textMessage() },
    { id: 'b64-1m', label: '1 MB binary, base64', raw: attachmentMessage(one, 'data.bin', 'application/octet-stream').raw },
    { id: 'gz-1m', label: '1 MB binary gzipped, base64', raw: attachmentMessage(gzipSync(one), 'data.bin.gz', 'application/gzip').raw, unpacked: one.length },
    { id: 'zip-1m', label: '1 MB binary zipped (deflate), base64', raw: attachmentMessage(zipSync({ 'data.bin': [one, { level: 6 }] }), 'data.zip', 'application/zip').raw, unpacked: one.length },
    { id: 'gztext-1m', label: '1 MB text gzipped (4.6:1), base64', raw: attachmentMessage(gzipSync(text), 'report.xml.gz', 'application/gzip').raw, unpacked: text.length },
  ];
  w.push(...realWorld());
  if (big) w.push({ id: 'b64-100m', label: '100 MB binary, base64', raw: attachmentMessage(pseudoRandom(100 << 20, 11), 'big.bin', 'application/octet-stream').raw });
  return w;
}

/** Source of a generator child writing a `size`-byte base64 attachment message to stdout. */
export const GENERATOR_SOURCE = String.raw`
const size = Number(process.argv[1]);
const { randomFillSync } = require('node:crypto');
const head = Buffer.from('From: a@example.com\r\nTo: b@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\n' +
  'Content-Type: multipart/mixed; boundary="g"\r\n\r\n--g\r\nContent-Type: text/plain\r\n\r\nbig one\r\n' +
  '--g\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n', 'latin1');
const LINES = 1024, BLOCK = 57 * LINES;
const blocks = [];
for (let k = 0; k < 16; k++) {
  const s = randomFillSync(Buffer.alloc(BLOCK)).toString('base64');
  const out = Buffer.alloc(s.length + LINES * 2); let o = 0;
  for (let j = 0; j < s.length; j += 76) { o += out.write(s.slice(j, j + 76), o, 'latin1'); out[o++] = 13; out[o++] = 10; }
  blocks.push(out);
}
let left = Math.ceil(size / BLOCK), k = 0;
const out = process.stdout;
out.write(head);
(function pump() {
  while (left > 0) { left--; if (!out.write(blocks[k++ & 15])) { out.once('drain', pump); return; } }
  out.end('--g--\r\n');
})();
`;
