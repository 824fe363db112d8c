/**
 * cli-server.ts — run the real CLI (`node dist/src/cli.js proxy|milter|pop3 --config FILE`)
 * as a child process for ops tests: writes the config, waits for the "listening"
 * (and "metrics-listening") lines in the JSON log file, reads and parses the log,
 * sends SIGHUP, fetches GET /metrics, and stops the child by its PID (SIGTERM, then
 * SIGKILL after 5 s). The CLI path is found next to this compiled file, so it works
 * from dist/ (and any other outDir) without a build step of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type LogLine = Record<string, unknown> & { event: string; level: string };

export interface CliServer {
  proc: ChildProcess;
  pid: number;
  /** proxy: "127.0.0.1:PORT"; milter: "inet:PORT@127.0.0.1". */
  address: string;
  port: number;
  metricsAddress: string | null;
  logs(): LogLine[];
  /** Raw log text (to check that no body content was logged). */
  rawLog(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  metrics(): Promise<string>;
  hup(): void;
  /**
   * SIGTERM once (later calls wait for the same exit), SIGKILL after killAfterMs (5 s);
   * resolves with the exit code (null: killed by a signal).
   */
  stop(killAfterMs?: number): Promise<number | null>;
  stderr(): string;
}

export const CLI_JS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');

export async function startCli(front: 'proxy' | 'milter' | 'pop3', configText: string, dir: string): Promise<CliServer> {
  const cfg = join(dir, `${front}.toml`);
  const logFile = join(dir, `${front}.log`);
  writeFileSync(cfg, `${configText}\n[log]\nfile = ${JSON.stringify(logFile)}\nlevel = "info"\n`);
  writeFileSync(logFile, '');
  if (!existsSync(CLI_JS)) throw new Error(`CLI not built: ${CLI_JS}`);
  const proc = spawn(process.execPath, [CLI_JS, front, '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const rawLog = () => readFileSync(logFile, 'utf8');
  // Whole lines only: the child may be in the middle of writing the last one.
  const logs = () =>
    rawLog()
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LogLine);
  const waitForLog = async (pred: (l: LogLine) => boolean, timeoutMs = 20_000, from = 0) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs().slice(from).find(pred);
      if (hit) return hit;
      if (proc.exitCode !== null) throw new Error(`midstream ${front} exited (${proc.exitCode}): ${err}`);
      if (Date.now() > until) throw new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  // One SIGTERM only: a second one during the drain exits at once (by design), so a stop()
  // after a test's own terminate() must wait for that shutdown instead of cutting it short.
  let stopping: Promise<number | null> | null = null;
  const stop = (killAfterMs = 5000) =>
    (stopping ??= new Promise<number | null>((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return res(proc.exitCode);
      const t = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      proc.once('exit', (code) => {
        clearTimeout(t);
        res(code);
      });
      proc.kill('SIGTERM');
    }));
  try {
    const ready = await waitForLog((l) => l.event === 'listening' && l.front === front);
    const address = String(ready.address);
    const port = Number(front === 'milter' ? /^inet6?:(\d+)@/.exec(address)?.[1] : address.split(':').pop());
    const m = logs().find((l) => l.event === 'metrics-listening');
    const metricsAddress = m ? String(m.address) : null;
    return {
      proc,
      pid: proc.pid!,
      address,
      port,
      metricsAddress,
      logs,
      rawLog,
      waitForLog,
      hup: () => proc.kill('SIGHUP'),
      stop,
      stderr: () => err,
      metrics: () =>
        new Promise<string>((resolve, reject) => {
          if (!metricsAddress) return reject(new Error('metrics are off'));
          const [host, p] = [metricsAddress.slice(0, metricsAddress.lastIndexOf(':')), metricsAddress.slice(metricsAddress.lastIndexOf(':') + 1)];
          const req = request({ host, port: Number(p), path: '/metrics' }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
          });
          req.on('error', reject);
          req.end();
        }),
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The value of one series in Prometheus text, e.g. metric(text, 'midstream_messages_total', {front:'proxy', verdict:'clean'}). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}
