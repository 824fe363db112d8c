/**
 * The differential harness (issue #10): hostile mails by family and benign controls,
 * read by other parsers (Python's email under two policies, mailparser, ripmime, munpack,
 * with Python's zipfile/tarfile/gzip/bz2 behind each), and by midstream whole and split
 * at random chunk sizes. Whatever an oracle extracts (EICAR bytes, a banned name),
 * midstream must reject; no benign control may be rejected or tempfailed; every split
 * must give the whole message's verdict. Failures are checked against known-gaps.json
 * (see judge.ts): the list may only shrink.
 *
 * MIDSTREAM_WRITE_GAPS=1 rewrites known-gaps.json from this run (keeping the reasons of
 * entries still failing) — for whoever fixes a class and deletes entries.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createEngine, type Engine } from '../../src/core/index.js';
import { generateCases, prng, DEFAULT_SEED, type HostileCase } from './hostile-gen.js';
import { externalTools, runOracles, type OracleVerdicts } from './oracles.js';
import { runMidstream, type MidstreamResult } from './midstream-run.js';
import { checkGaps, formatKnownGaps, gapReason, judge, loadKnownGaps, writeGaps, KNOWN_GAPS_FILE, type Failure } from './judge.js';

let engine: Engine;
let cases: HostileCase[];
let oracles: Map<string, OracleVerdicts>;
const results = new Map<string, MidstreamResult>();
const failures = new Map<string, Failure>();

before(async () => {
  cases = generateCases();
  engine = await createEngine({});
  oracles = await runOracles(cases);
  const rnd = prng(DEFAULT_SEED ^ 0x5711);
  for (const c of cases) {
    const m = await runMidstream(engine, c.raw, rnd);
    results.set(c.id, m);
    const f = judge(c, oracles.get(c.id)!, m, engine.policy.actions);
    if (f) failures.set(c.id, f);
  }
});

after(async () => {
  await engine?.close();
});

test('the generator: ≥ 300 cases, every class of issue #10, benign controls, deterministic', (t) => {
  assert.ok(cases.length >= 300, `${cases.length} cases`);
  const classes = new Set(cases.map((c) => c.cls));
  for (let k = 1; k <= 10; k++) assert.ok(classes.has(k), `class ${k} covered`);
  const benign = cases.filter((c) => c.benign);
  assert.ok(benign.length >= 30, `${benign.length} benign controls`);
  const digest = (cs: HostileCase[]) => createHash('sha256').update(cs.map((c) => c.id + '\0' + c.raw.toString('base64')).join('\n')).digest('hex');
  assert.equal(digest(generateCases()), digest(cases), 'same seed, same bytes');
  assert.notEqual(digest(generateCases(DEFAULT_SEED + 1)), digest(cases), 'the seed matters');
  const families = new Set(cases.map((c) => c.family));
  t.diagnostic(`cases: ${cases.length} (${cases.length - benign.length} hostile, ${benign.length} benign) in ${families.size} families: ${[...families].join(' ')}`);
});

test('the oracles ran: both Python policies, mailparser, ripmime and munpack', (t) => {
  assert.deepEqual(externalTools(), ['ripmime', 'munpack'], 'ripmime and munpack installed (scripts/install-deps.sh)');
  const names = new Set<string>();
  for (const o of oracles.values()) for (const k of Object.keys(o.oracles)) names.add(k);
  assert.deepEqual([...names].sort(), ['mailparser', 'munpack', 'py-compat32', 'py-default', 'ripmime']);
  // Each oracle must find the plain baseline payloads, or it is not reading at all.
  for (const id of ['baseline/base64-attachment:eicar', 'baseline/zip:eicar', 'baseline/tar-gz:eicar']) {
    const o = oracles.get(id)!;
    assert.deepEqual(o.eicarBy, ['mailparser', 'munpack', 'py-compat32', 'py-default', 'ripmime'], `${id}: every oracle extracts EICAR`);
  }
  for (const id of ['baseline/base64-attachment:name', 'baseline/zip:name']) {
    assert.deepEqual(Object.keys(oracles.get(id)!.bannedBy).sort(), ['mailparser', 'munpack', 'py-compat32', 'py-default', 'ripmime'], `${id}: every oracle sees the banned name`);
  }
  const flagged = cases.filter((c) => oracles.get(c.id)!.flagged);
  const per: Record<string, number> = {};
  let disagree = 0;
  for (const c of cases) {
    const o = oracles.get(c.id)!;
    const by = new Set([...o.eicarBy, ...Object.keys(o.bannedBy)]);
    for (const k of by) per[k] = (per[k] ?? 0) + 1;
    if (by.size > 0 && by.size < Object.keys(o.oracles).length) disagree++;
  }
  t.diagnostic(`oracle-flagged cases: ${flagged.length}; per oracle: ${JSON.stringify(per)}; cases where oracles disagree among themselves: ${disagree}`);
});

test('midstream rejects whatever an oracle extracts, accepts every benign control, and chunking does not matter', (t) => {
  const byKind: Record<string, number> = {};
  for (const f of failures.values()) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  const ids = new Set(cases.map((c) => c.id));
  if (process.env.MIDSTREAM_WRITE_GAPS) {
    const byId = new Map(cases.map((c) => [c.id, c]));
    writeGaps(failures, '', (id, f) => gapReason(byId.get(id)!, f));
  }
  const g = checkGaps(failures, ids, '');
  const hostile = cases.filter((c) => !c.benign);
  const flaggedHostile = hostile.filter((c) => oracles.get(c.id)!.flagged);
  t.diagnostic(`hostile cases an oracle extracts a payload from: ${flaggedHostile.length}/${hostile.length}; failing now: ${failures.size} ${JSON.stringify(byKind)}; known gaps listed: ${g.listed}`);
  const perFamily: Record<string, string> = {};
  for (const fam of new Set(cases.map((c) => c.family))) {
    const fc = cases.filter((c) => c.family === fam);
    perFamily[fam] = `${fc.filter((c) => failures.has(c.id)).length}/${fc.length}`;
  }
  t.diagnostic(`failing per family: ${JSON.stringify(perFamily)}`);
  const msg = [
    ...g.regressions.map((r) => `REGRESSION ${r.id}: ${r.failure.kind}: ${r.failure.detail}`),
    ...g.stale.map((id) => `STALE known gap (now passes or no such case; delete it from known-gaps.json): ${id}`),
  ];
  assert.deepEqual(msg, []);
});

test('known-gaps.json is sorted, one entry per line, every reason one line', () => {
  const list = loadKnownGaps();
  assert.equal(readFileSync(KNOWN_GAPS_FILE, 'utf8'), formatKnownGaps(list));
  for (const g of list) assert.ok(!/[\r\n]/.test(g.reason), g.id);
  const benignListed = list.filter((g) => g.id.startsWith('benign/'));
  for (const g of benignListed) assert.match(g.reason, /BENIGN CONTROL FALSE POSITIVE/, `${g.id}: a listed benign control says so`);
});

test('the known-gaps check itself: an unlisted failure is a regression, a listed pass is stale', () => {
  const f: Failure = { kind: 'missed', detail: 'x' };
  const ids = new Set(['a', 'b', 'c']);
  const list = [{ id: 'b', reason: 'r' }, { id: 'c', reason: 'r' }, { id: 'gone', reason: 'r' }, { id: 'clamd:a', reason: 'r' }];
  const g = checkGaps(new Map([['a', f], ['b', f]]), ids, '', list);
  assert.deepEqual(g.regressions.map((r) => r.id), ['a']);
  assert.deepEqual(g.stale, ['c', 'gone']);
  assert.equal(checkGaps(new Map([['clamd:a', f]]), new Set(['clamd:a']), 'clamd:', list).regressions.length, 0);
  assert.equal(formatKnownGaps([{ id: 'b', reason: 'r' }, { id: 'a', reason: 's' }]), '[\n  {"id":"a","reason":"s"},\n  {"id":"b","reason":"r"}\n]\n');
});
