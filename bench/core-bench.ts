/**
 * core-bench.ts — throughput, peak RSS and detection latency of the streaming core and
 * `midstream scan`, with clamd INSTREAM on the same raw messages as the denominator.
 *
 *   npx tsx --expose-gc bench/core-bench.ts [--quick] [--baseline GIT-REF]
 *
 * Prints a markdown report and writes it into bench/RESULTS-core.md between the
 * `core-bench:begin/end` markers (text around them is kept).
 *
 * Sections:
 *  A. In-process core: engine.begin() → push(64 KiB chunks) → end(), per workload ×
 *     {0, 10k, 100k} synthetic signatures on top of clamd's test db (EICAR, a clam.exe
 *     body signature, clam.exe's MD5: both engines load it), interleaved with one clamd
 *     INSTREAM of the same raw message (one UNIX-socket connection per message, clamd
 *     loaded with the same synthetic .ndb). Policy as in the peer bench: no banned names
 *     or types (the real-world workloads carry .exe files). Workloads include the peer
 *     bench's real-world shapes (docx, zip-5m, att20, pdf, its gz-1m). MB/s = raw message bytes / wall time, MB = 2^20;
 *     archive rows also give MB of decompressed (member) bytes per CPU-second.
 *     With --baseline REF, the core of that git revision (its src/, extracted with git
 *     archive into .tmp/) runs interleaved too, on the same bytes: section A2 gives
 *     before/after from the same run conditions.
 *  B. CLI: `node dist/src/cli.js scan [--signatures F] -` with the message on stdin;
 *     wall time (includes start-up and signature load) and peak RSS (VmHWM read from
 *     /proc/self/status by an exit hook injected with --import).
 *  C. Peak RSS of the CLI for a 10 MB vs a 1 GB attachment streamed from a generator
 *     child through a pipe (nothing written to disk).
 *  D. Detection latency: raw bytes pushed after the last byte that completes EICAR in
 *     a 1 MB base64 attachment before onFinal fires, at several positions and chunk sizes.
 * Every figure is the median of several runs with the spread (min–max); the machine is
 * shared, so load average is sampled during the run and reported.
 * Needs: /usr/sbin/clamd (scripts/install-deps.sh). The CLI is compiled into
 * bench/out/core-bench-dist first (others rebuild dist/ while a long run is going).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, type Engine } from '../src/core/index.js';
import { startClamd, type RealClamd } from '../test/helpers/clamd.js';
import { EICAR_BYTES, pseudoRandom } from '../test/helpers/mail-build.js';
import { instream, loadSignatures } from './lib-core-clamd.js';
import { GENERATOR_SOURCE, attachmentMessage, rawOffsetOfDecodedByte, synthSignatures, workloads, type Workload } from './lib-core-data.js';

const quick = process.argv.includes('--quick');
const baseArg = process.argv.indexOf('--baseline');
const BASELINE = baseArg > 0 ? process.argv[baseArg + 1] ?? null : null;
const REPS = quick ? 5 : 11;
const BIG_REPS = quick ? 1 : 3;
const CLI_REPS = quick ? 2 : 3;
const SMALL_BATCH = 100; // 4 KB messages per timed sample
const MID_BATCH = 4; // 1 MB messages per timed sample (spreads GC pauses over the sample instead of one unlucky message)
/** Messages per timed sample: many small ones, a few 1 MB ones, one 100 MB one. */
const batchOf = (w: Workload) => (w.raw.length < 64 * 1024 ? SMALL_BATCH : w.raw.length < 10 * MB ? MID_BATCH : 1);
const CHUNK = 64 * 1024;
const SIG_COUNTS = [0, 10_000, 100_000] as const;
// "1 GB": 1000 MiB decoded (1.37 GB raw), just under the default 1 GiB decoded-bytes limit.
const HUGE = quick ? 256 << 20 : 1000 << 20;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The CLI runs from a private build (dist/ is rebuilt and cleaned by others while we run).
const CLI_DIST = join(ROOT, 'bench/out/core-bench-dist');
const CLI = join(CLI_DIST, 'src/cli.js');
const MB = 1 << 20;

// ---- statistics and formatting ------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const spread = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
/** Section A: every engine also has clamd's test db; section B (the CLI): EICAR only under 0. */
const sigLabel = (n: number, cli = false) => (n === 0 ? (cli ? '0 (EICAR)' : 'test db') : `${n / 1000}k`);

const loadSamples: number[] = [];
const sampleLoad = () => loadSamples.push(loadavg()[0]!);

// ---- CPU time ------------------------------------------------------------------------

/** CPU seconds (user + system, all threads) of this process. */
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** CPU seconds of another process from /proc/PID/stat (clock ticks of 10 ms). */
async function procCpu(pid: number): Promise<number> {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15)
}

// ---- in-process core ----------------------------------------------------------------

/** Bytes the core's decompressors put out for one message (SessionStats.unpackedBytes). */
async function unpackedOf(engine: Engine, w: Workload): Promise<number> {
  const s = engine.begin();
  for (let i = 0; i < w.raw.length; i += CHUNK) await s.push(w.raw.subarray(i, i + CHUNK));
  const v = await s.end();
  if (v.kind !== 'clean') throw new Error(`core: ${w.id} not clean: ${JSON.stringify(v)}`);
  return s.stats.unpackedBytes;
}

async function scanCore(engine: Engine, raw: Uint8Array, chunk = CHUNK): Promise<string> {
  const s = engine.begin();
  for (let i = 0; i < raw.length; i += chunk) await s.push(raw.subarray(i, i + chunk));
  const v = await s.end();
  return v.kind === 'clean' ? 'clean' : JSON.stringify(v);
}

/** Seconds per message for one sample (a batch of batchOf(w) messages). */
async function timeCore(engine: Engine, w: Workload): Promise<number> {
  const batch = batchOf(w);
  const t0 = performance.now();
  for (let b = 0; b < batch; b++) {
    const v = await scanCore(engine, w.raw);
    if (v !== 'clean') throw new Error(`core: ${w.id} not clean: ${v}`);
  }
  return (performance.now() - t0) / 1000 / batch;
}

async function timeClamd(c: RealClamd, w: Workload): Promise<number> {
  const batch = batchOf(w);
  const t0 = performance.now();
  for (let b = 0; b < batch; b++) {
    const r = await instream(c.socketPath, w.raw);
    if (r !== 'stream: OK') throw new Error(`clamd: ${w.id}: ${r}`);
  }
  return (performance.now() - t0) / 1000 / batch;
}

interface CoreRow {
  w: Workload;
  sigs: number;
  core: number[]; // MB/s (wall)
  clamd: number[]; // MB/s (wall)
  ratio: number[]; // core / clamd, per interleaved pair
  bytes: number; // raw bytes scanned in the timed runs (per side)
  coreCpu: number; // CPU seconds of this process over the timed core runs
  cpuPerRun: number[]; // CPU seconds per message, per timed run (core)
  baseCpuPerRun: number[]; // same for the --baseline core
  clamdCpu: number; // CPU seconds of clamd over the timed clamd runs
}

// ---- CLI as a child process -----------------------------------------------------------

const HWM_HOOK =
  'data:text/javascript,' +
  encodeURIComponent(
    "import{readFileSync,writeSync}from'node:fs';process.on('exit',()=>{const m=/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status','utf8'));const u=process.cpuUsage();writeSync(2,'\\nVMHWM_KB '+(m?m[1]:'-1')+' CPU_US '+(u.user+u.system)+'\\n')})",
  );

interface CliRun {
  ms: number;
  cpuMs: number;
  hwmKb: number;
  out: string;
}

/** Run `midstream scan -`; stdin from `input` (a Buffer, or a generator child's stdout). */
function runCli(sigFile: string | null, input: Buffer | { genSize: number }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const args = [`--import=${HWM_HOOK}`, CLI, 'scan', ...(sigFile ? ['--signatures', sigFile] : []), '-'];
    const t0 = performance.now();
    let gen: ReturnType<typeof spawn> | null = null;
    if (!Buffer.isBuffer(input)) {
      gen = spawn(process.execPath, ['-e', GENERATOR_SOURCE, String(input.genSize)], { stdio: ['ignore', 'pipe', 'inherit'] });
    }
    const child = spawn(process.execPath, args, { stdio: [gen ? gen.stdout! : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      const m = /VMHWM_KB (\d+) CPU_US (\d+)/.exec(err);
      if (code !== 0 || !m) reject(new Error(`cli exit ${code}: ${out} ${err.slice(-500)}`));
      else resolve({ ms, cpuMs: Number(m[2]) / 1000, hwmKb: Number(m[1]), out: out.trim() });
    });
    if (Buffer.isBuffer(input)) {
      child.stdin!.on('error', () => undefined); // reported through the exit code
      child.stdin!.end(input);
    }
  });
}

// ---- detection latency ----------------------------------------------------------------

interface LatencyRow {
  pos: number;
  chunk: number;
  late: number[]; // bytes pushed after the last byte of the signature, per engine run
}

async function latency(engine: Engine, pos: number, chunk: number): Promise<number> {
  const data = pseudoRandom(1 << 20, 3);
  data.set(EICAR_BYTES, pos);
  const m = attachmentMessage(data, 'data.bin', 'application/octet-stream');
  const last = rawOffsetOfDecodedByte(m.bodyStart, pos + EICAR_BYTES.length - 1);
  const s = engine.begin();
  let pushed = 0;
  let firedAt = -1;
  s.onFinal(() => (firedAt = pushed));
  for (let i = 0; i < m.raw.length && firedAt < 0; i += chunk) {
    const c = m.raw.subarray(i, i + chunk);
    pushed += c.length; // counted before push: onFinal fires inside it
    await s.push(c);
  }
  const v = await s.end();
  if (v.kind !== 'infected' || firedAt < 0) throw new Error(`latency: EICAR at ${pos} not detected early: ${JSON.stringify(v)}`);
  return firedAt - (last + 1);
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t00 = performance.now();
  const started = new Date().toISOString();
  const load0 = loadavg();
  sampleLoad();
  const sampler = setInterval(sampleLoad, 5000);
  const dir = await mkdtemp(join(tmpdir(), 'core-bench-'));
  const log = (s: string) => process.stderr.write(`[${((performance.now() - t00) / 1000).toFixed(0)}s] ${s}\n`);
  let clamd: RealClamd | null = null;
  try {
    const ws = workloads(!quick);
    const sigFiles = new Map<number, string | null>([[0, null]]);
    const probes = new Map<number, Uint8Array>();
    for (const n of SIG_COUNTS) {
      if (n === 0) continue;
      const s = synthSignatures(n);
      const f = join(dir, `synthetic-${n}.ndb`);
      await writeFile(f, s.text);
      sigFiles.set(n, f);
      probes.set(n, s.probe);
    }
    if (BASELINE) {
      log(`extracting the core at ${BASELINE}`);
      baseCreate = await loadBaseline(BASELINE);
    }
    log('building a private copy of the CLI');
    await buildCli();
    log('starting clamd');
    clamd = await startClamd({
      streamMaxLength: '400M',
      extraConfig: ['MaxFileSize 400M', 'MaxScanSize 1000M'],
    });

    // A. in-process core vs clamd, interleaved.
    const rows: CoreRow[] = [];
    const loadMs = new Map<number, number>();
    const clamdReloadMs = new Map<number, number>();
    for (const n of SIG_COUNTS) {
      const f = sigFiles.get(n)!;
      const t0 = performance.now();
      // Both engines get the same databases: clamd's test db (EICAR, a clam.exe body signature,
      // clam.exe's MD5) plus the synthetic .ndb; policy as in the peer bench (virus scanning
      // only: the real-world workloads carry .exe files, which banned-name policy would stop).
      const opts = { signatures: [join(clamd.dir, 'db', 'test.ndb'), join(clamd.dir, 'db', 'test.hdb'), ...(f ? [f] : [])], bannedExtensions: [], bannedTypes: [] };
      const engine = await createEngine(opts);
      loadMs.set(n, performance.now() - t0);
      if (f) clamdReloadMs.set(n, await loadSignatures(clamd.socketPath, join(clamd.dir, 'db'), f, probes.get(n)!));
      log(`sigs ${n}: engine ${engine.signatureCount} signatures in ${loadMs.get(n)!.toFixed(0)} ms`);
      const base = baseCreate ? await baseCreate(opts) : null;
      for (const w of ws) if (w.measureUnpacked && w.unpacked === undefined) w.unpacked = await unpackedOf(engine, w);
      const mine = ws.map((w) => ({ w, sigs: n, core: [], clamd: [], ratio: [], bytes: 0, coreCpu: 0, clamdCpu: 0, cpuPerRun: [], baseCpuPerRun: [] }) as CoreRow);
      rows.push(...mine);
      for (const w of ws) {
        // warm-up (JIT, clamd caches)
        await timeCore(engine, w);
        if (w.raw.length < 10 * MB) await timeCore(engine, w);
        if (base && w.raw.length < 10 * MB) await timeCore(base, w);
        await timeClamd(clamd, w);
      }
      for (let r = 0; r < REPS; r++) {
        for (const row of mine) {
          if (row.w.raw.length > 10 * MB && r >= BIG_REPS) continue;
          if (row.w.raw.length > 10 * MB) (globalThis as { gc?: () => void }).gc?.();
          const c0 = selfCpu();
          const a = await timeCore(engine, row.w);
          const c1 = selfCpu();
          const k0 = await procCpu(clamd.pid);
          const b = await timeClamd(clamd, row.w);
          const k1 = await procCpu(clamd.pid);
          await new Promise((res) => setTimeout(res, 20)); // let clamd finish its post-scan work before our next timing
          row.coreCpu += c1 - c0;
          row.clamdCpu += k1 - k0;
          const batch = batchOf(row.w);
          row.cpuPerRun.push((c1 - c0) / batch);
          if (base && row.w.raw.length < 10 * MB) {
            const d0 = selfCpu();
            await timeCore(base, row.w);
            row.baseCpuPerRun.push((selfCpu() - d0) / batch);
          }
          row.bytes += row.w.raw.length * batchOf(row.w);
          const size = row.w.raw.length / MB;
          row.core.push(size / a);
          row.clamd.push(size / b);
          row.ratio.push(b / a);
        }
      }
      for (const row of mine) log(`  ${row.w.id}: core ${spread(row.core)} MB/s, clamd ${spread(row.clamd)} MB/s`);
      await engine.close();
      await base?.close();
    }
    const clamdStatus = await readFile(`/proc/${clamd.pid}/status`, 'utf8').catch(() => '');
    const clamdRss = /VmRSS:\s+(\d+)/.exec(clamdStatus)?.[1];
    await clamd.stop();
    clamd = null;

    // B. CLI wall time and peak RSS.
    const cli: { w: Workload; sigs: number; ms: number[]; cpu: number[]; hwm: number[] }[] = [];
    for (const n of SIG_COUNTS) {
      for (const w of ws) {
        // The CLI runs the default policy (banned names and types): the real-world workloads carry .exe files.
        if (w.measureUnpacked) continue;
        const row = { w, sigs: n, ms: [] as number[], cpu: [] as number[], hwm: [] as number[] };
        for (let r = 0; r < CLI_REPS; r++) {
          const x = await runCli(sigFiles.get(n)!, w.raw);
          if (!x.out.endsWith(': clean')) throw new Error(`cli ${w.id}: ${x.out}`);
          row.ms.push(x.ms);
          row.cpu.push(x.cpuMs);
          row.hwm.push(x.hwmKb / 1024);
        }
        cli.push(row);
        log(`cli sigs ${n} ${w.id}: ${spread(row.ms)} ms, VmHWM ${spread(row.hwm)} MB`);
      }
    }

    // C. 10 MB vs 1 GB through a pipe (10k signatures).
    const f10k = sigFiles.get(10_000)!;
    const huge: { size: number; ms: number[]; cpu: number[]; hwm: number[] }[] = [];
    for (const [size, reps] of [[10 * MB, 3], [HUGE, quick ? 1 : 2]] as const) {
      const row = { size, ms: [] as number[], cpu: [] as number[], hwm: [] as number[] };
      for (let r = 0; r < reps; r++) {
        const x = await runCli(f10k, { genSize: size });
        if (!x.out.endsWith(': clean')) throw new Error(`cli ${size}: ${x.out}`);
        row.ms.push(x.ms);
        row.cpu.push(x.cpuMs);
        row.hwm.push(x.hwmKb / 1024);
      }
      huge.push(row);
      log(`pipe ${size / MB} MB: ${spread(row.ms)} ms, VmHWM ${spread(row.hwm)} MB`);
    }

    // D. Detection latency (10k signatures + EICAR).
    const lat: LatencyRow[] = [];
    {
      const engine = await createEngine({ signatures: [f10k] });
      for (const chunk of [64, 4096, CHUNK]) {
        for (const pos of [0, 1000, 65_536 + 5, 524_288 + 1, (1 << 20) - EICAR_BYTES.length]) {
          const row: LatencyRow = { pos, chunk, late: [] };
          for (let r = 0; r < 3; r++) row.late.push(await latency(engine, pos, chunk));
          lat.push(row);
        }
      }
      await engine.close();
    }
    clearInterval(sampler);
    sampleLoad();

    // ---- report ------------------------------------------------------------------------
    const L: string[] = [];
    const loads = loadSamples;
    L.push(`Run: ${started}, ${((performance.now() - t00) / 1000).toFixed(0)} s${quick ? ' (--quick)' : ''}. ` +
      `Machine: ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ` +
      `node ${process.version}, ${(await clamdVersion())}. Load average (1 min) at start ${load0[0]!.toFixed(2)}, ` +
      `during the run ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${median(loads).toFixed(2)}): ` +
      `the 2 cores are shared with other engineers' test runs, so spreads are wide even at low load.`);
    L.push('');
    L.push('### A. Throughput, in process, vs clamd INSTREAM on the same raw message');
    L.push('');
    L.push(`MB/s of raw message (MB = 2^20 bytes), median (min–max) of ${REPS} interleaved runs (${BIG_REPS} for 100 MB); ` +
      `a sample is a batch of ${SMALL_BATCH} messages for 4 KB rows, ${MID_BATCH} for 1 MB rows. "core" = createEngine() + begin/push(64 KiB)/end on one thread; ` +
      `"clamd" = one zINSTREAM per message over a fresh UNIX-socket connection to clamd loaded with the same signatures; ` +
      `both engines have clamd's 3-signature test db (EICAR, a clam.exe body signature, clam.exe's MD5) under every signature count ` +
      `("test db" = that alone), and no banned-name/type policy (as in the peer bench). "peer …" rows are the peer bench's messages. Ratio = median of per-run core/clamd speed ratios (>1: we are faster). ` +
      `"per CPU-s" columns divide the same bytes by CPU time instead of wall time (ours: process.cpuUsage(), all threads; ` +
      `clamd: utime+stime from /proc/PID/stat, 10 ms ticks, summed over all timed runs) — the per-core figure, ` +
      `much less sensitive to other processes taking the CPUs than wall time.`);
    L.push('');
    L.push('| message | raw size | signatures | core MB/s | clamd MB/s | core / clamd | core MB per CPU-s | clamd MB per CPU-s | ratio per CPU-s | core decompressed MB per CPU-s |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const cc = r.bytes / MB / r.coreCpu;
      const kc = r.bytes / MB / r.clamdCpu;
      const un = r.w.unpacked ? fmt((cc * r.w.unpacked) / r.w.raw.length) : '—';
      L.push(`| ${r.w.label} | ${(r.w.raw.length / 1024).toFixed(0)} KiB | ${sigLabel(r.sigs)} | ${spread(r.core)} | ${spread(r.clamd)} | ${fmt(median(r.ratio))}× | ${fmt(cc)} | ${fmt(kc)} | ${fmt(cc / kc)}× | ${un} |`);
    }
    if (BASELINE) {
      L.push('');
      L.push(`### A2. Before / after: the core at \`${BASELINE}\` against this checkout, same run`);
      L.push('');
      L.push(`Both cores ran interleaved with each other (and with clamd) on the same bytes, message by message: ` +
        `CPU ms per message, median (min–max) of the timed runs; the speed-up is the ratio of the medians. ` +
        `MB per CPU-s of raw message (and of decompressed member bytes for archives).`);
      L.push('');
      L.push('| message | signatures | before CPU ms | after CPU ms | speed-up | before MB per CPU-s | after MB per CPU-s | after decompressed MB per CPU-s |');
      L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        if (r.baseCpuPerRun.length === 0) continue;
        const a = median(r.baseCpuPerRun);
        const b = median(r.cpuPerRun);
        const size = r.w.raw.length / MB;
        const un = r.w.unpacked ? fmt(r.w.unpacked / MB / b) : '—';
        L.push(`| ${r.w.label} | ${sigLabel(r.sigs)} | ${spread(r.baseCpuPerRun.map((x) => x * 1000))} | ${spread(r.cpuPerRun.map((x) => x * 1000))} | ${fmt(a / b)}× | ${fmt(size / a)} | ${fmt(size / b)} | ${un} |`);
      }
    }
    L.push('');
    L.push('Signature load (createEngine, in process): ' +
      SIG_COUNTS.map((n) => `${sigLabel(n)} ${loadMs.get(n)!.toFixed(0)} ms`).join(', ') +
      `. clamd reload of the same .ndb: ` +
      [...clamdReloadMs].map(([n, ms]) => `${sigLabel(n)} ${ms.toFixed(0)} ms`).join(', ') +
      (clamdRss ? `; clamd RSS after the run ${(Number(clamdRss) / 1024).toFixed(0)} MB.` : '.'));
    L.push('');
    L.push('### B. `midstream scan -` (CLI child process)');
    L.push('');
    L.push(`Wall time from spawn to exit and CPU time of the CLI process (node start-up + signature load + scan), ` +
      `and peak RSS (VmHWM), median (min–max) of ${CLI_REPS} runs. Start-up and signature load dominate below 100 MB: ` +
      `compare with the 4 KB row of the same signature count.`);
    L.push('');
    L.push('| message | signatures | wall ms | CPU ms | peak RSS MB |');
    L.push('|---|---:|---:|---:|---:|');
    for (const r of cli) L.push(`| ${r.w.label} | ${sigLabel(r.sigs, true)} | ${spread(r.ms)} | ${spread(r.cpu)} | ${spread(r.hwm)} |`);
    L.push('');
    L.push('### C. Peak RSS: 10 MB vs ' + (HUGE >= 1000 << 20 ? '1 GB' : `${HUGE / MB} MB`) + ' message (CLI, 10k signatures, stdin from a generator child)');
    L.push('');
    L.push('| attachment | raw message | wall s | CPU s | MB/s (wall) | MB per CPU-s | peak RSS MB |');
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const h of huge) {
      const rawMb = ((h.size * 4) / 3 / MB) * (78 / 76); // base64 grows by 4/3, plus CRLF every 76 chars
      L.push(`| ${h.size / MB} MB | ${fmt(rawMb)} MB | ${spread(h.ms.map((x) => x / 1000))} | ${spread(h.cpu.map((x) => x / 1000))} | ` +
        `${fmt(rawMb / (median(h.ms) / 1000))} | ${fmt(rawMb / (median(h.cpu) / 1000))} | ${spread(h.hwm)} |`);
    }
    const dHwm = median(huge[1]!.hwm) - median(huge[0]!.hwm);
    L.push('');
    L.push(`Difference of medians: ${dHwm >= 0 ? '+' : ''}${dHwm.toFixed(1)} MB (target: within 16 MB).`);
    L.push('');
    L.push('### D. Detection latency (EICAR in a 1 MB base64 attachment, 10k signatures)');
    L.push('');
    L.push('Raw bytes pushed after the byte that completes the signature until onFinal fired, counting the whole chunk ' +
      'in which it fired (so a chunk size of C adds up to C−1). Median (min–max) of 3 runs. Target ≤ 64 KiB.');
    L.push('');
    L.push('| EICAR at decoded offset | chunk 64 B | chunk 4 KiB | chunk 64 KiB |');
    L.push('|---:|---:|---:|---:|');
    const positions = [...new Set(lat.map((x) => x.pos))];
    for (const p of positions) {
      const cell = (c: number) => spread(lat.find((x) => x.pos === p && x.chunk === c)!.late);
      L.push(`| ${p} | ${cell(64)} | ${cell(4096)} | ${cell(CHUNK)} |`);
    }
    const report = L.join('\n');
    console.log(report);
    await writeResults(report);
  } finally {
    clearInterval(sampler);
    if (clamd) await clamd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

let baseCreate: ((o: object) => Promise<Engine>) | null = null;

/** `git archive REF src` into .tmp/core-bench-baseline-REF (inside the checkout so node_modules resolve, outside tsconfig); its createEngine. */
async function loadBaseline(ref: string): Promise<(o: object) => Promise<Engine>> {
  const dir = join(ROOT, '.tmp', `core-bench-baseline-${ref.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const git = spawn('git', ['-C', ROOT, 'archive', ref, 'src'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tar = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'inherit', 'inherit'] });
    git.stdout!.pipe(tar.stdin!);
    tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git archive ${ref} | tar: exit ${code}`))));
    git.on('error', reject);
  });
  const mod = (await import(join(dir, 'src/core/index.ts'))) as { createEngine: (o: object) => Promise<Engine> };
  return mod.createEngine;
}

/** tsc into CLI_DIST (inside the checkout so node_modules resolve). */
function buildCli(): Promise<void> {
  return new Promise((resolve, reject) => {
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const c = spawn(process.execPath, [tsc, '-p', ROOT, '--outDir', CLI_DIST, '--noEmitOnError', 'false'], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('error', reject);
    // tsc exits 2 on type errors in unrelated files but still emits; check the output instead.
    c.on('close', () => readFile(CLI).then(() => resolve(), () => reject(new Error(`no ${CLI} after tsc`))));
  });
}

async function clamdVersion(): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('/usr/sbin/clamd', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let o = '';
    c.stdout!.on('data', (d: Buffer) => (o += d));
    c.on('close', () => resolve(o.trim() || 'clamd ?'));
    c.on('error', () => resolve('clamd ?'));
  });
}

const BEGIN = '<!-- core-bench:begin (generated by bench/core-bench.ts; edit outside these markers) -->';
const END = '<!-- core-bench:end -->';

async function writeResults(report: string): Promise<void> {
  const file = join(ROOT, 'bench/RESULTS-core.md');
  let text = await readFile(file, 'utf8').catch(() => `# Core benchmark results\n\n${BEGIN}\n${END}\n`);
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) text = `${text.trimEnd()}\n\n${BEGIN}\n${END}\n`;
  const a2 = text.indexOf(BEGIN);
  const b2 = text.indexOf(END);
  text = text.slice(0, a2 + BEGIN.length) + '\n' + report + '\n' + text.slice(b2);
  await writeFile(file, text);
}

await main();
