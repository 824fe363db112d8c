/**
 * result-cache.test.ts — the clamd results cache (src/core/scan/result-cache.ts):
 * the LRU alone (bound, recency, TTL); CachingScanner over a fake clamd (a hit aborts the
 * INSTREAM before its zero-length terminator, errors are never cached, a new signature
 * version from the endpoint's VERSION means no hit, a failed VERSION keeps the last one, a
 * version never known means no hit, a scan on an endpoint not checked yet asks its VERSION,
 * clamd down still answers cached content, a burst of the same file waits for the first
 * scan); and through createEngine with a real clamd, where a repeated attachment is
 * reported from the cache and clamd's log shows one scan only, and where a clamd hung
 * (SIGSTOP) and then stopped still gets the cached verdicts, new content an error.
 * The shared tier (Redis) and pools of real clamds: test/integration/scale-out.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ResultCache, CachingScanner } from '../../src/core/scan/result-cache.js';
import { ClamdScanner } from '../../src/core/scan/clamd-scanner.js';
import { ClamdClient } from '../../src/core/scan/clamd-client.js';
import { createEngine } from '../../src/core/index.js';
import type { ScanResult, Verdict } from '../../src/core/types.js';
import { startFakeClamd, FAKE, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';
import { startClamd, EICAR } from '../helpers/clamd.js';
import { multipartMessage } from '../helpers/mail-build.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  // Every cleanup runs, whatever an earlier one threw (a clamd left running keeps the test alive).
  for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {});
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

test('fake clamd: a new signature version invalidates; a failed VERSION keeps the last one; a version never known bypasses', async () => {
  const { fake, scanner, client } = await fakeSetup();
  const a = Buffer.from('same bytes '.repeat(30));
  await scan(scanner, a);
  await scan(scanner, a); // hit
  fake.behaviour = { ...(FAKE.ok as FakeBehaviour), version: 'ClamAV 1.4.6/2/fake' };
  await client.start(); // a health round: VERSION now says 2
  assert.equal(client.endpointStatus()[0]!.version, 'ClamAV 1.4.6/2/fake');
  await scan(scanner, a); // miss: new DB
  fake.behaviour = { ...(FAKE.ok as FakeBehaviour), commands: 'stall' };
  await client.start(); // VERSION times out: no news of another database
  assert.equal(client.endpointStatus()[0]!.version, 'ClamAV 1.4.6/2/fake', 'a failed check keeps the last version');
  assert.deepEqual(await scan(scanner, a), { kind: 'clean' }); // hit under version 2
  await settled(fake, 2); // the hits (a small file, held back) never connected
  assert.equal(instream(fake).filter((s) => s.terminated).length, 2, 'first, after the version change');
  assert.equal(scanner.lookups['hit-local'], 2);
  assert.equal(scanner.lookups.bypass, 0);

  // A clamd that never answers VERSION: the scan asks once per lookup, gets nothing, bypasses.
  const mute = await startFakeClamd({ ...(FAKE.ok as FakeBehaviour), commands: 'stall' });
  const muteClient = new ClamdClient({ endpoints: [mute.address], commandTimeoutMs: 300 });
  cleanups.push(() => muteClient.close(), () => mute.close());
  const muteScanner = new CachingScanner(new ClamdScanner({ client: muteClient }), { maxEntries: 100 });
  for (let i = 0; i < 2; i++) assert.deepEqual(await scan(muteScanner, a), { kind: 'clean' });
  await settled(mute, 2);
  assert.equal(instream(mute).filter((s) => s.terminated).length, 2, 'both scanned: never a hit against an unknown database');
  assert.equal(muteScanner.lookups.bypass, 2);
  assert.equal(muteClient.endpointStatus()[0]!.version, null);
});

test('fake clamd not checked yet (it was down when we started): the first scan asks its VERSION, so its verdict is cached at once', async () => {
  const fake = await startFakeClamd(FAKE.ok as FakeBehaviour);
  const client = new ClamdClient({ endpoints: [fake.address], commandTimeoutMs: 300 }); // no start(): no health round yet
  cleanups.push(() => client.close(), () => fake.close());
  const scanner = new CachingScanner(new ClamdScanner({ client }), { maxEntries: 100 });
  assert.equal(client.endpointStatus()[0]!.version, null);
  const a = Buffer.from('first mail after start-up '.repeat(20));
  const rs = await Promise.all([scan(scanner, a), scan(scanner, Buffer.from('another file '.repeat(20)))]);
  for (const r of rs) assert.deepEqual(r, { kind: 'clean' });
  assert.equal(client.endpointStatus()[0]!.version, 'ClamAV 1.4.6/1/fake');
  assert.equal(fake.sessions.filter((s) => s.command === 'zVERSION').length, 1, 'asked once for both streams');
  assert.deepEqual(await scan(scanner, a), { kind: 'clean' });
  assert.equal(scanner.lookups['hit-local'], 1);
  assert.equal(scanner.lookups.bypass, 0);
});

test('fake clamd hung, then gone: content cached under its last version is still answered from the cache, new content is an error — before and after the health checks notice', async () => {
  const fake = await startFakeClamd(FAKE.ok as FakeBehaviour);
  const client = new ClamdClient({ endpoints: [fake.address], commandTimeoutMs: 300, idleTimeoutMs: 300, totalTimeoutMs: 2000 });
  cleanups.push(() => client.close(), () => fake.close());
  await client.start();
  const scanner = new CachingScanner(new ClamdScanner({ client }), { maxEntries: 100 });
  const known = Buffer.from('an attachment clamd already scanned '.repeat(20));
  assert.deepEqual(await scan(scanner, known), { kind: 'clean' });
  const bad = Buffer.from('pretend malware, scanned before the outage '.repeat(20));
  fake.behaviour = FAKE.found('Fake.Virus');
  assert.deepEqual(await scan(scanner, bad), { kind: 'infected', name: 'Fake.Virus' });
  await settled(fake, 2);
  const cachedAnswersStand = async (when: string) => {
    assert.deepEqual(await scan(scanner, known), { kind: 'clean' }, when);
    assert.deepEqual(await scan(scanner, bad), { kind: 'infected', name: 'Fake.Virus' }, when);
    const fresh = await scan(scanner, Buffer.from(`never seen before, ${when} `.repeat(20)));
    assert.equal(fresh.kind, 'error', when);
  };

  // Hung (accepts, answers nothing: a clamd stuck or shutting down).
  fake.behaviour = { action: 'stall', commands: 'stall' };
  await cachedAnswersStand('hung, not noticed yet');
  await client.start(); // PING and VERSION time out
  assert.equal(client.endpointStatus()[0]!.version, 'ClamAV 1.4.6/1/fake', 'a failed check keeps the last version');
  await cachedAnswersStand('hung, after a failed health round');
  // Gone (connects refused): ejected at once.
  await fake.close();
  await cachedAnswersStand('gone');
  assert.equal(client.endpointStatus()[0]!.up, false);
  await client.start();
  await cachedAnswersStand('gone, ejected, after a failed health round');
  assert.equal(scanner.lookups['hit-local'], 8);
  assert.equal(scanner.lookups.bypass, 0);
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
    if (i === 0) assert.equal(await logged(found, 1), 1, 'first copy scanned by clamd');
  }
  for (const v of results) {
    assert.equal(v.kind, 'infected');
    assert.equal(v.kind === 'infected' && v.name, 'Eicar-Test-Signature.UNOFFICIAL');
  }
  // At least the attachment of copies 2 and 3 (other parts of copy 1 may have been cut
  // short by its infected verdict before clamd answered them, and so were not stored).
  assert.ok(engine.cache!.lookups['hit-local'] >= 2, `hits: ${JSON.stringify(engine.cache!.lookups)}`);
  // clamd writes its log line after it replies: a later scan of other infected content is
  // the mark to wait for (no fixed sleep); copies 2 and 3 were answered before it was sent.
  const marker = engine.begin({ recipients: ['m@example.net'] });
  await marker.push(multipartMessage([{ filename: 'marker.txt', content: Buffer.concat([Buffer.from('marker '), EICAR]) }], { subject: 'marker' }));
  assert.equal((await marker.end()).kind, 'infected');
  assert.equal(await logged(found, 2), 2, 'the first copy and the marker; copies 2 and 3 came from the cache');
});

/** `count()` once it reaches `n` (clamd's log is written after its reply), or what it is after 10 s. */
async function logged(count: () => Promise<number>, n: number): Promise<number> {
  const until = Date.now() + 10_000;
  for (;;) {
    const c = await count();
    if (c >= n || Date.now() > until) return c;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('real clamd hung (SIGSTOP), then gone: content it scanned is answered from the cache, new content is an error — before and after a health round notices', async () => {
  const clamd = await startClamd();
  cleanups.push(() => clamd.stop());
  // Short deadlines: the hung phase waits them out for the new content.
  const engine = await createEngine({ builtin: false, clamd: { endpoints: [clamd.tcp], cacheEntries: 100, commandTimeoutMs: 500, idleTimeoutMs: 1000, totalTimeoutMs: 3000 } });
  cleanups.push(() => engine.close());
  await engine.clamd!.start();
  const infected = [{ filename: 'invoice.txt', content: Buffer.concat([Buffer.from('scanned before the outage '), EICAR]) }];
  const clean = [{ filename: 'notes.txt', content: 'a clean attachment clamd saw before the outage\r\n' }];
  // The same attachments each time, in a message of its own (headers differ): the cache
  // answers per file; the text part is the same each time too.
  let n = 0;
  const send = async (attachments: { filename: string; content: Buffer | string }[]) => {
    const s = engine.begin({ recipients: [`r${n}@example.net`] });
    await s.push(multipartMessage(attachments, { subject: `copy ${n++}`, text: 'Please find it attached.' }));
    return s.end();
  };
  const virus = (v: Verdict) => (v.kind === 'infected' ? `${v.name} in ${v.where}` : JSON.stringify(v));
  assert.equal(virus(await send(infected)), 'Eicar-Test-Signature.UNOFFICIAL in 2/invoice.txt');
  assert.equal((await send(clean)).kind, 'clean');
  const version = engine.clamd!.endpointStatus()[0]!.version;
  assert.match(String(version), /^ClamAV /);

  let round = 0;
  const answers = async (when: string) => {
    // New content first (its failure counts against clamd), then the files scanned before.
    const fresh = await send([{ filename: 'new.txt', content: `never seen before, ${when}, ${round++}\r\n` }]);
    assert.equal(fresh.kind, 'error', `${when}: ${JSON.stringify(fresh)}`);
    assert.equal(virus(await send(infected)), 'Eicar-Test-Signature.UNOFFICIAL in 2/invoice.txt', when);
    assert.equal((await send(clean)).kind, 'clean', when);
  };
  // Hung: the kernel still accepts connections, clamd answers nothing (as while it stops).
  process.kill(clamd.pid, 'SIGSTOP');
  let paused = true;
  cleanups.push(() => void (paused && process.kill(clamd.pid, 'SIGCONT')));
  await answers('hung, not noticed yet');
  await engine.clamd!.start(); // a health round: PING times out
  assert.equal(engine.clamd!.endpointStatus()[0]!.version, version, 'a failed check keeps the last VERSION reply');
  await answers('hung, after a failed health round');
  // Gone: connections refused.
  process.kill(clamd.pid, 'SIGCONT');
  paused = false;
  await clamd.stop();
  await answers('stopped');
  assert.equal(engine.clamd!.endpointStatus()[0]!.up, false, 'ejected by the refused connect');
  await engine.clamd!.start();
  await answers('stopped, after a failed health round');
  assert.equal(engine.clamd!.endpointStatus()[0]!.version, version);
});
