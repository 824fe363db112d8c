// The peer benchmark (issue 6): midstream against clamsmtp, clamav-milter and amavisd-new on
// real Postfix and Sendmail, same machine, same run, configurations interleaved and repeated.
//
//   npx tsx bench/run-peers.ts [--quick] [--rounds N] [--duration MS] [--only k1,k2]
//                              [--no-memory] [--no-install] [--keep]
//
// Writes bench/out/peers-report.md, bench/out/peers-chart.svg and bench/out/peers-raw.json.
import { readFileSync, mkdtempSync, mkdirSync, chmodSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { ProcessRegistry, freePorts, treeCpuMs, treeMemKb, statusKb, duKb, fileCount, sleep, waitPort } from './lib/proc.js';
import { workloads, virusBodies, bigBody, type Workload } from './lib/messages.js';
import { runLoad, slowSenders, quantile } from './lib/load.js';
import { Sink } from './lib/sink.js';
import { startPostfix, type FrontSpec } from './peers/postfix.js';
import { startSendmail, sendmailAvailable } from './peers/sendmail.js';
import { startClamd, startClamsmtp, startClamavMilter, startAmavisd, startPassthroughProc, type Filter } from './peers/filters.js';
import type { ConfigDef, Cell, LatencyProbe, MemoryResult } from './lib/types.js';
import { writeReport } from './lib/report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const opt = (f: string): string | undefined => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };

const QUICK = flag('--quick');
const ROUNDS = Number(opt('--rounds') ?? 3);
const DURATION = Number(opt('--duration') ?? (QUICK ? 2000 : 6000));
const CONCURRENCY = (opt('--sessions') ?? (QUICK ? '10' : '1,10,50')).split(',').map(Number);
const ONLY = opt('--only')?.split(',');
const WORKLOADS = opt('--workloads')?.split(',');
const MEMORY = !flag('--no-memory');
const MEM_SESSIONS = (opt('--mem-sessions') ?? '50,200').split(',').map(Number);
const AMAVIS_SERVERS = Number(opt('--amavis-servers') ?? 60);

const reg = new ProcessRegistry();
let cleaning = false;
const cleanupSync = () => { if (!cleaning) { cleaning = true; reg.endAllSync(); } };
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { cleanupSync(); process.exit(130); });

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function midstreamCli(): string | null {
  const cli = join(ROOT, 'dist/src/cli.js');
  if (flag('--build') || !existsSync(cli)) {
    log('building midstream (npx tsc -p .)');
    spawnSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'ignore', timeout: 300000 });
  }
  if (!existsSync(cli)) return null;
  const r = spawnSync(process.execPath, [cli, 'proxy', '--help'], { encoding: 'utf8', timeout: 20000 });
  return r.status === 0 ? cli : null;
}

async function startMidstream(name: string, args: string[], dir: string, port: number, banner: boolean): Promise<Filter> {
  mkdirSync(dir, { recursive: true });
  const cli = join(ROOT, 'dist/src/cli.js');
  // its own TMPDIR, so any temp file it would make shows up in the temp-disk figures
  const tempDir = join(dir, 'tmp');
  mkdirSync(tempDir, { recursive: true });
  // MIDSTREAM_BENCH_CPU_PROF=DIR: V8 CPU profiles of every midstream process (written when it exits).
  const prof = process.env.MIDSTREAM_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MIDSTREAM_BENCH_CPU_PROF}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  const tracked = reg.spawn(name, process.execPath, [...prof, cli, ...args], { logFile: join(dir, `${name}.log`), cwd: ROOT, env: { ...process.env, TMPDIR: tempDir } });
  await waitPort(port, 30000, banner ? /^220 /m : undefined);
  return { name, tracked, port, tempDir, pidRoots: () => [tracked.pid] };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (!flag('--no-install')) {
    log('installing peers (idempotent)');
    execFileSync('sh', [join(ROOT, 'bench/peers/install.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const work = mkdtempSync(join(tmpdir(), 'midstream-bench-'));
  chmodSync(work, 0o755); // Postfix and amavisd drop privileges and must traverse it
  log(`work dir ${work}`);
  const P = await freePorts(40);
  let pi = 0;
  const port = () => P[pi++]!;

  const sinkPort = port();
  const sink = await Sink.start(sinkPort);
  reg.adopt('sink', sink.child.pid!);
  const clamd = await startClamd(reg, join(work, 'clamd'), port());
  log(`clamd up on ${clamd.port}`);
  const afterPort = port();

  const want = (k: string) => !ONLY || ONLY.includes(k);
  const filters = new Map<string, Filter>();
  const fronts: FrontSpec[] = [];
  const configs: ConfigDef[] = [];
  const mtaPostfix = { pid: 0 };
  const pfRoots = () => [mtaPostfix.pid];

  // --- Postfix configurations -------------------------------------------------------------
  const addPf = (key: string, label: string, kind: ConfigDef['kind'], f: Filter | null, how: 'proxy' | 'milter' | 'none', memory = true) => {
    const p = port();
    fronts.push({ name: key, port: p, proxyFilter: how === 'proxy' ? f!.port : undefined, milter: how === 'milter' ? `inet:127.0.0.1:${f!.port}` : undefined });
    configs.push({ key, label, mta: 'postfix', kind, port: p, mtaRoots: pfRoots, filterRoots: f ? f.pidRoots : undefined, tempDir: f?.tempDir ?? null, filters: !!f && kind !== 'ceiling', memory: !!f && memory });
  };
  if (want('pf-direct')) addPf('pf-direct', 'Postfix direct (no filter)', 'direct', null, 'none');
  // filters that need nothing from Postfix can start now; the pass-through is started after Postfix
  if (want('pf-clamsmtp')) { const f = await startClamsmtp(reg, join(work, 'clamsmtp'), port(), afterPort, clamd); filters.set('clamsmtp', f); addPf('pf-clamsmtp', 'Postfix → clamsmtp (before-queue)', 'peer', f, 'proxy'); log('clamsmtp up'); }
  if (want('pf-amavisd')) {
    const f = await startAmavisd(reg, join(work, 'amavisd'), port(), afterPort, clamd, AMAVIS_SERVERS); filters.set('amavisd', f);
    addPf('pf-amavisd', `Postfix → amavisd-new (before-queue, max_servers ${AMAVIS_SERVERS})`, 'peer', f, 'proxy'); log('amavisd up');
  }
  let clamavMilter: Filter | null = null;
  if (want('pf-clamav-milter') || want('sm-clamav-milter')) {
    clamavMilter = await startClamavMilter(reg, join(work, 'clamav-milter'), port(), clamd); log('clamav-milter up');
    if (want('pf-clamav-milter')) addPf('pf-clamav-milter', 'Postfix smtpd_milters → clamav-milter', 'peer', clamavMilter, 'milter');
  }
  const cli = midstreamCli();
  let msMilter: Filter | null = null;
  if (!cli) log('midstream CLI not built (dist/src/cli.js proxy --help failed): midstream configurations skipped');
  else {
    // Same policy as the peers: virus scanning only (no banned names/types: the workloads carry
    // .exe attachments), no verdict cache (the workloads repeat the same attachment; the peers
    // have no cache), enough connections for the memory test.
    const conf = join(work, 'midstream-bench.toml');
    writeFileSync(conf, [
      '[proxy]', 'max_connections = 1000', ...(process.env.MIDSTREAM_BENCH_CPU_PROF ? ['shutdown_grace = "1s"'] : []), '[engine]', `signatures = ["${clamd.ndb}", "${clamd.hdb}"]`,
      '[clamd]', 'cache_entries = 0', 'max_concurrent = 24', 'max_stream_bytes = "100MiB"',
      '[policy]', 'banned_extensions = []', 'banned_types = []', '[log]', 'level = "warn"', '',
    ].join('\n'));
    const sig = ['--config', conf];
    const cl = ['--config', conf, '--clamd', `tcp:127.0.0.1:${clamd.port}`];
    const proxies: [string, string, string[]][] = [
      ['pf-ms-builtin', 'Postfix → midstream proxy (built-in engine)', sig],
      ['pf-ms-clamd-perfile', 'Postfix → midstream proxy (clamd per-file)', [...cl, '--clamd-mode', 'per-file']],
      ['pf-ms-clamd-whole', 'Postfix → midstream proxy (clamd whole-message)', [...cl, '--clamd-mode', 'whole-message']],
    ];
    for (const [key, label, extra] of proxies) {
      if (!want(key)) continue;
      const fp = port();
      const f = await startMidstream(key, ['proxy', '--listen', `127.0.0.1:${fp}`, '--forward', `127.0.0.1:${afterPort}`, ...extra], join(work, key), fp, false)
        .catch((e) => { log(`${key} failed to start: ${(e as Error).message}`); return null; });
      if (f) { filters.set(key, f); addPf(key, label, 'midstream', f, 'proxy'); }
    }
    if (want('pf-ms-milter') || want('sm-ms-milter')) {
      const mp = port();
      msMilter = await startMidstream('ms-milter', ['milter', '--listen', `inet:${mp}@127.0.0.1`, ...sig], join(work, 'ms-milter'), mp, false)
        .catch((e) => { log(`midstream milter failed to start: ${(e as Error).message}`); return null; });
      if (msMilter && want('pf-ms-milter')) addPf('pf-ms-milter', 'Postfix smtpd_milters → midstream milter (built-in engine)', 'midstream', msMilter, 'milter');
    }
    if (want('pf-ms-milter-clamd')) {
      // the configuration to set against clamav-milter: same MTA hook, clamd behind both
      const mp = port();
      const f = await startMidstream('ms-milter-clamd', ['milter', '--listen', `inet:${mp}@127.0.0.1`, ...cl, '--clamd-mode', 'per-file'], join(work, 'ms-milter-clamd'), mp, false)
        .catch((e) => { log(`midstream milter (clamd) failed to start: ${(e as Error).message}`); return null; });
      if (f) addPf('pf-ms-milter-clamd', 'Postfix smtpd_milters → midstream milter (clamd per-file)', 'midstream', f, 'milter');
    }
  }
  let passthrough: Filter | null = null;
  const ptPort = want('pf-passthrough') ? port() : 0;
  if (want('pf-passthrough')) {
    // register the front now (Postfix needs the filter port); the process starts right after Postfix
    const p = port();
    fronts.push({ name: 'pf-passthrough', port: p, proxyFilter: ptPort });
    configs.splice(configs.some((c) => c.key === 'pf-direct') ? 1 : 0, 0, {
      key: 'pf-passthrough', label: 'Postfix → pass-through proxy (scans nothing; ceiling)', mta: 'postfix', kind: 'ceiling', port: p,
      mtaRoots: pfRoots, filterRoots: () => (passthrough ? passthrough.pidRoots() : []), tempDir: null, filters: false, memory: true,
    });
  }

  if (fronts.length) {
    const pfx = await startPostfix(reg, join(work, 'postfix'), sinkPort, afterPort, fronts);
    mtaPostfix.pid = pfx.masterPid;
    log(`postfix up (master ${pfx.masterPid})`);
    if (ptPort) { passthrough = await startPassthroughProc(reg, ROOT, join(work, 'passthrough'), ptPort, afterPort); log('pass-through up'); }
  }

  // --- Sendmail configurations ------------------------------------------------------------
  if (sendmailAvailable()) {
    const addSm = async (key: string, label: string, kind: ConfigDef['kind'], f: Filter | null) => {
      if (!want(key)) return;
      const p = port();
      const sm = await startSendmail(reg, join(work, key), p, sinkPort, f?.port).catch((e) => { log(`${key}: ${(e as Error).message}`); return null; });
      if (!sm) return;
      configs.push({ key, label, mta: 'sendmail', kind, port: p, mtaRoots: () => [sm.tracked.pid], filterRoots: f ? f.pidRoots : undefined, tempDir: f?.tempDir ?? null, filters: !!f, memory: false });
      log(`${key} up`);
    };
    await addSm('sm-direct', 'Sendmail direct (no filter)', 'direct', null);
    if (clamavMilter) await addSm('sm-clamav-milter', 'Sendmail → clamav-milter', 'peer', clamavMilter);
    if (msMilter) await addSm('sm-ms-milter', 'Sendmail → midstream milter (built-in engine)', 'midstream', msMilter);
  } else log('sendmail not unpacked: Sendmail configurations skipped');

  log(`configurations: ${configs.map((c) => c.key).join(', ')} (setup ${((Date.now() - t0) / 1000).toFixed(0)} s)`);

  // --- throughput cells -------------------------------------------------------------------------
  const wls = workloads().filter((w) => !WORKLOADS || WORKLOADS.includes(w.key));
  const viruses = virusBodies();
  const delivered = new Map<string, number>();
  let eicarAtSink = 0, noIdAtSink = 0;
  const collect = async () => {
    const t = await sink.take();
    for (const id of t.ids) delivered.set(id, (delivered.get(id) ?? 0) + 1);
    eicarAtSink += t.eicar; noIdAtSink += t.noId;
  };
  const cells: Cell[] = [];
  let cellNo = 0;

  const runCell = async (c: ConfigDef, w: Workload, sessions: number, round: number, durationMs: number, perSession?: number): Promise<Cell> => {
    const idPrefix = `c${++cellNo}.${c.key}.${w.key}.${sessions}.r${round}`;
    await collect();
    const cpu0 = { mta: treeCpuMs(c.mtaRoots()), filter: c.filterRoots ? treeCpuMs(c.filterRoots()) : 0, clamd: treeCpuMs([clamd.tracked.pid]), sink: treeCpuMs([sink.child.pid!]), lg: process.cpuUsage() };
    let tempPeakKb = 0, tempFilesPeak = 0;
    const tempBase = c.tempDir ? duKb(c.tempDir) : 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling && c.tempDir) {
        tempPeakKb = Math.max(tempPeakKb, duKb(c.tempDir) - tempBase);
        tempFilesPeak = Math.max(tempFilesPeak, fileCount(c.tempDir));
        await sleep(250);
      }
    })();
    const virus = c.filters && !perSession ? { bodies: viruses, at: [{ session: 0, index: 1 }, { session: Math.min(1, sessions - 1), index: 2 }] } : undefined;
    const res = await runLoad({ port: c.port, sessions, workload: w, durationMs: perSession ? undefined : durationMs, perSession, idPrefix, virus });
    sampling = false;
    await sampler;
    // drain: wait until everything accepted has reached the sink (delivery CPU belongs to the cell)
    const expect = res.results.filter((r) => r.code === 250 && !r.virus).map((r) => r.id);
    const dl = Date.now() + 60000;
    for (;;) {
      await collect();
      if (expect.every((id) => delivered.has(id)) || Date.now() > dl) break;
      await sleep(100);
    }
    const lg = process.cpuUsage(cpu0.lg);
    const cell: Cell = {
      config: c.key, workload: w.key, sessions, round, idPrefix, elapsedMs: res.elapsedMs, results: res.results, sessionErrors: res.sessionErrors,
      cpuMs: {
        mta: treeCpuMs(c.mtaRoots()) - cpu0.mta,
        filter: c.filterRoots ? treeCpuMs(c.filterRoots()) - cpu0.filter : 0,
        clamd: treeCpuMs([clamd.tracked.pid]) - cpu0.clamd,
        sink: treeCpuMs([sink.child.pid!]) - cpu0.sink,
        loadgen: (lg.user + lg.system) / 1000,
      },
      tempPeakKb, tempFilesPeak,
    };
    const ok = res.results.filter((r) => r.code === 250).length;
    const wait = res.results.filter((r) => r.code === 250).map((r) => r.waitMs);
    log(`${idPrefix}: ${res.results.length} msgs (${ok} ok) ${(res.results.length / (res.elapsedMs / 1000)).toFixed(1)} msg/s p50 ${quantile(wait, 0.5).toFixed(1)} ms${res.sessionErrors.length ? ` errors ${res.sessionErrors.length}: ${res.sessionErrors[0]}` : ''}`);
    return cell;
  };

  // warm-up: one short cell per configuration (JIT, process pools, connection caches)
  for (const c of configs) await runCell(c, wls[0]!, 2, 0, 600);

  for (let round = 1; round <= ROUNDS; round++) {
    for (const w of wls) {
      for (const s of CONCURRENCY) {
        // interleave: rotate the order of configurations every round
        const order = configs.map((_, i) => configs[(i + round + wls.indexOf(w)) % configs.length]!);
        for (const c of order) cells.push(await runCell(c, w, s, round, DURATION));
      }
    }
    log(`round ${round} done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }

  // --- wait after the final dot: 1 MB, 1 session, 7 messages each -------------------------
  const probes: LatencyProbe[] = [];
  const w1m = workloads()[0]!;
  for (const c of configs) {
    const cell = await runCell(c, w1m, 1, 99, 0, 7);
    probes.push({ config: c.key, waits: cell.results.map((r) => r.waitMs), codes: cell.results.map((r) => r.code) });
    cells.push(cell);
  }

  // --- memory: slow senders of 10 MB messages ---------------------------------------------------
  const memory: MemoryResult[] = [];
  if (MEMORY) {
    const big = bigBody(10 * 1024 * 1024);
    for (const c of configs.filter((x) => x.memory && x.filterRoots)) {
      for (const n of MEM_SESSIONS) {
        await collect();
        await sleep(500);
        const roots = c.filterRoots!();
        const base = treeMemKb(roots);
        const holdAt = QUICK ? 1024 * 1024 : undefined;
        // per-session rate, capped so all senders together stay near 32 MB/s (2 cores)
        const rate = Math.min(QUICK ? 320 * 1024 : 512 * 1024, Math.floor((32 << 20) / n));
        const h = slowSenders({ port: c.port, sessions: n, body: big, rate, holdAt, idPrefix: `mem.${c.key}.${n}` });
        let peakRss = 0, peakPss = 0, peakProcs = 0, tempPeak = 0, tempFiles = 0;
        const tb = c.tempDir ? duKb(c.tempDir) : 0;
        let run = true;
        const sampler = (async () => {
          while (run) {
            const m = treeMemKb(c.filterRoots!());
            peakRss = Math.max(peakRss, m.rssKb); peakPss = Math.max(peakPss, m.pssKb); peakProcs = Math.max(peakProcs, m.procs);
            if (c.tempDir) { tempPeak = Math.max(tempPeak, duKb(c.tempDir) - tb); tempFiles = Math.max(tempFiles, fileCount(c.tempDir)); }
            await sleep(250);
          }
        })();
        // a filter that cannot take more connections (amavisd: max_servers) leaves senders waiting
        // for Postfix's 100 s proxy timeout; measure what is there after a cap
        await Promise.race([h.reached, sleep(QUICK ? 40000 : 180000)]);
        await sleep(1000);
        h.release();
        const rs = await h.done;
        run = false;
        await sampler;
        const errs = rs.filter((r) => r.code < 0 || (r.code >= 400)).map((r) => `${r.code} ${r.reply}`);
        // completed = reached the hold point (quick) or got a final reply
        memory.push({
          config: c.key, sessions: n, baselineKb: base.rssKb, peakRssKb: peakRss, peakPssKb: peakPss, peakProcs,
          hwmMainKb: statusKb(roots[0]!, 'VmHWM'), tempPeakKb: tempPeak, tempFilesPeak: tempFiles,
          reached: rs.filter((r) => r.code >= 0 && r.code < 400).length, errors: errs.slice(0, 3), mode: holdAt ? `each sender holds after ${holdAt >> 20} MB of its 10 MB message (at most ${QUICK ? 40 : 180} s), then aborts` : '10 MB sent completely',
        });
        log(`memory ${c.key} x${n}: base ${base.rssKb} kB peak ${peakRss} kB (${peakProcs} procs) temp ${tempPeak} kB errors ${errs.length}`);
        // let connections and temp files go away before the next configuration
        await sleep(QUICK ? 1500 : 5000);
      }
    }
  }

  // final accounting pass (late deliveries)
  await sleep(2000);
  await collect();
  const outDir = join(ROOT, 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const meta = {
    date: new Date().toISOString(), quick: QUICK, rounds: ROUNDS, durationMs: DURATION, concurrency: CONCURRENCY,
    host: { cpus: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()), kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), node: process.version },
    versions: versions(), wallS: Math.round((Date.now() - t0) / 1000), eicarAtSink, noIdAtSink,
    workloads: wls.map((w) => ({ key: w.key, title: w.title, sizes: w.bodies.map((b) => b.length) })),
    midstream: !!cli, amavisServers: AMAVIS_SERVERS,
    loadavg: { start: load0, end: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') },
  };
  writeFileSync(join(outDir, 'peers-raw.json'), JSON.stringify({ meta, configs: configs.map(({ key, label, mta, kind }) => ({ key, label, mta, kind })), cells: cells.map((c) => ({ ...c, results: undefined, n: c.results.length })), probes, memory }, null, 1));
  writeReport(outDir, meta, configs, cells, delivered, probes, memory);
  log(`report written to ${join(outDir, 'peers-report.md')} (${meta.wallS} s)`);
  if (!flag('--keep')) { await reg.endAll(); rmSync(work, { recursive: true, force: true }); }
  else { await reg.endAll(); log(`kept ${work}`); }
}

function versions(): Record<string, string> {
  const v: Record<string, string> = {};
  for (const p of ['postfix', 'clamav-daemon', 'clamsmtp', 'clamav-milter', 'amavisd-new']) {
    try { v[p] = execFileSync('dpkg-query', ['-W', '-f=${Version}', p], { encoding: 'utf8' }); } catch { v[p] = '?'; }
  }
  v.sendmail = '8.17 (unpacked)';
  return v;
}

main().then(() => process.exit(0), async (e) => {
  log(`FAILED: ${(e as Error).stack ?? e}`);
  await reg.endAll();
  process.exit(1);
});
