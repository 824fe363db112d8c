/**
 * proxy-child.ts — runs startProxy in its own process so tests can measure its memory
 * (/proc/PID/status) or kill it. Until `midstream proxy` exists this stands in for it.
 *
 * argv[2]: JSON { listen, forward, engine: 'stub' | 'core', engineOptions?, proxy? }.
 * Prints one JSON line {"address": "...", "pid": N} on stdout once listening; log lines
 * go to stderr. SIGTERM closes the proxy and exits 0.
 * Use `spawnProxyChild` from a test: it runs the compiled .js next to this file with
 * process.execPath (or the .ts through tsx when run from source).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startProxy, type ProxyOptions } from '../../src/smtp/proxy-server.js';
import { createLogger } from '../../src/log/logger.js';
import { createStubEngine } from './stub-engine.js';

export interface ChildConfig {
  listen: string;
  forward: string;
  engine?: 'stub' | 'core';
  engineOptions?: Record<string, unknown>;
  proxy?: Partial<Omit<ProxyOptions, 'engine' | 'logger'>>;
}

export interface ProxyChild {
  pid: number;
  address: string;
  proc: ChildProcess;
  stderr(): string;
  /** Peak resident set (VmHWM) in KiB. */
  peakRssKb(): number;
  stop(): Promise<void>;
}

export function vmHwmKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]);
}

export function spawnProxyChild(cfg: ChildConfig): Promise<ProxyChild> {
  const self = fileURLToPath(import.meta.url);
  const js = self.replace(/\.ts$/, '.js');
  const args = self.endsWith('.js') || existsSync(js) ? [js] : ['--import', 'tsx', self];
  const proc = spawn(process.execPath, [...args, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onExit = (code: number | null) => reject(new Error(`proxy child exited (${code}) before listening: ${err}`));
    proc.once('exit', onExit);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      proc.off('exit', onExit);
      const { address } = JSON.parse(out.slice(0, nl)) as { address: string };
      const pid = proc.pid as number;
      resolve({
        pid,
        address,
        proc,
        stderr: () => err,
        peakRssKb: () => vmHwmKb(pid),
        stop: () =>
          new Promise<void>((res) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return res();
            const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
            proc.once('exit', () => (clearTimeout(t), res()));
            proc.kill('SIGTERM');
          }),
      });
    });
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  const logger = createLogger({ level: 'info' });
  let engine;
  if (cfg.engine === 'core') {
    const core = await import('../../src/core/index.js');
    engine = await core.createEngine((cfg.engineOptions ?? {}) as Parameters<typeof core.createEngine>[0]);
  } else engine = createStubEngine();
  const proxy = await startProxy({ ...cfg.proxy, listen: cfg.listen, forward: cfg.forward, engine, logger });
  process.stdout.write(JSON.stringify({ address: proxy.address, pid: process.pid }) + '\n');
  if (process.env.MIDSTREAM_CHILD_MEM) {
    // Debug aid: where memory goes (heap vs. buffers) while a test runs.
    setInterval(() => process.stderr.write(JSON.stringify(process.memoryUsage()) + '\n'), 500).unref();
  }
  process.once('SIGTERM', () => {
    void proxy.close().then(() => process.exit(0));
  });
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exit(1);
  });
}
