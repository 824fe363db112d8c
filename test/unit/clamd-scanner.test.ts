/** clamd-scanner.test.ts — ClamdScanner wraps client streams as ScanStreams (fake clamd). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClamdScanner } from '../../src/core/scan/clamd-scanner.js';
import { ClamdClient } from '../../src/core/scan/clamd-client.js';
import type { Scanner } from '../../src/core/scan/scanner.js';
import { FAKE, startFakeClamd, type FakeBehaviour } from '../helpers/fake-clamd.js';

const file = { where: '2', archiveDepth: 0 };

test('name, mode and results through the Scanner interface', async () => {
  const f = await startFakeClamd(FAKE.found('Fake.Test'));
  try {
    const sc: Scanner = new ClamdScanner({ endpoints: [f.address], mode: 'whole-message' });
    assert.equal(sc.name, 'clamd');
    assert.equal(sc.mode, 'whole-message');
    const s = sc.open(file);
    assert.equal(s.write(Buffer.from('abc')), null);
    assert.equal(s.needsDrain, false);
    await s.drain();
    assert.deepEqual(await s.end(), { kind: 'infected', name: 'Fake.Test' });
    assert.equal(f.sessions[0]!.payload.toString(), 'abc');
    f.behaviour = FAKE.ok as FakeBehaviour;
    const s2 = sc.open(file);
    s2.write(Buffer.from('def'));
    assert.deepEqual(await s2.end(), { kind: 'clean' });
    (sc as ClamdScanner).close();
  } finally {
    await f.close();
  }
});

test('default mode is per-file; a shared client is used as given; abort via signal and abort()', async () => {
  const f = await startFakeClamd(FAKE.stall as FakeBehaviour);
  try {
    const client = new ClamdClient({ endpoints: [f.address] });
    const sc = new ClamdScanner({ client });
    assert.equal(sc.mode, 'per-file');
    assert.equal(sc.client, client);
    const ac = new AbortController();
    const s = sc.open(file, ac.signal);
    s.write(Buffer.from('x'));
    const p = s.end();
    ac.abort();
    const r = await p;
    assert.equal(r.kind === 'error' && r.errorKind, 'aborted');
    const s2 = sc.open(file);
    s2.write(Buffer.from('y'));
    s2.abort();
    const r2 = await s2.end();
    assert.equal(r2.kind === 'error' && r2.errorKind, 'aborted');
    assert.throws(() => new ClamdScanner({ client, mode: 'sometimes' as 'per-file' }), RangeError);
    client.close();
  } finally {
    await f.close();
  }
});
