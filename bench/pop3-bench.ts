// POP3 download throughput (issue 15): a real Dovecot, read directly and through
// `midstream pop3` (the compiled CLI; built-in engine, and clamd per-file with --clamd),
// on the SMTP benchmark's workloads (bench/lib/messages.ts). Configurations interleaved,
// rounds repeated, medians reported.
//
//   npx tsc -p . && node dist/bench/pop3-bench.js [--rounds N] [--sessions S] [--mb-per-session MB] [--clamd] [--only k1,k2]
//
// Each round: S mailboxes (one user each) are downloaded at once, every message RETR'd in
// one pipelined burst per session (as fetchmail does), then QUIT (nothing is deleted, so
// every round reads the same mail). Reported: msg/s and MB/s of message content, the
// relay's CPU time per MB and its peak RSS. Writes bench/out/pop3-report.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workloads, headerFor } from './lib/messages.js';
import { treeCpuMs, statusKb, sleep } from './lib/proc.js';
import { median } from './lib/load.js';
import { startDovecot, type RealDovecot } from '../test/helpers/dovecot.js';
import { startCli, type CliServer } from '../test/helpers/cli-server.js';
import { startClamd, type RealClamd } from '../test/helpers/clamd.js';
import { ResponseReader, type Expect } from '../src/pop3/response-reader.js';

// Runs from dist/bench (the CLI helper starts dist/src/cli.js): the repo root is two levels up.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
const ROUNDS = Number(opt('--rounds') ?? 3);
const SESSIONS = Number(opt('--sessions') ?? 10);
const MB_PER_SESSION = Number(opt('--mb-per-session') ?? 6);
const ONLY = opt('--only')?.split(',');
const CLAMD = argv.includes('--clamd');
const log = (s: string) => process.stderr.write(`[pop3-bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/** The workload bodies are dot-stuffed for SMTP: un-stuff them for the maildir. */
function unstuff(b: Buffer): Buffer {
  let t = b.toString('latin1').replace(/\r\n\.\./g, '\r\n.');
  if (t.startsWith('..')) t = t.slice(1);
  return Buffer.from(t, 'latin1');
}

interface Download { msgs: number; bytes: number; seconds: number }

/** One session: login, every message RETR'd in one pipelined burst, QUIT. */
function downloadAll(port: number, user: string, count: number): Promise<{ msgs: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const r = new ResponseReader();
    const expects: Expect[] = ['single', 'single', 'single', ...Array<Expect>(count).fill('multi'), 'single'];
    for (const e of expects) r.expect(e);
    let statuses = 0;
    let ends = 0;
    let bytes = 0;
    let sent = false;
    s.on('data', (d: Buffer) => {
      r.push(d);
      for (let ev = r.next(); ev; ev = r.next()) {
        if (ev.type === 'status') {
          if (!ev.ok) return reject(new Error(`${user}: ${ev.line.toString('latin1').trim()}`));
          if (++statuses === 1 && !sent) {
            sent = true;
            let cmds = `USER ${user}\r\nPASS p\r\n`;
            for (let i = 1; i <= count; i++) cmds += `RETR ${i}\r\n`;
            s.write(cmds + 'QUIT\r\n');
          }
        } else if (ev.type === 'data') for (const p of ev.pieces) bytes += p.bytes.length;
        else if (ev.type === 'end') ends++;
        else return reject(new Error(`${user}: ${ev.type}`));
      }
    });
    s.on('error', reject);
    s.on('close', () => (ends === count ? resolve({ msgs: ends, bytes }) : reject(new Error(`${user}: ${ends}/${count} messages`))));
  });
}

async function round(port: number, users: string[], count: number): Promise<Download> {
  const t0 = performance.now();
  const rs = await Promise.all(users.map((u) => downloadAll(port, u, count)));
  const seconds = (performance.now() - t0) / 1000;
  return { msgs: rs.reduce((a, x) => a + x.msgs, 0), bytes: rs.reduce((a, x) => a + x.bytes, 0), seconds };
}

interface Row { workload: string; config: string; msgPerS: number; mbPerS: number; cpuMsPerMb: number | null; rssMb: number | null }

async function main(): Promise<void> {
  const out = join(ROOT, 'bench', 'out');
  mkdirSync(out, { recursive: true });
  const rows: Row[] = [];
  const dir = mkdtempSync(join(ROOT, '.tmp', 'pop3-bench-'));
  let clamd: RealClamd | null = null;
  if (CLAMD) clamd = await startClamd();
  try {
    for (const w of workloads()) {
      if (ONLY && !ONLY.includes(w.key)) continue;
      const users = Array.from({ length: SESSIONS }, (_, i) => `u${i}`);
      const avg = w.bodies.reduce((a, b) => a + b.length, 0) / w.bodies.length;
      const count = Math.max(5, Math.min(400, Math.round((MB_PER_SESSION * 1e6) / avg)));
      const mail: Record<string, Buffer[]> = {};
      users.forEach((u, s) => {
        mail[u] = Array.from({ length: count }, (_, i) => Buffer.concat([headerFor(`${w.key}-${s}-${i}`), unstuff(w.bodies[w.pick(i, s)]!)]));
      });
      log(`${w.key}: ${SESSIONS} mailboxes × ${count} messages (~${(avg / 1e3).toFixed(0)} KB)`);
      const dovecot: RealDovecot = await startDovecot({ users: Object.fromEntries(users.map((u) => [u, 'p'])), mail });
      const fronts: { name: string; cli: CliServer | null; port: number }[] = [{ name: 'Dovecot direct', cli: null, port: dovecot.port }];
      const mk = async (name: string, pop3: string, extra: string) => {
        const d = mkdtempSync(join(dir, 'm-'));
        // Same policy as the SMTP benchmark: virus scanning only (the workloads carry .exe files).
        const cli = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${dovecot.port}"\nmax_connections = 1000\n${pop3}[policy]\nbanned_extensions = []\nbanned_types = []\n${extra}`, d);
        fronts.push({ name, cli, port: cli.port });
      };
      await mk('midstream pop3, built-in engine', '', '');
      // clamd answers at the end of a file, so each file is held whole: hold_bytes must fit the
      // largest attachment (zip-5m), or the rest would be replaced (hold_exceeded).
      if (clamd) await mk('midstream pop3, clamd per-file', 'hold_bytes = "16MiB"\n', `[clamd]\nendpoints = ["${clamd.tcp}"]\n`);
      const results = new Map<string, { rate: number[]; mb: number[]; cpu: number[]; rss: number }>();
      try {
        await round(dovecot.port, users, count); // warm the maildir index and page cache
        for (let r = 0; r < ROUNDS; r++) {
          for (const f of fronts) {
            const cpu0 = f.cli ? treeCpuMs([f.cli.pid]) : 0;
            const d = await round(f.port, users, count);
            const cpu = f.cli ? treeCpuMs([f.cli.pid]) - cpu0 : 0;
            const e = results.get(f.name) ?? { rate: [], mb: [], cpu: [], rss: 0 };
            e.rate.push(d.msgs / d.seconds);
            e.mb.push(d.bytes / 1e6 / d.seconds);
            if (f.cli) {
              e.cpu.push(cpu / (d.bytes / 1e6));
              e.rss = Math.max(e.rss, statusKb(f.cli.pid, 'VmHWM') / 1024);
            }
            results.set(f.name, e);
            log(`  round ${r + 1} ${f.name}: ${(d.msgs / d.seconds).toFixed(1)} msg/s, ${(d.bytes / 1e6 / d.seconds).toFixed(1)} MB/s`);
            await sleep(200);
          }
        }
      } finally {
        for (const f of fronts) await f.cli?.stop();
        await dovecot.stop();
      }
      for (const [name, e] of results) {
        rows.push({
          workload: w.title, config: name, msgPerS: median(e.rate), mbPerS: median(e.mb),
          cpuMsPerMb: e.cpu.length ? median(e.cpu) : null, rssMb: e.rss || null,
        });
      }
    }
  } finally {
    await clamd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `# POP3 download throughput (${new Date().toISOString().slice(0, 10)})`,
    '',
    `${SESSIONS} sessions at once, each RETRs its whole mailbox in one pipelined burst; median of ${ROUNDS} interleaved rounds.`,
    '',
    '| workload | configuration | msg/s | MB/s | relay CPU ms/MB | relay peak RSS MB |',
    '|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.workload} | ${r.config} | ${r.msgPerS.toFixed(1)} | ${r.mbPerS.toFixed(1)} | ${r.cpuMsPerMb?.toFixed(1) ?? '—'} | ${r.rssMb?.toFixed(0) ?? '—'} |`),
    '',
  ];
  writeFileSync(join(out, 'pop3-report.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
