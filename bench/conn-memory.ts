/**
 * bench/conn-memory.ts — memory per held connection of the proxy, measured in its own
 * process after a full GC (the peer bench's RSS slope moves with GC timing on a shared
 * machine; this does not), with the RSS slope of that process beside it.
 *
 * The proxy (startProxy) runs in a child process (`--child`, started with --expose-gc)
 * with a real engine — built-in only, or built-in + a real clamd (TCP, IDSESSION keepalive
 * and 24 slots as the peer bench's configuration; per-file with raw_message anomaly or off,
 * or whole-message) — and forwards to a sink in this process. N clients each send the head
 * of a 10 MB message (a base64 attachment) up to `--hold` bytes and stop there, holding
 * the connection; then the child runs four full GCs and reports process.memoryUsage().
 * Reported per connection, between the smallest and the largest N: heapUsed; external
 * (the ArrayBuffer backing stores and other off-heap memory: Node's `arrayBuffers` is a
 * part of `external`, not an addition to it); their sum, the retained figure; and the RSS
 * slope (GC headroom included).
 * --slow: the peer bench's method instead (bench/run-peers.ts, memory): N slow senders
 * (bench/lib/load.ts; min(320 KiB/s, 32 MiB/s / N) each) send 1 MiB of a 10 MB message
 * and hold; the child's RSS is sampled every 250 ms (/proc, nothing asked of it) and the
 * per-connection figure is (peak RSS at the largest N − at the smallest) / difference.
 * --rounds R repeats each count R times (peaks and slopes per round, then the median).
 * Run: node dist/bench/conn-memory.js [--n 50,200] [--hold 1048576]
 *        [--configs builtin,perfile,perfile-raw-off,whole] [--clamd tcp|unix] [--snapshot DIR]
 *        [--slow [--rounds 3]] [--node-flags --max-semi-space-size=4,…]
 * --snapshot writes a heap snapshot of the child at each N (see bench/heap-retainers.ts).
 * Limits: what the kernel buffers for the held sockets is not counted (it is not ours).
 * Measured: bench/RESULTS-relay.md (with clamd: what held connections kept) and README (Benchmarks).
 */
import { connect, type Socket } from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { startProxy } from '../src/smtp/proxy-server.js';
import { createLogger } from '../src/log/logger.js';
import { createEngine, type EngineOptions } from '../src/core/index.js';
import { startSink } from '../test/helpers/sink.js';
import { startClamd } from '../test/helpers/clamd.js';
import { b64lines, pseudoRandom } from '../test/helpers/mail-build.js';
import { slowSenders } from './lib/load.js';
import { bigBody } from './lib/messages.js';
import { statusKb, sleep } from './lib/proc.js';

const arg = (n: string, d: string) => {
  const i = process.argv.indexOf(n);
  return i > 0 ? process.argv[i + 1]! : d;
};
/** Extra node flags for the proxy's process (e.g. "--max-semi-space-size=4"), comma-separated. */
const NODE_FLAGS = arg('--node-flags', '').split(',').filter((x) => x !== '');

interface Usage {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

type ChildMsg = { cmd: 'measure' } | { cmd: 'snapshot'; path: string } | { cmd: 'sample'; on: boolean } | { cmd: 'exit' };

/** Peaks of the child's own figures while sampling (--slow): where its RSS went. */
interface Peaks {
  rss: number;
  heapTotal: number;
  newSpace: number;
  external: number;
}

/** The proxy side: started by the parent with the engine options; answers measure/snapshot requests. */
async function child(spec: { opts: EngineOptions; forward: number }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('child needs --expose-gc');
  const engine = await createEngine(spec.opts);
  const proxy = await startProxy({ listen: '127.0.0.1:0', forward: `127.0.0.1:${spec.forward}`, engine, logger: createLogger({ level: 'error' }), hostname: 'm.test', maxConnections: 10_000 });
  let sampler: NodeJS.Timeout | null = null;
  let peaks: Peaks = { rss: 0, heapTotal: 0, newSpace: 0, external: 0 };
  process.on('message', (m: ChildMsg) => {
    if (m.cmd === 'sample') {
      if (sampler) clearInterval(sampler);
      sampler = null;
      if (!m.on) return void process.send!(peaks);
      peaks = { rss: 0, heapTotal: 0, newSpace: 0, external: 0 };
      sampler = setInterval(() => {
        const u = process.memoryUsage();
        const ns = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0;
        peaks = { rss: Math.max(peaks.rss, u.rss), heapTotal: Math.max(peaks.heapTotal, u.heapTotal), newSpace: Math.max(peaks.newSpace, ns), external: Math.max(peaks.external, u.external) };
      }, 100);
      process.send!({ ok: true });
    } else if (m.cmd === 'measure') {
      for (let i = 0; i < 4; i++) gc();
      const u = process.memoryUsage();
      process.send!({ heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers, rss: u.rss } satisfies Usage);
    } else if (m.cmd === 'snapshot') {
      writeHeapSnapshot(m.path);
      process.send!({ done: true });
    } else {
      void proxy.close().then(() => engine.close()).finally(() => process.exit(0));
    }
  });
  process.send!({ port: Number(proxy.address.split(':').pop()) });
}

const head = Buffer.from(
  'From: a@example.org\r\nTo: b@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n' +
    '--b\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  'latin1',
);

/** Open one session and send `data` as DATA content; resolves when written (the socket stays open). */
function holdOne(port: number, data: Buffer): Promise<Socket> {
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
          s.write(data, () => resolve(s));
        }
      }
    });
  });
}

function ask<T>(c: ChildProcess, m: ChildMsg): Promise<T> {
  return new Promise((resolve) => {
    c.once('message', (r) => resolve(r as T));
    c.send(m);
  });
}

const kb = (b: number) => (b / 1024).toFixed(1);

async function measure(label: string, opts: EngineOptions, counts: number[], data: Buffer, snapshotDir: string | null): Promise<void> {
  const sink = await startSink({ storeData: false });
  const c = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify({ opts, forward: sink.port })], { execArgv: ['--expose-gc', ...NODE_FLAGS] });
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      c.once('message', (m) => resolve(m as { port: number }));
      c.once('exit', (code) => reject(new Error(`child exited (${code})`)));
    });
    const socks: Socket[] = [];
    const points: { n: number; u: Usage }[] = [];
    for (const n of counts) {
      while (socks.length < n) socks.push(...(await Promise.all(Array.from({ length: Math.min(25, n - socks.length) }, () => holdOne(port, data)))));
      await new Promise((r) => setTimeout(r, 2000)); // let what was sent reach the core
      points.push({ n, u: await ask<Usage>(c, { cmd: 'measure' }) });
      if (snapshotDir) {
        const path = join(snapshotDir, `conn-${label.replace(/[^a-z0-9]+/gi, '-')}-${n}.heapsnapshot`);
        await ask(c, { cmd: 'snapshot', path });
        process.stdout.write(`  heap snapshot: ${path}\n`);
      }
    }
    const [a, b] = [points[0]!, points[points.length - 1]!];
    const per = (k: keyof Usage) => (b.u[k] - a.u[k]) / (b.n - a.n);
    process.stdout.write(
      `${label}: ${points.map((p) => `${p.n} held: heap ${(p.u.heapUsed / 1048576).toFixed(1)} MB + external ${(p.u.external / 1048576).toFixed(1)} MB, RSS ${(p.u.rss / 1048576).toFixed(1)} MB`).join('; ')}\n` +
        `  per connection: heap ${kb(per('heapUsed'))} KiB + external ${kb(per('external'))} KiB (of which ArrayBuffers ${kb(per('arrayBuffers'))} KiB)` +
        ` = ${kb(per('heapUsed') + per('external'))} KiB retained after GC; RSS slope ${kb(per('rss'))} KiB\n`,
    );
    for (const s of socks) s.destroy();
    c.send({ cmd: 'exit' } satisfies ChildMsg);
    await new Promise((r) => c.once('exit', r));
  } finally {
    if (c.exitCode === null) c.kill('SIGKILL');
    await sink.close();
  }
}

/** The peer bench's memory method against the proxy in a child process (see the header). */
async function measureSlow(label: string, opts: EngineOptions, counts: number[], rounds: number): Promise<void> {
  const sink = await startSink({ storeData: false });
  const c = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify({ opts, forward: sink.port })], { execArgv: ['--expose-gc', ...NODE_FLAGS] });
  const big = bigBody(10 * 1024 * 1024);
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      c.once('message', (m) => resolve(m as { port: number }));
      c.once('exit', (code) => reject(new Error(`child exited (${code})`)));
    });
    const peaks = new Map<number, number[]>();
    for (let r = 0; r < rounds; r++) {
      for (const n of counts) {
        await sleep(500);
        const rate = Math.min(320 * 1024, Math.floor((32 << 20) / n));
        await ask(c, { cmd: 'sample', on: true });
        const h = slowSenders({ port, sessions: n, body: big, rate, holdAt: 1024 * 1024, idPrefix: `mem.${n}` });
        let peak = 0;
        let run = true;
        const sampler = (async () => {
          while (run) {
            peak = Math.max(peak, statusKb(c.pid!, 'VmRSS'));
            await sleep(250);
          }
        })();
        await Promise.race([h.reached, sleep(40_000)]);
        await sleep(1000);
        h.release();
        const rs = await h.done;
        run = false;
        await sampler;
        const pk = await ask<Peaks>(c, { cmd: 'sample', on: false });
        const bad = rs.filter((x) => x.code < 0).length;
        peaks.set(n, [...(peaks.get(n) ?? []), peak]);
        process.stdout.write(`  ${label} round ${r + 1}, ${n} senders: peak RSS ${(peak / 1024).toFixed(1)} MB (in the child: heap ${(pk.heapTotal / 1048576).toFixed(1)} MB of which new space ${(pk.newSpace / 1048576).toFixed(1)} MB, external ${(pk.external / 1048576).toFixed(1)} MB)${bad ? ` (${bad} did not reach the hold point)` : ''}\n`);
        await sleep(1500);
      }
    }
    const [lo, hi] = [counts[0]!, counts[counts.length - 1]!];
    const slopes = peaks.get(hi)!.map((p, i) => (p - peaks.get(lo)![i]!) / (hi - lo));
    const median = [...slopes].sort((a, b) => a - b)[Math.floor(slopes.length / 2)]!;
    process.stdout.write(`${label}: RSS slope ${lo} → ${hi} slow senders per round ${slopes.map((x) => x.toFixed(0)).join(', ')} KiB; median ${median.toFixed(0)} KiB per connection\n`);
    c.send({ cmd: 'exit' } satisfies ChildMsg);
    await new Promise((r) => c.once('exit', r));
  } finally {
    if (c.exitCode === null) c.kill('SIGKILL');
    await sink.close();
  }
}

async function main(): Promise<void> {
  const counts = arg('--n', '50,200').split(',').map(Number);
  const hold = Number(arg('--hold', String(1024 * 1024)));
  const configs = arg('--configs', 'builtin,perfile,perfile-raw-off,whole').split(',');
  const snapshotDir = process.argv.includes('--snapshot') ? arg('--snapshot', '.') : null;
  const data = Buffer.concat([head, Buffer.from(b64lines(pseudoRandom(Math.ceil(hold * 0.75) + 1024, 5)), 'latin1')]).subarray(0, hold);
  const slow = process.argv.includes('--slow');
  const rounds = Number(arg('--rounds', '3'));
  const run = (label: string, opts: EngineOptions) => (slow ? measureSlow(label, opts, counts, rounds) : measure(label, opts, counts, data, snapshotDir));
  if (configs.includes('builtin')) await run('built-in', {});
  if (configs.every((k) => k === 'builtin')) return;
  const clamd = await startClamd();
  const endpoint = arg('--clamd', 'tcp') === 'unix' ? clamd.unix : clamd.tcp;
  // As the peer bench's midstream configuration: 24 slots, no verdict cache, IDSESSION reuse over TCP.
  const base = { endpoints: [endpoint], maxConcurrent: 24, cacheEntries: 0, keepaliveMs: 10_000 };
  try {
    if (configs.includes('perfile')) await run('clamd per-file, raw_message anomaly', { clamd: { ...base } });
    if (configs.includes('perfile-raw-off')) await run('clamd per-file, raw_message off', { clamd: { ...base, rawMessage: 'off' } });
    if (configs.includes('whole')) await run('clamd whole-message', { clamd: { ...base, mode: 'whole-message' } });
  } finally {
    await clamd.stop();
  }
}

const ci = process.argv.indexOf('--child');
(ci > 0 ? child(JSON.parse(process.argv[ci + 1]!)) : main()).catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
