/**
 * Property-based mutation of MIME structure on top of the differential harness.
 *
 * Every generated case gets MUTANTS_PER_CASE mutants from fast-check (seeded per case id,
 * so adding a case does not reshuffle the others): header lines duplicated or swapped,
 * a Content-Transfer-Encoding value flipped, a delimiter line perturbed, junk lines
 * inserted. Each mutant is read by the same oracles; the property is the harness's:
 * whatever an oracle extracts (EICAR, a banned name), midstream rejects, and a random split
 * gives the whole message's verdict. A mutated benign control is no control any more, so
 * only the hostile-side property applies to mutants. Failing mutants are listed in
 * known-gaps.json with ids "mut:<case id>#<n>" (MIDSTREAM_WRITE_GAPS=1 rewrites them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { createEngine, type Engine } from '../../src/core/index.js';
import { generateCases, prng } from './hostile-gen.js';
import { runOracles, type OracleVerdicts } from './oracles.js';
import { runMidstream } from './midstream-run.js';
import { checkGaps, judge, writeGaps, type Failure } from './judge.js';

const MUTANTS_PER_CASE = 2;

type Mutation =
  | { op: 'dup-header'; at: number }
  | { op: 'swap-headers'; at: number }
  | { op: 'flip-cte'; at: number; to: string }
  | { op: 'perturb-delimiter'; at: number; how: 'suffix' | 'drop-dash' | 'space' | 'upper' | 'close' }
  | { op: 'junk-line'; at: number; line: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('dup-header' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swap-headers' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('flip-cte' as const), at: fc.nat(), to: fc.constantFrom('7bit', 'base64', 'quoted-printable', 'x-uuencode', 'BASE64', '8bit') }),
  fc.record({ op: fc.constant('perturb-delimiter' as const), at: fc.nat(), how: fc.constantFrom('suffix' as const, 'drop-dash' as const, 'space' as const, 'upper' as const, 'close' as const) }),
  fc.record({ op: fc.constant('junk-line' as const), at: fc.nat(), line: fc.constantFrom('X-Junk: 1', 'junk without a colon', '', '--', ': colon first', 'From nobody Mon Jan  1 00:00:00 2024', '\tfolded', 'begin 644 x.txt') }),
);
const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 3 });

const pick = <T>(xs: T[], at: number): T | undefined => (xs.length ? xs[at % xs.length] : undefined);

/** Apply mutations to a message, line-wise (latin-1, line ends kept with their line). */
export function mutate(raw: Buffer, ms: readonly Mutation[]): Buffer {
  const lines = raw.toString('latin1').split(/(?<=\n)/);
  const isHeader = (l: string) => /^[\x21-\x39\x3b-\x7e]+:/.test(l);
  for (const m of ms) {
    const idx = (pred: (l: string) => boolean) => lines.map((l, i) => (pred(l) ? i : -1)).filter((i) => i >= 0);
    if (m.op === 'dup-header') {
      const i = pick(idx(isHeader), m.at);
      if (i !== undefined) lines.splice(i, 0, lines[i]!);
    } else if (m.op === 'swap-headers') {
      const hs = idx((l) => isHeader(l));
      const i = pick(hs, m.at);
      if (i !== undefined && isHeader(lines[i + 1] ?? '')) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
    } else if (m.op === 'flip-cte') {
      const i = pick(idx((l) => /^content-transfer-encoding:/i.test(l)), m.at);
      if (i !== undefined) lines[i] = lines[i]!.replace(/:.*?(\r?\n)?$/s, (_s, eol: string | undefined) => `: ${m.to}${eol ?? ''}`);
    } else if (m.op === 'perturb-delimiter') {
      const i = pick(idx((l) => l.startsWith('--') && l.trim().length > 2), m.at);
      if (i !== undefined) {
        const l = lines[i]!;
        const eol = /\r?\n$/.exec(l)?.[0] ?? '';
        const body = l.slice(0, l.length - eol.length);
        const out = m.how === 'suffix' ? body + 'x' : m.how === 'drop-dash' ? body.slice(1) : m.how === 'space' ? body + ' ' : m.how === 'upper' ? body.toUpperCase() : body.replace(/(--)?$/, '--');
        lines[i] = out + eol;
      }
    } else {
      const at = m.at % (lines.length + 1);
      const eol = lines[0]?.endsWith('\r\n') ? '\r\n' : '\n';
      lines.splice(at, 0, m.line + eol);
    }
  }
  return Buffer.from(lines.join(''), 'latin1');
}

function seedOf(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0);
}

interface Mutant {
  id: string;
  base: string;
  raw: Buffer;
  ms: Mutation[];
}

let engine: Engine;
let mutants: Mutant[];
let oracles: Map<string, OracleVerdicts>;
const failures = new Map<string, Failure>();
let oracleMs = 0;
let midstreamMs = 0;

before(async () => {
  engine = await createEngine({});
  mutants = [];
  for (const c of generateCases()) {
    const samples = fc.sample(mutationsArb, { seed: seedOf(c.id), numRuns: MUTANTS_PER_CASE });
    samples.forEach((ms, n) => mutants.push({ id: `mut:${c.id}#${n}`, base: c.id, raw: mutate(c.raw, ms), ms }));
  }
  const t0 = Date.now();
  oracles = await runOracles(mutants);
  oracleMs = Date.now() - t0;
  const rnd = prng(0x6d757461);
  for (const m of mutants) {
    const r = await runMidstream(engine, m.raw, rnd, 1);
    const f = judge({ benign: false }, oracles.get(m.id)!, r, engine.policy.actions);
    if (f) failures.set(m.id, f);
  }
  midstreamMs = Date.now() - t0 - oracleMs;
});

after(async () => {
  await engine?.close();
});

test('mutation is deterministic and changes the message', () => {
  const cases = generateCases();
  const byId = new Map(cases.map((x) => [x.id, x.raw]));
  const c = cases[0]!;
  const a = fc.sample(mutationsArb, { seed: seedOf(c.id), numRuns: MUTANTS_PER_CASE });
  const b = fc.sample(mutationsArb, { seed: seedOf(c.id), numRuns: MUTANTS_PER_CASE });
  assert.deepEqual(a, b);
  assert.ok(mutants.filter((m) => !m.raw.equals(byId.get(m.base)!)).length > mutants.length * 0.8, 'most mutants differ from their case');
});

test('mutated cases: whatever an oracle extracts, midstream rejects; splits do not matter', (t) => {
  const flagged = mutants.filter((m) => oracles.get(m.id)!.flagged).length;
  const byKind: Record<string, number> = {};
  for (const f of failures.values()) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  const byOp: Record<string, number> = {};
  for (const m of mutants) for (const x of m.ms) byOp[x.op] = (byOp[x.op] ?? 0) + 1;
  const slow = [...oracles].filter(([, o]) => Object.values(o.oracles).some((r) => r.errors.some((e) => /timeout|Timeout/.test(e)))).map(([id]) => id);
  t.diagnostic(`oracles ${oracleMs} ms, midstream ${midstreamMs} ms; oracle timeouts: ${slow.length} ${slow.slice(0, 5).join(' ')}`);
  t.diagnostic(`mutants: ${mutants.length} (${MUTANTS_PER_CASE} per case, mutations ${JSON.stringify(byOp)}); oracle-flagged: ${flagged}; failing now: ${failures.size} ${JSON.stringify(byKind)}`);
  const ids = new Set(mutants.map((m) => m.id));
  if (process.env.MIDSTREAM_WRITE_GAPS) {
    const byId = new Map(mutants.map((m) => [m.id, m]));
    writeGaps(failures, 'mut:', (id, f) => `[mutant of ${byId.get(id)!.base}: ${byId.get(id)!.ms.map((x) => x.op).join('+')}] ${f.kind}: ${f.detail}`);
  }
  const g = checkGaps(failures, ids, 'mut:');
  assert.deepEqual([
    ...g.regressions.map((r) => `REGRESSION ${r.id}: ${r.failure.kind}: ${r.failure.detail}`),
    ...g.stale.map((id) => `STALE known gap (now passes; delete it from known-gaps.json): ${id}`),
  ], []);
});
