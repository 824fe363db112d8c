/**
 * With clamd: never weaker than clamd on the raw message (issue #10, item 4).
 *
 * A real clamd (test/helpers/clamd.ts: EICAR and clam.exe signatures, ClamAV's default
 * ScanMail/ScanArchive... on) gets every generated case whole through INSTREAM, as
 * clamav-milter would send it. midstream configured with that clamd (built-in engine +
 * clamd per-file, `raw_message` at its default "anomaly") must reject every case clamd
 * flags, must still accept every benign control, and must give the same verdict split at
 * random chunk sizes (the raw-message stream is a new path through the core). Failures are checked against
 * known-gaps.json (ids "clamd:<case id>"), like the differential test.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type Engine, type Verdict } from '../../src/core/index.js';
import { ClamdClient } from '../../src/core/scan/clamd-client.js';
import { startClamd, type RealClamd } from '../helpers/clamd.js';
import { generateCases, type HostileCase } from './hostile-gen.js';
import { describe, randomSplit, rejects, tempfails, verdictOf } from './midstream-run.js';
import { prng } from './hostile-gen.js';
import { isDeepStrictEqual } from 'node:util';
import { checkGaps, gapReason, writeGaps, type Failure } from './judge.js';

let clamd: RealClamd;
let engine: Engine;
let direct: ClamdClient;
let cases: HostileCase[];
const clamdFlags = new Map<string, string>();
const failures = new Map<string, Failure>();
let rawScanned = 0;

/**
 * Two clamd streams (a file's and the raw message's) may both find the same signature; the
 * first answer latches, and which one arrives first is timing, not chunking. So a clamd
 * verdict is compared without its where-path.
 */
function sameUpToClamdWhere(v: Verdict): Verdict {
  return v.kind === 'infected' && v.engine === 'clamd' ? { ...v, where: '*' } : v;
}

/** Run `fn` over items, `n` at a time (clamd has 4 threads here). */
async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

before(async () => {
  clamd = await startClamd();
  direct = new ClamdClient({ endpoints: [clamd.unix] });
  engine = await createEngine({ clamd: { endpoints: [clamd.unix] } });
  cases = generateCases();
  await pool(cases, 4, async (c) => {
    const s = direct.openStream();
    s.write(c.raw);
    const r = await s.end();
    if (r.kind === 'infected') clamdFlags.set(c.id, r.name);
    else if (r.kind === 'error') throw new Error(`clamd on ${c.id}: ${r.errorKind} ${r.detail ?? ''}`);
  });
  const rnd = prng(0xc1a3d);
  const splits = new Map(cases.map((c) => [c.id, randomSplit(c.raw, prng(Math.floor(rnd() * 2 ** 31)))]));
  await pool(cases, 4, async (c) => {
    const { verdict, stats } = await verdictOf(engine, [c.raw]);
    const split = (await verdictOf(engine, splits.get(c.id)!)).verdict;
    if (stats.anomalies.length > 0 || stats.warnings.length > 0) rawScanned++;
    const id = `clamd:${c.id}`;
    if (verdict.kind === 'error' && verdict.errorKind === 'internal') failures.set(id, { kind: 'internal', detail: verdict.detail ?? '' });
    else if (!isDeepStrictEqual(sameUpToClamdWhere(split), sameUpToClamdWhere(verdict))) failures.set(id, { kind: 'chunking', detail: `whole: ${describe(verdict)}; split: ${describe(split)}` });
    else if (c.benign && (rejects(verdict, engine.policy.actions) || tempfails(verdict, engine.policy.actions))) {
      failures.set(id, { kind: 'false-positive', detail: `benign control with clamd: midstream ${describe(verdict)}` });
    } else if (!c.benign && clamdFlags.has(c.id) && !rejects(verdict, engine.policy.actions)) {
      failures.set(id, { kind: 'missed', detail: `clamd on the raw message: ${clamdFlags.get(c.id)}; midstream+clamd ${describe(verdict)}` });
    }
  });
});

after(async () => {
  direct?.close();
  await engine?.close();
  await clamd?.stop();
});

test('midstream with clamd rejects every case clamd flags on the raw message', (t) => {
  const hostile = cases.filter((c) => !c.benign);
  const flagged = hostile.filter((c) => clamdFlags.has(c.id));
  const benignFlagged = cases.filter((c) => c.benign && clamdFlags.has(c.id));
  assert.deepEqual(benignFlagged.map((c) => c.id), [], 'clamd flags no benign control (else the generator is wrong)');
  assert.ok(clamdFlags.has('baseline/base64-attachment:eicar'), 'clamd reads the plain baseline: it is really scanning');
  t.diagnostic(`clamd flags ${flagged.length}/${hostile.length} hostile cases on the raw message; midstream sent the raw message for ${rawScanned}/${cases.length} cases (anomaly or warning seen); failing now: ${failures.size}`);
  const ids = new Set(cases.map((c) => `clamd:${c.id}`));
  if (process.env.MIDSTREAM_WRITE_GAPS) {
    const byId = new Map(cases.map((c) => [`clamd:${c.id}`, c]));
    writeGaps(failures, 'clamd:', (id, f) => {
      const c = byId.get(id)!;
      const fix = f.kind === 'missed' ? 'midstream records no anomaly here, so the raw message is not scanned: ' : '';
      return `${gapReason(c, f)}`.replace(' — ', ` — ${fix}`);
    });
  }
  const g = checkGaps(failures, ids, 'clamd:');
  assert.deepEqual([
    ...g.regressions.map((r) => `REGRESSION ${r.id}: ${r.failure.kind}: ${r.failure.detail}`),
    ...g.stale.map((id) => `STALE known gap (now passes; delete it from known-gaps.json): ${id}`),
  ], []);
});
