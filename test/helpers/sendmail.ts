/**
 * sendmail.ts — a private Sendmail 8.17 daemon for integration tests.
 *
 * Uses the unpacked Debian packages at ${MIDSTREAM_CACHE:-$HOME/.cache/midstream}/sendmail
 * (scripts/install-deps.sh puts them there; a missing binary is an error, never a skip).
 * Fills sendmail/midstream.mc.in (instance dir, SMTP port, sink port, milter socket),
 * builds the .cf with m4, builds the alias db, and runs `sendmail -bD` (foreground)
 * in its own UTS namespace with hostname mta.test (else Sendmail sleeps 60 s at start
 * because the host name has no dot) and, with `log` (default on), its own mount
 * namespace where /dev/log is a unix socket of ours: glibc's syslog() falls back to
 * SOCK_STREAM when a datagram connect fails, so a plain net.Server receives the
 * NUL-terminated records. Stopped by PID (SIGTERM, then SIGKILL).
 * Gaps: the SMTP port is chosen by binding port 0 and releasing it (tiny race).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export interface SendmailOptions {
  /** Milter socket for the X line, e.g. inet:1234@127.0.0.1. */
  milter: string;
  sinkPort: number;
  /** Capture Sendmail's syslog output (default true). */
  log?: boolean;
}

export interface SendmailInstance {
  port: number;
  dir: string;
  pid: number;
  /** The built .cf text. */
  cf: string;
  /** Syslog lines so far (empty without `log`). */
  log(): string;
  stop(): Promise<void>;
}

export const SENDMAIL_ROOT = join(process.env.MIDSTREAM_CACHE ?? join(homedir(), '.cache', 'midstream'), 'sendmail');
const BIN = join(SENDMAIL_ROOT, 'usr/libexec/sendmail/sendmail');
const CF_DIR = join(SENDMAIL_ROOT, 'usr/share/sendmail/cf');

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res({ stdout, stderr });
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

/** Shell that sets up the namespaces and execs Sendmail. Arguments: $1 dir, $2 sendmail, $3 cf. */
const NS_SCRIPT = String.raw`
set -e
d="$1"
if [ -S "$d/log.sock" ]; then
  # Private /dev: a tmpfs with the few device nodes bound in from the real /dev, plus our log socket.
  mkdir -p "$d/olddev"
  mount --rbind /dev "$d/olddev"
  mount -t tmpfs -o mode=755 tmpfs /dev
  for n in null zero full random urandom tty; do touch "/dev/$n"; mount --bind "$d/olddev/$n" "/dev/$n"; done
  ln -s /proc/self/fd /dev/fd
  touch /dev/log
  mount --bind "$d/log.sock" /dev/log
fi
hostname mta.test
exec "$2" -C "$3" -bD -O LogLevel=14
`;

export async function startSendmail(opts: SendmailOptions): Promise<SendmailInstance> {
  if (!existsSync(BIN) || !existsSync(join(CF_DIR, 'm4/cf.m4'))) {
    throw new Error(`Sendmail not found under ${SENDMAIL_ROOT}: run scripts/install-deps.sh`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'midstream-sendmail-'));
  let child: ChildProcess | null = null;
  let logServer: net.Server | null = null;
  const logLines: string[] = [];
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const c = child;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    if (logServer) await new Promise<void>((r) => logServer!.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await mkdir(join(dir, 'queue'), { mode: 0o700 });
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'hosts'), '127.0.0.1 mta.test mta localhost\n');
    await writeFile(join(dir, 'service.switch'), 'hosts files\naliases files\n');
    await writeFile(join(dir, 'aliases'), 'postmaster: root\nMAILER-DAEMON: postmaster\n');
    const port = await freePort();
    const tpl = await readFile(join(ROOT, 'sendmail', 'midstream.mc.in'), 'utf8');
    const mc = tpl
      .replaceAll('@DIR@', dir)
      .replaceAll('@PORT@', String(port))
      .replaceAll('@SINKPORT@', String(opts.sinkPort))
      .replaceAll('@MILTER@', opts.milter);
    await writeFile(join(dir, 'midstream.mc'), mc);
    const { stdout: cf } = await run('m4', [`-D_CF_DIR_=${CF_DIR}/`, join(CF_DIR, 'm4/cf.m4'), join(dir, 'midstream.mc')]);
    const cfPath = join(dir, 'midstream.cf');
    await writeFile(cfPath, cf);
    // Alias db (also in a UTS namespace: Sendmail reads the host name first).
    await run('unshare', ['-u', 'sh', '-c', 'hostname mta.test && exec "$0" -C "$1" -bi', BIN, cfPath]);

    if (opts.log !== false) {
      logServer = net.createServer((s) => {
        let buf = '';
        s.on('data', (c: Buffer) => {
          buf += c.toString('latin1');
          const recs = buf.split(/\0|\n/);
          buf = recs.pop() ?? '';
          for (const r of recs) if (r) logLines.push(r);
        });
        s.on('error', () => undefined);
      });
      await new Promise<void>((r) => logServer!.listen(join(dir, 'log.sock'), r));
    }

    const args = opts.log !== false ? ['-u', '-m'] : ['-u'];
    child = spawn('unshare', [...args, 'sh', '-c', NS_SCRIPT, 'ns', dir, BIN, cfPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));

    // Ready when it greets on the SMTP port (it also opens a milter connection first).
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sendmail exited ${child.exitCode}: ${output}\n${logLines.join('\n')}`);
      const greeting = await new Promise<string>((res) => {
        const s = net.connect({ port, host: '127.0.0.1' });
        let got = '';
        const done = (v: string) => {
          s.destroy();
          res(v);
        };
        s.setTimeout(3000, () => done(got));
        s.on('data', (c: Buffer) => {
          got += c.toString();
          if (got.includes('\r\n')) {
            s.write('QUIT\r\n');
            done(got);
          }
        });
        s.on('error', () => done(''));
      });
      if (greeting.startsWith('220')) break;
      if (Date.now() > deadline) throw new Error(`sendmail did not greet on ${port}: ${output}\n${logLines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const c = child;
    return {
      port,
      dir,
      pid: c.pid!,
      cf,
      log: () => logLines.join('\n'),
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
