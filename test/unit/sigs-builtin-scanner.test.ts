/**
 * sigs-builtin-scanner.test.ts — BuiltinScanner as a Scanner: identity, early results,
 * clean end, abort and latching.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';

const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
const FILE = { where: '2', archiveDepth: 0 };

test('identity: builtin, per-file, never needs drain', async () => {
  const sc = new BuiltinScanner(SignatureDb.builtin());
  assert.equal(sc.name, 'builtin');
  assert.equal(sc.mode, 'per-file');
  const s = sc.open(FILE);
  assert.equal(s.needsDrain, false);
  await s.drain();
});

test('EICAR split across writes: infected from the completing write, latched', async () => {
  const s = new BuiltinScanner(SignatureDb.builtin()).open(FILE);
  assert.equal(s.write(EICAR.subarray(0, 40)), null);
  assert.deepEqual(s.write(EICAR.subarray(40)), { kind: 'infected', name: 'Eicar-Test-Signature' });
  assert.deepEqual(s.write(Buffer.from('more')), { kind: 'infected', name: 'Eicar-Test-Signature' });
  assert.deepEqual(await s.end(), { kind: 'infected', name: 'Eicar-Test-Signature' });
});

test('clean data ends clean; each open() has independent state', async () => {
  const sc = new BuiltinScanner(SignatureDb.builtin());
  const a = sc.open(FILE);
  const b = sc.open(FILE);
  assert.equal(a.write(EICAR.subarray(0, 40)), null);
  assert.equal(b.write(EICAR.subarray(40)), null);
  assert.deepEqual(await b.end(), { kind: 'clean' });
  assert.deepEqual(a.write(EICAR.subarray(40)), { kind: 'infected', name: 'Eicar-Test-Signature' });
});

test('abort (call or signal): stops scanning, end() reports aborted', async () => {
  const sc = new BuiltinScanner(SignatureDb.builtin());
  const s = sc.open(FILE);
  s.abort();
  s.abort();
  assert.equal(s.write(EICAR), null);
  assert.deepEqual(await s.end(), { kind: 'error', errorKind: 'aborted' });
  const ac = new AbortController();
  const t = sc.open(FILE, ac.signal);
  assert.equal(t.write(EICAR.subarray(0, 10)), null);
  ac.abort();
  assert.equal(t.write(EICAR.subarray(10)), null);
  assert.deepEqual(await t.end(), { kind: 'error', errorKind: 'aborted' });
});
