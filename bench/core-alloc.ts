/**
 * core-alloc.ts — what the core allocates per message on one peer-bench workload: V8's
 * sampling heap profiler (1 KiB interval) including objects already collected by minor and
 * major GCs, so it counts garbage (what drives scavenges), not only what stays alive.
 *
 *   npx tsx bench/core-alloc.ts docx
 *
 * Same engine and bytes as bench/core-profile.ts (peer bench signatures, no banned
 * names/types, 64 KiB pushes); 20 warm-up messages, 100 sampled. Output: KiB per message by
 * allocating function (with the first src/ frame that called it). Sampled: ± a few %.
 */
import { Session } from 'node:inspector/promises';
import { createEngine } from '../src/core/index.js';
import { workloads } from './lib/messages.js';
import { writeSignatures } from './peers/filters.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const key = process.argv[2] ?? 'docx';
const engine = await createEngine({ signatures: Object.values(writeSignatures(mkdtempSync(join(tmpdir(), 'hs-')))), bannedExtensions: [], bannedTypes: [] });
const w = workloads().find((x) => x.key === key)!;
const body = w.bodies[w.bodies.length - 1]!.toString('latin1').replace(/\r\n\.\./g, '\r\n.');
const raw = Buffer.from('Received: from bench\r\nX-Bench-Id: 1\r\n' + body, 'latin1');
const run = async () => { const s = engine.begin(); for (let i = 0; i < raw.length; i += 65536) await s.push(raw.subarray(i, i + 65536)); await s.end(); };
for (let i = 0; i < 20; i++) await run();
const ss = new Session(); ss.connect();
await ss.post('HeapProfiler.enable');
await ss.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
const N = 100; for (let i = 0; i < N; i++) await run();
const { profile } = (await ss.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: Node } };
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
const byFn = new Map<string, number>(); let tot = 0;
const walk = (n: Node, stack: string[]) => { const f = n.callFrame; const name = `${f.functionName || '(anon)'} ${f.url.replace(/^.*?\/(src|bench|node_modules)\//, '$1/')}:${f.lineNumber}`; if (n.selfSize) { const src = [name, ...stack].find((s) => s.includes('src/')) ?? name; const k = name === src ? name : `${name} <- ${src}`; byFn.set(k, (byFn.get(k) ?? 0) + n.selfSize); tot += n.selfSize; } for (const c of n.children) walk(c, [name, ...stack]); };
walk(profile.head, []);
console.log(`${key}: ~${(tot / N / 1024).toFixed(0)} KiB allocated per message (sampled)`);
[...byFn].sort((a, b) => b[1] - a[1]).slice(0, 25).forEach(([k, v]) => console.log(`${(v / N / 1024).toFixed(1).padStart(7)} KiB  ${k}`));
