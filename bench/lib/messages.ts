// Workload messages (deterministic): bodies are prepared once as dot-stuffed CRLF buffers
// ending in CRLF; the load generator prepends a small per-message header block with a
// unique X-Bench-Id so the sink can account for every message.
import { gzipSync } from 'node:zlib';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/** xorshift32: deterministic pseudo-random bytes */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

/** A PE-looking blob of `size` bytes: MZ header, then pseudo-random bytes (incompressible). */
export function randomExe(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  const r = prng(seed);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(r(), Math.min(i, size - 4));
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

/**
 * A compressible PE-looking blob: repeated "instruction-like" records drawn from a small
 * vocabulary, with some random immediates, so gzip shrinks it to roughly a quarter — like
 * real executables.
 */
export function compressibleExe(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  const r = prng(seed);
  const vocab: Buffer[] = [];
  for (let i = 0; i < 64; i++) {
    const len = 3 + (r() % 12);
    const v = Buffer.alloc(len);
    for (let j = 0; j < len; j++) v[j] = r() & 0xff;
    vocab.push(v);
  }
  let o = 0;
  while (o < size) {
    const v = vocab[r() % vocab.length]!;
    o += v.copy(b, o);
    if (o < size && (r() & 7) === 0) { b[o++] = r() & 0xff; }
  }
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

function b64lines(data: Buffer): string {
  const s = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 76) out.push(s.slice(i, i + 76));
  return out.join('\r\n');
}

function text(size: number, seed: number): string {
  const r = prng(seed);
  const words = ['the', 'mail', 'filter', 'stream', 'queue', 'report', 'meeting', 'budget', 'review', 'server',
    'proxy', 'today', 'please', 'attached', 'figures', 'quarter', 'results', 'thanks', 'regards', 'project'];
  const lines: string[] = [];
  let n = 0;
  while (n < size) {
    let line = '';
    while (line.length < 66) line += (line ? ' ' : '') + words[r() % words.length];
    lines.push(line);
    n += line.length + 2;
  }
  return lines.join('\r\n');
}

/** Dot-stuff a CRLF text and make sure it ends in CRLF. */
function finish(s: string): Buffer {
  let t = s.replace(/\r\n\./g, '\r\n..');
  if (t.startsWith('.')) t = '.' + t;
  if (!t.endsWith('\r\n')) t += '\r\n';
  return Buffer.from(t, 'latin1');
}

function mime(subject: string, textPart: string, attach?: { name: string; type: string; data: Buffer }): Buffer {
  const h = `From: bench <sender@bench.test>\r\nTo: rcpt <rcpt@sink.test>\r\nSubject: ${subject}\r\n` +
    `Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n`;
  if (!attach) return finish(h + 'Content-Type: text/plain; charset=us-ascii\r\n\r\n' + textPart);
  const bnd = '=_bench_boundary_0001';
  return finish(h + `Content-Type: multipart/mixed; boundary="${bnd}"\r\n\r\n` +
    `This is a multi-part message in MIME format.\r\n--${bnd}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n` +
    textPart + `\r\n--${bnd}\r\nContent-Type: ${attach.type}; name="${attach.name}"\r\n` +
    `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="${attach.name}"\r\n\r\n` +
    b64lines(attach.data) + `\r\n--${bnd}--\r\n`);
}

export interface Workload {
  key: string;
  title: string;
  /** body variants; `pick(i)` selects the body for the i-th message of a session */
  bodies: Buffer[];
  pick: (i: number, session: number) => number;
}

export function workloads(): Workload[] {
  const exe1m = randomExe(1 << 20, 1);
  const comp1m = compressibleExe(1 << 20, 2);
  const gz = gzipSync(comp1m, { level: 6 });
  const exe35k = randomExe(35 * 1024, 3);
  const t4k = mime('4 KB text', text(4096 - 200, 4));
  const mixAtt = mime('mix with attachment', text(600, 5), { name: 'setup.exe', type: 'application/octet-stream', data: exe35k });
  return [
    { key: 'b64-1m', title: '1 MB executable, base64', bodies: [mime('1 MB exe', text(400, 6), { name: 'tool.exe', type: 'application/octet-stream', data: exe1m })], pick: () => 0 },
    { key: 'gz-1m', title: `same content gzipped (${Math.round(gz.length / 1024)} KB .gz of a 1 MB exe)`, bodies: [mime('gz exe', text(400, 7), { name: 'tool.exe.gz', type: 'application/gzip', data: gz })], pick: () => 0 },
    { key: 'text-4k', title: '4 KB text', bodies: [t4k], pick: () => 0 },
    // 80/20 mix: every 5th message (offset per session) carries the 35 KB attachment
    { key: 'mix', title: 'mix: 80% 4 KB text, 20% 35 KB executable attachment', bodies: [t4k, mixAtt], pick: (i, s) => ((i + s) % 5 === 0 ? 1 : 0) },
  ];
}

/** Infected variants (EICAR as a plain line, and as an attachment). */
export function virusBodies(): Buffer[] {
  return [
    mime('eicar inline', 'see below\r\n' + EICAR),
    mime('eicar attached', 'attached', { name: 'eicar.com', type: 'application/octet-stream', data: Buffer.from(EICAR, 'latin1') }),
  ];
}

/** A large message for the memory test: `size` bytes of base64 attachment lines. */
export function bigBody(size: number): Buffer {
  const chunk = randomExe(256 * 1024, 9);
  const parts: Buffer[] = [];
  let n = 0;
  while (n < size * 0.74) { parts.push(chunk); n += chunk.length; }
  return mime('big', 'big attachment', { name: 'big.bin', type: 'application/octet-stream', data: Buffer.concat(parts) });
}

export function headerFor(id: string): Buffer {
  return Buffer.from(`X-Bench-Id: ${id}\r\nMessage-ID: <${id}@bench.test>\r\n`, 'latin1');
}
