/**
 * bench/cache-bench.ts — what the clamd results cache saves.
 *
 * One real clamd (test/helpers/clamd.ts, tiny test DB). The same 1 MB attachment in N
 * messages (default 50: one mail to 50 recipients delivered as separate transactions,
 * or MTA retries) — headers and text differ per copy, the attachment does not — goes
 * through the core (createEngine, built-in engine off, clamd per-file) twice: with
 * cache_entries = 0 and with cache_entries = 10000. Reports clamd CPU ms
 * (utime+stime from /proc/PID/stat) and our wall ms for each run.
 * Run: npx tsx bench/cache-bench.ts [copies]   (or node dist/bench/cache-bench.js)
 * Limits: the tiny test DB makes clamd's per-byte cost low; with the official DB (many
 * more signatures) the saving per hit is larger. The bytes still travel to clamd on a
 * hit (the hash is only known at the end), so the wall-time saving is smaller than the
 * CPU saving.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createEngine } from '../src/core/index.js';
import { startClamd } from '../test/helpers/clamd.js';
import { multipartMessage } from '../test/helpers/mail-build.js';

const COPIES = Number(process.argv[2] ?? 50);

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
}

async function run(endpoint: string, pid: number, cacheEntries: number, attachment: Buffer) {
  const engine = await createEngine({ builtin: false, clamd: { endpoints: [endpoint], cacheEntries } });
  await new Promise((r) => setTimeout(r, 300)); // the cache's first VERSION poll
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const kinds: Record<string, number> = {};
  for (let i = 0; i < COPIES; i++) {
    const msg = multipartMessage([{ filename: 'report.pdf', contentType: 'application/pdf', content: attachment }], {
      subject: `Quarterly report (copy ${i})`,
      text: `Dear recipient ${i},\r\nplease find the report attached.`,
    });
    const s = engine.begin({ recipients: [`r${i}@example.net`] });
    for (let off = 0; off < msg.length; off += 64 * 1024) await s.push(msg.subarray(off, off + 64 * 1024));
    const v = await s.end();
    kinds[v.kind] = (kinds[v.kind] ?? 0) + 1;
  }
  const wall = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 200)); // let clamd finish dropping aborted streams
  const cpu = cpuMs(pid) - cpu0;
  await engine.close();
  return { cacheEntries, wallMs: Math.round(wall), clamdCpuMs: cpu, verdicts: kinds };
}

async function main(): Promise<void> {
  const clamd = await startClamd();
  try {
    const attachment = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(1024 * 1024 - 9)]);
    await run(clamd.unix, clamd.pid, 0, attachment.subarray(0, 4096)); // warm-up
    const off = await run(clamd.unix, clamd.pid, 0, attachment);
    const on = await run(clamd.unix, clamd.pid, 10_000, attachment);
    const report = {
      copies: COPIES,
      attachmentBytes: attachment.length,
      withoutCache: off,
      withCache: on,
      clamdCpuSavedPct: off.clamdCpuMs > 0 ? Math.round((1 - on.clamdCpuMs / off.clamdCpuMs) * 100) : null,
      wallSavedPct: Math.round((1 - on.wallMs / off.wallMs) * 100),
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    await clamd.stop();
  }
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
