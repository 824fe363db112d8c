/**
 * config-units.test.ts — durations, sizes and address syntaxes used by the config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { formatSize, parseSize } from '../../src/config/size.js';
import { parseClamdEndpoint, parseHostPort, parseMetricsListen, parseMilterSocket, parseProxyAddress } from '../../src/config/address.js';

test('parseDuration', () => {
  const ok: [unknown, number][] = [['250ms', 250], ['90s', 90_000], ['5m', 300_000], ['1h', 3_600_000], ['2d', 172_800_000], ['1.5s', 1500], [' 3s ', 3000], ['0', 0], [0, 0]];
  for (const [v, ms] of ok) assert.equal(parseDuration(v), ms, String(v));
  for (const bad of ['90', 90, '-1s', '1 week', 's', '', '1e3s', null, true, '5M']) assert.throws(() => parseDuration(bad), RangeError, String(bad));
});

test('formatDuration picks the largest exact unit and round-trips', () => {
  assert.equal(formatDuration(90_000), '90s');
  assert.equal(formatDuration(300_000), '5m');
  assert.equal(formatDuration(1500), '1500ms');
  assert.equal(formatDuration(86_400_000), '1d');
  assert.equal(formatDuration(0), '0s');
  for (const ms of [1, 999, 1000, 61_000, 7_200_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
});

test('parseSize: binary k/KiB, decimal KB, bare bytes', () => {
  const ok: [unknown, number][] = [
    ['64k', 65_536], ['64K', 65_536], ['64KiB', 65_536], ['25MiB', 26_214_400], ['25M', 26_214_400], ['1GiB', 1_073_741_824],
    ['10MB', 10_000_000], ['1kb', 1000], ['512B', 512], ['1.5KiB', 1536], [1024, 1024], ['2048', 2048], [0, 0],
  ];
  for (const [v, n] of ok) assert.equal(parseSize(v), n, String(v));
  for (const bad of ['-1', -1, '1.5', 1.5, '10 parsecs', 'MiB', '', '1PiB', true, '0.1B', 2 ** 60]) assert.throws(() => parseSize(bad), RangeError, String(bad));
});

test('formatSize round-trips', () => {
  assert.equal(formatSize(65_536), '64KiB');
  assert.equal(formatSize(26_214_400), '25MiB');
  assert.equal(formatSize(1000), '1000');
  assert.equal(formatSize(0), '0');
  for (const n of [1, 1023, 1024, 1536, 3 * 1024 ** 3, 5 * 1024 ** 4]) assert.equal(parseSize(formatSize(n)), n);
});

test('parseHostPort', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:10025'), { host: '127.0.0.1', port: 10025 });
  assert.deepEqual(parseHostPort('[::1]:25'), { host: '::1', port: 25 });
  assert.deepEqual(parseHostPort('midstream-proxy:10025'), { host: 'midstream-proxy', port: 10025 });
  assert.deepEqual(parseHostPort('127.0.0.1:0', true), { host: '127.0.0.1', port: 0 });
  for (const bad of ['127.0.0.1', ':25', '::1:25', '127.0.0.1:0', '127.0.0.1:65536', '300.1.1.1:25', 'a b:25', '[::1:25', '[10.0.0.1]:25']) {
    assert.throws(() => parseHostPort(bad), RangeError, bad);
  }
});

test('parseProxyAddress: host:port or unix:/path', () => {
  assert.deepEqual(parseProxyAddress('unix:/run/midstream/proxy.sock'), { path: '/run/midstream/proxy.sock' });
  assert.deepEqual(parseProxyAddress('127.0.0.1:10026'), { host: '127.0.0.1', port: 10026 });
  assert.throws(() => parseProxyAddress('unix:proxy.sock'), RangeError);
  assert.throws(() => parseProxyAddress('127.0.0.1:0'), RangeError);
});

test('parseMetricsListen: off, loopback by default, explicit', () => {
  assert.equal(parseMetricsListen(''), null);
  assert.deepEqual(parseMetricsListen('9357'), { host: '127.0.0.1', port: 9357 });
  assert.deepEqual(parseMetricsListen(':9357'), { host: '127.0.0.1', port: 9357 });
  assert.deepEqual(parseMetricsListen('0.0.0.0:9357'), { host: '0.0.0.0', port: 9357 });
  assert.throws(() => parseMetricsListen('x'), RangeError);
});

test('parseMilterSocket', () => {
  assert.deepEqual(parseMilterSocket('inet:7357@127.0.0.1'), { kind: 'inet', host: '127.0.0.1', port: 7357 });
  assert.deepEqual(parseMilterSocket('inet:7357@localhost'), { kind: 'inet', host: 'localhost', port: 7357 });
  assert.deepEqual(parseMilterSocket('inet:7357'), { kind: 'inet', host: '127.0.0.1', port: 7357 });
  assert.deepEqual(parseMilterSocket('inet6:7357@::1'), { kind: 'inet', host: '::1', port: 7357 });
  assert.deepEqual(parseMilterSocket('unix:/run/midstream/milter.sock'), { kind: 'unix', path: '/run/midstream/milter.sock' });
  assert.deepEqual(parseMilterSocket('local:/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
  for (const bad of ['tcp:7357', 'inet:@127.0.0.1', 'inet6:7357@127.0.0.1', 'unix:relative.sock', 'inet:70000@127.0.0.1', 'unix:/' + 'x'.repeat(120)]) {
    assert.throws(() => parseMilterSocket(bad), RangeError, bad);
  }
});

test('parseClamdEndpoint', () => {
  assert.deepEqual(parseClamdEndpoint('tcp:127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
  assert.deepEqual(parseClamdEndpoint('tcp:clamd:3310'), { kind: 'tcp', host: 'clamd', port: 3310 });
  assert.deepEqual(parseClamdEndpoint('unix:/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
  for (const bad of ['127.0.0.1:3310', 'tcp:127.0.0.1', 'unix:clamd.ctl', 'udp:1.2.3.4:3310']) assert.throws(() => parseClamdEndpoint(bad), RangeError, bad);
});
