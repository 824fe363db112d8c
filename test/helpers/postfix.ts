/**
 * postfix.ts — start and stop a private Postfix instance for integration tests, from
 * postfix/main.cf.in and postfix/master.cf.in (FACTS.md "Postfix").
 *
 * Layout under a fresh temp dir (mode 0755 so the postfix user can reach the queue):
 * etc/ (config_directory: main.cf, master.cf, extra files), spool/ (queue_directory),
 * lib/ (data_directory), maillog (postlogd; there is no syslog). Chroot is off.
 * AFTER_FILTER_MILTER (default empty) is the after-filter smtpd's smtpd_milters (the proxy's after-filter milter).
 * Ports: smtpPort (front smtpd, proxies to filterPort), reinjectPort (after-filter smtpd)
 * are free loopback ports picked here; filterPort too unless given; the relayhost is
 * sinkPort. Everything is configurable for other instances (e.g. smtpd_milters):
 * `vars` (placeholder values), `mainExtra`/`masterExtra` (appended lines, placeholders
 * allowed), `files` (written into etc/), `proxyFilter: false` (front smtpd without
 * smtpd_proxy_filter).
 * Errors: a failed start throws with postfix's output and the maillog. stop() ends the
 * instance via `postfix stop`, then the master PID (ours) if it lingers, and removes the dir.
 * Gaps: IPv4 loopback only; ~4 s start.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, chmodSync, rmSync, mkdirSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTQUEUE = '/usr/sbin/postqueue';

export interface PostfixOptions {
  /** relayhost port: where queued mail goes (a test sink). */
  sinkPort: number;
  /** Where the front smtpd's smtpd_proxy_filter connects. Default: a free port. */
  filterPort?: number;
  /** Extra or overriding placeholder values (name without @). */
  vars?: Record<string, string>;
  /** Lines appended to main.cf (later settings win). */
  mainExtra?: string[];
  /** Lines appended to master.cf. */
  masterExtra?: string[];
  /** Files written into the config dir (e.g. access maps), name → content. */
  files?: Record<string, string>;
  /** Keep the front smtpd's smtpd_proxy_filter (default true). */
  proxyFilter?: boolean;
}

export interface PostfixInstance {
  dir: string;
  configDir: string;
  smtpPort: number;
  reinjectPort: number;
  filterPort: number;
  sinkPort: number;
  vars: Record<string, string>;
  /** Whole maillog so far. */
  readLog(): string;
  /** Poll the maillog for a line matching `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** `postqueue -p` output. */
  queue(): Promise<string>;
  /** `postqueue -j`: one object per queued message (queue_name "hold" for held mail). */
  queueJson(): Promise<{ queue_name: string; queue_id: string; sender: string; recipients: { address: string }[] }[]>;
  /** `postsuper ARGS` (e.g. ['-H', id] release, ['-d', id] delete); resolves with the exit code and output. */
  postsuper(args: string[]): Promise<{ code: number; out: string }>;
  /** `postqueue ARGS` (e.g. ['-i', id]: deliver that message now). */
  postqueue(args: string[]): Promise<{ code: number; out: string }>;
  /** `postcat -q ID` (the queue file as text: envelope records, headers, body). */
  postcat(queueId: string): Promise<string>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Replace @NAME@ placeholders; an unknown placeholder is an error (a typo must not reach Postfix). */
export function renderTemplate(text: string, vars: Record<string, string>): string {
  return text.replace(/@([A-Z][A-Z0-9_]*)@/g, (_, name: string) => {
    if (!(name in vars)) throw new Error(`template placeholder @${name}@ has no value`);
    return vars[name];
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('220'));
      });
      s.once('error', () => resolve(false));
      s.setTimeout(2000, () => (s.destroy(), resolve(false)));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`postfix: port ${port} not answering 220 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  if (!existsSync(POSTFIX)) throw new Error(`${POSTFIX} not found: run scripts/install-deps.sh (as root)`);
  const dir = mkdtempSync(join(tmpdir(), 'midstream-pf-'));
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  const queueDir = join(dir, 'spool');
  const dataDir = join(dir, 'lib');
  for (const d of [configDir, queueDir, dataDir]) mkdirSync(d, { mode: 0o755 });
  const maillog = join(dir, 'maillog');
  try {
    return await configureAndStart();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  async function configureAndStart(): Promise<PostfixInstance> {
    const [smtpPort, reinjectPort, filterPort] = await Promise.all([freePort(), freePort(), opts.filterPort ?? freePort()]);
    const vars: Record<string, string> = {
      BASE_DIR: dir,
      CONFIG_DIR: configDir,
      QUEUE_DIR: queueDir,
      DATA_DIR: dataDir,
      MAILLOG: maillog,
      MYHOSTNAME: 'mx.midstream.test',
      MYDOMAIN: 'midstream.test',
      SINK_PORT: String(opts.sinkPort),
      SMTP_PORT: String(smtpPort),
      REINJECT_PORT: String(reinjectPort),
      FILTER_PORT: String(filterPort),
      MESSAGE_SIZE_LIMIT: String(200 * 1024 * 1024),
      AFTER_RECIPIENT_RESTRICTIONS: 'permit_mynetworks,reject',
      AFTER_FILTER_MILTER: '',
    };
    // Caller values may refer to the built-in ones (e.g. @CONFIG_DIR@ in a map path).
    for (const [k, v] of Object.entries(opts.vars ?? {})) vars[k] = renderTemplate(v, vars);
    let main = renderTemplate(readFileSync(join(ROOT, 'postfix', 'main.cf.in'), 'utf8'), vars);
    let master = renderTemplate(readFileSync(join(ROOT, 'postfix', 'master.cf.in'), 'utf8'), vars);
    if (opts.proxyFilter === false) master = master.split('\n').filter((l) => !l.includes('smtpd_proxy_filter=')).join('\n');
    if (opts.mainExtra?.length) main += '\n' + renderTemplate(opts.mainExtra.join('\n'), vars) + '\n';
    if (opts.masterExtra?.length) master += '\n' + renderTemplate(opts.masterExtra.join('\n'), vars) + '\n';
    writeFileSync(join(configDir, 'main.cf'), main);
    writeFileSync(join(configDir, 'master.cf'), master);
    for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(configDir, name), renderTemplate(content, vars));

    const readLog = () => (existsSync(maillog) ? readFileSync(maillog, 'utf8') : '');
    const masterPid = (): number | null => {
      const f = join(queueDir, 'pid', 'master.pid');
      if (!existsSync(f)) return null;
      const n = Number(readFileSync(f, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : null;
    };
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      const pid = masterPid();
      await run(POSTFIX, ['-c', configDir, 'stop']);
      if (pid !== null) {
        const until = Date.now() + 10_000;
        while (pidAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
        if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    };

    const perm = await run(POSTFIX, ['-c', configDir, 'set-permissions']);
    const start = perm.code === 0 ? await run(POSTFIX, ['-c', configDir, 'start']) : perm;
    if (start.code !== 0) {
      const log = readLog();
      await stop();
      throw new Error(`postfix start failed (exit ${start.code}): ${start.out}\nmaillog:\n${log}`);
    }
    try {
      await waitForPort(smtpPort, 20_000);
      await waitForPort(reinjectPort, 20_000);
    } catch (e) {
      const log = readLog();
      await stop();
      throw new Error(`${(e as Error).message}\nmaillog:\n${log}`);
    }
    return {
      dir,
      configDir,
      smtpPort,
      reinjectPort,
      filterPort,
      sinkPort: opts.sinkPort,
      vars,
      readLog,
      async waitForLog(re, timeoutMs = 20_000) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const line = readLog()
            .split('\n')
            .find((l) => re.test(l));
          if (line) return line;
          if (Date.now() > until) throw new Error(`maillog: no line matching ${re} within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async queue() {
        return (await run(POSTQUEUE, ['-c', configDir, '-p'])).out;
      },
      async queueJson() {
        const out = (await run(POSTQUEUE, ['-c', configDir, '-j'])).out;
        return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      },
      postsuper: (args) => run('/usr/sbin/postsuper', ['-c', configDir, ...args]),
      postqueue: (args) => run(POSTQUEUE, ['-c', configDir, ...args]),
      async postcat(queueId) {
        return (await run('/usr/sbin/postcat', ['-c', configDir, '-q', queueId])).out;
      },
      stop,
    };
  }
}
