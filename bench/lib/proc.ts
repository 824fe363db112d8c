// Process helpers for the peer benchmark: spawn and track children (ended by PID, also on
// failure), wait for ports, read CPU and memory of process trees from /proc.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { readFileSync, readdirSync, openSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const CLK_TCK = 100; // Linux USER_HZ; getconf CLK_TCK is 100 on every Debian kernel
const PAGE = 4096;

export interface Tracked {
  name: string;
  pid: number;
  child: ChildProcess | null;
  /** Spawned here as a process-group leader: signal the whole group. */
  group?: boolean;
  /** extra cleanup (e.g. `postfix -c DIR stop`) run before the PID is signalled */
  stop?: () => void;
}

/** Everything this harness started; `endAll` ends them by PID in reverse order. */
export class ProcessRegistry {
  private items: Tracked[] = [];

  spawn(name: string, cmd: string, args: string[], opts: SpawnOptions & { logFile?: string } = {}): Tracked {
    const { logFile, ...rest } = opts;
    const out = logFile ? openSync(logFile, 'a') : 'ignore';
    // Its own process group: ending it ends the children it forked too (amavisd's servers).
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true, ...rest });
    if (child.pid === undefined) throw new Error(`spawn ${name} failed`);
    const t: Tracked = { name, pid: child.pid, child, group: true };
    child.on('error', () => { /* reported by the readiness check */ });
    this.items.push(t);
    return t;
  }

  /** Track a process this harness caused to start but did not spawn directly (e.g. Postfix master). */
  adopt(name: string, pid: number, stop?: () => void): Tracked {
    const t: Tracked = { name, pid, child: null, stop };
    this.items.push(t);
    return t;
  }

  async endAll(): Promise<void> {
    const items = this.items.splice(0).reverse();
    for (const t of items) {
      try { t.stop?.(); } catch { /* best effort */ }
    }
    for (const t of items) signal(t, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && items.some((t) => alive(t.pid))) await sleep(100);
    for (const t of items) signal(t, 'SIGKILL');
  }

  endAllSync(): void {
    const items = this.items.splice(0).reverse();
    for (const t of items) {
      try { t.stop?.(); } catch { /* best effort */ }
      signal(t, 'SIGKILL');
    }
  }
}

/** Signal a tracked process; a group leader's whole group (children it forked, by its PID as the group id). */
function signal(t: Tracked, sig: NodeJS.Signals): void {
  if (t.group) { try { process.kill(-t.pid, sig); } catch { /* group gone */ } }
  if (alive(t.pid)) { try { process.kill(t.pid, sig); } catch { /* gone */ } }
}

export function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch { return false; }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** Wait until something accepts TCP connections on 127.0.0.1:port (and, if given, greets with `banner`). */
export async function waitPort(port: number, timeoutMs = 30000, banner?: RegExp): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      let buf = '';
      const done = (v: boolean) => { s.destroy(); resolve(v); };
      s.setTimeout(3000, () => done(false));
      s.on('error', (e) => { last = String(e); done(false); });
      s.on('close', () => done(false));
      s.on('connect', () => { if (!banner) done(true); });
      s.on('data', (d) => { buf += d.toString('latin1'); if (banner && banner.test(buf)) done(true); });
    });
    if (ok) return;
    await sleep(150);
  }
  throw new Error(`port ${port} not ready after ${timeoutMs} ms ${last}`);
}

// ---- /proc readers ----------------------------------------------------------------------

interface StatRow { pid: number; ppid: number; ticks: number; childTicks: number }

function readStat(pid: number): StatRow | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0]=state(3) f[1]=ppid(4) ... utime(14)=f[11] stime(15)=f[12] cutime(16)=f[13] cstime(17)=f[14]
    return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
  } catch { return null; }
}

function allStats(): StatRow[] {
  const out: StatRow[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const r = readStat(Number(d));
    if (r) out.push(r);
  }
  return out;
}

/** PIDs of `roots` and all their descendants. */
export function treePids(roots: number[], rows: StatRow[] = allStats()): number[] {
  const kids = new Map<number, number[]>();
  for (const r of rows) { const a = kids.get(r.ppid) ?? []; a.push(r.pid); kids.set(r.ppid, a); }
  const seen = new Set<number>();
  const stack = roots.filter((p) => rows.some((r) => r.pid === p));
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    for (const k of kids.get(p) ?? []) stack.push(k);
  }
  return [...seen];
}

/**
 * CPU milliseconds used so far by a process tree: utime+stime of every live member plus
 * cutime+cstime (children already reaped). A child that exits between two readings moves
 * from the live sum into its parent's cutime, so differences stay right.
 */
export function treeCpuMs(roots: number[]): number {
  const rows = allStats();
  const pids = new Set(treePids(roots, rows));
  let ticks = 0;
  for (const r of rows) if (pids.has(r.pid)) ticks += r.ticks + r.childTicks;
  return (ticks * 1000) / CLK_TCK;
}

export function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** Resident set of a tree: sum of VmRSS (kB), plus the sum of Pss (kB) when smaps_rollup is readable. */
export function treeMemKb(roots: number[]): { rssKb: number; pssKb: number; procs: number } {
  const pids = treePids(roots);
  let rssKb = 0, pssKb = 0;
  for (const p of pids) {
    rssKb += statusKb(p, 'VmRSS');
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) pssKb += Number(m[1]);
    } catch { /* gone */ }
  }
  return { rssKb, pssKb, procs: pids.length };
}

export function pageKb(pages: number): number { return (pages * PAGE) / 1024; }

/** Disk use of a directory in kB (du -sk), 0 if missing. */
export function duKb(dir: string): number {
  // du exits 1 when a file vanishes while it walks (temp files do): use its output anyway
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return Number((r.stdout ?? '').split(/\s/)[0]) || 0;
}

/** Number of regular files under dir (find -type f | wc -l). */
export function fileCount(dir: string): number {
  const r = spawnSync('find', [dir, '-type', 'f'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return (r.stdout ?? '').split('\n').filter(Boolean).length;
}

/** PIDs whose /proc/PID/cmdline argv[0] basename is `base` and whose ancestry includes `root`. */
export function findInTree(root: number, pred: (cmd: string) => boolean): number[] {
  const out: number[] = [];
  for (const p of treePids([root])) {
    try { if (pred(readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' '))) out.push(p); } catch { /* gone */ }
  }
  return out;
}
