/**
 * test/helpers/clamd.ts — start a REAL clamd for tests and benchmarks.
 *
 *   const c = await startClamd({ streamMaxLength: '1M' });
 *   try { … c.tcp / c.unix … } finally { await c.stop(); }
 *
 * Writes a temp dir (under os.tmpdir()) with clamd.conf and a tiny database (there is no
 * official one on these machines): test.ndb with EICAR and a body signature over
 * clam.exe's code bytes, test.hdb with clam.exe's MD5. Detections come back with
 * `.UNOFFICIAL` appended. Listens on 127.0.0.1:<free port> and a UNIX socket in the
 * temp dir; readiness = zPING answered PONG (polled, no blind sleep).
 * stop() kills by PID (TERM, then KILL after 5 s) and removes the dir; kill() is SIGKILL now.
 * Errors: throws if the binary is missing (never skip), if clamd exits early (with the
 * tail of its log) or is not ready within startTimeoutMs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLAMD_BIN = '/usr/sbin/clamd';
export const TESTFILES = '/usr/share/clamav-testfiles';
export const CLAM_EXE = join(TESTFILES, 'clam.exe');
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
/** clam.exe: MD5 and size for the .hdb line, and the offset/length of the code bytes used as body signature. */
export const CLAM_EXE_MD5 = 'aa15bcf478d165efd2065190eb473bcb';
export const CLAM_EXE_SIZE = 544;
const BODY_SIG_OFFSET = 0x40;
const BODY_SIG_LENGTH = 48;

export interface RealClamd {
  /** 'tcp:127.0.0.1:PORT' */
  tcp: string;
  /** 'unix:/tmp/…/clamd.sock' */
  unix: string;
  port: number;
  socketPath: string;
  dir: string;
  pid: number;
  /** SIGKILL now (for "clamd died mid-scan" tests); stop() still cleans up. */
  kill(): void;
  /** Stop by PID and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** clamd's own log so far. */
  log(): Promise<string>;
}

export interface StartClamdOptions {
  /** clamd StreamMaxLength, e.g. '1M' or a byte count. Default '25M'. */
  streamMaxLength?: string | number;
  /** Extra clamd.conf lines. */
  extraConfig?: string[];
  startTimeoutMs?: number;
  /** A fixed TCP port (e.g. to bring clamd back where it was); default: a free one. */
  port?: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One zPING over TCP; resolves true on PONG, false on anything else or after timeoutMs. */
export function pingOnce(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\0')) done(buf === 'PONG\0');
    });
    s.on('error', () => done(false));
    s.on('close', () => done(buf === 'PONG\0'));
  });
}

export async function writeTestDatabase(dbDir: string): Promise<void> {
  const exe = await readFile(CLAM_EXE);
  const body = exe.subarray(BODY_SIG_OFFSET, BODY_SIG_OFFSET + BODY_SIG_LENGTH).toString('hex');
  await mkdir(dbDir, { recursive: true });
  await writeFile(join(dbDir, 'test.ndb'), `Eicar-Test-Signature:0:*:${EICAR.toString('hex')}\nClamAV-Test-File-Body:0:*:${body}\n`);
  await writeFile(join(dbDir, 'test.hdb'), `${CLAM_EXE_MD5}:${CLAM_EXE_SIZE}:ClamAV-Test-File\n`);
}

export async function startClamd(opts: StartClamdOptions = {}): Promise<RealClamd> {
  if (!existsSync(CLAMD_BIN)) throw new Error(`${CLAMD_BIN} not found: run scripts/install-deps.sh (clamav-daemon)`);
  if (!existsSync(CLAM_EXE)) throw new Error(`${CLAM_EXE} not found: run scripts/install-deps.sh (clamav-testfiles)`);
  const dir = await mkdtemp(join(tmpdir(), 'midstream-clamd-'));
  let child: ChildProcess | null = null;
  try {
    await writeTestDatabase(join(dir, 'db'));
    await mkdir(join(dir, 'tmp'));
    const socketPath = join(dir, 'clamd.sock');
    const logFile = join(dir, 'clamd.log');
    // A free port can be taken between our check and clamd's bind: retry a few times.
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const conf = [
        `DatabaseDirectory ${join(dir, 'db')}`,
        'Foreground yes',
        'User root',
        `TCPSocket ${port}`,
        'TCPAddr 127.0.0.1',
        `LocalSocket ${socketPath}`,
        'FixStaleSocket yes',
        `PidFile ${join(dir, 'clamd.pid')}`,
        `LogFile ${logFile}`,
        'LogTime yes',
        `TemporaryDirectory ${join(dir, 'tmp')}`,
        `StreamMaxLength ${opts.streamMaxLength ?? '25M'}`,
        'MaxThreads 4',
        ...(opts.extraConfig ?? []),
        '',
      ].join('\n');
      const confFile = join(dir, 'clamd.conf');
      await writeFile(confFile, conf);
      child = spawn(CLAMD_BIN, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      let exited: number | string | null = null;
      child.once('exit', (code, sig) => (exited = code ?? sig ?? 'exit'));
      child.once('error', (e) => (exited = e.message));
      const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
      let ready = false;
      while (Date.now() < deadline && exited === null) {
        if (await pingOnce(port, 1000)) {
          ready = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (ready) {
        const c = child;
        const pid = c.pid!;
        let stopped = false;
        return {
          tcp: `tcp:127.0.0.1:${port}`,
          unix: `unix:${socketPath}`,
          port,
          socketPath,
          dir,
          pid,
          kill() {
            if (c.exitCode === null && c.signalCode === null) process.kill(pid, 'SIGKILL');
          },
          async log() {
            return readFile(logFile, 'utf8').catch(() => '');
          },
          async stop() {
            if (stopped) return;
            stopped = true;
            await stopChild(c);
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      const log = await readFile(logFile, 'utf8').catch(() => '');
      await stopChild(child);
      child = null;
      const bindFailed = /bind|address already in use/i.test(log + stderr);
      if (bindFailed && attempt < 3) continue;
      throw new Error(`clamd did not answer PING (exit: ${String(exited)}):\n${(log + stderr).slice(-2000)}`);
    }
  } catch (e) {
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
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
      if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, 5000);
  await gone;
  clearTimeout(t);
}
