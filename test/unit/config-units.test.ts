/**
 * config-units.test.ts — durations, sizes and address syntaxes used by the config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { formatSize, parseSize } from '../../src/config/size.js';

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
