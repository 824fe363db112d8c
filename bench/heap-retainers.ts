/**
 * bench/heap-retainers.ts — where the ArrayBuffer bytes of a heap snapshot are held:
 * every backing store (`system / JSArrayBufferData`, and other native nodes of at least
 * --min bytes) with the path that reaches it from the GC roots, grouped by the last
 * --depth steps of that path, biggest groups first.
 *
 * Input: a .heapsnapshot (v8.writeHeapSnapshot, `node --heapsnapshot-signal`, or
 * bench/conn-memory.ts --snapshot). Output: text on stdout, one group per line:
 * total bytes, count, typical size, path (object names and edge names, root side first).
 * The path is a shortest path over strong edges (weak edges skipped): one of the
 * retainers, not all of them, which is what a "what keeps this alive" question needs.
 * --classes adds the heap's objects by name (self size); with --base OTHER.heapsnapshot
 * and --per N, the difference FILE − OTHER divided by N (e.g. per connection between two
 * counts of held connections).
 * --types array,object groups other node types instead of native ones.
 * Run: node dist/bench/heap-retainers.js FILE [--min 1024] [--depth 8] [--top 30] [--types native] [--classes [--base FILE2 --per N]]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const argv = process.argv.slice(2);
const opt = (f: string, d: number) => {
  const i = argv.indexOf(f);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const file = argv[0] && !argv[0].startsWith('--') ? argv[0] : undefined;
if (!file) throw new Error('usage: heap-retainers FILE [--min BYTES] [--depth N] [--top N]');
const MIN = opt('--min', 1024);
const DEPTH = opt('--depth', 8);
const TOP = opt('--top', 30);
/** Node types whose nodes are grouped by path (default: native, i.e. backing stores). */
const TYPES = (argv.includes('--types') ? argv[argv.indexOf('--types') + 1]! : 'native').split(',');

const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const m = s.snapshot.meta;
const NF = m.node_fields.length;
const EF = m.edge_fields.length;
const nType = m.node_fields.indexOf('type');
const nName = m.node_fields.indexOf('name');
const nSize = m.node_fields.indexOf('self_size');
const nEdges = m.node_fields.indexOf('edge_count');
const eType = m.edge_fields.indexOf('type');
const eName = m.edge_fields.indexOf('name_or_index');
const eTo = m.edge_fields.indexOf('to_node');
const nodeTypes = m.node_types[0];
const edgeTypes = m.edge_types[0];
const N = s.nodes.length / NF;

const firstEdge = new Uint32Array(N + 1);
for (let i = 0, e = 0; i < N; i++) {
  firstEdge[i] = e;
  e += s.nodes[i * NF + nEdges]! * EF;
}
firstEdge[N] = s.edges.length;

// Shortest paths from the root (node 0) over strong edges.
const parent = new Int32Array(N).fill(-1);
const parentEdge = new Int32Array(N).fill(-1);
parent[0] = 0;
let queue = [0];
while (queue.length > 0) {
  const next: number[] = [];
  for (const i of queue) {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) {
      const t = edgeTypes[s.edges[e + eType]!];
      if (t === 'weak' || t === 'shortcut') continue;
      const to = s.edges[e + eTo]! / NF;
      if (parent[to] !== -1) continue;
      parent[to] = i;
      parentEdge[to] = e;
      next.push(to);
    }
  }
  queue = next;
}

const name = (i: number) => {
  const t = nodeTypes[s.nodes[i * NF + nType]!];
  const n = s.strings[s.nodes[i * NF + nName]!]!;
  return t === 'object' || t === 'native' ? n.slice(0, 60) : `(${t})${t === 'closure' ? n.slice(0, 40) : ''}`;
};
const edgeName = (e: number) => {
  const t = edgeTypes[s.edges[e + eType]!];
  const v = s.edges[e + eName]!;
  return t === 'element' || t === 'hidden' ? `[${t === 'hidden' ? 'h' : ''}${v}]` : s.strings[v]!;
};

const groups = new Map<string, { bytes: number; count: number; sizes: Map<number, number> }>();
let total = 0;
let unreachable = 0;
for (let i = 0; i < N; i++) {
  const t = nodeTypes[s.nodes[i * NF + nType]!];
  const size = s.nodes[i * NF + nSize]!;
  if (!TYPES.includes(t!) || size < MIN) continue;
  total += size;
  let key: string;
  if (parent[i] === -1) {
    unreachable += size;
    key = `(unreachable) ${name(i)}`;
  } else {
    const steps: string[] = [];
    for (let j = i, d = 0; j !== 0 && d < DEPTH; j = parent[j]!, d++) steps.push(`${name(parent[j]!)}.${edgeName(parentEdge[j]!)}`);
    key = steps.reverse().join(' → ') + ` → ${name(i)}`;
  }
  const g = groups.get(key) ?? { bytes: 0, count: 0, sizes: new Map() };
  g.bytes += size;
  g.count++;
  g.sizes.set(size, (g.sizes.get(size) ?? 0) + 1);
  groups.set(key, g);
}

process.stdout.write(`${file}: ${N} nodes; native nodes ≥ ${MIN} B: ${(total / 1048576).toFixed(2)} MiB (${(unreachable / 1048576).toFixed(2)} MiB not reachable over strong edges)\n`);
for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, TOP)) {
  const common = [...g.sizes].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([sz, c]) => `${sz}×${c}`).join(' ');
  process.stdout.write(`${(g.bytes / 1024).toFixed(0).padStart(8)} KiB ${String(g.count).padStart(6)}  [${common}]  ${key}\n`);
}

/** Self size and count by object name (constructor, or type for non-objects): what a heap is made of. */
function classes(snap: Snapshot): Map<string, { bytes: number; count: number }> {
  const byName = new Map<string, { bytes: number; count: number }>();
  const n = snap.nodes.length / NF;
  for (let i = 0; i < n; i++) {
    const t = nodeTypes[snap.nodes[i * NF + nType]!];
    if (t === 'native') continue;
    const key = t === 'object' || t === 'closure' ? `${t} ${snap.strings[snap.nodes[i * NF + nName]!]!.slice(0, 50)}` : `(${t})`;
    const g = byName.get(key) ?? { bytes: 0, count: 0 };
    g.bytes += snap.nodes[i * NF + nSize]!;
    g.count++;
    byName.set(key, g);
  }
  return byName;
}

if (argv.includes('--classes')) {
  const bi = argv.indexOf('--base');
  const per = opt('--per', 1);
  const mine = classes(s);
  const base = bi >= 0 ? classes(JSON.parse(readFileSync(argv[bi + 1]!, 'utf8')) as Snapshot) : new Map<string, { bytes: number; count: number }>();
  const rows = [...mine].map(([k, g]) => [k, (g.bytes - (base.get(k)?.bytes ?? 0)) / per, (g.count - (base.get(k)?.count ?? 0)) / per] as const);
  let sum = 0;
  for (const r of rows) sum += r[1];
  process.stdout.write(`\nheap objects by name (self size${bi >= 0 ? `, minus ${argv[bi + 1]}` : ''}${per !== 1 ? `, per ${per}` : ''}): total ${(sum / 1024).toFixed(1)} KiB\n`);
  for (const [key, bytes, count] of rows.sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    process.stdout.write(`${(bytes / 1024).toFixed(2).padStart(9)} KiB ${count.toFixed(2).padStart(9)}  ${key}\n`);
  }
}
