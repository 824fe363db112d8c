/**
 * test/helpers/dovecot.ts — a REAL Dovecot POP3 server (Debian dovecot-pop3d) for tests
 * and benchmarks, with a throwaway config (FACTS.md).
 *
 *   const d = await startDovecot({ users: { u: 'p' }, mail: { u: [msg1, msg2] } });
 *   try { … 127.0.0.1:d.port … } finally { await d.stop(); }
 *
 * A temp dir under os.tmpdir() (the `dovecot` auth user must traverse every directory up
 * to its passwd file, so not under a home directory) holds dovecot.conf, the passwd-file (uid/gid 65534), one
 * maildir per user with the given messages in Maildir/cur (named so that Dovecot's
 * order is the order given), and Dovecot's base/state dirs and log. Listens on
 * 127.0.0.1:<free port> only (no pop3s listener); readiness = the greeting answered on that port (polled).
 * Dovecot runs in the foreground (-F) as our child; stop() kills the master by PID (TERM,
 * then KILL after 5 s; its children exit with it) and removes the dir.
 * Errors: throws if the binary is missing (never skip) or Dovecot does not come up, with
 * the tail of its log.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { freePort } from './clamd.js';

export const DOVECOT_BIN = '/usr/sbin/dovecot';
const NOBODY = 65534;

export interface RealDovecot {
  port: number;
  dir: string;
  pid: number;
  /** Put another message into a user's maildir (it is seen at the next login). */
  addMessage(user: string, msg: Uint8Array): void;
  /** Dovecot's log so far. */
  log(): string;
  /** SIGKILL the master now; stop() still cleans up. */
  kill(): void;
  /** SIGKILL the `pop3` processes serving connections now (the server dies mid-response); returns how many. */
  killSessions(): number;
  stop(): Promise<void>;
}

export interface StartDovecotOptions {
  users: Record<string, string>;
  mail?: Record<string, Uint8Array[]>;
  /** Extra dovecot.conf lines. */
  extraConfig?: string[];
  /** Offer STLS with this PEM certificate and key (ssl = yes). */
  tls?: { cert: string; key: string };
}

function greeted(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => done(false), 1000);
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    s.on('data', (d: Buffer) => done(d.toString('latin1').startsWith('+OK')));
    s.on('error', () => done(false));
  });
}

export async function startDovecot(opts: StartDovecotOptions): Promise<RealDovecot> {
  if (!existsSync(DOVECOT_BIN)) throw new Error(`${DOVECOT_BIN} missing: run scripts/install-deps.sh (package dovecot-pop3d)`);
  const dir = mkdtempSync(join(tmpdir(), 'midstream-dovecot-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const counters = new Map<string, number>();
  const mailDir = (u: string) => join(dir, 'mail', u, 'Maildir');
  const addMessage = (user: string, msg: Uint8Array) => {
    const n = (counters.get(user) ?? 0) + 1;
    counters.set(user, n);
    // Maildir file names sort by their leading time stamp: Dovecot assigns UIDs in that order.
    const name = `${1_700_000_000 + n}.M${n}P1.midstream-test:2,`;
    const path = join(mailDir(user), 'cur', name);
    writeFileSync(path, msg);
    chownSync(path, NOBODY, NOBODY);
  };
  const passwd: string[] = [];
  for (const [u, p] of Object.entries(opts.users)) {
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(mailDir(u), sub), { recursive: true });
    passwd.push(`${u}:{PLAIN}${p}:${NOBODY}:${NOBODY}::${join(dir, 'mail', u)}`);
  }
  spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, join(dir, 'mail')]);
  for (const [u, msgs] of Object.entries(opts.mail ?? {})) for (const m of msgs) addMessage(u, m);
  writeFileSync(join(dir, 'passwd'), passwd.join('\n') + '\n');
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'state'));
  const conf = [
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    'protocols = pop3',
    'listen = 127.0.0.1',
    ...(opts.tls ? ['ssl = yes', `ssl_cert = <${opts.tls.cert}`, `ssl_key = <${opts.tls.key}`] : ['ssl = no']),
    'disable_plaintext_auth = no',
    `log_path = ${dir}/dovecot.log`,
    'mail_location = maildir:~/Maildir',
    'first_valid_uid = 1',
    'passdb {', '  driver = passwd-file', `  args = ${dir}/passwd`, '}',
    'userdb {', '  driver = passwd-file', `  args = ${dir}/passwd`, '}',
    // pop3s off: its built-in port 995 is shared by every Dovecot on the machine (with
    // ssl = yes, two tests at once failed with "Address already in use").
    'service pop3-login {', '  inet_listener pop3 {', '    address = 127.0.0.1', `    port = ${port}`, '  }', '  inet_listener pop3s {', '    port = 0', '  }', '}',
    'service anvil {', '  chroot =', '}',
    'service stats {', '  unix_listener stats-reader {', '    mode = 0666', '  }', '  unix_listener stats-writer {', '    mode = 0666', '  }', '}',
    ...(opts.extraConfig ?? []),
  ];
  writeFileSync(join(dir, 'dovecot.conf'), conf.join('\n') + '\n');
  const log = () => (existsSync(join(dir, 'dovecot.log')) ? readFileSync(join(dir, 'dovecot.log'), 'utf8') : '');
  // -F: the master stays in the foreground as our child, so its PID is known at once and
  // no daemonised process keeps our pipes open.
  const proc = spawn(DOVECOT_BIN, ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const pid = proc.pid!;
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const until = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const l = log();
      cleanup();
      throw new Error(`dovecot exited (${proc.exitCode ?? proc.signalCode}): ${err} ${l.slice(-2000)}`);
    }
    if (await greeted(port)) break;
    if (Date.now() > until) {
      proc.kill('SIGKILL');
      const l = log();
      cleanup();
      throw new Error(`dovecot not ready on port ${port}: ${err} ${l.slice(-2000)}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  let stopped = false;
  return {
    port,
    dir,
    pid,
    addMessage,
    log,
    kill: () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
    killSessions() {
      let n = 0;
      for (const e of readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        try {
          const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          const cmd = readFileSync(`/proc/${e}/cmdline`, 'latin1');
          if (ppid === pid && cmd.startsWith('dovecot/pop3') && !cmd.startsWith('dovecot/pop3-login')) {
            process.kill(Number(e), 'SIGKILL');
            n++;
          }
        } catch {
          /* gone meanwhile */
        }
      }
      return n;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (alive()) {
        process.kill(pid, 'SIGTERM');
        const t = Date.now() + 5000;
        while (alive() && Date.now() < t) await new Promise((res) => setTimeout(res, 25));
        if (alive()) process.kill(pid, 'SIGKILL');
      }
      cleanup();
    },
  };
}
