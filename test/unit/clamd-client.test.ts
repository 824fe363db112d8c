/**
 * clamd-client.test.ts — ClamdClient against the in-process fake clamd: framing, strict
 * results, early replies, byte cap, deadlines, failover, concurrency, cancellation.
 * The same client against a real clamd: test/integration/clamd-real.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ClamdClient, ClamdError, type ClamdClientOptions, type ClamdStream } from '../../src/core/scan/clamd-client.js';
import { AddressError } from '../../src/core/address.js';
import type { ScanResult } from '../../src/core/types.js';
import { FAKE, startFakeClamd, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';

async function withFake(b: FakeBehaviour, fn: (f: FakeClamd) => Promise<void>, opts: { unixPath?: string } = {}): Promise<void> {
  const f = await startFakeClamd(b, opts);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}

function client(f: FakeClamd | string[], o: Partial<ClamdClientOptions> = {}): ClamdClient {
  return new ClamdClient({ endpoints: Array.isArray(f) ? f : [f.address], ...o });
}

async function scan(c: ClamdClient, data: Uint8Array, pieces = 1): Promise<ScanResult> {
  const s = c.openStream();
  const step = Math.ceil(data.length / pieces) || 1;
  for (let i = 0; i < data.length; i += step) {
    s.write(data.subarray(i, i + step));
    if (s.needsDrain) await s.drain();
  }
  return s.end();
}

/** Write `total` bytes in 64 KiB pieces, honouring drain. */
async function pour(s: ClamdStream, total: number): Promise<void> {
  const piece = Buffer.alloc(64 * 1024, 0x41);
  for (let sent = 0; sent < total && !s.result; sent += piece.length) {
    s.write(piece);
    if (s.needsDrain) await s.drain();
  }
}

const errKind = (r: ScanResult) => (r.kind === 'error' ? r.errorKind : r.kind);

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('clean: framing is zINSTREAM, frames ≤ chunkBytes, no empty frame, one terminator, bytes intact', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f, { chunkBytes: 1000 });
    const data = randomBytes(10_007);
    const s = c.openStream();
    s.write(data.subarray(0, 3));
    s.write(new Uint8Array(0));
    s.write(data.subarray(3, 2500));
    await new Promise((r) => setTimeout(r, 20));
    s.write(new Uint8Array(0));
    s.write(data.subarray(2500));
    const r = await s.end();
    assert.deepEqual(r, { kind: 'clean' });
    assert.equal(f.sessions.length, 1);
    const sess = f.sessions[0]!;
    assert.equal(sess.command, 'zINSTREAM');
    assert.equal(sess.terminated, true);
    assert.equal(sess.protocolError, undefined);
    assert.equal(sess.frames.at(-1), 0);
    assert.ok(sess.frames.slice(0, -1).every((n) => n > 0 && n <= 1000), `frames ${sess.frames}`);
    assert.ok(Buffer.compare(sess.payload, data) === 0, 'payload differs');
    assert.equal(s.stats.bytesSent, data.length);
    assert.equal(s.stats.bytesAccepted, data.length);
    assert.equal(s.stats.endpoint, f.address);
    c.close();
  });
});

test('write() copies: the caller may reuse its buffer', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f);
    const s = c.openStream();
    const buf = Buffer.from('first');
    s.write(buf);
    buf.fill(0x5a);
    s.write(buf);
    assert.deepEqual(await s.end(), { kind: 'clean' });
    assert.equal(f.sessions[0]!.payload.toString('latin1'), 'firstZZZZZ');
  });
});

test('empty stream still asks clamd (one terminator, nothing else)', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const r = await client(f).openStream().end();
    assert.deepEqual(r, { kind: 'clean' });
    assert.deepEqual(f.sessions[0]!.frames, [0]);
  });
});

test('FOUND → infected with the name', async () => {
  await withFake(FAKE.found('Win.Test.EICAR_HDB-1'), async (f) => {
    assert.deepEqual(await scan(client(f), Buffer.from('x'.repeat(100))), { kind: 'infected', name: 'Win.Test.EICAR_HDB-1' });
  });
});

for (const [label, b, kind] of [
  ['ERROR reply', FAKE.error, 'scanner-error'],
  ['size-limit reply', FAKE.sizeLimit, 'scanner-size-limit'],
  ['garbage reply', FAKE.garbage, 'scanner-protocol'],
  ['NUL-only reply', FAKE.nulOnly, 'scanner-protocol'],
  ['close without reply', FAKE.empty, 'scanner-unavailable'],
  ['reset after the terminator', FAKE.reset, 'scanner-unavailable'],
  ['reset mid-stream', { action: 'reset', afterBytes: 100_000 }, 'scanner-unavailable'],
  ['close mid-stream', { action: 'close', afterBytes: 100_000 }, 'scanner-unavailable'],
  ['unterminated OK then EOF', { action: 'reply', reply: 'stream: OK' }, 'scanner-protocol'],
  ['reply longer than 4 KiB', { action: 'reply', reply: 'A'.repeat(5000) }, 'scanner-protocol'],
] as [string, FakeBehaviour, string][]) {
  test(`${label} → error ${kind}, never clean`, async () => {
    await withFake(b, async (f) => {
      const r = await scan(client(f, { idleTimeoutMs: 3000 }), randomBytes(300_000), 10);
      assert.equal(errKind(r), kind, JSON.stringify(r));
    });
  });
}

test('a clean reply before our terminator is a protocol error', async () => {
  await withFake({ action: 'reply', reply: 'stream: OK\0', afterBytes: 1 }, async (f) => {
    const s = client(f).openStream();
    s.write(Buffer.from('a'));
    await until(() => s.result !== null);
    assert.equal(errKind(s.result!), 'scanner-protocol');
    s.write(Buffer.from('b'));
    assert.equal(errKind(await s.end()), 'scanner-protocol');
  });
});

test('early size-limit reply while we are still sending is caught (read while writing)', async () => {
  await withFake({ ...(FAKE.sizeLimit as FakeBehaviour), afterBytes: 200_000 }, async (f) => {
    const c = client(f, { idleTimeoutMs: 20_000, totalTimeoutMs: 30_000 });
    const s = c.openStream();
    const t0 = Date.now();
    await pour(s, 20 * 1024 * 1024);
    const r = await s.end();
    assert.equal(errKind(r), 'scanner-size-limit');
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.ok(s.stats.bytesSent < 20 * 1024 * 1024, `sent ${s.stats.bytesSent}`);
  });
});

test('stall after the terminator → scanner-timeout (idle)', async () => {
  await withFake(FAKE.stall as FakeBehaviour, async (f) => {
    const t0 = Date.now();
    const r = await scan(client(f, { idleTimeoutMs: 200 }), Buffer.from('abc'));
    assert.equal(errKind(r), 'scanner-timeout');
    assert.match((r as { detail: string }).detail, /no reply/);
    const took = Date.now() - t0;
    assert.ok(took >= 190 && took < 2000, `took ${took} ms`);
  });
});

test('accept-and-never-read → writes back up, needsDrain, then scanner-timeout; drain() resolves', async () => {
  await withFake(FAKE.neverRead as FakeBehaviour, async (f) => {
    const c = client(f, { idleTimeoutMs: 300, maxStreamBytes: 64 * 1024 * 1024 });
    const s = c.openStream();
    let sawNeedsDrain = false;
    const piece = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 64 * 16 && !s.result; i++) {
      s.write(piece);
      if (s.needsDrain) {
        sawNeedsDrain = true;
        await s.drain();
      }
    }
    const r = await s.end();
    assert.equal(errKind(r), 'scanner-timeout');
    assert.ok(sawNeedsDrain, 'needsDrain never became true');
    assert.ok(s.stats.bytesSent < 64 * 1024 * 1024);
    assert.equal(s.needsDrain, false);
    await s.drain();
  });
});

test('the idle timer is not extended by writes into a stuck socket', async () => {
  await withFake(FAKE.neverRead as FakeBehaviour, async (f) => {
    const c = client(f, { idleTimeoutMs: 300, totalTimeoutMs: 10_000, maxStreamBytes: 200 * 1024 * 1024 });
    const s = c.openStream();
    const t0 = Date.now();
    const piece = Buffer.alloc(256 * 1024, 1);
    // Ignore needsDrain on purpose: keep writing every 20 ms.
    while (!s.result && Date.now() - t0 < 5000) {
      s.write(piece);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(errKind(s.result!), 'scanner-timeout');
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });
});

test('total deadline → scanner-timeout even while clamd trickles', async () => {
  await withFake({ action: 'stall' }, async (f) => {
    const t0 = Date.now();
    const r = await scan(client(f, { idleTimeoutMs: 10_000, totalTimeoutMs: 250 }), Buffer.from('abc'));
    assert.equal(errKind(r), 'scanner-timeout');
    assert.match((r as { detail: string }).detail, /total deadline/);
    assert.ok(Date.now() - t0 < 2000);
  });
});

test('byte cap: stop at maxStreamBytes, send the terminator; OK → scanner-size-limit', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f, { maxStreamBytes: 1000 });
    const data = randomBytes(1500);
    const r = await scan(c, data, 7);
    assert.equal(errKind(r), 'scanner-size-limit');
    const sess = f.sessions[0]!;
    assert.equal(sess.payload.length, 1000);
    assert.ok(Buffer.compare(sess.payload, data.subarray(0, 1000)) === 0);
    assert.equal(sess.terminated, true);
    assert.equal(sess.protocolError, undefined);
  });
});

test('byte cap: FOUND in the head → infected', async () => {
  await withFake(FAKE.found('Head.Virus'), async (f) => {
    const r = await scan(client(f, { maxStreamBytes: 1000 }), randomBytes(5000), 3);
    assert.deepEqual(r, { kind: 'infected', name: 'Head.Virus' });
    assert.equal(f.sessions[0]!.payload.length, 1000);
  });
});

test('byte cap: exactly maxStreamBytes is not over the limit', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const s = client(f, { maxStreamBytes: 1000 }).openStream();
    s.write(randomBytes(1000));
    s.write(new Uint8Array(0));
    assert.deepEqual(await s.end(), { kind: 'clean' });
    assert.equal(s.stats.bytesDropped, 0);
  });
});

test('byte cap reached: the result can arrive before end(); later writes are dropped', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const s = client(f, { maxStreamBytes: 100 }).openStream();
    s.write(Buffer.alloc(150));
    await until(() => s.result !== null);
    assert.equal(errKind(s.result!), 'scanner-size-limit');
    s.write(Buffer.alloc(10));
    assert.equal(errKind(await s.end()), 'scanner-size-limit');
    assert.equal(s.stats.bytesDropped, 60);
  });
});

test('failover: a dead endpoint is skipped and marked down; the health check brings it back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midstream-fake-'));
  try {
    const deadPath = join(dir, 'later.sock');
    await withFake(FAKE.ok as FakeBehaviour, async (live) => {
      const c = client([`unix:${deadPath}`, live.address], { healthIntervalMs: 50 });
      try {
        for (let i = 0; i < 3; i++) assert.deepEqual(await scan(c, Buffer.from('hello')), { kind: 'clean' });
        const st = c.endpointStatus();
        assert.equal(st[0]!.up, false);
        assert.match(st[0]!.lastError!, /ENOENT|ECONNREFUSED/);
        assert.equal(st[1]!.up, true);
        assert.equal(live.sessions.length, 3);
        await withFake(FAKE.ok as FakeBehaviour, async (revived) => {
          await until(() => c.endpointStatus()[0]!.up);
          assert.equal(revived.sessions[0]!.command, 'zPING');
        }, { unixPath: deadPath });
      } finally {
        c.close();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no endpoint reachable → scanner-unavailable, fast', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midstream-fake-'));
  try {
    const c = client([`unix:${join(dir, 'a.sock')}`, `unix:${join(dir, 'b.sock')}`]);
    const t0 = Date.now();
    const r = await scan(c, Buffer.from('x'));
    assert.equal(errKind(r), 'scanner-unavailable');
    assert.match((r as { detail: string }).detail, /a\.sock.*b\.sock/);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(c.inFlight, 0);
    c.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('maxConcurrent bounds open connections; queued streams still finish', async () => {
  await withFake({ ...(FAKE.ok as FakeBehaviour), delayMs: 100 }, async (f) => {
    const c = client(f, { maxConcurrent: 2 });
    const rs = await Promise.all([1, 2, 3, 4, 5].map(() => scan(c, Buffer.from('data'))));
    for (const r of rs) assert.deepEqual(r, { kind: 'clean' });
    assert.equal(f.connections, 5);
    assert.equal(f.maxActive, 2);
    assert.equal(c.inFlight, 0);
  });
});

test('waiting for a slot counts against the total deadline', async () => {
  await withFake(FAKE.stall as FakeBehaviour, async (f) => {
    const c = client(f, { maxConcurrent: 1, idleTimeoutMs: 5000, totalTimeoutMs: 5000 });
    const holder = c.openStream();
    const hp = holder.end();
    await until(() => f.connections === 1);
    const t0 = Date.now();
    const s = c.openStream(undefined, { totalTimeoutMs: 300 });
    const r = await s.end();
    assert.equal(errKind(r), 'scanner-timeout');
    assert.equal(s.stats.endpoint, undefined, 'must not have connected');
    assert.equal(f.connections, 1);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(c.queued, 0);
    holder.abort();
    await hp;
  });
});

test('abort(): socket closed, slot released, end() → aborted', async () => {
  await withFake(FAKE.stall as FakeBehaviour, async (f) => {
    const c = client(f, { maxConcurrent: 1 });
    const s = c.openStream();
    s.write(Buffer.from('abc'));
    await until(() => f.open === 1);
    s.abort();
    s.abort();
    assert.deepEqual(await s.end(), { kind: 'error', errorKind: 'aborted', detail: 'scan aborted' });
    await until(() => f.open === 0);
    assert.equal(c.inFlight, 0);
    f.behaviour = FAKE.ok as FakeBehaviour;
    assert.deepEqual(await scan(c, Buffer.from('next')), { kind: 'clean' });
  });
});

test('AbortSignal: mid-stream and pre-aborted', async () => {
  await withFake(FAKE.stall as FakeBehaviour, async (f) => {
    const c = client(f);
    const ac = new AbortController();
    const s = c.openStream(ac.signal);
    s.write(Buffer.from('abc'));
    const p = s.end();
    await until(() => f.open === 1);
    ac.abort();
    assert.equal(errKind(await p), 'aborted');
    await until(() => f.open === 0);
    const pre = c.openStream(AbortSignal.abort());
    pre.write(Buffer.from('x'));
    assert.equal(errKind(await pre.end()), 'aborted');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.connections, 1, 'a pre-aborted stream must not connect');
    assert.equal(c.inFlight, 0);
  });
});

test('abort() after a final result keeps the result', async () => {
  await withFake(FAKE.found('Kept'), async (f) => {
    const s = client(f).openStream();
    s.write(Buffer.from('x'));
    const r = await s.end();
    s.abort();
    assert.deepEqual(r, { kind: 'infected', name: 'Kept' });
    assert.deepEqual(s.result, { kind: 'infected', name: 'Kept' });
  });
});

test('write after end() throws (caller bug), writes after a final result are dropped', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const s = client(f).openStream();
    const p = s.end();
    assert.throws(() => s.write(Buffer.from('x')), /write after end/);
    assert.deepEqual(await p, { kind: 'clean' });
  });
});

test('ping / version; timeouts on a clamd that never answers', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f);
    await c.ping();
    await c.ping(f.address);
    assert.equal(await c.version(), 'ClamAV 1.4.6/1/fake');
    assert.equal(f.sessions[0]!.command, 'zPING');
    assert.equal(f.sessions[2]!.command, 'zVERSION');
  });
  await withFake(FAKE.neverRead as FakeBehaviour, async (f) => {
    const c = client(f, { commandTimeoutMs: 200 });
    const t0 = Date.now();
    await assert.rejects(c.ping(), (e: unknown) => e instanceof ClamdError && e.errorKind === 'scanner-timeout');
    await assert.rejects(c.version(), (e: unknown) => e instanceof ClamdError && e.errorKind === 'scanner-timeout');
    assert.ok(Date.now() - t0 < 1500);
  });
  const dir = await mkdtemp(join(tmpdir(), 'midstream-fake-'));
  try {
    const c = client([`unix:${join(dir, 'none.sock')}`]);
    await assert.rejects(c.ping(), (e: unknown) => e instanceof ClamdError && e.errorKind === 'scanner-unavailable');
    c.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('close(): new streams fail as unavailable, in-flight ones finish', async () => {
  await withFake({ ...(FAKE.ok as FakeBehaviour), delayMs: 50 }, async (f) => {
    const c = client(f);
    const s = c.openStream();
    s.write(Buffer.from('x'));
    await until(() => f.connections === 1);
    const p = s.end();
    c.close();
    assert.deepEqual(await p, { kind: 'clean' });
    const r = await scan(c, Buffer.from('y'));
    assert.equal(errKind(r), 'scanner-unavailable');
    assert.equal(c.isClosed, true);
  });
});

test('options are validated', () => {
  assert.throws(() => new ClamdClient({ endpoints: [] }), RangeError);
  assert.throws(() => new ClamdClient({ endpoints: ['nonsense'] }), AddressError);
  assert.throws(() => new ClamdClient({ endpoints: ['tcp:127.0.0.1:1'], maxConcurrent: 0 }), RangeError);
  assert.throws(() => new ClamdClient({ endpoints: ['tcp:127.0.0.1:1'], chunkBytes: 1.5 }), RangeError);
  const c = new ClamdClient({ endpoints: ['tcp:127.0.0.1:1'] });
  assert.equal(c.options.maxStreamBytes, 25 * 1024 * 1024);
  assert.equal(c.options.chunkBytes, 64 * 1024);
  assert.equal(c.options.maxConcurrent, 8);
});

test('the total deadline runs from end(): a slow upload longer than it is still scanned', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f, { idleTimeoutMs: 5000, totalTimeoutMs: 300 });
    const s = c.openStream();
    for (let i = 0; i < 4; i++) {
      s.write(Buffer.from(`part ${i} of a slowly uploaded file\n`));
      await new Promise((r) => setTimeout(r, 200)); // 800 ms of upload > 300 ms total
    }
    assert.deepEqual(await s.end(), { kind: 'clean' });
    assert.equal(f.sessions[0]!.terminated, true);
  });
});

test('a stream waiting for a clamd slot holds at most 8 KiB before the writer must wait; room says how much fits', async () => {
  await withFake(FAKE.stall as FakeBehaviour, async (f) => {
    const c = client(f, { maxConcurrent: 1, chunkBytes: 16 * 1024, highWaterBytes: 64 * 1024, totalTimeoutMs: 5000 });
    assert.equal(c.openRoom, 64 * 1024, 'a slot is free: a new stream may take the high-water mark');
    const holder = c.openStream();
    holder.write(Buffer.from('x'));
    await until(() => f.connections === 1);
    assert.equal(c.openRoom, 8 * 1024, 'every slot taken: a new stream would wait, holding little');
    const waiting = c.openStream();
    assert.equal(waiting.room, 8 * 1024);
    waiting.write(Buffer.alloc(5 * 1024));
    assert.equal(waiting.needsDrain, false, 'a small file need not wait for the connect');
    assert.equal(waiting.room, 3 * 1024);
    waiting.write(Buffer.alloc(5 * 1024));
    assert.equal(waiting.needsDrain, true, 'over 8 KiB while no slot: the writer must wait');
    assert.equal(waiting.room, 0);
    holder.abort();
    await until(() => f.connections === 2);
    await waiting.drain(); // once connected, the frame goes out and the writer may go on
    assert.equal(waiting.needsDrain, false);
    assert.equal(waiting.room, Infinity, 'connected (holds a slot) and below the mark: reads need not be bounded');
    waiting.abort();
    assert.equal(waiting.room, Infinity, 'settled: takes anything (drops it)');
  });
});

test('many small writes are packed into blocks: bytes intact, frames of few pieces, ≤ chunkBytes', async () => {
  await withFake(FAKE.ok as FakeBehaviour, async (f) => {
    const c = client(f, { chunkBytes: 20_000 });
    const data = randomBytes(150_001);
    const s = c.openStream();
    // Pieces of 1..700 bytes from one reused buffer (borrowed chunks: the stream must copy).
    const scratch = Buffer.alloc(700);
    let seed = 7;
    for (let i = 0; i < data.length; ) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = Math.min(1 + (seed % 700), data.length - i);
      data.copy(scratch, 0, i, i + n);
      s.write(scratch.subarray(0, n));
      scratch.fill(0xa5);
      i += n;
      if (s.needsDrain) await s.drain();
    }
    assert.deepEqual(await s.end(), { kind: 'clean' });
    const sess = f.sessions[0]!;
    assert.ok(Buffer.compare(sess.payload, data) === 0, 'payload differs');
    assert.ok(sess.frames.slice(0, -1).every((n) => n > 0 && n <= 20_000), `frames ${sess.frames}`);
    assert.equal(s.room, Infinity, 'ended: no more bytes expected');
  });
});
