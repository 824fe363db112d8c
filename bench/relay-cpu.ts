/**
 * relay-cpu.ts — where the filter's CPU goes, per message: the pass-through relay against
 * `midstream proxy` (built-in engine) and `midstream milter`-less proxy paths, without
 * Postfix in the way (client → filter → sink), and a V8 CPU profile of the proxy.
 *
 *   npx tsx bench/relay-cpu.ts [--workloads b64-1m,gz-1m,docx] [--seconds 6] [--sessions 10] [--top 25]
 *
 * For each workload and filter (interleaved, in the same run): 10 sessions send for N
 * seconds; CPU ms per message of the filter process from /proc (utime+stime). The proxy runs
 * once more under `--cpu-prof`; its profile is folded by function (self time) and printed as
 * a table, grouped into relay (src/smtp), core (src/core), node internals and GC.
 * The load generator and the sink share the machine: only the filter's own CPU counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sink } from './lib/sink.js';
import { freePorts, sleep, treeCpuMs, waitPort } from './lib/proc.js';
import { workloads } from './lib/messages.js';
import { runLoad } from './lib/load.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
const WL = (opt('--workloads') ?? 'b64-1m,gz-1m,docx,text-4k').split(',');
const SECONDS = Number(opt('--seconds') ?? 6);
const SESSIONS = Number(opt('--sessions') ?? 10);
const TOP = Number(opt('--top') ?? 25);

interface Proc { name: string; child: ChildProcess; port: number }

async function main(): Promise<void> {
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const tmp = mkdtempSync(join(tmpdir(), 'relay-cpu-'));
  const [sinkPort, ptPort, msPort, profPort] = await freePorts(4);
  const sink = await Sink.start(sinkPort!);
  const conf = join(tmp, 'm.toml');
  writeFileSync(conf, '[log]\nlevel = "warn"\n[policy]\nbanned_extensions = []\nbanned_types = []\n');
  const cli = join(ROOT, 'dist/src/cli.js');
  const procs: Proc[] = [];
  const start = async (name: string, args: string[], port: number) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT });
    procs.push({ name, child, port });
    await waitPort(port, 30000, /^220 /m);
  };
  const profDir = join(tmp, 'prof');
  try {
    await start('pass-through', ['--import', 'tsx', join(ROOT, 'bench/passthrough-proxy.ts'), '--listen', `127.0.0.1:${ptPort}`, '--forward', `127.0.0.1:${sinkPort}`], ptPort!);
    await start('midstream proxy', [cli, 'proxy', '--config', conf, '--listen', `127.0.0.1:${msPort}`, '--forward', `127.0.0.1:${sinkPort}`], msPort!);
    await start('midstream proxy (profiled)', ['--cpu-prof', '--cpu-prof-dir', profDir, cli, 'proxy', '--config', conf, '--listen', `127.0.0.1:${profPort}`, '--forward', `127.0.0.1:${sinkPort}`], profPort!);
    const wls = workloads().filter((w) => WL.includes(w.key));
    const rows: string[] = [];
    for (const w of wls) {
      for (const p of procs) {
        // warm-up, then the measured run
        await runLoad({ port: p.port, sessions: 2, workload: w, durationMs: 500, idPrefix: `warm.${w.key}` });
        await sink.take();
        const c0 = treeCpuMs([p.child.pid!]);
        const r = await runLoad({ port: p.port, sessions: SESSIONS, workload: w, durationMs: SECONDS * 1000, idPrefix: `cpu.${w.key}` });
        await sleep(300);
        await sink.take();
        const cpu = treeCpuMs([p.child.pid!]) - c0;
        const ok = r.results.filter((x) => x.code === 250).length;
        rows.push(`| ${w.key} | ${p.name} | ${ok} | ${(ok / (r.elapsedMs / 1000)).toFixed(1)} | ${(cpu / Math.max(1, r.results.length)).toFixed(2)} |`);
        process.stderr.write(`${w.key} ${p.name}: ${ok} ok, ${(cpu / Math.max(1, r.results.length)).toFixed(2)} ms CPU/msg\n`);
      }
    }
    const prof = procs.find((p) => p.name.includes('profiled'))!;
    prof.child.kill('SIGINT');
    await new Promise((r) => prof.child.once('exit', r));
    console.log(`Filter CPU per message without Postfix (client → filter → sink), ${SESSIONS} sessions, ${SECONDS} s per cell; load ${load0} at start.\n`);
    console.log('| workload | filter | messages | msg/s | filter CPU ms/msg |');
    console.log('|---|---|---:|---:|---:|');
    for (const r of rows) console.log(r);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) printProfile(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile);
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    sink.child.kill();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

function printProfile(p: CpuProfile): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const groups = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (!n) continue;
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(ROOT + '/', '');
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') continue;
    total += dt;
    const k = `${fn} ${url ? `${url.replace(/^dist\//, '')}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    self.set(k, (self.get(k) ?? 0) + dt);
    const g = fn === '(garbage collector)' ? 'GC' : fn === '(program)' ? 'V8/native (program)' :
      url.includes('src/smtp/') ? 'relay (src/smtp)' : url.includes('src/core/') ? 'core (src/core)' :
      url.startsWith('node:') || url === '' ? 'node internals / native' : 'other JS';
    groups.set(g, (groups.get(g) ?? 0) + dt);
  }
  console.log(`\nCPU profile of the proxy (all workloads above, busy time ${(total / 1000).toFixed(0)} ms), by group:\n`);
  console.log('| group | share |');
  console.log('|---|---:|');
  for (const [g, t] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`| ${g} | ${((100 * t) / total).toFixed(1)}% |`);
  console.log(`\nTop ${TOP} functions by self time:\n`);
  console.log('| function | self |');
  console.log('|---|---:|');
  for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`| \`${k}\` | ${((100 * t) / total).toFixed(1)}% |`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
