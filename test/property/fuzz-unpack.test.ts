/**
 * fuzz-unpack.test.ts — mutated zips, gzips, tars and bzip2 streams (and each format fed
 * the others' bytes): the handler contract of unpack-base.ts holds (each sink ended once,
 * nothing after end, at most one limit/corrupt and nothing after it), no throw, output
 * bounded by the budget, and the event trace does not depend on chunking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { counts, FUZZ_BUDGET, FUZZ_SEED, archiveSeeds, checkedUnpack, unpackProperty } from '../helpers/fuzz-targets.js';

test('the unmutated seeds unpack (the fuzzer starts from valid archives)', () => {
  for (const s of archiveSeeds()) {
    const t = checkedUnpack(s.format, [s.data], { ...FUZZ_BUDGET });
    assert.ok(t.events.some((e) => e.startsWith('entry') || e.startsWith('encrypted')), `${s.format}: ${t.events.join('; ')}`);
  }
});

test('mutated archives: handler contract, bounded output, chunking-invariant', () => {
  fc.assert(unpackProperty(), { seed: FUZZ_SEED, numRuns: 400 });
  // not vacuous: runs end cleanly (end), corrupt and on limits
  for (const k of ['end', 'corrupt', 'limit']) assert.ok((counts[`unpack:${k}`] ?? 0) > 0, `no run ended with ${k}: ${JSON.stringify(counts)}`);
});
