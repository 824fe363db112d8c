/**
 * fuzz-smtp.test.ts — random command lines and DATA bytes into SmtpReader and DataDecoder
 * (no throw, chunking-invariant events, never a bare LF in DATA output, Postfix reads the
 * wire as we scan it, a dot-stuffed message is forwarded byte for byte), then whole
 * sessions against a ProxySession on a loopback listener with a stub engine and a
 * recording sink: only well-formed replies, no bug logs, and no bare LF reaches the
 * downstream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startSink, type Sink } from '../helpers/sink.js';
import { counts, FUZZ_SEED, proxyProperty, smtpDataProperty, smtpReaderProperty, startProxyRig, type ProxyRig } from '../helpers/fuzz-targets.js';

let sink: Sink;
let rig: ProxyRig;
before(async () => {
  sink = await startSink();
  rig = await startProxyRig(sink);
});
after(async () => {
  await rig?.close();
  await sink?.close();
});

test('SmtpReader: random sessions → chunking-invariant events, wire and view agree', () => {
  fc.assert(smtpReaderProperty(), { seed: FUZZ_SEED, numRuns: 1000 });
});

test('DataDecoder: no bare LF out; a dot-stuffed message goes on the wire byte for byte', () => {
  fc.assert(smtpDataProperty(), { seed: FUZZ_SEED, numRuns: 1000 });
});

test('ProxySession: random sessions → well-formed replies, no bug, no bare LF downstream', async () => {
  await fc.assert(proxyProperty(rig), { seed: FUZZ_SEED, numRuns: 40 });
  // not vacuous: sessions reach DATA and some messages are delivered
  assert.ok((counts['smtp-proxy:data'] ?? 0) > 0, 'no session reached DATA');
  assert.ok((counts['smtp-proxy:delivered'] ?? 0) > 0, 'nothing was delivered');
});
