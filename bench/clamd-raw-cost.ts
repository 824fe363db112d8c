/**
 * bench/clamd-raw-cost.ts — what `[clamd] raw_message` costs (issue #10, item 4).
 *
 * A real clamd (test/helpers/clamd.ts) and the core with clamd in per-file mode, built-in
 * engine on, one message at a time; per message: wall ms, our CPU ms (process.cpuUsage),
 * clamd CPU ms (/proc/PID/stat), for raw_message off / anomaly / always, on
 *   - a 4 KB text mail and a 1 MB mail with a 750 KB base64 attachment (normal mail:
 *     "anomaly" opens the speculative raw stream and abandons it unscanned);
 *   - the same 1 MB mail with a duplicated Content-Type field (an anomaly: the raw
 *     stream is finished and clamd parses the raw message as well).
 * Rows are interleaved round by round (off, anomaly, always, off, …) so a noisy machine
 * hits every mode alike; medians of the rounds are printed as a Markdown table.
 * Run: npx tsx bench/clamd-raw-cost.ts [rounds=7] [perRound=20]
 */
import { readFileSync } from 'node:fs';
import { createEngine, type Engine } from '../src/core/index.js';
import { startClamd } from '../test/helpers/clamd.js';
import { pseudoRandom } from '../test/helpers/mail-build.js';

const ROUNDS = Number(process.argv[2] ?? 7);
const PER = Number(process.argv[3] ?? 20);

function clamdCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const p = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(p[11]) + Number(p[12])) * 1000) / 100;
}

function mail(attachment: Uint8Array | null, dupContentType = false): Buffer {
  const text = 'Hello,\r\n\r\nplease find the figures below and the report attached.\r\n'.repeat(attachment ? 1 : 50);
  const head = 'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: report\r\n' +
    'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <bench@example.test>\r\nMIME-Version: 1.0\r\n';
  if (!attachment) return Buffer.from(head + 'Content-Type: text/plain\r\n\r\n' + text, 'latin1');
  const b64 = Buffer.from(attachment).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    head + (dupContentType ? 'Content-Type: multipart/mixed; boundary="=_b"\r\n' : '') + 'Content-Type: multipart/mixed; boundary="=_b"\r\n\r\n' +
      '--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n' + text + '\r\n' +
      '--=_b\r\nContent-Type: application/octet-stream; name="report.bin"\r\n' +
      'Content-Disposition: attachment; filename="report.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b64 + '\r\n--=_b--\r\n',
    'latin1',
  );
}

async function once(e: Engine, msg: Buffer): Promise<void> {
  const s = e.begin();
  for (let i = 0; i < msg.length; i += 64 * 1024) await s.push(msg.subarray(i, i + 64 * 1024));
  const v = await s.end();
  if (v.kind !== 'clean') throw new Error('unexpected verdict ' + JSON.stringify(v));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const clamd = await startClamd();
const modes = ['off', 'anomaly', 'always'] as const;
const engines = new Map<string, Engine>();
try {
  for (const m of modes) engines.set(m, await createEngine({ clamd: { endpoints: [clamd.unix], rawMessage: m, cacheEntries: 0, ...(process.env.RAW_HW ? { rawHighWaterBytes: Number(process.env.RAW_HW) } : {}) } }));
  const att = pseudoRandom(750 * 1024, 7);
  const workloads: [string, Buffer][] = [
    ['4 KB text mail', mail(null)],
    ['1 MB mail, 750 KB attachment', mail(att)],
    ['same, duplicated Content-Type (anomaly)', mail(att, true)],
  ];
  console.log(`clamd raw_message cost: ${ROUNDS} rounds × ${PER} messages per mode, medians; clamd over ${clamd.unix}`);
  console.log('| message | raw_message | wall ms/msg | our CPU ms/msg | clamd CPU ms/msg | clamd scans raw |');
  console.log('|---|---|---:|---:|---:|---|');
  for (const [label, msg] of workloads) {
    const r: Record<string, { wall: number[]; ours: number[]; theirs: number[] }> = {};
    for (const m of modes) {
      r[m] = { wall: [], ours: [], theirs: [] };
      for (let i = 0; i < 3; i++) await once(engines.get(m)!, msg); // warm-up
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const m of modes) {
        const e = engines.get(m)!;
        const c0 = clamdCpuMs(clamd.pid);
        const u0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < PER; i++) await once(e, msg);
        const wall = Number(process.hrtime.bigint() - t0) / 1e6 / PER;
        const u = process.cpuUsage(u0);
        r[m]!.wall.push(wall);
        r[m]!.ours.push((u.user + u.system) / 1000 / PER);
        r[m]!.theirs.push((clamdCpuMs(clamd.pid) - c0) / PER);
      }
    }
    const anomalous = label.includes('anomaly');
    for (const m of modes) {
      const raw = m === 'always' || (m === 'anomaly' && anomalous) ? 'yes' : m === 'off' ? 'no' : msg.length <= 32 * 1024 ? 'no (no connection: under 32 KiB)' : 'no (stream abandoned)';
      console.log(`| ${label} | ${m} | ${median(r[m]!.wall).toFixed(2)} | ${median(r[m]!.ours).toFixed(2)} | ${median(r[m]!.theirs).toFixed(2)} | ${raw} |`);
    }
  }
} finally {
  for (const e of engines.values()) await e.close();
  await clamd.stop();
}
