/**
 * bench/ab-proxy.ts — A/B of `midstream proxy` builds: the same workloads through two (or
 * more) builds of the proxy, interleaved in one run, client → proxy → sink (no Postfix),
 * built-in engine or clamd per-file / whole-message on a real clamd; filter CPU per message
 * and msg/s, per round, and the median over rounds.
 *
 *   npx tsx bench/ab-proxy.ts --variant base=/path/to/other/checkout --variant new=. \
 *     [--variant new-semi4=.:--max-semi-space-size=4] [--engines builtin,perfile,whole]
 *     [--workloads b64-1m,gz-1m,text-4k] [--sessions 10] [--seconds 4] [--rounds 3]
 *
 * A variant is NAME=CHECKOUT[:NODEFLAG,NODEFLAG…]: CHECKOUT's dist/src/cli.js (built), run
 * with those node flags. Every variant runs every cell once per round, in rotated order.
 * Only ratios within one run mean anything on a shared machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Sink } from './lib/sink.js';
import { ProcessRegistry, freePorts, sleep, treeCpuMs, waitPort } from './lib/proc.js';
import { workloads } from './lib/messages.js';
import { runLoad } from './lib/load.js';
import { startClamd } from './peers/filters.js';

const argv = process.argv.slice(2);
const opt = (f: string) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : undefined;
};
const all = (f: string) => argv.flatMap((a, i) => (a === f && argv[i + 1] ? [argv[i + 1]!] : []));
const WL = (opt('--workloads') ?? 'b64-1m,gz-1m,text-4k').split(',');
const ENGINES = (opt('--engines') ?? 'builtin,perfile').split(',');
const SESSIONS = Number(opt('--sessions') ?? 10);
const SECONDS = Number(opt('--seconds') ?? 4);
const ROUNDS = Number(opt('--rounds') ?? 3);
const VARIANTS = all('--variant').map((v) => {
  const eq = v.indexOf('=');
  const [name, rest] = [v.slice(0, eq), v.slice(eq + 1)];
  const colon = rest.indexOf(':');
  const [dir, flags] = colon < 0 ? [rest, undefined] : [rest.slice(0, colon), rest.slice(colon + 1)];
  return { name, cli: join(resolve(dir), 'dist/src/cli.js'), flags: flags ? flags.split(',') : [] };
});
if (VARIANTS.length === 0) throw new Error('give at least one --variant NAME=CHECKOUT[:FLAGS]');

interface Proc { variant: string; engine: string; child: ChildProcess; port: number }

async function main(): Promise<void> {
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const tmp = mkdtempSync(join(tmpdir(), 'ab-proxy-'));
  const reg = new ProcessRegistry();
  const ports = await freePorts(2 + VARIANTS.length * ENGINES.length);
  const sink = await Sink.start(ports[0]!);
  const clamd = ENGINES.some((e) => e !== 'builtin') ? await startClamd(reg, join(tmp, 'clamd'), ports[1]!) : null;
  const procs: Proc[] = [];
  try {
    let pi = 2;
    for (const v of VARIANTS) {
      for (const engine of ENGINES) {
        const conf = join(tmp, `${v.name}-${engine}.toml`);
        const lines = ['[log]', 'level = "warn"', '[proxy]', 'max_connections = 1000', '[policy]', 'banned_extensions = []', 'banned_types = []'];
        if (clamd) lines.push('[engine]', `signatures = ["${clamd.ndb}", "${clamd.hdb}"]`);
        if (engine !== 'builtin') {
          lines.push('[clamd]', `endpoints = ["tcp:127.0.0.1:${clamd!.port}"]`, 'cache_entries = 0', 'max_concurrent = 24', 'max_stream_bytes = "100MiB"', `mode = "${engine === 'whole' ? 'whole-message' : 'per-file'}"`);
        }
        writeFileSync(conf, lines.join('\n') + '\n');
        const port = ports[pi++]!;
        const child = spawn(process.execPath, [...v.flags, v.cli, 'proxy', '--config', conf, '--listen', `127.0.0.1:${port}`, '--forward', `127.0.0.1:${ports[0]}`], { stdio: ['ignore', 'ignore', 'inherit'] });
        procs.push({ variant: v.name, engine, child, port });
        await waitPort(port, 30000, /^220 /m);
      }
    }
    const wls = workloads().filter((w) => WL.includes(w.key));
    const cells = new Map<string, { cpu: number[]; rate: number[] }>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of wls) {
        for (const engine of ENGINES) {
          const ps = procs.filter((p) => p.engine === engine);
          const order = ps.map((_, i) => ps[(i + round) % ps.length]!);
          for (const p of order) {
            await runLoad({ port: p.port, sessions: 2, workload: w, durationMs: 300, idPrefix: `warm.${w.key}` });
            await sink.take();
            const c0 = treeCpuMs([p.child.pid!]);
            const r = await runLoad({ port: p.port, sessions: SESSIONS, workload: w, durationMs: SECONDS * 1000, idPrefix: `ab.${w.key}` });
            await sleep(300);
            await sink.take();
            const cpu = treeCpuMs([p.child.pid!]) - c0;
            const ok = r.results.filter((x) => x.code === 250).length;
            const key = `${w.key}|${engine}|${p.variant}`;
            const c = cells.get(key) ?? { cpu: [], rate: [] };
            c.cpu.push(cpu / Math.max(1, r.results.length));
            c.rate.push(ok / (r.elapsedMs / 1000));
            cells.set(key, c);
            process.stderr.write(`round ${round + 1} ${w.key} ${engine} ${p.variant}: ${ok} ok (${r.results.length - ok} not), ${(ok / (r.elapsedMs / 1000)).toFixed(1)} msg/s, ${c.cpu.at(-1)!.toFixed(2)} ms CPU/msg\n`);
          }
        }
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`A/B of proxy builds, client → proxy → sink, ${SESSIONS} sessions, ${SECONDS} s per cell, ${ROUNDS} rounds; load ${load0} at start.\n`);
    console.log('| workload | engine | variant | msg/s (median) | filter CPU ms/msg (median) | per round |');
    console.log('|---|---|---|---:|---:|---|');
    for (const [key, c] of cells) {
      const [w, e, v] = key.split('|');
      console.log(`| ${w} | ${e} | ${v} | ${med(c.rate).toFixed(1)} | ${med(c.cpu).toFixed(2)} | ${c.cpu.map((x) => x.toFixed(2)).join(' ')} |`);
    }
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    sink.child.kill();
    reg.endAllSync();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
