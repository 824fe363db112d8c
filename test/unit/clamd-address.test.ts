/** clamd-address.test.ts — endpoint strings → addresses, and typed errors for bad ones. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClamdAddress, ClamdAddressError } from '../../src/core/scan/clamd-address.js';

test('tcp forms', () => {
  assert.deepEqual(parseClamdAddress('tcp:127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310, text: 'tcp:127.0.0.1:3310' });
  assert.deepEqual(parseClamdAddress('localhost:3310'), { kind: 'tcp', host: 'localhost', port: 3310, text: 'tcp:localhost:3310' });
  assert.deepEqual(parseClamdAddress('tcp:[::1]:3310'), { kind: 'tcp', host: '::1', port: 3310, text: 'tcp:[::1]:3310' });
  assert.deepEqual(parseClamdAddress('[::1]:1'), { kind: 'tcp', host: '::1', port: 1, text: 'tcp:[::1]:1' });
  assert.deepEqual(parseClamdAddress(' tcp:clamd.example:65535 '), { kind: 'tcp', host: 'clamd.example', port: 65535, text: 'tcp:clamd.example:65535' });
});

test('unix forms', () => {
  assert.deepEqual(parseClamdAddress('unix:/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl', text: 'unix:/run/clamav/clamd.ctl' });
  assert.deepEqual(parseClamdAddress('/tmp/c.sock'), { kind: 'unix', path: '/tmp/c.sock', text: 'unix:/tmp/c.sock' });
});

test('bad inputs throw ClamdAddressError with a stable code', () => {
  const bad = [
    '', '   ', 'tcp:', 'tcp:host', 'host', 'tcp::3310', 'tcp:host:0', 'tcp:host:65536', 'tcp:host:33a0',
    'tcp:host:-1', '::1:3310', 'tcp:[::1]3310', 'tcp:[::1', 'tcp:[host]:1', 'unix:', 'unix:relative.sock',
    'unix:/' + 'x'.repeat(120), 'tcp:ho st:1', 'tcp:host:1\n', 'tcp:a\0b:1',
  ];
  for (const s of bad) {
    assert.throws(() => parseClamdAddress(s), (e: unknown) => {
      assert.ok(e instanceof ClamdAddressError, `${JSON.stringify(s)} should throw ClamdAddressError`);
      assert.equal(e.code, 'ERR_CLAMD_ADDRESS');
      assert.equal(e.input, s);
      assert.match(e.message, /bad clamd address/);
      return true;
    }, JSON.stringify(s));
  }
});
