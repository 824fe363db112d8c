/**
 * test/helpers/lab.ts — what the lab tests (lab.test.ts, lab-fleet.test.ts) need to drive
 * scripts/lab.sh and the containers it starts: run a command and collect its output
 * (never throws: a failed command is a result to assert on), a compose project name
 * unique to this checkout, a container's log, midstream's JSON log lines from it, and
 * GET on a port published on 127.0.0.1.
 * Input: the environment given to lab.sh (LAB_PROJECT, ports). Output: plain values.
 * Errors: run() reports a timeout or non-zero exit as code ≠ 0; httpGet rejects on a
 * socket error. Gaps: docker must be on PATH (lab.sh installs it).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { ROOT } from './paths.js';

/** The fields of a docker-compose service the lab's static tests read. */
export type ComposeService = {
  build?: { context: string; dockerfile?: string };
  image?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  command?: string[];
  profiles?: string[];
  user?: string;
  hostname?: string;
  domainname?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
};

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One compose project per checkout and lab: two checkouts running the suite at once must
 * not drive (or tear down) each other's containers. */
export function labProject(kind: string): string {
  return `midstream-${kind}-${createHash('sha1').update(ROOT).digest('hex').slice(0, 8)}`;
}

/** scripts/lab.sh with the given leading args (e.g. ['--fleet']) and environment. */
export function labScript(pre: string[], env: () => NodeJS.ProcessEnv) {
  const lab = (args: string[], timeoutMs = 120_000) => run('sh', ['scripts/lab.sh', ...pre, ...args], env(), timeoutMs);
  const docker = (args: string[], timeoutMs = 60_000) => run('docker', args, env(), timeoutMs);
  // Remembered per service: `compose stop` keeps a container (and its log), but Compose v2's
  // `ps` lists running ones only. Valid until `down` removes the project's containers.
  const ids = new Map<string, string>();
  async function containerId(service: string): Promise<string> {
    const known = ids.get(service);
    if (known) return known;
    const r = await lab(['compose', 'ps', '-q', service]);
    const id = r.stdout.trim().split('\n')[0] ?? '';
    if (!id) throw new Error(`no container for ${service}: ${r.stderr}`);
    ids.set(service, id);
    return id;
  }
  /** stdout and stderr of a service's container (`docker logs`). */
  async function logs(service: string): Promise<string> {
    const r = await docker(['logs', await containerId(service)]);
    return `${r.stdout}\n${r.stderr}`;
  }
  /** midstream's JSON log lines in a service's container. */
  async function jsonLines<T = Record<string, unknown>>(service: string): Promise<T[]> {
    return (await logs(service))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as T);
  }
  /** What `down` may have left of a compose project: its containers, networks and volumes. */
  async function leftovers(project: string): Promise<{ what: string; left: RunResult }[]> {
    const out: { what: string; left: RunResult }[] = [];
    for (const what of [['ps', '-aq'], ['network', 'ls', '-q'], ['volume', 'ls', '-q']]) {
      out.push({ what: what.join(' '), left: await docker([...what, '--filter', `label=com.docker.compose.project=${project}`]) });
    }
    return out;
  }
  return { lab, docker, containerId, logs, jsonLines, leftovers };
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
}

/** Poll `probe` until `done` holds for its value, or `ms` pass; returns the last value. */
export async function pollFor<T>(probe: () => Promise<T>, done: (v: T) => boolean, ms = 20_000, every = 250): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, every));
  }
}
