/** clamd-reply.test.ts — the strict reply parser: only `stream: OK` is clean. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClamdReply } from '../../src/core/scan/clamd-client.js';

test('clean and infected', () => {
  assert.deepEqual(parseClamdReply('stream: OK\0'), { kind: 'clean' });
  assert.deepEqual(parseClamdReply('stream: OK\n'), { kind: 'clean' });
  assert.deepEqual(parseClamdReply('1: stream: OK'), { kind: 'clean' });
  assert.deepEqual(parseClamdReply('stream: Eicar-Test-Signature FOUND\0'), { kind: 'infected', name: 'Eicar-Test-Signature' });
  assert.deepEqual(parseClamdReply('stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND'), { kind: 'infected', name: 'Heuristics.Limits.Exceeded.MaxFileSize' });
  assert.deepEqual(parseClamdReply('stream: Win.Test.A B FOUND'), { kind: 'infected', name: 'Win.Test.A B' });
});

test('errors by kind', () => {
  const kind = (s: string) => {
    const r = parseClamdReply(s);
    return r.kind === 'error' ? r.errorKind : r.kind;
  };
  assert.equal(kind('INSTREAM size limit exceeded. ERROR\0'), 'scanner-size-limit');
  assert.equal(kind('stream: Can\'t allocate memory ERROR'), 'scanner-error');
  assert.equal(kind('Error processing command. ERROR'), 'scanner-error');
  assert.equal(kind('COMMAND READ TIMED OUT\n'), 'scanner-timeout');
  assert.equal(kind('UNKNOWN COMMAND'), 'scanner-protocol');
  assert.equal(kind(''), 'scanner-protocol');
  assert.equal(kind('\0'), 'scanner-protocol');
});

test('near misses are never clean', () => {
  const nearMisses = [
    'stream: OK.', 'stream: OKAY', 'stream:OK', 'stream:  OK', ' stream: OK', 'STREAM: OK', 'stream: ok', 'OK',
    'stream: OK ERROR', 'x: stream: OK', 'stream: FOUND', 'stream:  FOUND', 'stream: OK\0stream: X FOUND',
    'stream: a\x01b FOUND', 'PONG',
  ];
  for (const s of nearMisses) {
    const r = parseClamdReply(s);
    assert.notEqual(r.kind, 'clean', JSON.stringify(s));
  }
  assert.equal(parseClamdReply('stream: OK ERROR').kind, 'error');
  assert.equal(parseClamdReply('stream: FOUND').kind, 'error');
  assert.equal(parseClamdReply('stream: a\x01b FOUND').kind, 'error');
});

test('error detail is sanitised and capped', () => {
  const r = parseClamdReply('\x1b[31m' + 'A'.repeat(1000) + ' ERROR');
  assert.equal(r.kind, 'error');
  assert.ok(r.kind === 'error' && r.detail !== undefined);
  if (r.kind === 'error') {
    assert.ok(r.detail!.length <= 201, `detail length ${r.detail!.length}`);
    assert.doesNotMatch(r.detail!, /\x1b/);
  }
});
