/**
 * inflate-eval.ts — which inflate the streaming core should use (issue #11), measured.
 *
 *   npx tsx bench/inflate-eval.ts
 *   (optional candidates: `npm install --no-save fast-zlib@2.0.1 zlib-sync@0.1.10`, the
 *    latter needs a node-gyp build: `npx node-gyp rebuild --nodedir=/usr` in its folder)
 *
 * Every candidate inflates the same raw DEFLATE streams the way the core must: pushed in
 * 8 KiB slices, output consumed piece by piece (nothing accumulated). Streams: ~4 MiB of
 * real text (TypeScript's compiler source, ~4:1), 1 MiB of random bytes (stored blocks),
 * and a 4 KB member 5000 times over (the per-stream start-up cost, as in a zip of many
 * small files). MB = 2^20 bytes of *output*; CPU = this process, all threads (the
 * threadpool candidate runs zlib on a worker thread, so its CPU is counted too).
 * Candidates: the core's InflateStream (node:zlib's handle, driven synchronously), fflate's
 * streaming Inflate (the previous engine), fast-zlib, zlib-sync, and node:zlib's public
 * async stream (libuv threadpool) awaited per slice as the core's backpressure would.
 */
import zlib from 'node:zlib';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Inflate } from 'fflate';
import { InflateStream } from '../src/core/unpack/inflate-stream.js';

const require = createRequire(import.meta.url);
const optional = (name: string): any => {
  try {
    return require(name);
  } catch {
    return null;
  }
};
const fastZlib = optional('fast-zlib');
const zlibSync = optional('zlib-sync');

const SL = 8192;
const text = readFileSync(require.resolve('typescript/lib/typescript.js')).subarray(0, 4 << 20);
const rnd = new Uint8Array(1 << 20);
for (let i = 0, x = 7; i < rnd.length; i++) rnd[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
const streams: Record<string, Uint8Array> = { 'text 4 MiB': zlib.deflateRawSync(text), 'random 1 MiB': zlib.deflateRawSync(rnd) };
const small = zlib.deflateRawSync(text.subarray(0, 4000));

type Sync = (d: Uint8Array) => number;
const candidates: Record<string, Sync | null> = {
  'core InflateStream (node:zlib handle, sync)': (d) => {
    let n = 0;
    const s = new InflateStream((o) => ((n += o.length), true), () => undefined);
    s.push(d);
    s.flush();
    return n;
  },
  'fflate Inflate (streaming, JS)': (d) => {
    let n = 0;
    const inf = new Inflate((o) => void (n += o.length));
    for (let i = 0; i < d.length; i += SL) inf.push(d.subarray(i, i + SL), false);
    return n;
  },
  'fast-zlib InflateRaw.process': fastZlib
    ? (d) => {
        const z = new fastZlib.InflateRaw();
        let n = 0;
        for (let i = 0; i < d.length; i += SL) n += z.process(d.subarray(i, i + SL), zlib.constants.Z_SYNC_FLUSH).length;
        z.close();
        return n;
      }
    : null,
  'zlib-sync Inflate.push': zlibSync
    ? (d) => {
        const z = new zlibSync.Inflate({ windowBits: -15, chunkSize: 65536 });
        let n = 0;
        for (let i = 0; i < d.length; i += SL) {
          z.push(Buffer.from(d.buffer, d.byteOffset + i, Math.min(SL, d.length - i)), zlibSync.Z_SYNC_FLUSH);
          n += z.result ? z.result.length : 0;
        }
        return n;
      }
    : null,
};

/** node:zlib's public async stream: one slice per write, awaiting the write (the core's backpressure hop). */
function threadpool(d: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const z = zlib.createInflateRaw();
    let n = 0;
    z.on('data', (c: Buffer) => (n += c.length));
    z.on('end', () => resolve(n));
    z.on('error', reject);
    let i = 0;
    const next = (): void => {
      if (i >= d.length) return void z.end();
      const s = d.subarray(i, i + SL);
      i += SL;
      z.write(s, () => next());
    };
    next();
  });
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function measure(f: (d: Uint8Array) => number | Promise<number>, d: Uint8Array, seconds: number): Promise<[number, number]> {
  for (let i = 0; i < 3; i++) await f(d);
  let out = 0;
  const c0 = cpu();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) out += await f(d);
  const wall = (performance.now() - t0) / 1000;
  return [out / 2 ** 20 / wall, out / 2 ** 20 / (cpu() - c0)];
}

const rows: string[] = ['| candidate | text 4 MiB: MB/s (per CPU-s) | random 1 MiB: MB/s (per CPU-s) | 4 KB member: µs CPU each |', '|---|---:|---:|---:|'];
const all: [string, ((d: Uint8Array) => number | Promise<number>) | null][] = [...Object.entries(candidates), ['node:zlib async (threadpool), awaited per slice', threadpool]];
for (const [name, f] of all) {
  if (!f) {
    rows.push(`| ${name} | not installed | | |`);
    continue;
  }
  const cells: string[] = [];
  for (const d of Object.values(streams)) {
    const [w, c] = await measure(f, d, 1.5);
    cells.push(`${w.toFixed(0)} (${c.toFixed(0)})`);
  }
  const c0 = cpu();
  for (let i = 0; i < 5000; i++) await f(small);
  cells.push(((cpu() - c0) / 5000 * 1e6).toFixed(1));
  rows.push(`| ${name} | ${cells.join(' | ')} |`);
  process.stderr.write(`${name}: ${cells.join(', ')}\n`);
}
console.log(`node ${process.version}, zlib ${process.versions.zlib}\n\n${rows.join('\n')}`);
