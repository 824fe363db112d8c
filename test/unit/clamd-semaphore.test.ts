/** clamd-semaphore.test.ts — the concurrency limiter behind ClamdClient.maxConcurrent. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Semaphore } from '../../src/core/scan/semaphore.js';

test('grants up to `permits`, then FIFO', async () => {
  const s = new Semaphore(2);
  const r1 = await s.acquire();
  const r2 = await s.acquire();
  assert.equal(s.inUse, 2);
  const order: number[] = [];
  const p3 = s.acquire().then((r) => (order.push(3), r));
  const p4 = s.acquire().then((r) => (order.push(4), r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  assert.equal(s.waiting, 2);
  r1();
  r1(); // idempotent: must not free a second permit
  const r3 = await p3;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [3]);
  r2();
  const r4 = await p4;
  assert.deepEqual(order, [3, 4]);
  assert.equal(s.inUse, 2);
  r3();
  r4();
  assert.equal(s.inUse, 0);
});

test('abort while waiting removes the waiter and rejects with the reason', async () => {
  const s = new Semaphore(1);
  const r1 = await s.acquire();
  const ac = new AbortController();
  const p = s.acquire(ac.signal);
  ac.abort(new Error('gone'));
  await assert.rejects(p, /gone/);
  assert.equal(s.waiting, 0);
  r1();
  assert.equal(s.inUse, 0);
  await assert.rejects(s.acquire(AbortSignal.abort(new Error('pre'))), /pre/);
  assert.equal(s.inUse, 0);
});

test('rejects bad permit counts', () => {
  assert.throws(() => new Semaphore(0), RangeError);
  assert.throws(() => new Semaphore(1.5), RangeError);
});
