/**
 * A large message through `midstream pop3` (the compiled CLI) with flat memory: the
 * upstream generates the message as it sends it (test/helpers/pop3-stream-server.ts:
 * nothing is stored anywhere), the client hashes what arrives. Every byte arrives
 * (SHA-256 of the content), the response is terminated, and midstream's RSS does not
 * grow with the message: the peak over the last fifth of the transfer stays within
 * 24 MiB of the peak between 30% and 60% (Node's heap reaches its plateau in the first
 * ~60 MB), and under 200 MiB in all.
 *
 * Size: MIDSTREAM_POP3_LARGE_MB (default 100 MB here; bench/pop3-large.ts runs 1 GB).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { startStreamServer, type StreamServer } from '../helpers/pop3-stream-server.js';

const MB = Number(process.env.MIDSTREAM_POP3_LARGE_MB ?? 100);

let dir: string;
let upstream: StreamServer;
let cli: CliServer;

before(async () => {
  mkdirSync(TMP_BASE, { recursive: true });
  dir = mkdtempSync(join(TMP_BASE, 'pop3-large-'));
  upstream = await startStreamServer(MB * 1_000_000);
  cli = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${upstream.port}"\n`, dir);
});

after(async () => {
  await cli?.stop();
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface LargeResult {
  bytes: number;
  sha256: string;
  terminated: boolean;
  seconds: number;
  /** [fraction of the message received, midstream RSS] */
  samples: [number, number][];
}

/** RETR 1 through `port`, hashing the content; samples `pid`'s RSS as it goes. */
export function retrieveLarge(port: number, pid: number, expected: number): Promise<LargeResult> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const h = createHash('sha256');
    const samples: [number, number][] = [];
    let phase: 'greeting' | 'login' | 'status' | 'body' | 'done' = 'greeting';
    let pending = '';
    let okCount = 0;
    let tail = Buffer.alloc(0); // the last 5 bytes are held back: they may be CRLF "." CRLF
    let bytes = 0;
    let t0 = 0;
    // RSS sampled by progress (every 2% of the message), not by a timer: a fast transfer on a
    // quiet machine must still leave samples in every range the test reads.
    let nextMark = 0;
    const sample = () => {
      while (bytes / expected >= nextMark && nextMark <= 1) {
        try {
          samples.push([bytes / expected, rssOf(pid)]);
        } catch {
          /* process gone */
        }
        nextMark += 0.02;
      }
    };
    const body = (d: Buffer) => {
      const all = tail.length ? Buffer.concat([tail, d]) : d;
      const keep = Math.min(5, all.length);
      const out = all.subarray(0, all.length - keep);
      h.update(out);
      bytes += out.length;
      sample();
      tail = Buffer.from(all.subarray(all.length - keep));
      if (tail.toString('latin1') === '\r\n.\r\n') {
        phase = 'done';
        s.end('QUIT\r\n');
      }
    };
    s.on('data', (d: Buffer) => {
      if (phase === 'done') return;
      if (phase === 'body') return body(d);
      pending += d.toString('latin1');
      for (;;) {
        const i = pending.indexOf('\r\n');
        if (i < 0) return;
        const line = pending.slice(0, i);
        const rest = Buffer.from(pending.slice(i + 2), 'latin1');
        pending = pending.slice(i + 2);
        if (!line.startsWith('+OK')) return reject(new Error(`unexpected: ${line}`));
        if (phase === 'greeting') {
          phase = 'login';
          s.write('USER u\r\nPASS p\r\nRETR 1\r\n');
        } else if (phase === 'login' && ++okCount === 2) phase = 'status';
        else if (phase === 'status') {
          phase = 'body';
          t0 = performance.now();
          pending = '';
          if (rest.length) body(rest);
          return;
        }
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      // the response ends "\r\n.\r\n": the CRLF before the dot is content
      const terminated = tail.subarray(-3).toString('latin1') === '.\r\n';
      if (terminated) {
        h.update(tail.subarray(0, tail.length - 3));
        bytes += tail.length - 3;
      }
      resolve({ bytes, sha256: h.digest('hex'), terminated, seconds: (performance.now() - t0) / 1000, samples });
    });
  });
}

test(`a ${MB} MB message streams through with every byte and flat memory`, async () => {
  const r = await retrieveLarge(cli.port, cli.pid, upstream.size);
  assert.ok(r.terminated, 'terminated');
  assert.equal(r.bytes, upstream.size);
  assert.equal(r.sha256, upstream.sha256, 'byte-identical');
  // Node's heap grows to a plateau over the first ~60 MB whatever the size (measured:
  // ~145 MiB at 100 MB, 400 MB and 1 GB); after that the RSS must stay flat.
  const early = r.samples.filter(([f]) => f >= 0.3 && f <= 0.6).map(([, m]) => m);
  const late = r.samples.filter(([f]) => f >= 0.8).map(([, m]) => m);
  assert.ok(early.length > 0 && late.length > 0, `samples: ${r.samples.length}`);
  const e = Math.max(...early);
  const l = Math.max(...late);
  const MiB = 1024 * 1024;
  if (process.env.MIDSTREAM_POP3_SAMPLES) process.stdout.write(r.samples.map(([f, m]) => `${f.toFixed(2)}:${(m / 1048576).toFixed(0)}`).join(" ") + "\n");
  process.stdout.write(`# ${MB} MB in ${r.seconds.toFixed(1)} s (${(upstream.size / 1e6 / r.seconds).toFixed(0)} MB/s); RSS early ${(e / MiB).toFixed(0)} MiB, late ${(l / MiB).toFixed(0)} MiB\n`);
  assert.ok(l - e < 24 * MiB, `RSS grew from ${(e / MiB).toFixed(0)} to ${(l / MiB).toFixed(0)} MiB`);
  assert.ok(l < 200 * MiB, `RSS ${(l / MiB).toFixed(0)} MiB`);
  const line = await cli.waitForLog((x) => x.event === 'message' && x.command === 'RETR 1');
  assert.equal(line.verdict, 'clean');
  assert.equal(line.size, upstream.size);
  assert.ok(Number(line.heldMax) < 1024 * 1024, `held ${line.heldMax} bytes at most`);
});
