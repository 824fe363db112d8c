/**
 * core-profile.ts — where the core's CPU goes, per message, on the peer benchmark's workloads.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/core-profile.js [--workloads docx,att20] [--seconds 4] [--profile DIR] [--sigs peer|eicar] [--chunk BYTES]
 *
 * --chunk N pushes N-byte chunks (default 64 KiB; a proxy behind Postfix sees reads of a few KiB).
 * Runs each workload of bench/lib/messages.ts (the peer bench's messages, same bytes)
 * through the core alone — createEngine() + begin/push(64 KiB)/end on one thread — with
 * the signature set the peer bench's built-in configuration loads (bench/run-peers.ts:
 * bench/peers/filters.ts writeSignatures(), an EICAR .ndb and clam.exe's MD5 in an .hdb;
 * `--sigs eicar`: the built-in EICAR only) and its policy (no banned names or types).
 * Prints CPU ms per message (process.cpuUsage over the timed loop, after 5 warm-up
 * messages). With --profile DIR it also takes a V8 CPU profile of each timed loop
 * (inspector, 100 µs sampling; run the compiled JS so that lines are real), writes it to
 * DIR/<workload>.cpuprofile and prints where the time goes in ms per message, by group:
 * native zlib inflate (writeSync), CRC-32, native searches by caller (embedded-zip/end-
 * record watch, signature search, MIME boundaries), base64 (latin1 slice + native
 * decode), hashing, GC, and JavaScript by core directory. Sampling attributes a tick to
 * the function on top of the stack; shares are of the samples, scaled to the measured
 * CPU per message (all threads, so GC helper threads make the scale slightly generous).
 * Output: markdown on stdout. The machine is shared: compare workloads of one run.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../src/core/index.js';
import { workloads } from './lib/messages.js';
import { writeSignatures } from './peers/filters.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const only = arg('--workloads')?.split(',') ?? null;
const seconds = Number(arg('--seconds') ?? 4);
const profileDir = arg('--profile');
const sigs = arg('--sigs') ?? 'peer';
const CHUNK = Number(arg('--chunk') ?? 64 * 1024);

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The group a sample belongs to: the native function on top, named by what it does, or the core directory of the JS. */
function group(stack: CallFrame[]): string {
  const top = stack[0]!;
  const name = top.functionName;
  const firstCore = stack.find((f) => f.url.includes('/src/core/'));
  const where = firstCore ? firstCore.url.replace(/^.*\/src\/core\//, '').replace(/\.js$/, '') : '';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)' || name === '(program)') return 'V8 (program, idle)';
  if (name === 'writeSync' && top.url === '') return 'inflate (zlib, native)';
  if (name === 'crc32') return 'CRC-32 (zlib, native)';
  if (name === 'indexOfBuffer') {
    if (where.includes('zip-eocd-watch')) return 'search: embedded zip / end records (native)';
    if (where.includes('sigs/matcher')) return 'search: signatures (native)';
    if (where.includes('mime/')) return 'search: MIME boundaries (native)';
    return `search: other (native, ${where || '?'})`;
  }
  if (name === 'base64Write' || (top.url === 'node:buffer' && (name === 'slice' || name === 'write' || name === 'toString')) || name === 'latin1Slice' || name === 'dispatch')
    if (where.includes('decode/')) return 'base64 (native)';
  if (stack.some((f) => f.url.includes('crypto'))) return 'hashing (crypto)';
  if (firstCore) return `JS: ${where.split('/').length > 1 ? where.split('/')[0] + '/' : where}`;
  return 'other (bench loop, node internals)';
}

function summarize(p: Profile, cpuMsPerMsg: number): [string, number][] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ticks = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    ticks.set(p.samples[i]!, (ticks.get(p.samples[i]!) ?? 0) + d);
    total += d;
  }
  const groups = new Map<string, number>();
  let idle = 0;
  for (const [id, d] of ticks) {
    const stack: CallFrame[] = [];
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) stack.push(byId.get(x)!.callFrame);
    const g = group(stack);
    if (stack[0]!.functionName === '(idle)') idle += d;
    else groups.set(g, (groups.get(g) ?? 0) + d);
  }
  const busy = total - idle;
  return [...groups].sort((a, b) => b[1] - a[1]).map(([g, d]) => [g, (d / busy) * cpuMsPerMsg]);
}

const dir = mkdtempSync(join(tmpdir(), 'core-profile-'));
const files = sigs === 'eicar' ? [] : Object.values(writeSignatures(dir));
const engine = await createEngine({ signatures: files, bannedExtensions: [], bannedTypes: [] });
const inspector = new Session();
inspector.connect();
if (profileDir) mkdirSync(profileDir, { recursive: true });
const out: string[] = [];
out.push(`Signatures: ${sigs === 'eicar' ? 'EICAR only (built in)' : 'the peer bench set (EICAR .ndb + clam.exe MD5 .hdb, plus the built-in EICAR)'}; ${engine.signatureCount} loaded.`);
out.push('');
out.push('| workload | raw KiB | messages | CPU ms per message |');
out.push('|---|---:|---:|---:|');
const details: string[] = [];
for (const w of workloads()) {
  if (only && !only.includes(w.key)) continue;
  // The bench bodies are dot-stuffed for SMTP; the core sees the message unstuffed.
  const body = w.bodies[w.bodies.length - 1]!.toString('latin1').replace(/\r\n\.\./g, '\r\n.');
  const raw = Buffer.from('Received: from bench\r\nX-Bench-Id: 1\r\n' + body, 'latin1');
  const run = async (): Promise<void> => {
    const s = engine.begin();
    for (let i = 0; i < raw.length; i += CHUNK) await s.push(raw.subarray(i, i + CHUNK));
    const v = await s.end();
    if (v.kind !== 'clean') throw new Error(`${w.key}: ${JSON.stringify(v)}`);
  };
  for (let i = 0; i < 5; i++) await run();
  if (profileDir) {
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
    await inspector.post('Profiler.start');
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await run();
    n++;
  }
  const c = process.cpuUsage(c0);
  const ms = (c.user + c.system) / 1000 / n;
  out.push(`| ${w.key} | ${(raw.length / 1024).toFixed(0)} | ${n} | ${ms.toFixed(2)} |`);
  process.stderr.write(`${w.key}: ${ms.toFixed(2)} ms per message\n`);
  if (profileDir) {
    const { profile } = (await inspector.post('Profiler.stop')) as { profile: Profile };
    writeFileSync(join(profileDir, `${w.key}.cpuprofile`), JSON.stringify(profile));
    details.push('', `#### ${w.key}: ${ms.toFixed(2)} ms CPU per message`, '', '| where | ms per message | share |', '|---|---:|---:|');
    for (const [g, v] of summarize(profile, ms)) if (v >= 0.005) details.push(`| ${g} | ${v.toFixed(2)} | ${((100 * v) / ms).toFixed(1)}% |`);
  }
}
console.log([...out, ...details].join('\n'));
await engine.close();
