/**
 * scale-out.test.ts — several midstream instances, one Redis, a pool of clamds: all real
 * (redis-server, clamd, the compiled CLI as a child process, our SMTP client playing the
 * before-filter Postfix, an in-process sink as the after-filter smtpd).
 *
 * - two CLI proxies share one Redis: what one instance scanned is a shared-cache hit in
 *   the other, and clamd scans it once (clamd's own LogClean lines are counted);
 * - Redis killed and restarted during a load run through both instances: every message
 *   accounted for (clean ⇒ delivered exactly once, EICAR ⇒ rejected, never delivered),
 *   no 451 at all, and each instance logs the fallback once per transition;
 * - a clamd endpoint killed under load: it is ejected, the rest of the run goes to the
 *   other endpoint, every message is accounted for (accepted ⇒ delivered once; the few
 *   streams that were on the dead clamd get 451 and are never delivered);
 * - a signature version change (VERSION) drops the old entries in both tiers. A custom
 *   database does not change clamd's VERSION reply (only an official daily.cvd does), so
 *   a relay in front of the real clamd answers VERSION with a version the test sets; the
 *   scans themselves are the real clamd's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, appendFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClamd, EICAR, type RealClamd } from '../helpers/clamd.js';
import { startRedis, type RealRedis } from '../helpers/redis.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { startCli, metric, type CliServer, type LogLine } from '../helpers/cli-server.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import { multipartMessage, pseudoRandom } from '../helpers/mail-build.js';
import { createEngine, type EngineOptions } from '../../src/core/index.js';

let dir: string;
let redis: RealRedis;
let clamdA: RealClamd;
let clamdB: RealClamd;
let sink: Sink;
const cleanups: (() => Promise<unknown> | void)[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'midstream-scale-'));
  [redis, clamdA, clamdB, sink] = await Promise.all([startRedis(), startClamd({ extraConfig: ['LogClean yes'] }), startClamd({ extraConfig: ['LogClean yes'] }), startSink()]);
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all([redis?.stop(), clamdA?.stop(), clamdB?.stop(), sink?.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** Scans clamd has answered so far (LogClean yes logs clean ones too). */
async function scans(c: RealClamd): Promise<number> {
  return ((await c.log()).match(/instream\(.*\): .*(OK|FOUND)$/gm) ?? []).length;
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300)); // clamd writes its log line just after replying
}

function proxyConfig(endpoints: string[], extra = ''): string {
  return `
[proxy]
listen = "127.0.0.1:0"
forward = "127.0.0.1:${sink.port}"
[clamd]
endpoints = ${JSON.stringify(endpoints)}
health_interval = "1s"
[cache]
url = "${redis.url}"
retry = "300ms"
[metrics]
listen = "127.0.0.1:0"
${extra}`;
}

async function instance(name: string, endpoints: string[], extra = ''): Promise<CliServer> {
  const d = await mkdtemp(join(dir, `${name}-`));
  const p = await startCli('proxy', proxyConfig(endpoints, extra), d);
  cleanups.push(() => p.stop());
  // The first health round (PING + VERSION of every endpoint) has run once clamd is marked up in the metrics.
  await waitFor(async () => metric(await p.metrics(), 'midstream_clamd_up', { endpoint: endpoints[0]! }) === 1);
  await new Promise((r) => setTimeout(r, 200));
  return p;
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function send(port: number, message: Buffer): Promise<number> {
  const cl = await TestSmtpClient.connect(port);
  try {
    assert.equal((await cl.read()).code, 220);
    assert.equal((await cl.cmd('EHLO mx.example')).code, 250);
    assert.equal((await cl.cmd('MAIL FROM:<campaign@example.org>')).code, 250);
    assert.equal((await cl.cmd('RCPT TO:<someone@example.net>')).code, 250);
    assert.equal((await cl.cmd('DATA')).code, 354);
    cl.write(dotStuff(message));
    return (await cl.read(60_000)).code;
  } finally {
    await cl.quit();
  }
}

/** A campaign copy: same attachment and text for every recipient, a marker in the Subject. */
function campaign(marker: string, attachment: Uint8Array, text = 'Please find the invoice attached.'): Buffer {
  return multipartMessage([{ filename: 'invoice.pdf', contentType: 'application/pdf', content: attachment }], { subject: marker, text });
}

const delivered = (marker: string) => sink.messages.filter((m) => m.data?.includes(marker)).length;
const lookups = (text: string, result: string) => metric(text, 'midstream_cache_lookups_total', { result }) ?? 0;

test('two instances share Redis: what mx1 scanned is a shared hit in mx2, and clamd scans it once', async () => {
  const mx1 = await instance('mx1', [clamdA.tcp, clamdB.unix]);
  const mx2 = await instance('mx2', [clamdA.tcp, clamdB.unix]);
  const attachment = Buffer.concat([Buffer.from('%PDF-1.4\n'), pseudoRandom(200_000, 7)]);
  const before = (await scans(clamdA)) + (await scans(clamdB));
  assert.equal(await send(mx1.port, campaign('Invoice copy 1', attachment)), 250);
  await settle();
  const afterMx1 = (await scans(clamdA)) + (await scans(clamdB));
  assert.ok(afterMx1 > before, 'mx1 had clamd scan the parts');
  assert.equal(await send(mx2.port, campaign('Invoice copy 2', attachment)), 250);
  await settle();
  assert.equal((await scans(clamdA)) + (await scans(clamdB)), afterMx1, 'mx2 did not contact clamd');
  const m1 = await mx1.metrics();
  const m2 = await mx2.metrics();
  assert.equal(lookups(m2, 'hit-shared'), afterMx1 - before, 'every part mx1 had scanned was a shared hit in mx2');
  assert.equal(lookups(m2, 'miss'), 0);
  assert.equal(lookups(m1, 'miss'), afterMx1 - before);
  assert.equal(metric(m2, 'midstream_cache_shared_up'), 1);
  assert.equal(delivered('Invoice copy 1') + delivered('Invoice copy 2'), 2);
});

test('Redis killed and restarted during a load run: every message accounted for, no tempfail, one log line per transition', async () => {
  const mx1 = await instance('load1', [clamdA.tcp, clamdB.tcp]);
  const mx2 = await instance('load2', [clamdA.tcp, clamdB.tcp]);
  const shared = Buffer.concat([Buffer.from('%PDF-1.4\n'), pseudoRandom(60_000, 11)]);
  const N = 48;
  const codes: number[] = new Array(N);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      if (i === 16) redis.kill();
      if (i === 32) await redis.restart();
      const marker = `load-${i}-x`;
      const msg =
        i % 6 === 5
          ? multipartMessage([{ filename: 'eicar.txt', content: EICAR }], { subject: marker })
          : i % 2 === 0
            ? campaign(marker, shared)
            : campaign(marker, pseudoRandom(30_000, 100 + i), `unique text ${i}`);
      codes[i] = await send((i >> 1) % 2 === 0 ? mx1.port : mx2.port, msg); // both get campaign and unique mail
      done++;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  assert.equal(done, N);
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < N; i++) {
    const infected = i % 6 === 5;
    assert.equal(codes[i], infected ? 550 : 250, `message ${i}`);
    assert.equal(delivered(`load-${i}-x`), infected ? 0 : 1, `message ${i} delivered ${infected ? 'never' : 'once'}`);
  }
  // Each instance logs every transition once: down, up, (down, up…), never the same state twice in a row.
  for (const p of [mx1, mx2]) {
    const states = p.logs().filter((l: LogLine) => l.event === 'cache-shared-down' || l.event === 'cache-shared-up').map((l) => l.event);
    assert.equal(states[0], 'cache-shared-up', 'configured');
    assert.ok(states.includes('cache-shared-down'), 'the outage was noticed and logged');
    for (let k = 1; k < states.length; k++) assert.notEqual(states[k], states[k - 1], `no repeated ${states[k]} line`);
  }
  // After the restart the shared tier answers again (a lookup after the retry interval probes it).
  await waitFor(async () => {
    await send(mx1.port, campaign('after-restart', shared));
    return metric(await mx1.metrics(), 'midstream_cache_shared_up') === 1;
  });
});

test('a clamd endpoint killed under load: it is ejected, the rest goes to the other one, nothing accepted is lost', async () => {
  const [c1, c2] = await Promise.all([startClamd({ extraConfig: ['LogClean yes'] }), startClamd({ extraConfig: ['LogClean yes'] })]);
  cleanups.push(() => c1.stop(), () => c2.stop());
  // No cache: every message must really go to clamd.
  const mx = await instance('pool', [c1.tcp, c2.tcp], '');
  const N = 40;
  const codes: number[] = new Array(N);
  const startedAt: number[] = new Array(N);
  let next = 0;
  let killedAt = Infinity;
  let completed = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      startedAt[i] = performance.now();
      codes[i] = await send(mx.port, campaign(`pool-${i}-x`, pseudoRandom(80_000, 500 + i), `text ${i}`));
      if (++completed === 10) {
        c1.kill();
        killedAt = performance.now();
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  await new Promise((r) => setTimeout(r, 500));
  let tempfails = 0;
  for (let i = 0; i < N; i++) {
    assert.ok(codes[i] === 250 || codes[i] === 451, `message ${i}: ${codes[i]}`);
    assert.equal(delivered(`pool-${i}-x`), codes[i] === 250 ? 1 : 0, `message ${i}: accepted ⇒ delivered once, 451 ⇒ never`);
    if (codes[i] === 451) tempfails++;
  }
  // Only streams that were on c1 at the moment it died can fail (4 senders at most).
  assert.ok(tempfails <= 4, `${tempfails} tempfails`);
  const late = [...Array(N).keys()].filter((i) => startedAt[i]! > killedAt);
  assert.ok(late.length >= 20, `${late.length} messages started after the kill`);
  for (const i of late) assert.equal(codes[i], 250, `message ${i}, started after the kill: failed over`);
  const m = await mx.metrics();
  assert.equal(metric(m, 'midstream_clamd_up', { endpoint: c1.tcp }), 0, 'the dead endpoint is ejected');
  assert.equal(metric(m, 'midstream_clamd_up', { endpoint: c2.tcp }), 1);
  assert.ok(mx.logs().some((l) => l.event === 'clamd-down' && l.endpoint === c1.tcp));
  assert.ok((await scans(c2)) >= late.length, 'the survivor scanned the rest');
});

/** A TCP relay to a real clamd that answers a bare `zVERSION\0` connection itself. */
async function versionRelay(target: number, version: () => string): Promise<{ address: string; close(): Promise<void> }> {
  const socks = new Set<Socket>();
  const server: Server = createServer((client) => {
    socks.add(client);
    client.on('close', () => socks.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const first = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      if (head.length < 9 && Buffer.from('zVERSION\0').subarray(0, head.length).equals(head)) return;
      client.off('data', first);
      if (head.subarray(0, 9).equals(Buffer.from('zVERSION\0'))) return void client.end(`${version()}\0`);
      const up = connect({ host: '127.0.0.1', port: target });
      socks.add(up);
      up.on('close', () => socks.delete(up));
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      up.write(head);
      client.pipe(up).pipe(client);
    };
    client.on('data', first);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    address: `tcp:127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

test('a signature version change (VERSION) drops the old entries in both tiers', async () => {
  const c = await startClamd({ extraConfig: ['LogClean yes'] });
  cleanups.push(() => c.stop());
  let version = 'ClamAV 1.4.6/27001/Fri Dec  4 08:00:00 2026';
  const relay = await versionRelay(c.port, () => version);
  cleanups.push(() => relay.close());
  const opts: EngineOptions = { builtin: false, clamd: { endpoints: [relay.address], cacheEntries: 100, keepaliveMs: 5000 }, cache: { url: redis.url } };
  const [e1, e2] = await Promise.all([createEngine(opts), createEngine(opts)]);
  cleanups.push(() => e1.close(), () => e2.close());
  await Promise.all([e1.clamd!.start(), e2.clamd!.start()]);
  const marker = 'MIDSTREAM-NEW-CAMPAIGN-PAYLOAD-2026';
  const file = Buffer.concat([pseudoRandom(5000, 3), Buffer.from(marker), pseudoRandom(5000, 4)]);
  const scan = async (e: typeof e1) => {
    const s = e.begin({});
    await s.push(multipartMessage([{ filename: 'a.bin', content: file }], { text: 'same text' }));
    return s.end();
  };
  assert.equal((await scan(e1)).kind, 'clean');
  assert.equal((await scan(e2)).kind, 'clean');
  assert.ok(e2.cache!.lookups['hit-shared'] > 0 && e2.cache!.lookups['hit-shared'] === e1.cache!.lookups.miss, 'instance 2: every part from Redis');
  assert.equal(e2.cache!.lookups.miss, 0);

  // New signatures that catch the file. clamd reloads; its VERSION (a custom DB has no
  // daily number) does not change, so the cache still answers clean: the hazard the key guards against.
  await appendFile(join(c.dir, 'db', 'test.ndb'), `Midstream-Campaign-Sig:0:*:${Buffer.from(marker).toString('hex')}\n`);
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: c.port }, () => s.write('zRELOAD\0'));
    s.on('data', () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  await waitFor(async () => /Database correctly reloaded/.test(await c.log()), 20_000);
  assert.equal((await scan(e2)).kind, 'clean', 'same VERSION: still a hit');

  version = 'ClamAV 1.4.6/27002/Fri Dec  4 12:00:00 2026';
  await Promise.all([e1.clamd!.start(), e2.clamd!.start()]); // a health round reads the new VERSION
  await settle();
  const before = await scans(c);
  const v1 = await scan(e1);
  assert.deepEqual(v1.kind === 'infected' && v1.name, 'Midstream-Campaign-Sig.UNOFFICIAL', 'old entries no longer hit: clamd scanned again');
  await settle();
  assert.ok((await scans(c)) > before);
  const afterE1 = await scans(c);
  assert.equal((await scan(e2)).kind, 'infected', 'instance 2: the new entry from Redis');
  await settle();
  assert.equal(await scans(c), afterE1, 'instance 2 did not need clamd');
  const readLog = await readFile(join(c.dir, 'clamd.log'), 'utf8');
  assert.match(readLog, /Midstream-Campaign-Sig\.UNOFFICIAL FOUND/);
});
