/**
 * address.test.ts — the one address grammar (src/core/address.ts): every form, per use,
 * the errors (ADDRESS_INVALID, naming the input), the Postfix-style milter mistake, and
 * printing back. Replaces the five per-module address tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressError, formatAddress, parseAddress, type AddressUse } from '../../src/core/address.js';
import { MidstreamError } from '../../src/core/errors.js';
import { parseClamdAddress } from '../../src/core/scan/clamd-client.js';

const tcp = (host: string, port: number) => ({ kind: 'tcp', host, port });
const unix = (path: string) => ({ kind: 'unix', path });

test('each form means the same wherever it is accepted', () => {
  const cases: [string, AddressUse[], object][] = [
    ['127.0.0.1:10025', ['listen', 'connect', 'clamd', 'metrics'], tcp('127.0.0.1', 10025)],
    ['[::1]:25', ['listen', 'connect', 'clamd', 'metrics'], tcp('::1', 25)],
    ['midstream-proxy:10025', ['listen', 'connect', 'clamd', 'metrics'], tcp('midstream-proxy', 10025)],
    ['tcp:127.0.0.1:3310', ['listen', 'connect', 'clamd'], tcp('127.0.0.1', 3310)],
    ['tcp:[::1]:3310', ['clamd'], tcp('::1', 3310)],
    [' tcp:clamd.example:65535 ', ['clamd'], tcp('clamd.example', 65535)],
    ['inet:localhost:25', ['listen', 'connect'], tcp('localhost', 25)],
    ['inet:7357@127.0.0.1', ['milter', 'listen', 'connect'], tcp('127.0.0.1', 7357)],
    ['inet:7357@localhost', ['milter'], tcp('localhost', 7357)],
    ['inet:7357', ['milter'], tcp('127.0.0.1', 7357)],
    ['inet6:7357@::1', ['milter'], tcp('::1', 7357)],
    ['inet6:25@[::1]', ['milter'], tcp('::1', 25)],
    ['inet6:25', ['milter'], tcp('::1', 25)],
    ['unix:/run/midstream/milter.sock', ['milter', 'listen', 'connect', 'clamd'], unix('/run/midstream/milter.sock')],
    ['local:/run/m.sock', ['milter', 'listen'], unix('/run/m.sock')],
    ['/run/clamav/clamd.ctl', ['clamd'], unix('/run/clamav/clamd.ctl')],
    ['9357', ['metrics'], tcp('127.0.0.1', 9357)],
    [':9357', ['metrics'], tcp('127.0.0.1', 9357)],
    ['0.0.0.0:9357', ['metrics'], tcp('0.0.0.0', 9357)],
  ];
  for (const [input, uses, want] of cases) for (const u of uses) assert.deepEqual(parseAddress(input, u), want, `${input} as ${u}`);
});

test('port 0 only where we listen', () => {
  assert.deepEqual(parseAddress('127.0.0.1:0', 'listen'), tcp('127.0.0.1', 0));
  assert.deepEqual(parseAddress('inet:0@127.0.0.1', 'milter'), tcp('127.0.0.1', 0));
  for (const u of ['connect', 'clamd'] as const) assert.throws(() => parseAddress('127.0.0.1:0', u), AddressError, u);
});

test('forms a use does not take are refused with the forms it does', () => {
  assert.throws(() => parseAddress('/run/x.sock', 'listen'), /expected HOST:PORT or unix:\/path/);
  assert.throws(() => parseAddress('tcp:1@x', 'milter'), AddressError);
  assert.throws(() => parseAddress('unix:/x', 'metrics'), /expected HOST:PORT or :PORT/);
  assert.throws(() => parseAddress('9357', 'connect'), AddressError);
  assert.throws(() => parseAddress('udp:1.2.3.4:3310', 'clamd'), AddressError);
});

test("Postfix's inet:HOST:PORT for the milter: an error that shows Sendmail's form", () => {
  for (const [input, want] of [
    ['inet:127.0.0.1:7357', 'inet:7357@127.0.0.1'],
    ['127.0.0.1:7357', 'inet:7357@127.0.0.1'],
    ['inet:[::1]:7357', 'inet6:7357@::1'],
  ]) {
    assert.throws(
      () => parseAddress(input!, 'milter'),
      (e: unknown) => {
        assert.ok(e instanceof AddressError && e instanceof MidstreamError);
        assert.equal(e.code, 'ADDRESS_INVALID');
        assert.equal(e.input, input);
        assert.ok(e.message.includes(`"${want}"`), e.message);
        assert.match(e.message, /Sendmail's notation/);
        return true;
      },
      input,
    );
  }
});

test('bad inputs: ADDRESS_INVALID naming the input and a reason', () => {
  const bad: [string, AddressUse][] = [
    ['', 'connect'], ['   ', 'clamd'], ['tcp:', 'clamd'], ['tcp:host', 'clamd'], ['host', 'connect'], ['tcp::3310', 'clamd'],
    ['tcp:host:65536', 'clamd'], ['tcp:host:33a0', 'clamd'], ['tcp:host:-1', 'clamd'], ['::1:3310', 'clamd'], ['tcp:[::1]3310', 'clamd'],
    ['tcp:[::1', 'clamd'], ['tcp:[host]:1', 'clamd'], ['[10.0.0.1]:25', 'connect'], ['unix:', 'listen'], ['unix:relative.sock', 'listen'],
    ['unix:/' + 'x'.repeat(120), 'listen'], ['tcp:ho st:1', 'clamd'], ['tcp:host:1\n', 'clamd'], ['tcp:a\0b:1', 'clamd'],
    ['300.1.1.1:25', 'connect'], ['a b:25', 'connect'], ['127.0.0.1', 'listen'], [':25', 'connect'], ['h:2x', 'connect'],
    ['inet:@127.0.0.1', 'milter'], ['inet6:7357@127.0.0.1', 'milter'], ['inet:70000@127.0.0.1', 'milter'], ['x', 'metrics'],
    ['0.0.0.0:99999', 'metrics'],
  ];
  for (const [s, u] of bad) {
    assert.throws(
      () => parseAddress(s, u),
      (e: unknown) => {
        assert.ok(e instanceof AddressError, `${JSON.stringify(s)} as ${u} should throw AddressError`);
        assert.equal(e.code, 'ADDRESS_INVALID');
        assert.equal(e.input, s);
        assert.ok(e.reason.length > 0);
        assert.match(e.message, /^bad address /);
        return true;
      },
      JSON.stringify(s),
    );
  }
});

test('formatAddress prints each style; the clamd client names endpoints canonically', () => {
  assert.equal(formatAddress(tcp('::1', 25) as never), '[::1]:25');
  assert.equal(formatAddress(tcp('127.0.0.1', 7357) as never, 'sendmail'), 'inet:7357@127.0.0.1');
  assert.equal(formatAddress(tcp('::1', 7357) as never, 'sendmail'), 'inet6:7357@::1');
  assert.equal(formatAddress(tcp('127.0.0.1', 3310) as never, 'clamd'), 'tcp:127.0.0.1:3310');
  assert.equal(formatAddress(unix('/run/x.sock') as never, 'sendmail'), 'unix:/run/x.sock');
  assert.equal(parseClamdAddress('localhost:3310').text, 'tcp:localhost:3310');
  assert.equal(parseClamdAddress('/tmp/c.sock').text, 'unix:/tmp/c.sock');
  // Round trip: what we print, we parse back to the same address.
  for (const s of ['127.0.0.1:10025', '[::1]:25', 'unix:/run/x.sock']) assert.equal(formatAddress(parseAddress(s, 'connect')), s);
});
