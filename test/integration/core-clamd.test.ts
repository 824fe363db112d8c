/**
 * The core with clamd as an engine: per-file and whole-message modes against a real
 * clamd, and the failure policy against a fake one (down, garbage, size limit).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createEngine, type Engine, type Verdict, type EngineOptions } from '../../src/core/index.js';
import { startClamd, type RealClamd, freePort } from '../helpers/clamd.js';
import { startFakeClamd, FAKE, type FakeBehaviour } from '../helpers/fake-clamd.js';
import { EICAR, multipartMessage, plainMessage, chunks } from '../helpers/mail-build.js';

let clamd: RealClamd;
before(async () => { clamd = await startClamd(); });
after(async () => { await clamd?.stop(); });

async function scan(e: Engine, msg: Uint8Array, size = 4096): Promise<Verdict> {
  const s = e.begin();
  for (const c of chunks(msg, size)) await s.push(c);
  return s.end();
}

const noBan: EngineOptions = { bannedTypes: [], bannedExtensions: [] };

test('clamd only, per-file: EICAR attachment found with where-path; clean is clean', async () => {
  const e = await createEngine({ ...noBan, builtin: false, clamd: { endpoints: [clamd.unix] } });
  try {
    assert.deepEqual(e.engines, ['clamd']);
    const v = await scan(e, multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: EICAR }]));
    assert.equal(v.kind, 'infected');
    assert.match(v.kind === 'infected' ? v.name : '', /^Eicar-Test-Signature/);
    assert.equal(v.kind === 'infected' && v.where, '2/e.txt');
    assert.equal(v.kind === 'infected' && v.engine, 'clamd');
    assert.deepEqual(await scan(e, plainMessage('hello')), { kind: 'clean' });
  } finally { await e.close(); }
});

test('formats we do not unpack are left to clamd: clam.exe in 7z, cab and arj', async () => {
  const e = await createEngine({ ...noBan, clamd: { endpoints: [clamd.tcp] } });
  try {
    for (const f of ['clam.7z', 'clam.cab', 'clam.arj']) {
      const content = readFileSync(`/usr/share/clamav-testfiles/${f}`);
      const v = await scan(e, multipartMessage([{ filename: f, content }]), 1000);
      assert.equal(v.kind, 'infected', f);
      assert.equal(v.kind === 'infected' && v.where, `2/${f}`, f);
      assert.equal(v.kind === 'infected' && v.engine, 'clamd', f);
    }
  } finally { await e.close(); }
});

test('whole-message mode: clamd parses the raw message itself', async () => {
  const e = await createEngine({ ...noBan, builtin: false, clamd: { endpoints: [clamd.unix], mode: 'whole-message' } });
  try {
    const v = await scan(e, multipartMessage([{ filename: 'e.txt', content: EICAR }]), 333);
    assert.equal(v.kind, 'infected');
    assert.equal(v.kind === 'infected' && v.where, '(message)');
  } finally { await e.close(); }
});

test('the built-in engine answers first; clamd is not waited for once a verdict is final', async () => {
  const fake = await startFakeClamd(FAKE.stall as FakeBehaviour);
  const e = await createEngine({ clamd: { endpoints: [fake.address], totalTimeoutMs: 30_000 } });
  try {
    const t0 = Date.now();
    const v = await scan(e, multipartMessage([{ filename: 'e.txt', content: EICAR }]));
    assert.equal(v.kind, 'infected');
    assert.equal(v.kind === 'infected' && v.engine, 'builtin');
    assert.ok(Date.now() - t0 < 10_000, 'did not wait for the stalled clamd');
  } finally { await e.close(); await fake.close(); }
});

test('failure policy: clamd down, garbage, ERROR → error (tempfail); size limit → limit scan-bytes', async () => {
  const deadPort = await freePort();
  const down = await createEngine({ clamd: { endpoints: [`tcp:127.0.0.1:${deadPort}`], connectTimeoutMs: 500 } });
  try {
    const v = await scan(down, plainMessage('clean text'));
    assert.equal(v.kind, 'error');
    assert.equal(v.kind === 'error' && v.errorKind, 'scanner-unavailable');
  } finally { await down.close(); }
  const cases: [FakeBehaviour, string][] = [
    [FAKE.garbage as FakeBehaviour, 'scanner-protocol'],
    [FAKE.error as FakeBehaviour, 'scanner-error'],
  ];
  for (const [b, kind] of cases) {
    const fake = await startFakeClamd(b);
    const e = await createEngine({ clamd: { endpoints: [fake.address] } });
    try {
      const v = await scan(e, plainMessage('clean text'));
      assert.equal(v.kind, 'error', kind);
      assert.equal(v.kind === 'error' && v.errorKind, kind);
    } finally { await e.close(); await fake.close(); }
  }
  const fake = await startFakeClamd(FAKE.sizeLimit as FakeBehaviour);
  const e = await createEngine({ clamd: { endpoints: [fake.address] } });
  try {
    const v = await scan(e, plainMessage('clean text'));
    assert.deepEqual(v, { kind: 'limit', which: 'scan-bytes', where: '1' });
  } finally { await e.close(); await fake.close(); }
});
