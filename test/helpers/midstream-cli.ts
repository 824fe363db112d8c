/**
 * midstream-cli.ts — run the compiled CLI (`node dist/src/cli.js proxy|milter …`) as a
 * child process for reliability, fault and security tests: the real product, with its
 * config loading, SIGHUP reload and SIGTERM handling.
 *
 *   const p = await startCli(['proxy', '--config', file]);   // waits for the "listening" line
 *   p.address; p.pid; p.logs(); p.kill('SIGKILL'); await p.stop();
 *
 * Also: `writeConfig(dir, toml)` and `procFds(pid)` (what /proc/PID/fd points at, for fd
 * and socket counts) and `rssKb(pid)`.
 * Errors: throws when the CLI exits before listening (with its stderr) or is not
 * listening within 20 s. The CLI must be built (the test command builds it).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const CLI_JS = join(ROOT, 'dist', 'src', 'cli.js');

export interface CliProcess {
  pid: number;
  /** Bound address from the "listening" line. */
  address: string;
  proc: ChildProcess;
  /** Parsed JSON log lines so far (non-JSON stderr lines are kept as {raw}). */
  logs(): Record<string, unknown>[];
  stderr(): string;
  /** Resolves when a log line matches `pred` (polled), or rejects after timeoutMs. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after 5 s; idempotent. */
  stop(): Promise<void>;
}

export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; spawn?: SpawnOptions; wrapper?: string[] } = {}): Promise<CliProcess> {
  if (!existsSync(CLI_JS)) throw new Error(`${CLI_JS} missing: build first (npx tsc -p .)`);
  const cmd = opts.wrapper ? opts.wrapper[0]! : process.execPath;
  const argv = opts.wrapper ? [...opts.wrapper.slice(1), process.execPath, CLI_JS, ...args] : [CLI_JS, ...args];
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, ...opts.spawn });
  let err = '';
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  proc.stderr!.on('data', (c: Buffer) => {
    const s = c.toString();
    err = (err + s).slice(-2_000_000);
    partial += s;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
      if (lines.length > 200_000) lines.splice(0, 100_000);
    }
  });
  proc.stdout!.on('data', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  const waitForLog = async (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const l = lines.find(pred);
      if (l) return l;
      if (Date.now() > until) throw new Error(`midstream log: no matching line within ${timeoutMs} ms; stderr tail:\n${err.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  let stopping: Promise<void> | null = null;
  return new Promise((resolve, reject) => {
    let done = false;
    void exited.then(({ code, signal }) => {
      if (!done) {
        done = true;
        reject(new Error(`midstream ${args[0]} exited (${code ?? signal}) before listening:\n${err.slice(-3000)}`));
      }
    });
    waitForLog((l) => l.event === 'listening' && (l.front === 'proxy' || l.front === 'milter'), 20_000).then(
      (l) => {
        if (done) return;
        done = true;
        resolve({
          pid: proc.pid!,
          address: String(l.address),
          proc,
          logs: () => lines,
          stderr: () => err,
          waitForLog,
          kill: (sig) => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
          },
          exited,
          stop() {
            stopping ??= (async () => {
              if (proc.exitCode !== null || proc.signalCode !== null) return;
              const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
              proc.kill('SIGTERM');
              await exited;
              clearTimeout(t);
            })();
            return stopping;
          },
        });
      },
      (e: Error) => {
        if (done) return;
        done = true;
        proc.kill('SIGKILL');
        reject(e);
      },
    );
  });
}

/** Write a TOML config file and return its path. */
export function writeConfig(dir: string, name: string, toml: string): string {
  const f = join(dir, name);
  writeFileSync(f, toml);
  return f;
}

export interface FdInfo {
  fd: number;
  target: string;
}

/** Every open descriptor of `pid` and what it points at ("socket:[…]", "/path", "pipe:[…]", "anon_inode:…"). */
export function procFds(pid: number): FdInfo[] {
  const out: FdInfo[] = [];
  for (const f of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push({ fd: Number(f), target: readlinkSync(`/proc/${pid}/fd/${f}`) });
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Current resident set (VmRSS) in KiB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Inodes of TCP connections (IPv4 and IPv6 tables) whose remote port is `port` and that are ESTABLISHED. */
export function tcpInodesTo(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remPort = parseInt(f[2]!.split(':')[1]!, 16);
      if (remPort === port && f[3] === '01') inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** How many of `pid`'s descriptors are established TCP connections to remote `port`. */
export function socketsTo(pid: number, port: number): number {
  const inodes = tcpInodesTo(port);
  return procFds(pid).filter((f) => {
    const m = /^socket:\[(\d+)\]$/.exec(f.target);
    return m !== null && inodes.has(m[1]!);
  }).length;
}
