/**
 * host-lookup.test.ts — the connect lookup (src/core/host-lookup.ts) with a resolver the
 * test answers by hand: callers of one name share one pending lookup; a name that
 * resolved lately is answered at once while its refresh is pending (the stalled-resolver
 * case the fleet lab met), but not past staleMs; a failed lookup forgets the answer;
 * names and options are kept apart. Then the real instance over dns.lookup: localhost
 * (from /etc/hosts) through a real net.connect to a real listener.
 * The stalled resolver itself (a stopped container's name in Docker) is exercised for real
 * by test/integration/lab-fleet.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo } from 'node:net';
import type { LookupOptions } from 'node:dns';
import { createHostLookup, hostLookup, type LookupCallback } from '../../src/core/host-lookup.js';

interface Call {
  host: string;
  options: LookupOptions;
  answer(err: NodeJS.ErrnoException | null, address?: string): void;
}

function fakeResolver() {
  const calls: Call[] = [];
  const fn = (host: string, options: LookupOptions, cb: LookupCallback) => {
    calls.push({ host, options, answer: (err, address = '') => cb(err, address, err ? undefined : 4) });
  };
  return { calls, fn };
}

type Got = { err: string | null; address: unknown };
function ask(lookup: ReturnType<typeof createHostLookup>, host: string, options: LookupOptions = {}): { got: Got[] } {
  const r: { got: Got[] } = { got: [] };
  lookup(host, options, (err, address) => r.got.push({ err: err ? err.code ?? 'error' : null, address }));
  return r;
}
const tick = () => new Promise((r) => setImmediate(r));
const enotfound = () => Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }) as NodeJS.ErrnoException;

test('callers of one name while its lookup is pending share that one lookup', async () => {
  const r = fakeResolver();
  const lookup = createHostLookup(r.fn);
  const a = ask(lookup, 'clamd1');
  const b = ask(lookup, 'clamd1');
  const c = ask(lookup, 'clamd1');
  assert.equal(r.calls.length, 1, 'one resolver call for three connects');
  assert.equal(lookup.pending(), 1);
  r.calls[0]!.answer(null, '10.0.0.1');
  await tick();
  for (const x of [a, b, c]) assert.deepEqual(x.got, [{ err: null, address: '10.0.0.1' }]);
  assert.equal(lookup.pending(), 0);
});

test('a name that resolved lately is answered at once while its refresh is pending', async () => {
  const r = fakeResolver();
  let t = 1000;
  const lookup = createHostLookup(r.fn, { staleMs: 30_000, now: () => t });
  ask(lookup, 'clamd2');
  r.calls[0]!.answer(null, '10.0.0.2');
  t += 29_000;
  const during = ask(lookup, 'clamd2');
  await tick();
  assert.deepEqual(during.got, [{ err: null, address: '10.0.0.2' }], 'answered from the last lookup, not held by the resolver');
  assert.equal(r.calls.length, 2, 'and a refresh was started');
  const again = ask(lookup, 'clamd2');
  await tick();
  assert.deepEqual(again.got, [{ err: null, address: '10.0.0.2' }]);
  assert.equal(r.calls.length, 2, 'the refresh is shared, not repeated');
  r.calls[1]!.answer(null, '10.0.0.22');
  await tick();
  assert.equal(during.got.length, 1, 'a caller answered early is not answered twice');
  const after = ask(lookup, 'clamd2');
  await tick();
  assert.deepEqual(after.got, [{ err: null, address: '10.0.0.22' }], 'the refreshed address is served next');
});

test('past staleMs the caller waits for the lookup', async () => {
  const r = fakeResolver();
  let t = 0;
  const lookup = createHostLookup(r.fn, { staleMs: 30_000, now: () => t });
  ask(lookup, 'redis');
  r.calls[0]!.answer(null, '10.0.0.3');
  t += 30_001;
  const late = ask(lookup, 'redis');
  await tick();
  assert.deepEqual(late.got, [], 'too old to serve: waits');
  r.calls[1]!.answer(null, '10.0.0.4');
  await tick();
  assert.deepEqual(late.got, [{ err: null, address: '10.0.0.4' }]);
});

test('a failed lookup reaches every waiter and forgets the last answer', async () => {
  const r = fakeResolver();
  const lookup = createHostLookup(r.fn);
  ask(lookup, 'clamd1');
  r.calls[0]!.answer(null, '10.0.0.1');
  const early = ask(lookup, 'clamd1'); // served the old answer; refresh pending
  r.calls[1]!.answer(enotfound());
  await tick();
  assert.deepEqual(early.got, [{ err: null, address: '10.0.0.1' }]);
  const a = ask(lookup, 'clamd1');
  const b = ask(lookup, 'clamd1');
  await tick();
  assert.deepEqual([a.got, b.got], [[], []], 'nothing served after the failure: they wait for a new lookup');
  assert.equal(r.calls.length, 3);
  r.calls[2]!.answer(enotfound());
  await tick();
  assert.deepEqual([a.got, b.got], [[{ err: 'ENOTFOUND', address: '' }], [{ err: 'ENOTFOUND', address: '' }]]);
});

test('names and lookup options are kept apart', async () => {
  const r = fakeResolver();
  const lookup = createHostLookup(r.fn);
  const v4 = ask(lookup, 'mx1', { family: 4 });
  const all = ask(lookup, 'mx1', { all: true });
  const other = ask(lookup, 'mx2', { family: 4 });
  assert.deepEqual(r.calls.map((c) => [c.host, c.options]), [['mx1', { family: 4 }], ['mx1', { all: true }], ['mx2', { family: 4 }]]);
  r.calls[0]!.answer(null, '10.0.1.1');
  r.calls[1]!.answer(null, '10.0.1.9');
  r.calls[2]!.answer(null, '10.0.2.1');
  await tick();
  assert.deepEqual([v4.got[0]!.address, all.got[0]!.address, other.got[0]!.address], ['10.0.1.1', '10.0.1.9', '10.0.2.1']);
});

test('the real instance: net.connect to localhost through it reaches a real listener', async () => {
  const server = createServer((s) => s.end('hello\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    for (let i = 0; i < 2; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: 'localhost', port, family: 4, lookup: hostLookup });
        let buf = '';
        s.on('data', (d) => (buf += d.toString()));
        s.on('end', () => resolve(buf));
        s.on('error', reject);
      });
      assert.equal(text, 'hello\n', `connect ${i + 1}`);
    }
  } finally {
    server.close();
  }
});
