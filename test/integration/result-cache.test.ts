/**
 * result-cache.test.ts — the clamd results cache (src/core/scan/result-cache.ts):
 * the LRU alone (bound, recency, TTL); CachingScanner over a fake clamd (a hit aborts the
 * INSTREAM before its zero-length terminator, errors are never cached, a new signature
 * version from the endpoint's VERSION or an unknown one means no hit, a burst of the same
 * file waits for the first scan); and through createEngine with a real clamd, where a
 * repeated attachment is reported from the cache and clamd's log shows one scan only.
 * The shared tier (Redis) and pools of real clamds: test/integration/scale-out.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ResultCache, CachingScanner } from '../../src/core/scan/result-cache.js';
import { ClamdScanner } from '../../src/core/scan/clamd-scanner.js';
import { ClamdClient } from '../../src/core/scan/clamd-client.js';
import { createEngine } from '../../src/core/index.js';
import type { ScanResult } from '../../src/core/types.js';
import { startFakeClamd, FAKE, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';
import { startClamd, EICAR } from '../helpers/clamd.js';
import { multipartMessage } from '../helpers/mail-build.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('ResultCache: entries expire after the TTL', () => {
  const c = new ResultCache(10, 1000);
  c.set('k', { kind: 'clean' }, 5000);
  assert.deepEqual(c.get('k', 5999), { kind: 'clean' });
  assert.equal(c.get('k', 6000), undefined);
  assert.equal(c.size, 0);
  assert.notEqual(ResultCache.key('00', 1, 'clamd', 'v1', 'a'), ResultCache.key('00', 1, 'clamd', 'v1', 'b'), 'prefix is part of the key');
});

test('ResultCache: LRU bound, recency on get, errors never stored', () => {
  const c = new ResultCache(2);
  c.set('a', { kind: 'clean' });
  c.set('b', { kind: 'infected', name: 'X' });
  assert.deepEqual(c.get('a'), { kind: 'clean' }); // a is now most recent
  c.set('c', { kind: 'clean' }); // evicts b
  assert.equal(c.get('b'), undefined);
  assert.deepEqual(c.get('a'), { kind: 'clean' });
  assert.deepEqual(c.get('c'), { kind: 'clean' });
  c.set('d', { kind: 'error', errorKind: 'scanner-timeout' });
  assert.equal(c.get('d'), undefined);
  assert.equal(c.size, 2);
  assert.deepEqual({ hits: c.stats.hits, misses: c.stats.misses }, { hits: 3, misses: 2 });
  assert.notEqual(ResultCache.key('00', 1, 'clamd', 'v1'), ResultCache.key('00', 1, 'clamd', 'v2'));
  assert.notEqual(ResultCache.key('00', 1, 'clamd', 'v1'), ResultCache.key('00', 2, 'clamd', 'v1'));
  assert.throws(() => new ResultCache(0), RangeError);
});

async function fakeSetup(behaviour: FakeBehaviour = FAKE.ok as FakeBehaviour) {
  const fake = await startFakeClamd(behaviour);
  const client = new ClamdClient({ endpoints: [fake.address], commandTimeoutMs: 300 });
  await client.start(); // learns the endpoint's VERSION
  const scanner = new CachingScanner(new ClamdScanner({ client }), { maxEntries: 100 });
  cleanups.push(() => client.close(), () => fake.close());
  return { fake, scanner, client };
}

const instream = (f: FakeClamd) => f.sessions.filter((s) => s.command === 'zINSTREAM');

async function scan(scanner: CachingScanner, bytes: Buffer): Promise<ScanResult> {
  const s = scanner.open({ where: '2', archiveDepth: 0 });
  // Two writes: the hash must cover chunk boundaries.
  s.write(bytes.subarray(0, 7));
  s.write(bytes.subarray(7));
  return s.end();
}

/** Wait until the fake saw `n` INSTREAM sessions close (aborted or answered). */
async function settled(fake: FakeClamd, n: number): Promise<void> {
  const until = Date.now() + 5000;
  while ((instream(fake).length < n || fake.open > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

test('fake clamd: the second identical file is answered from the cache and clamd never gets the terminator', async () => {
  const { fake, scanner } = await fakeSetup();
  // Over the 16 KiB held back: a large file streams to clamd before its hash is known.
  const a = Buffer.from('attachment bytes, the same for every recipient '.repeat(400));
  assert.ok(a.length > 16 * 1024);
  assert.deepEqual(await scan(scanner, a), { kind: 'clean' });
  // Second copy: let the bytes reach clamd first (as for a large attachment), then end.
  const st = scanner.open({ where: '2', archiveDepth: 0 });
  st.write(a);
  const sent = () => instream(fake)[1]?.frames.reduce((x, y) => x + y, 0) ?? 0;
  const until = Date.now() + 5000;
  while (sent() < a.length && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await st.end(), { kind: 'clean' });
  await settled(fake, 2);
  const s = instream(fake);
  assert.equal(s.length, 2);
  assert.equal(s[0]!.terminated, true, 'first scan: terminator sent, clamd scanned');
  assert.equal(s[1]!.frames.reduce((x, y) => x + y, 0), a.length, 'second copy streamed to clamd');
  assert.equal(s[1]!.terminated, false, 'second scan: aborted before the terminator');
  assert.equal(scanner.cache.stats.hits, 1);
  // Different content (same size) is a miss.
  const b = Buffer.from(a);
  b[10] ^= 1;
  assert.deepEqual(await scan(scanner, b), { kind: 'clean' });
  await settled(fake, 3);
  assert.equal(instream(fake)[2]!.terminated, true);
  assert.equal(scanner.cache.stats.hits, 1);
});

test('fake clamd: a small file (≤ 16 KiB) is held until its end, so a hit never contacts clamd', async () => {
  const { fake, scanner } = await fakeSetup();
  const small = Buffer.from('a short text part, the same in every copy\r\n'.repeat(100));
  assert.ok(small.length <= 16 * 1024);
  assert.deepEqual(await scan(scanner, small), { kind: 'clean' });
  await settled(fake, 1);
  const connections = fake.connections;
  for (let i = 0; i < 3; i++) assert.deepEqual(await scan(scanner, small), { kind: 'clean' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fake.connections, connections, 'no connection for the cached copies');
  assert.equal(scanner.lookups['hit-local'], 3);
  assert.deepEqual(instream(fake)[0]!.payload, small, 'the first copy reached clamd whole');
});

test('fake clamd: an infected verdict is cached (with its name); errors are not', async () => {
  const { fake, scanner } = await fakeSetup(FAKE.found('Fake.Virus'));
  const bad = Buffer.from('pretend malware '.repeat(50));
  assert.deepEqual(await scan(scanner, bad), { kind: 'infected', name: 'Fake.Virus' });
  fake.behaviour = FAKE.ok as FakeBehaviour; // clamd would now say OK: the cache must still say infected
  assert.deepEqual(await scan(scanner, bad), { kind: 'infected', name: 'Fake.Virus' });

  fake.behaviour = FAKE.error as FakeBehaviour;
  const other = Buffer.from('another file '.repeat(50));
  assert.equal((await scan(scanner, other)).kind, 'error');
  fake.behaviour = FAKE.ok as FakeBehaviour;
  assert.deepEqual(await scan(scanner, other), { kind: 'clean' });
  await settled(fake, 3);
  // Scans clamd actually ran: first, the error, the retry after the error. The cached one never got a terminator.
  assert.equal(instream(fake).filter((s) => s.terminated).length, 3);
});

test('fake clamd: a new signature version invalidates; an unknown version bypasses the cache', async () => {
  const { fake, scanner, client } = await fakeSetup();
  const a = Buffer.from('same bytes '.repeat(30));
  await scan(scanner, a);
  await scan(scanner, a); // hit
  fake.behaviour = { ...(FAKE.ok as FakeBehaviour), version: 'ClamAV 1.4.6/2/fake' };
  await client.start(); // a health round: VERSION now says 2
  assert.equal(client.endpointStatus()[0]!.version, 'ClamAV 1.4.6/2/fake');
  await scan(scanner, a); // miss: new DB
  fake.behaviour = { ...(FAKE.ok as FakeBehaviour), commands: 'stall' };
  await client.start(); // VERSION times out: unknown
  assert.equal(client.endpointStatus()[0]!.version, null);
  await scan(scanner, a); // bypass: unknown DB
  await settled(fake, 3); // the hit (a small file, held back) never connected
  assert.equal(instream(fake).filter((s) => s.terminated).length, 3, 'first, after the version change, while unknown');
  assert.equal(scanner.lookups.bypass, 1);
  assert.equal(scanner.lookups['hit-local'], 1);
});

test('fake clamd: a burst of the same file waits for the first scan instead of paying clamd again', async () => {
  const { fake, scanner } = await fakeSetup({ ...(FAKE.ok as FakeBehaviour), delayMs: 100 });
  const a = Buffer.from('campaign attachment '.repeat(40));
  const rs = await Promise.all([1, 2, 3, 4].map(() => scan(scanner, a)));
  for (const r of rs) assert.deepEqual(r, { kind: 'clean' });
  await settled(fake, 1);
  assert.equal(instream(fake).filter((s) => s.terminated).length, 1, 'one scan for four copies');
  assert.equal(scanner.lookups['hit-inflight'], 3);
});

test('real clamd through the core: the same EICAR attachment twice → infected both times, clamd scans it once', async () => {
  const clamd = await startClamd();
  cleanups.push(() => clamd.stop());
  const engine = await createEngine({ builtin: false, clamd: { endpoints: [clamd.tcp], cacheEntries: 100 } });
  cleanups.push(() => engine.close());
  await engine.clamd!.start(); // the engine's first health round: clamd's VERSION is known
  const found = async () => ((await clamd.log()).match(/Eicar-Test-Signature\.UNOFFICIAL FOUND/g) ?? []).length;
  const results = [];
  for (let i = 0; i < 3; i++) {
    // Different headers and text each time (as for different recipients); the attachment is the same.
    const msg = multipartMessage([{ filename: 'report.txt', content: EICAR }], { subject: `copy ${i}`, text: `Dear recipient ${i}` });
    const s = engine.begin({ recipients: [`r${i}@example.net`] });
    await s.push(msg);
    results.push(await s.end());
    await new Promise((r) => setTimeout(r, 200)); // clamd writes its log line after replying
    if (i === 0) assert.equal(await found(), 1, 'first copy scanned by clamd');
  }
  for (const v of results) {
    assert.equal(v.kind, 'infected');
    assert.equal(v.kind === 'infected' && v.name, 'Eicar-Test-Signature.UNOFFICIAL');
  }
  assert.equal(await found(), 1, 'copies 2 and 3 came from the cache');
});
