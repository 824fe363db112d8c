/**
 * fuzz-mime.test.ts — generated MIME trees and mutated test/fixtures/mime/*.eml through the
 * real core: never a throw or an internal error, always a defined verdict, and the same
 * verdict (and splitter trace) whatever the chunking. Fixed seed, bounded runs; the long
 * run is bench/fuzz.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createEngine, type Engine } from '../../src/core/index.js';
import { FUZZ_SEED, EICAR, counts, mimeProperty, mutate, verdictOf } from '../helpers/fuzz-targets.js';

let engine: Engine;
before(async () => {
  engine = await createEngine({});
});
after(async () => {
  await engine?.close();
});

test('generated MIME messages (mutated): defined, chunking-invariant verdicts', async () => {
  await fc.assert(mimeProperty(engine, 'generated'), { seed: FUZZ_SEED, numRuns: 250 });
  assert.equal(counts['mime-generated'], 250);
  // not vacuous: the generator reaches clean, infected and banned outcomes
  for (const k of ['clean', 'infected', 'banned']) assert.ok((counts[`mime-generated:${k}`] ?? 0) > 0, `no ${k} verdicts`);
});

test('mutated MIME fixtures: defined, chunking-invariant verdicts', async () => {
  await fc.assert(mimeProperty(engine, 'fixtures'), { seed: FUZZ_SEED, numRuns: 150 });
  assert.ok(counts['mime-fixtures']! >= 150);
});

test('the fuzz generator reaches detections: an unmutated EICAR attachment is found', async () => {
  // guards against a generator/serializer that silently produces nothing scannable
  const msg = Buffer.from(`Subject: x\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--b1--\r\n`, 'latin1');
  assert.equal((await verdictOf(engine, [mutate(msg, [])])).kind, 'infected');
});
