/**
 * clamd-pool.test.ts — the balanced clamd pool (src/core/scan/clamd-pool.ts,
 * clamd-endpoint.ts) against in-process fake clamds: least outstanding work across
 * endpoints, max_concurrent per endpoint, ejection and readmission with rise/fall
 * hysteresis, per-endpoint versions (a mixed pool keys the cache by the endpoint that
 * scans). The same pool against real clamds: test/integration/scale-out.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClamdClient, type ClamdClientOptions } from '../../src/core/scan/clamd-client.js';
import { FAKE, startFakeClamd, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';

const instream = (f: FakeClamd) => f.sessions.filter((s) => s.command === 'zINSTREAM').length;

async function withFakes(bs: FakeBehaviour[], fn: (fs: FakeClamd[]) => Promise<void>): Promise<void> {
  const fs = await Promise.all(bs.map((b) => startFakeClamd(b)));
  try {
    await fn(fs);
  } finally {
    await Promise.all(fs.map((f) => f.close()));
  }
}

function client(fs: FakeClamd[], o: Partial<ClamdClientOptions> = {}): ClamdClient {
  return new ClamdClient({ endpoints: fs.map((f) => f.address), ...o });
}

async function scan(c: ClamdClient, data = Buffer.from('data')) {
  const s = c.openStream();
  s.write(data);
  return s.end();
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('least outstanding work: a slow endpoint gets less of a concurrent load than a fast one', async () => {
  const slow = { ...(FAKE.ok as FakeBehaviour), delayMs: 150 };
  const fast = { ...(FAKE.ok as FakeBehaviour), delayMs: 5 };
  await withFakes([slow, fast], async ([s, f]) => {
    const c = client([s!, f!], { maxConcurrent: 4 });
    try {
      // 4 workers, 40 scans: the slow endpoint holds its streams longer, so free slots
      // (lower load) are mostly on the fast one.
      let n = 0;
      const worker = async () => {
        while (n < 40) {
          n++;
          assert.deepEqual(await scan(c), { kind: 'clean' });
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      assert.equal(instream(s!) + instream(f!), 40);
      assert.ok(instream(f!) > 3 * instream(s!), `fast ${instream(f!)} vs slow ${instream(s!)}`);
      assert.equal(c.inFlight, 0);
    } finally {
      c.close();
    }
  });
});

test('max_concurrent is per endpoint: two endpoints × 2 slots run 4 at once, never more than 2 on either', async () => {
  const b = { ...(FAKE.ok as FakeBehaviour), delayMs: 100 };
  await withFakes([b, b], async ([a, z]) => {
    const c = client([a!, z!], { maxConcurrent: 2 });
    try {
      const t = Promise.all(Array.from({ length: 8 }, () => scan(c)));
      await until(() => c.inFlight === 4);
      assert.equal(c.queued, 4);
      const st = c.endpointStatus();
      assert.deepEqual(st.map((e) => e.inFlight), [2, 2]);
      for (const r of await t) assert.deepEqual(r, { kind: 'clean' });
      assert.equal(a!.maxActive, 2);
      assert.equal(z!.maxActive, 2);
      assert.deepEqual(c.endpointStatus().map((e) => e.scans), [4, 4]);
    } finally {
      c.close();
    }
  });
});

test('hysteresis: ejected after `fall` failed scans, readmitted only after `rise` good checks', async () => {
  await withFakes([FAKE.garbage as FakeBehaviour, FAKE.ok as FakeBehaviour], async ([bad, good]) => {
    const events: string[] = [];
    const c = client([bad!, good!], { healthFall: 3, healthRise: 2, healthIntervalMs: 60, onHealth: ({ endpoint, up }) => events.push(`${endpoint === bad!.address ? 'bad' : 'good'}:${up ? 'up' : 'down'}`) });
    try {
      // Round robin among equals: the bad endpoint answers garbage until it is ejected.
      const results = [];
      for (let i = 0; i < 12; i++) results.push((await scan(c)).kind);
      assert.equal(c.endpointStatus()[0]!.up, false);
      assert.equal(c.endpointStatus()[0]!.errors, 3, 'exactly `fall` failures before the ejection');
      assert.equal(results.filter((k) => k === 'error').length, 3, 'the garbage replies are errors, never clean');
      assert.deepEqual(events, ['bad:down']);
      const badBefore = instream(bad!);
      for (let i = 0; i < 5; i++) assert.deepEqual(await scan(c), { kind: 'clean' });
      assert.equal(instream(bad!), badBefore, 'no traffic to an ejected endpoint');
      // It answers PING/VERSION fine (only its scans are garbage): `rise` good checks readmit it.
      bad!.behaviour = FAKE.ok as FakeBehaviour;
      await until(() => c.endpointStatus()[0]!.up);
      const checks = bad!.sessions.filter((s) => s.command === 'zVERSION').length;
      assert.ok(checks >= 2, `readmitted after ${checks} checks (rise = 2)`);
      assert.deepEqual(events, ['bad:down', 'bad:up']);
    } finally {
      c.close();
    }
  });
});

test('a refused connect ejects at once and the stream fails over within the same scan', async () => {
  await withFakes([FAKE.ok as FakeBehaviour], async ([live]) => {
    const c = new ClamdClient({ endpoints: ['tcp:127.0.0.1:1', live!.address], healthFall: 5 });
    try {
      for (let i = 0; i < 4; i++) assert.deepEqual(await scan(c), { kind: 'clean' });
      assert.equal(c.endpointStatus()[0]!.up, false);
      assert.equal(instream(live!), 4);
    } finally {
      c.close();
    }
  });
});

test('versions per endpoint: a uniform pool answers at once, a mixed one with the version of the endpoint that scans', async () => {
  await withFakes(
    [
      { ...(FAKE.ok as FakeBehaviour), version: 'ClamAV 1.4.6/100/a' },
      { ...(FAKE.ok as FakeBehaviour), version: 'ClamAV 1.4.6/100/a' },
    ],
    async ([a, b]) => {
      const c = client([a!, b!]);
      try {
        await c.start();
        const s = c.openStream();
        assert.equal(await s.signatureVersion(), 'ClamAV 1.4.6/100/a');
        s.abort();
        b!.behaviour = { ...(FAKE.ok as FakeBehaviour), version: 'ClamAV 1.4.6/101/b' };
        await c.start();
        assert.deepEqual(c.endpointStatus().map((e) => e.version), ['ClamAV 1.4.6/100/a', 'ClamAV 1.4.6/101/b']);
        const seen = new Map<string, string>();
        for (let i = 0; i < 6; i++) {
          const m = c.openStream();
          m.write(Buffer.from('x'));
          const v = await m.signatureVersion();
          await m.end();
          seen.set(m.stats.endpoint!, v!);
        }
        assert.equal(seen.get(a!.address), 'ClamAV 1.4.6/100/a');
        assert.equal(seen.get(b!.address), 'ClamAV 1.4.6/101/b');
      } finally {
        c.close();
      }
    },
  );
});
