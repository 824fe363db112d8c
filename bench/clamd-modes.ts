/**
 * bench/clamd-modes.ts — which clamd mode should be the default?
 *
 * Starts a real clamd (test/helpers/clamd.ts) and times INSTREAM, over the UNIX socket and
 * one message at a time, of
 *   (a) whole-message: a raw ~1 MB RFC 5322 message with a 750 KB base64 attachment;
 *   (b) per-file:      the decoded 750 KB attachment alone (+ the small text part).
 * Reports wall ms per message and clamd CPU ms per message (from /proc/PID/stat).
 * Run: npx tsx bench/clamd-modes.ts [iterations]   (or node dist/bench/clamd-modes.js)
 * Limits: a tiny test database, so this measures clamd's parsing/unpacking cost, not the
 * cost of matching a full official signature set (which adds to both modes alike).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClamdClient } from '../src/core/scan/clamd-client.js';
import { startClamd } from '../test/helpers/clamd.js';

const ITER = Number(process.argv[2] ?? 40);
const KB = 1024;

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(parts[11]) + Number(parts[12]); // utime + stime (fields 14, 15)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function buildMessage(attachment: Buffer): { raw: Buffer; text: Buffer } {
  const text = Buffer.from('Hello,\r\n\r\nplease find the report attached.\r\n\r\nRegards\r\n');
  const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  const raw = Buffer.from(
    'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: report\r\n' +
      'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <bench@example.test>\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="=_b"\r\n\r\n' +
      '--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n' + text.toString('latin1') + '\r\n' +
      '--=_b\r\nContent-Type: application/octet-stream; name="report.bin"\r\n' +
      'Content-Disposition: attachment; filename="report.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      b64 + '\r\n--=_b--\r\n',
    'latin1',
  );
  return { raw, text };
}

async function scanOnce(c: ClamdClient, data: Buffer): Promise<void> {
  const s = c.openStream();
  for (let i = 0; i < data.length; i += 64 * KB) {
    s.write(data.subarray(i, i + 64 * KB));
    if (s.needsDrain) await s.drain();
  }
  const r = await s.end();
  if (r.kind !== 'clean') throw new Error('unexpected result ' + JSON.stringify(r));
}

async function measure(label: string, c: ClamdClient, pid: number, files: Buffer[]): Promise<{ wall: number; cpu: number }> {
  for (let i = 0; i < 3; i++) for (const f of files) await scanOnce(c, f); // warm-up
  const cpu0 = cpuMs(pid);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ITER; i++) for (const f of files) await scanOnce(c, f);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6 / ITER;
  const cpu = (cpuMs(pid) - cpu0) / ITER;
  const bytes = files.reduce((n, f) => n + f.length, 0);
  console.log(`${label.padEnd(44)} ${String(bytes).padStart(8)} B  ${wall.toFixed(2).padStart(7)} ms/msg wall  ${cpu.toFixed(2).padStart(7)} ms/msg clamd CPU`);
  return { wall, cpu };
}

const clamd = await startClamd({ streamMaxLength: '25M' });
try {
  const c = new ClamdClient({ endpoints: [clamd.unix], maxConcurrent: 1 });
  const kinds: [string, Buffer][] = [
    ['random (compressed-like)', randomBytes(750 * KB)],
    ['text-like', Buffer.from('The quick brown fox jumps over the lazy dog. 0123456789\n'.repeat(Math.ceil((750 * KB) / 56))).subarray(0, 750 * KB)],
  ];
  console.log(`clamd INSTREAM over ${clamd.unix}, ${ITER} iterations each, one at a time`);
  for (const [kind, att] of kinds) {
    const { raw, text } = buildMessage(att);
    const a = await measure(`(a) whole raw message, ${kind}`, c, clamd.pid, [raw]);
    const b = await measure(`(b) decoded attachment alone, ${kind}`, c, clamd.pid, [att]);
    const b2 = await measure(`(b') decoded parts: text + attachment`, c, clamd.pid, [text, att]);
    await measure(`(c) the small text part alone`, c, clamd.pid, [text]);
    console.log(`    whole/decoded: wall ×${(a.wall / b.wall).toFixed(1)}, CPU ×${(a.cpu / Math.max(b.cpu, 0.01)).toFixed(1)}; two connections: ${b2.wall.toFixed(2)} ms`);
  }
  c.close();
} finally {
  await clamd.stop();
}
