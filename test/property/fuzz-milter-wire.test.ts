/**
 * fuzz-milter-wire.test.ts — random packet streams (valid packets, junk, zero and oversize
 * lengths) into MilterDecoder, against a reference parser: same packets and error in any
 * chunking, never more buffered than the cap. And random command streams into a
 * MilterSession with a fake engine: no throw, no bug log, only well-formed known replies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { counts, FUZZ_SEED, milterSessionProperty, milterWireProperty } from '../helpers/fuzz-targets.js';

test('MilterDecoder: any bytes, any chunking → reference framing, bounded buffering', () => {
  fc.assert(milterWireProperty(), { seed: FUZZ_SEED, numRuns: 1500 });
});

test('MilterSession: random command streams → defined replies, no bug', async () => {
  await fc.assert(milterSessionProperty(), { seed: FUZZ_SEED, numRuns: 300 });
  assert.ok((counts['milter-session:replycode'] ?? 0) > 0, 'no run reached a REPLYCODE verdict');
});
