/**
 * bench/conn-memory.ts — memory per held connection, measured in process after a full GC
 * (the peer bench's RSS slope moves with GC timing on a shared machine; this does not).
 *
 * The proxy (startProxy) in this process with a real engine — built-in only, or built-in +
 * a real clamd per-file with `max_concurrent` slots — forwards to a sink. N clients each
 * send the head of a 10 MB message (a base64 attachment) up to `--hold` bytes and stop
 * there, holding the connection; then a full GC and process.memoryUsage(). Reported:
 * (heapUsed + external + arrayBuffers) at N2 minus at N1, divided by N2 − N1.
 * Run: node --expose-gc dist/bench/conn-memory.js [--n 50,200] [--hold 1048576]
 * Limits: what the kernel buffers for the held sockets is not counted (it is not ours).
 * Measured 2026-12-04 (50 → 200 held connections, 1 MiB of a base64 attachment each):
 * built-in 60 KB per connection; clamd per-file or whole-message (24 slots, so 176 of the
 * new connections wait for one) ~283 KB, raw_message on or off alike. Each waiting one
 * holds its clamd stream's pending copy (~48 KB: the decoded output of the push that
 * crossed the 16 KiB mark) and the proxy's last socket read (a 64 KiB buffer) while it
 * waits; the rest is being investigated.
 */
import { connect, type Socket } from 'node:net';
import { startProxy } from '../src/smtp/proxy-server.js';
import { createLogger } from '../src/log/logger.js';
import { createEngine, type EngineOptions } from '../src/core/index.js';
import { startSink } from '../test/helpers/sink.js';
import { startClamd } from '../test/helpers/clamd.js';
import { b64lines, pseudoRandom } from '../test/helpers/mail-build.js';

const arg = (n: string, d: string) => {
  const i = process.argv.indexOf(n);
  return i > 0 ? process.argv[i + 1]! : d;
};
const COUNTS = arg('--n', '50,200').split(',').map(Number);
const HOLD = Number(arg('--hold', String(1024 * 1024)));

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const head = Buffer.from(
  'From: a@example.org\r\nTo: b@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n' +
    '--b\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  'latin1',
);
const body = Buffer.from(b64lines(pseudoRandom(8 * 1024 * 1024, 5)), 'latin1');

/** Open one session and send up to HOLD bytes of DATA; resolves when written (the socket stays open). */
function holdOne(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let buf = '';
    let step = 0;
    const cmds = ['EHLO c.example\r\n', 'MAIL FROM:<a@example.org>\r\n', 'RCPT TO:<b@example.net>\r\n', 'DATA\r\n'];
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      // one reply per step: the greeting, then each command's (multi-line EHLO ends with "250 ")
      while (/(^|\n)\d{3} [^\n]*\n/.test(buf)) {
        buf = buf.replace(/^[\s\S]*?(^|\n)\d{3} [^\n]*\n/, '');
        if (step < cmds.length) s.write(cmds[step++]!);
        else if (step === cmds.length) {
          step++;
          const data = Buffer.concat([head, body]).subarray(0, HOLD);
          s.write(data, () => resolve(s));
        }
      }
    });
  });
}

async function measure(label: string, opts: EngineOptions): Promise<void> {
  const sink = await startSink({ storeData: false });
  const engine = await createEngine(opts);
  const proxy = await startProxy({ listen: '127.0.0.1:0', forward: `127.0.0.1:${sink.port}`, engine, logger: createLogger({ level: 'error' }), hostname: 'm.test', maxConnections: 10_000 });
  const port = Number(proxy.address.split(':').pop());
  const socks: Socket[] = [];
  const points: { n: number; bytes: number }[] = [];
  for (const n of COUNTS) {
    while (socks.length < n) socks.push(...(await Promise.all(Array.from({ length: Math.min(25, n - socks.length) }, () => holdOne(port)))));
    await new Promise((r) => setTimeout(r, 1500)); // let what was sent reach the core
    points.push({ n, bytes: used() });
  }
  const [a, b] = [points[0]!, points[points.length - 1]!];
  process.stdout.write(`${label}: ${points.map((p) => `${p.n} held: ${(p.bytes / 1048576).toFixed(1)} MB`).join(', ')} → ${((b.bytes - a.bytes) / (b.n - a.n) / 1024).toFixed(1)} KB per connection\n`);
  for (const s of socks) s.destroy();
  await proxy.close();
  await engine.close();
  await sink.close();
}

async function main(): Promise<void> {
  await measure('built-in', {});
  const clamd = await startClamd();
  try {
    await measure('built-in + clamd per-file (max_concurrent 24)', { clamd: { endpoints: [clamd.unix], maxConcurrent: 24, cacheEntries: 0 } });
    await measure('same, raw_message off', { clamd: { endpoints: [clamd.unix], maxConcurrent: 24, cacheEntries: 0, rawMessage: 'off' } });
    await measure('clamd whole-message (max_concurrent 24)', { clamd: { endpoints: [clamd.unix], maxConcurrent: 24, cacheEntries: 0, mode: 'whole-message' } });
  } finally {
    await clamd.stop();
  }
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
