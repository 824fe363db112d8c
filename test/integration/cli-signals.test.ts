/**
 * cli-signals.test.ts — signals that arrive while `midstream proxy` is still starting.
 *
 * Start-up takes a while (engine build, then a PING to every clamd endpoint); Node kills
 * a process on SIGHUP/SIGTERM that has no handler yet, so a logrotate HUP or a deploy's
 * reload in that window used to kill the daemon silently (found as a flake in
 * ops-reload.test.ts: the first HUP right after "listening" killed it ~1 run in 10 under
 * load). Here start-up is held open on purpose: the clamd endpoint is a TCP server that
 * accepts and never answers, so the start-up PING waits its full timeout (5 s) after
 * "engine-ready" is logged. A signal sent at "engine-ready" therefore lands inside
 * start-up every time:
 *   SIGHUP  → the process lives, serves, and runs one reload once it is listening, of
 *             the file as it is after the HUP (the HUP's config drops [clamd]: clean mail
 *             then gets 250 from the built-in engine alone, where the silent clamd of the
 *             start-up config would have held it until a tempfail);
 *   SIGTERM → the process finishes starting, then shuts down cleanly (exit 0, "stopped").
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { CLI_JS, type LogLine } from '../helpers/cli-server.js';
import { startSink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { plainMessage } from '../helpers/mail-build.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});
mkdirSync(TMP_BASE, { recursive: true });

/** A "clamd" that accepts connections and never says a word. */
async function silentClamd(): Promise<{ port: number; server: Server }> {
  const held = new Set<Socket>();
  const server = createServer((s) => {
    held.add(s);
    s.on('error', () => {});
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => {
    for (const s of held) s.destroy();
    server.close(() => r());
  }));
  return { port: (server.address() as { port: number }).port, server };
}

interface Child {
  /** Rewrite the config file (the [log] section is kept). */
  config(lines: string[]): void;
  logs(): LogLine[];
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(sig: NodeJS.Signals): void;
}

function startProxy(name: string, sinkPort: number, clamdPort: number): Child {
  const dir = mkdtempSync(join(TMP_BASE, `cli-signals-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'proxy.log');
  const cfg = join(dir, 'proxy.toml');
  writeFileSync(log, '');
  const config = (lines: string[]) => writeFileSync(cfg, [...lines, '[log]', `file = ${JSON.stringify(log)}`, 'level = "info"', ''].join('\n'));
  config(['[proxy]', 'listen = "127.0.0.1:0"', `forward = "127.0.0.1:${sinkPort}"`, '[clamd]', `endpoints = ["tcp:127.0.0.1:${clamdPort}"]`]);
  const proc = spawn(process.execPath, [CLI_JS, 'proxy', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-5000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  // Only whole lines: the child may be writing the next one while we read.
  const logs = () => readFileSync(log, 'utf8').split('\n').slice(0, -1).filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine);
  return {
    config,
    logs,
    exited,
    kill: (sig) => proc.kill(sig),
    async waitFor(pred, what, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs().find(pred);
        if (hit) return hit;
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`${name}: midstream exited (code ${proc.exitCode}, signal ${proc.signalCode}) before ${what}; stderr: ${stderr}`);
        }
        if (Date.now() > until) throw new Error(`${name}: no ${what} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

test('SIGHUP or SIGTERM during start-up: the HUP becomes a reload once serving, the TERM a clean shutdown', { timeout: 90_000 }, async () => {
  const sink = await startSink({ storeData: false });
  cleanups.push(() => sink.close());
  const clamd = await silentClamd();
  const hup = startProxy('hup', sink.port, clamd.port);
  const term = startProxy('term', sink.port, clamd.port);

  let hupAt = 0;
  await Promise.all([
    hup.waitFor((l) => l.event === 'engine-ready', '"engine-ready"').then(() => {
      hup.config(['[proxy]', 'listen = "127.0.0.1:0"', `forward = "127.0.0.1:${sink.port}"`]);
      hup.kill('SIGHUP');
      hupAt = Date.now();
    }),
    term.waitFor((l) => l.event === 'engine-ready', '"engine-ready"').then(() => term.kill('SIGTERM')),
  ]);

  // The HUP: still alive, listening, and one reload after it started serving.
  const listening = await hup.waitFor((l) => l.event === 'listening', '"listening" after an early SIGHUP');
  await hup.waitFor((l) => l.event === 'reloaded', '"reloaded" for the early SIGHUP');
  const events = hup.logs().map((l) => l.event);
  assert.ok(events.indexOf('reloaded') > events.indexOf('listening'), `the reload runs once serving: ${events.join(' ')}`);
  assert.equal(events.filter((e) => e === 'reloaded').length, 1, events.join(' '));
  assert.ok(Date.parse(String(listening.time)) > hupAt, 'the HUP was sent during start-up, before serving');
  const port = Number(String(listening.address).split(':').pop());
  const r = await sendMessage(port, { from: 'a@example.org', to: ['b@example.net'], message: plainMessage('after an early HUP') });
  assert.equal(r.final.code, 250, r.final.text);
  assert.equal(sink.messages.length, 1);
  hup.kill('SIGTERM');
  assert.deepEqual(await hup.exited, { code: 0, signal: null });

  // The TERM: not killed by the signal; it finished starting, then stopped on purpose.
  assert.deepEqual(await term.exited, { code: 0, signal: null });
  const t = term.logs().map((l) => l.event);
  assert.deepEqual(t.filter((e) => ['listening', 'stopping', 'stopped'].includes(e)), ['listening', 'stopping', 'stopped'], t.join(' '));
  assert.equal(term.logs().find((l) => l.event === 'stopping')!.signal, 'SIGTERM');
});
