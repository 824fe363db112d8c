/**
 * bench/campaign-bench.ts — what the shared verdict cache saves on a malware-campaign-like
 * workload: the same attachment to many recipients, through two midstream instances.
 *
 * Real parts, as in test/integration/scale-out.test.ts: one redis-server, two clamd (tiny
 * test DB, MaxThreads 4, LogClean), two `midstream proxy` CLI processes in front of one
 * sink (the after-filter smtpd), our SMTP client playing the before-filter Postfix with
 * `--sessions` concurrent sessions spread over both instances. Every message carries the
 * same attachment and text, with its own recipient and subject, in `--waves` waves with a
 * SIGHUP reload of both instances between them (a reload starts a new engine, so the
 * in-process caches start empty again; the shared one does not). Three configurations,
 * each on fresh instances and a fresh key prefix:
 *   no-cache  [clamd] cache_entries = 0
 *   local     each instance its own in-process cache
 *   shared    in-process cache + [cache] url = Redis (both instances share it)
 * Reported per configuration: msg/s, clamd scans (its own log lines), clamd CPU ms (both
 * daemons, utime+stime from /proc), midstream CPU ms (both instances), and cache lookups
 * by result. Output: JSON on stdout and bench/out/campaign.md.
 * Run: node dist/bench/campaign-bench.js [--messages 200] [--sessions 10] [--kb 500] [--clamd-sigs 100000]
 * Limits: the tiny test DB makes clamd's per-byte cost low; with the official DB each
 * scan avoided saves more. Two cores shared by everything: msg/s is indicative only.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClamd, type RealClamd } from '../test/helpers/clamd.js';
import { startRedis } from '../test/helpers/redis.js';
import { startSink } from '../test/helpers/sink.js';
import { startCli, metric, type CliServer } from '../test/helpers/cli-server.js';
import { TestSmtpClient, dotStuff } from '../test/helpers/smtp-client.js';
import { multipartMessage, pseudoRandom } from '../test/helpers/mail-build.js';
import { synthSignatures } from './lib-core-data.js';
import { loadSignatures } from './lib-core-clamd.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const MESSAGES = arg('--messages', 200);
const SESSIONS = arg('--sessions', 10);
const KB = arg('--kb', 500);
/** Synthetic .ndb signatures loaded into both clamds (0 = the tiny test DB only): scan cost per MB closer to a real DB. */
const SIGS = arg('--clamd-sigs', 0);
/** The campaign in this many waves with a SIGHUP reload of both instances between them. */
const WAVES = arg('--waves', 2);

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
}

const scans = async (c: RealClamd) => ((await c.log()).match(/instream\(.*\): .*(OK|FOUND)$/gm) ?? []).length;

async function send(port: number, rcpt: string, message: Buffer): Promise<number> {
  const cl = await TestSmtpClient.connect(port);
  try {
    await cl.read();
    await cl.cmd('EHLO mx.example');
    await cl.cmd('MAIL FROM:<billing@example.org>');
    await cl.cmd(`RCPT TO:<${rcpt}>`);
    await cl.cmd('DATA');
    cl.write(dotStuff(message));
    return (await cl.read(120_000)).code;
  } finally {
    await cl.quit();
  }
}

type Mode = 'no-cache' | 'local' | 'shared';

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'midstream-campaign-'));
  const [redis, c1, c2, sink] = await Promise.all([
    startRedis(),
    startClamd({ extraConfig: ['LogClean yes'] }),
    startClamd({ extraConfig: ['LogClean yes'] }),
    startSink({ storeData: false }),
  ]);
  if (SIGS > 0) {
    const synth = synthSignatures(SIGS);
    const file = join(dir, 'synthetic.ndb');
    writeFileSync(file, synth.text);
    await Promise.all([c1, c2].map((c) => loadSignatures(c.socketPath, join(c.dir, 'db'), file, synth.probe)));
  }
  const attachment = Buffer.concat([Buffer.from('%PDF-1.4\n'), pseudoRandom(KB * 1024 - 9, 42)]);
  const text = 'Dear customer,\r\nplease find your invoice attached.\r\n';
  const results: Record<string, unknown>[] = [];
  try {
    for (const mode of ['no-cache', 'local', 'shared'] as Mode[]) {
      const cfg = `
[proxy]
listen = "127.0.0.1:0"
forward = "127.0.0.1:${sink.port}"
max_connections = 1000
[clamd]
endpoints = ["${c1.unix}", "${c2.unix}"]
cache_entries = ${mode === 'no-cache' ? 0 : 10000}
${mode === 'shared' ? `[cache]\nurl = "${redis.url}"\nprefix = "bench-${Date.now()}:"` : ''}
[metrics]
listen = "127.0.0.1:0"
`;
      const inst: CliServer[] = [];
      for (const n of [1, 2]) {
        const d = join(dir, `${mode}-${n}`);
        mkdirSync(d);
        inst.push(await startCli('proxy', cfg, d));
      }
      await new Promise((r) => setTimeout(r, 1000)); // first health round: versions known
      const cpu0 = { clamd: cpuMs(c1.pid) + cpuMs(c2.pid), ms: cpuMs(inst[0]!.pid) + cpuMs(inst[1]!.pid) };
      const scans0 = (await scans(c1)) + (await scans(c2));
      const codes: Record<number, number> = {};
      let next = 0;
      let busyMs = 0;
      const worker = async (upTo: number) => {
        while (next < upTo) {
          const i = next++;
          const msg = multipartMessage([{ filename: 'invoice-4711.pdf', contentType: 'application/pdf', content: attachment }], { subject: `Your invoice (ref ${i})`, text });
          const code = await send(inst[i % 2]!.port, `customer${i}@example.net`, msg);
          codes[code] = (codes[code] ?? 0) + 1;
        }
      };
      for (let w = 1; w <= WAVES; w++) {
        if (w > 1) {
          // A reload (signature update, config change) builds a new engine: the in-process
          // caches start empty; the shared one does not.
          for (const p of inst) {
            const from = p.logs().length;
            p.hup();
            await p.waitForLog((l) => l.event === 'reloaded', 20_000, from);
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
        const w0 = performance.now();
        const upTo = Math.round((MESSAGES * w) / WAVES);
        await Promise.all(Array.from({ length: SESSIONS }, () => worker(upTo)));
        busyMs += performance.now() - w0;
      }
      const wall = busyMs;
      await new Promise((r) => setTimeout(r, 500)); // clamd's last log lines
      const cpu = { clamd: cpuMs(c1.pid) + cpuMs(c2.pid) - cpu0.clamd, ms: cpuMs(inst[0]!.pid) + cpuMs(inst[1]!.pid) - cpu0.ms };
      const lookups: Record<string, number> = {};
      for (const p of inst) {
        const m = await p.metrics();
        for (const r of ['hit-local', 'hit-shared', 'hit-inflight', 'miss', 'bypass']) lookups[r] = (lookups[r] ?? 0) + (metric(m, 'midstream_cache_lookups_total', { result: r }) ?? 0);
      }
      const row = {
        mode,
        messages: MESSAGES,
        replies: codes,
        msgPerSec: Math.round((MESSAGES / wall) * 10000) / 10,
        clamdScans: (await scans(c1)) + (await scans(c2)) - scans0,
        clamdCpuMs: Math.round(cpu.clamd),
        midstreamCpuMsPerMsg: Math.round((cpu.ms / MESSAGES) * 100) / 100,
        lookups,
      };
      results.push(row);
      process.stderr.write(JSON.stringify(row) + '\n');
      await Promise.all(inst.map((p) => p.stop()));
    }
  } finally {
    await Promise.all([redis.stop(), c1.stop(), c2.stop(), sink.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
  const base = results[0]!.clamdCpuMs as number;
  const lines = [
    `# Campaign benchmark (${new Date().toISOString()})`,
    '',
    `${MESSAGES} messages in ${WAVES} waves (both instances reloaded between waves), each with the same ${KB} KB attachment and text, ${SESSIONS} concurrent sessions over two midstream proxies, two clamd (unix sockets; test DB${SIGS ? ` + ${SIGS} synthetic signatures` : ' only'}), one Redis. \`node dist/bench/campaign-bench.js --messages ${MESSAGES} --sessions ${SESSIONS} --kb ${KB} --waves ${WAVES}${SIGS ? ` --clamd-sigs ${SIGS}` : ''}\`.`,
    '',
    '| configuration | msg/s | clamd scans | clamd CPU ms | clamd CPU saved | midstream CPU ms/msg | lookups (local / shared / in-flight / miss) | replies |',
    '|---|---:|---:|---:|---:|---:|---|---|',
    ...results.map((r) => {
      const l = r.lookups as Record<string, number>;
      const saved = base > 0 ? `${Math.round((1 - (r.clamdCpuMs as number) / base) * 100)}%` : '–';
      return `| ${r.mode} | ${r.msgPerSec} | ${r.clamdScans} | ${r.clamdCpuMs} | ${r.mode === 'no-cache' ? '–' : saved} | ${r.midstreamCpuMsPerMsg} | ${l['hit-local']} / ${l['hit-shared']} / ${l['hit-inflight']} / ${l.miss} | ${JSON.stringify(r.replies)} |`;
    }),
    '',
  ];
  mkdirSync(join('bench', 'out'), { recursive: true });
  writeFileSync(join('bench', 'out', 'campaign.md'), lines.join('\n'));
  process.stdout.write(JSON.stringify(results, null, 2) + '\n' + lines.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
