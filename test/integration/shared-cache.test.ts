/**
 * shared-cache.test.ts — the shared verdict cache (src/core/scan/shared-cache.ts over
 * redis-client.ts) against a REAL redis-server: round trip with TTL, garbage values,
 * Redis down and back, Redis slow (a listener that accepts and never answers, beside the
 * real one), each falling back as a miss with one state transition, never an error.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { SharedVerdictCache, decodeVerdict, encodeVerdict, type SharedState } from '../../src/core/scan/shared-cache.js';
import { connectRedis, parseRedisUrl } from '../../src/core/scan/redis-client.js';
import { startRedis, type RealRedis } from '../helpers/redis.js';

let redis: RealRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

function cache(url: string, states: string[], o: { timeoutMs?: number; retryMs?: number; ttlMs?: number } = {}) {
  return new SharedVerdictCache(connectRedis({ url, timeoutMs: o.timeoutMs ?? 200 }), {
    ttlMs: o.ttlMs ?? 60_000,
    timeoutMs: o.timeoutMs ?? 200,
    retryMs: o.retryMs ?? 100,
    onState: (s: SharedState, why: string) => states.push(`${s}: ${why}`),
  });
}

async function until(cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('wire values: only the two exact forms decode; names are printable and capped', () => {
  assert.deepEqual(decodeVerdict('1|clean'), { kind: 'clean' });
  assert.deepEqual(decodeVerdict('1|infected|Eicar-Test-Signature'), { kind: 'infected', name: 'Eicar-Test-Signature' });
  for (const bad of ['clean', '1|clean ', '2|clean', '1|infected|', '1|infected|a\nb', '1|infected|' + 'x'.repeat(201), '1|error|x']) {
    assert.equal(decodeVerdict(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(encodeVerdict({ kind: 'error', errorKind: 'scanner-timeout' }), null, 'errors are never stored');
  assert.equal(encodeVerdict({ kind: 'infected', name: 'bad\x01name' }), null);
  assert.throws(() => parseRedisUrl('http://x'), RangeError);
  assert.throws(() => parseRedisUrl('unix:relative'), RangeError);
  assert.deepEqual(parseRedisUrl('rediss://:pw@cache.example:6380/2'), { kind: 'tcp', tls: true, host: 'cache.example', port: 6380, db: 2, password: 'pw' });
});

test('real Redis: stored verdicts come back in another client, with their TTL', async () => {
  const states: string[] = [];
  const a = cache(redis.url, states, { ttlMs: 300 });
  const b = cache(redis.url, states);
  try {
    a.set('k-clean', { kind: 'clean' });
    a.set('k-inf', { kind: 'infected', name: 'Eicar-Test-Signature' });
    a.set('k-err', { kind: 'error', errorKind: 'scanner-timeout' });
    await until(async () => (await b.get('k-inf')) !== undefined);
    assert.deepEqual(await b.get('k-clean'), { kind: 'clean' });
    assert.deepEqual(await b.get('k-inf'), { kind: 'infected', name: 'Eicar-Test-Signature' });
    assert.equal(await b.get('k-err'), undefined);
    await until(async () => (await b.get('k-clean')) === undefined, 3000); // expired by Redis (PX)
    assert.deepEqual(states, []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('real Redis: a garbage value is a miss and one transition to down, then back up', async () => {
  const states: string[] = [];
  const c = cache(redis.url, states);
  const raw = connectRedis({ url: redis.url, timeoutMs: 1000 });
  try {
    await raw.set('k-garbage', 'clean, trust me', 'PX', 60_000);
    assert.equal(await c.get('k-garbage'), undefined);
    assert.equal(c.currentState, 'down');
    assert.equal(await c.get('k-garbage'), undefined, 'still a miss (skipped while down)');
    assert.equal(c.stats.skipped, 1);
    await new Promise((r) => setTimeout(r, 150)); // retryMs
    await raw.set('k-good', '1|clean', 'PX', 60_000);
    assert.deepEqual(await c.get('k-good'), { kind: 'clean' });
    assert.equal(states.length, 2);
    assert.match(states[0]!, /^down: garbage value/);
    assert.match(states[1]!, /^up:/);
  } finally {
    await Promise.all([c.close(), raw.quit()]);
  }
});

test('real Redis killed and restarted: misses while down, one line per transition, hits again after', async () => {
  const states: string[] = [];
  const c = cache(redis.url, states);
  try {
    c.set('k-survive', { kind: 'clean' });
    await until(async () => (await c.get('k-survive')) !== undefined);
    redis.kill();
    for (let i = 0; i < 5; i++) assert.equal(await c.get('k-survive'), undefined);
    assert.equal(states.length, 1);
    assert.match(states[0]!, /^down:/);
    await redis.restart(); // an empty Redis (no persistence): the entry is gone, the service is back
    await until(async () => {
      await c.get('anything');
      return c.currentState === 'up';
    }, 10_000);
    c.set('k-after', { kind: 'infected', name: 'X' });
    await until(async () => (await c.get('k-after')) !== undefined);
    assert.equal(states.length, 2);
    assert.match(states[1]!, /^up:/);
  } finally {
    await c.close();
  }
});

test('a Redis that accepts and never answers: each lookup waits at most the timeout, then is skipped while down', async () => {
  const socks = new Set<Socket>();
  const silent: Server = createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as { port: number }).port;
  const states: string[] = [];
  const c = cache(`redis://127.0.0.1:${port}`, states, { timeoutMs: 100, retryMs: 60_000 });
  try {
    const t0 = performance.now();
    assert.equal(await c.get('k'), undefined);
    const first = performance.now() - t0;
    assert.equal(c.currentState, 'down');
    for (let i = 0; i < 20; i++) assert.equal(await c.get('k'), undefined);
    assert.equal(c.stats.skipped, 20, 'no command sent while down');
    assert.equal(states.length, 1);
    assert.ok(first >= 90, `the first lookup waited for its deadline (${Math.round(first)} ms)`);
  } finally {
    void c.close();
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});
