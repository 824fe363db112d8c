/**
 * fuzz-decoders.test.ts — base64, quoted-printable and the uuencode extractor over random
 * and mutated input: no throw, output bounded by input, chunking-invariant, and valid
 * encodings with junk and soft breaks mixed in decode to the original bytes.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { FUZZ_SEED, decoderProperty, decoderRoundTripProperty, uuProperty } from '../helpers/fuzz-targets.js';

test('base64 / QP over arbitrary bytes: no throw, bounded, chunking-invariant', () => {
  fc.assert(decoderProperty(), { seed: FUZZ_SEED, numRuns: 1500 });
});

test('base64 / QP with junk and soft breaks round-trip', () => {
  fc.assert(decoderRoundTripProperty(), { seed: FUZZ_SEED, numRuns: 800 });
});

test('uuencode extractor over mutated text: each file ended once, chunking-invariant', () => {
  fc.assert(uuProperty(), { seed: FUZZ_SEED, numRuns: 800 });
});
