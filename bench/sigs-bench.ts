/**
 * sigs-bench.ts — built-in signature engine: load time / memory and matching throughput.
 *
 *   npx tsx --expose-gc bench/sigs-bench.ts     (--quick skips the 100 MB runs)
 *
 * Synthetic .ndb signatures (deterministic PRNG): ~70 % static 8–32 bytes, ~12 % with
 * ??/nibble wildcards, ~10 % two segments joined by `*` or `{n-m}`, ~8 % alternatives.
 * Load = SignatureDb.load() of a temp .ndb file (read + parse + compile).
 * Throughput = one matcher fed 64 KiB chunks of random bytes (no detection expected);
 * 1 MB: best of 15 runs after warm-up (the build host is shared and noisy); 100 MB: one run.
 * An extra row with 10k static-only signatures shows the sparse-sampling case.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignatureDb } from '../src/core/scan/sigs/signature-db.js';
import { synthSignatures } from './lib-core-data.js';

const quick = process.argv.includes('--quick');

const mb = (n: number) => (n / 1048576).toFixed(1);

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function load(
  n: number,
  dir: string,
  staticOnly = false,
): Promise<{ db: SignatureDb; ms: number; rssMb: string; heapMb: string; extMb: string; peakMb: string }> {
  const path = join(dir, `synthetic-${n}.ndb`);
  await writeFile(path, synthSignatures(n, staticOnly).text);
  gc();
  const m0 = process.memoryUsage();
  let peak = m0.rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const t0 = performance.now();
  const db = n === 0 ? SignatureDb.builtin() : await SignatureDb.load([path]);
  const ms = performance.now() - t0;
  clearInterval(sampler);
  gc();
  const m = process.memoryUsage();
  return {
    db,
    ms,
    rssMb: mb(m.rss - m0.rss),
    heapMb: mb(m.heapUsed - m0.heapUsed),
    extMb: mb(m.arrayBuffers - m0.arrayBuffers),
    peakMb: mb(Math.max(peak, m.rss) - m0.rss),
  };
}

function throughput(db: SignatureDb, data: Uint8Array, chunk = 65536): { mbps: number; hit: string | null } {
  const m = db.createMatcher();
  const t0 = performance.now();
  let hit: string | null = null;
  for (let i = 0; i < data.length && hit === null; i += chunk) hit = m.write(data.subarray(i, i + chunk));
  hit ??= m.end();
  const s = (performance.now() - t0) / 1000;
  return { mbps: data.length / 1048576 / s, hit };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sigs-bench-'));
  const one = randomFillSync(new Uint8Array(1 << 20));
  const hundred = quick ? null : randomFillSync(new Uint8Array(100 << 20));
  console.log(`node ${process.version}, gc ${typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'exposed' : 'not exposed (RSS deltas are rough)'}`);
  try {
    for (const [n, staticOnly] of [[0, false], [10_000, false], [100_000, false], [10_000, true]] as const) {
      const { db, ms, rssMb, heapMb, extMb, peakMb } = await load(n, dir, staticOnly);
      const st = db.stats;
      const levels = (db as unknown as { patterns: { levelShapes: string[] } }).patterns.levelShapes.join(",");
      console.log(
        `sigs=${n}${staticOnly ? ' (static only)' : ''}: load ${ms.toFixed(0)} ms, RSS +${rssMb} MB (peak +${peakMb}), heap +${heapMb} MB, typed arrays +${extMb} MB (count ${db.count}, forms ${st.forms}, levels ${levels}, skipped ${db.skippedTotal})`,
      );
      // Warm up the JIT, then keep the best of several runs.
      throughput(db, one);
      let r1 = throughput(db, one);
      for (let k = 0; k < 14; k++) {
        const r = throughput(db, one);
        if (r.mbps > r1.mbps) r1 = r;
      }
      let line = `  match 1 MB: ${r1.mbps.toFixed(0)} MB/s`;
      if (hundred) {
        const r100 = throughput(db, hundred);
        line += `, 100 MB: ${r100.mbps.toFixed(0)} MB/s`;
        if (r100.hit) line += ` (hit ${r100.hit})`;
      }
      if (r1.hit) line += ` (1 MB hit ${r1.hit})`;
      console.log(line);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
