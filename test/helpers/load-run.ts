/**
 * load-run.ts — the load scenario shared by bench/load.ts (500 connections, thousands of
 * messages) and test/integration/reliability-load.test.ts (a short version).
 *
 * setupLoad() starts a recording sink, a real clamd (TCP, so its connections can be
 * counted in /proc/net/tcp), a private Postfix with an extra front smtpd sized for the
 * load (maxproc = concurrency + slack, default_process_limit raised) and `midstream proxy`
 * (the compiled CLI) with max_connections above the load. runLoad() keeps `concurrency`
 * SMTP sessions busy until `total` messages (mix: clean / EICAR / banned / a few clients
 * leaving mid-DATA) were sent, sampling the filter's RSS, open descriptors and clamd
 * sockets every `sampleMs`; then waits for delivery and audits every message
 * (accounting.ts). summarize() turns samples into the figures tests assert and the
 * bench prints. teardown() ends everything it started, by PID.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostfix, freePort, type PostfixInstance } from './postfix.js';
import { startSink, type Sink } from './sink.js';
import { startClamd, type RealClamd } from './clamd.js';
import { startCli, writeConfig, procFds, rssKb, socketsTo, type CliProcess } from './midstream-cli.js';
import { audit, buildMail, runPool, sendTracked, settle, waitDelivered, type AuditResult, type Entry, type Kind } from './accounting.js';

export interface LoadEnv {
  pf: PostfixInstance;
  sink: Sink;
  clamd: RealClamd;
  proxy: CliProcess;
  frontPort: number;
  dir: string;
  teardown(): Promise<void>;
}

export interface Sample {
  t: number;
  rssKb: number;
  fds: number;
  clamdSockets: number;
}

export async function setupLoad(o: { concurrency: number; clamdMaxConcurrent?: number }): Promise<LoadEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'midstream-load-'));
  const started: { stop(): Promise<void> }[] = [];
  const teardown = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const sink = await startSink();
    started.push({ stop: () => sink.close() });
    const clamd = await startClamd({ extraConfig: [`MaxConnectionQueueLength ${Math.max(200, o.concurrency)}`] });
    started.push(clamd);
    const frontPort = await freePort();
    const procs = o.concurrency + 20;
    const pf = await startPostfix({
      sinkPort: sink.port,
      vars: { LOAD_FRONT_PORT: String(frontPort) },
      mainExtra: [
        `default_process_limit = ${procs * 2 + 50}`,
        // The relay to the sink keeps up with the load instead of trickling.
        'default_destination_concurrency_limit = 50',
        'smtp_destination_concurrency_limit = 50',
        'relay_destination_concurrency_limit = 50',
      ],
      masterExtra: [
        `127.0.0.1:@LOAD_FRONT_PORT@ inet n - n - ${procs} smtpd`,
        '    -o syslog_name=postfix/loadfront',
        '    -o smtpd_proxy_filter=127.0.0.1:@FILTER_PORT@',
      ],
    });
    started.push(pf);
    const cfg = writeConfig(dir, 'load.toml', [
      '[proxy]',
      `listen = "127.0.0.1:${pf.filterPort}"`,
      `forward = "127.0.0.1:${pf.reinjectPort}"`,
      `max_connections = ${o.concurrency * 2 + 50}`,
      '[clamd]',
      `endpoints = ["${clamd.tcp}"]`,
      `max_concurrent = ${o.clamdMaxConcurrent ?? 8}`,
      // Reused IDSESSION connections close after 1 s idle, so "none left open when idle" holds at the idle sample.
      'keepalive = "1s"',
      '[log]',
      'level = "info"',
      '',
    ].join('\n'));
    const proxy = await startCli(['proxy', '--config', cfg]);
    started.push(proxy);
    return { pf, sink, clamd, proxy, frontPort, dir, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}

export function sample(env: LoadEnv, t0: number): Sample {
  const pid = env.proxy.pid;
  return { t: Date.now() - t0, rssKb: rssKb(pid), fds: procFds(pid).length, clamdSockets: socketsTo(pid, env.clamd.port) };
}

export interface LoadOutcome {
  entries: Entry[];
  samples: Sample[];
  idle: Sample;
  baseline: Sample;
  sendMs: number;
  deliverMs: number;
  audit: AuditResult;
}

/** Message mix: 80 % clean, 8 % EICAR, 8 % banned, 4 % clean clients that leave mid-DATA. */
export function loadEntries(prefix: string, total: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < total; i++) {
    const r = i % 25;
    const kind: Kind = r === 3 || r === 11 ? 'eicar' : r === 7 || r === 19 ? 'banned' : 'clean';
    const id = `${prefix}-${i}`;
    const e: Entry = { id, kind, message: buildMail(kind, id, 20 + ((i * 53) % 400)) };
    if (r === 23) e.disconnectAt = 'mid-data';
    out.push(e);
  }
  return out;
}

export async function runLoad(env: LoadEnv, o: { prefix: string; total: number; concurrency: number; sampleMs?: number; log?: (s: string) => void }): Promise<LoadOutcome> {
  const entries = loadEntries(o.prefix, o.total);
  const samples: Sample[] = [];
  const t0 = Date.now();
  const baseline = sample(env, t0);
  const timer = setInterval(() => {
    try {
      samples.push(sample(env, t0));
    } catch {
      /* process gone: the audit will say why */
    }
  }, o.sampleMs ?? 500);
  let done = 0;
  try {
    await runPool(entries, o.concurrency, async (e) => {
      await sendTracked(env.frontPort, e, { replyTimeoutMs: 180_000 });
      if (++done % 500 === 0) o.log?.(`${done}/${o.total} sent (${Date.now() - t0} ms)`);
    });
  } finally {
    clearInterval(timer);
  }
  const sendMs = Date.now() - t0;
  await waitDelivered(env.sink, entries.filter((e) => e.outcome === 'accepted').map((e) => e.id), 300_000);
  await settle(env.sink, 2000, 60_000);
  const deliverMs = Date.now() - t0;
  // Idle: in-flight sockets closed, clamd connections returned.
  await new Promise((r) => setTimeout(r, 3000));
  const idle = sample(env, t0);
  return { entries, samples, idle, baseline, sendMs, deliverMs, audit: audit(entries, env.sink, { prefix: `${o.prefix}-` }) };
}

export interface LoadSummary {
  messages: number;
  outcomes: Record<string, number>;
  violations: number;
  sendSeconds: number;
  msgPerSec: number;
  rssBaseMb: number;
  rssEarlyMb: number;
  rssLateMb: number;
  rssMaxMb: number;
  fdsBase: number;
  fdsMax: number;
  fdsIdle: number;
  clamdSocketsMax: number;
  clamdSocketsIdle: number;
  samples: number;
}

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1]! : 0;
};

/** Early = median RSS of the 2nd fifth of the run (after warm-up); late = of the last fifth. */
export function summarize(r: LoadOutcome): LoadSummary {
  const n = r.samples.length;
  const fifth = Math.max(1, Math.floor(n / 5));
  const early = r.samples.slice(fifth, 2 * fifth).map((s) => s.rssKb);
  const late = r.samples.slice(n - fifth).map((s) => s.rssKb);
  return {
    messages: r.entries.length,
    outcomes: r.audit.counts,
    violations: r.audit.violations.length,
    sendSeconds: Math.round(r.sendMs / 100) / 10,
    msgPerSec: Math.round((r.entries.length / (r.sendMs / 1000)) * 10) / 10,
    rssBaseMb: mb(r.baseline.rssKb),
    rssEarlyMb: mb(median(early)),
    rssLateMb: mb(median(late)),
    rssMaxMb: mb(Math.max(...r.samples.map((s) => s.rssKb), r.baseline.rssKb)),
    fdsBase: r.baseline.fds,
    fdsMax: Math.max(...r.samples.map((s) => s.fds), r.baseline.fds),
    fdsIdle: r.idle.fds,
    clamdSocketsMax: Math.max(0, ...r.samples.map((s) => s.clamdSockets)),
    clamdSocketsIdle: r.idle.clamdSockets,
    samples: n,
  };
}
