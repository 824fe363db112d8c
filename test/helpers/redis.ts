/**
 * test/helpers/redis.ts — start a REAL redis-server (Debian `redis-server`) for tests and
 * benchmarks, as test/helpers/clamd.ts starts clamd.
 *
 *   const r = await startRedis();
 *   try { … r.url … } finally { await r.stop(); }
 *
 * Runs `redis-server` in the foreground on 127.0.0.1:<free port> with no persistence
 * (`--save '' --appendonly no`) in a temp dir; readiness = PING answered +PONG (polled, no
 * blind sleep). kill() is SIGKILL now ("Redis died"); restart() starts it again on the
 * same port (the clients' reconnect is what is tested). stop() ends it by PID and removes
 * the dir. Errors: throws if the binary is missing (never skip) or it is not ready in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './clamd.js';

export const REDIS_BIN = '/usr/bin/redis-server';

export interface RealRedis {
  url: string;
  port: number;
  readonly pid: number;
  /** SIGKILL now. */
  kill(): void;
  /** Start again on the same port (after kill()). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** One inline PING; true on +PONG. */
export function redisPing(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')], {
    stdio: 'ignore',
  });
  let exited: string | null = null;
  child.once('exit', (code, sig) => (exited = String(code ?? sig)));
  child.once('error', (e) => (exited = e.message));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && exited === null) {
    if (await redisPing(port)) return child;
    await new Promise((r) => setTimeout(r, 30));
  }
  await stopChild(child);
  throw new Error(`redis-server on port ${port} did not answer PING (exit: ${String(exited)})`);
}

export async function startRedis(): Promise<RealRedis> {
  if (!existsSync(REDIS_BIN)) throw new Error(`${REDIS_BIN} not found: run scripts/install-deps.sh (redis-server)`);
  const dir = await mkdtemp(join(tmpdir(), 'midstream-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await launch(port, dir);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    },
    async restart() {
      await stopChild(child);
      child = await launch(port, dir);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  try {
    process.kill(c.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 3000);
  await gone;
  clearTimeout(t);
}
