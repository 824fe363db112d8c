/**
 * fuzz.ts — the long fuzz run: the properties of test/property/fuzz-*.test.ts with many
 * more cases, printing how many ran per target (the count quoted in the README).
 *
 *   npx tsx bench/fuzz.ts [--runs N] [--seconds S] [--seed X] [--only name,name]
 *
 * --runs: cases per target (default 5000; with --seconds alone, unlimited).
 * --seconds: wall-clock budget per target (default none). --seed: default random, printed,
 * so a failure can be replayed with the same seed (fast-check also prints the path).
 * Exit code 1 if any property fails. Loopback only (the proxy target uses 127.0.0.1).
 */
import fc from 'fast-check';
import { createEngine } from '../src/core/index.js';
import { startSink } from '../test/helpers/sink.js';
import {
  counts,
  decoderProperty,
  decoderRoundTripProperty,
  milterSessionProperty,
  milterWireProperty,
  mimeProperty,
  proxyProperty,
  smtpDataProperty,
  smtpReaderProperty,
  startProxyRig,
  unpackProperty,
  uuProperty,
} from '../test/helpers/fuzz-targets.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seconds = arg('seconds') ? Number(arg('seconds')) : undefined;
const runs = arg('runs') ? Number(arg('runs')) : seconds ? Number.MAX_SAFE_INTEGER : 5000;
const seed = arg('seed') ? Number(arg('seed')) : (Math.random() * 2 ** 31) | 0;
const only = arg('only')?.split(',');
if (!Number.isFinite(runs) || runs <= 0 || (seconds !== undefined && !(seconds > 0))) {
  console.error('usage: npx tsx bench/fuzz.ts [--runs N] [--seconds S] [--seed X] [--only a,b]');
  process.exit(2);
}

const engine = await createEngine({});
const sink = await startSink({ storeData: true });
const rig = await startProxyRig(sink);

// The proxy target is ~100× slower per case (real sockets): it gets a tenth of the runs.
const targets: { name: string; make: () => fc.IRawProperty<unknown, boolean>; share?: number }[] = [
  { name: 'mime-generated', make: () => mimeProperty(engine, 'generated') as fc.IRawProperty<unknown, boolean> },
  { name: 'mime-fixtures', make: () => mimeProperty(engine, 'fixtures') as fc.IRawProperty<unknown, boolean> },
  { name: 'decoders-random', make: () => decoderProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'decoders-roundtrip', make: () => decoderRoundTripProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'decoders-uu', make: () => uuProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'unpack', make: () => unpackProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'milter-wire', make: () => milterWireProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'milter-session', make: () => milterSessionProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'smtp-reader', make: () => smtpReaderProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'smtp-data', make: () => smtpDataProperty() as fc.IRawProperty<unknown, boolean> },
  { name: 'smtp-proxy', make: () => proxyProperty(rig) as fc.IRawProperty<unknown, boolean>, share: 0.1 },
];

console.log(`fuzz: seed ${seed}, ${runs === Number.MAX_SAFE_INTEGER ? 'unlimited' : runs} runs per target${seconds ? `, ${seconds} s per target` : ''}`);
let failed = 0;
const rows: string[] = [];
for (const t of targets) {
  if (only && !only.includes(t.name)) continue;
  const numRuns = Math.max(1, Math.floor(runs * (t.share ?? 1)));
  const t0 = performance.now();
  try {
    await fc.assert(t.make(), {
      seed,
      numRuns,
      ...(seconds ? { interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false } : {}),
    });
  } catch (e) {
    failed++;
    console.error(`FAIL ${t.name}:\n${String((e as Error).message ?? e).slice(0, 4000)}`);
  }
  const ms = performance.now() - t0;
  const n = counts[t.name] ?? 0;
  const sub = Object.entries(counts)
    .filter(([k]) => k.startsWith(`${t.name}:`))
    .map(([k, v]) => `${k.slice(t.name.length + 1)}=${v}`)
    .join(' ');
  const row = `${t.name.padEnd(20)} ${String(n).padStart(9)} cases  ${(ms / 1000).toFixed(1).padStart(7)} s  ${sub}`;
  rows.push(row);
  console.log(row);
}
const total = Object.entries(counts).filter(([k]) => !k.includes(':')).reduce((a, [, v]) => a + v, 0);
console.log(`total ${total} cases, ${failed} failing target(s), seed ${seed}`);
await rig.close();
await sink.close();
await engine.close();
process.exit(failed ? 1 : 0);
