/**
 * smtp-downstream.test.ts — reply parsing (multi-line, splits, control characters, garbage),
 * queue-id extraction, path parsing and xtext decoding. (What goes downstream as DATA is
 * SmtpReader's wire, tested in smtp-reader.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyParser, formatReply, queueIdOf, MAX_REPLY_LINES } from '../../src/smtp/smtp-reply.js';
import { parsePath, xtextDecode } from '../../src/smtp/proxy-session.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('ReplyParser: multi-line reply split anywhere is one reply with verbatim lines', () => {
  const wire = b('250-mx.example\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR\r\n354 go\r\n');
  for (let cut = 0; cut <= wire.length; cut++) {
    const p = new ReplyParser();
    const r1 = p.feed(wire.subarray(0, cut));
    const r2 = p.feed(wire.subarray(cut));
    const all = [...r1.replies, ...r2.replies];
    assert.equal(all.length, 2, `cut ${cut}`);
    assert.deepEqual(all[0], { code: 250, lines: ['250-mx.example', '250-PIPELINING', '250 XFORWARD NAME ADDR'] });
    assert.equal(all[1].code, 354);
    assert.equal(formatReply(all[0]), '250-mx.example\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR\r\n');
  }
});

test('ReplyParser: control characters become "?", bare LF line ends accepted', () => {
  const p = new ReplyParser();
  const { replies } = p.feed(b('550 5.1.1 bad\x00\x1b[31m\n'));
  assert.deepEqual(replies[0].lines, ['550 5.1.1 bad??[31m']);
});

test('ReplyParser: garbage and endless multi-line replies are errors', () => {
  assert.match(new ReplyParser().feed(b('HTTP/1.1 400 Bad\r\n')).error ?? '', /bad reply line/);
  const many = Array.from({ length: MAX_REPLY_LINES + 1 }, () => '250-x\r\n').join('');
  assert.match(new ReplyParser().feed(b(many)).error ?? '', /too many lines/);
});

test('queueIdOf: Postfix final reply', () => {
  const p = new ReplyParser();
  const { replies } = p.feed(b('250 2.0.0 Ok: queued as 4XyZ12abC\r\n'));
  assert.equal(queueIdOf(replies[0]), '4XyZ12abC');
  assert.equal(queueIdOf({ code: 250, lines: ['250 2.0.0 Ok'] }), undefined);
});

test('parsePath: addresses, params, source routes, quoted ">"', () => {
  assert.deepEqual(parsePath('<a@b> SIZE=10 BODY=8BITMIME'), { address: 'a@b', params: 'SIZE=10 BODY=8BITMIME' });
  assert.deepEqual(parsePath(' <>'), { address: '', params: '' });
  assert.deepEqual(parsePath('<@r1,@r2:u@d>'), { address: 'u@d', params: '' });
  assert.deepEqual(parsePath('<"a>b"@d>'), { address: '"a>b"@d', params: '' });
  assert.deepEqual(parsePath('bare@x NOTIFY=NEVER'), { address: 'bare@x', params: 'NOTIFY=NEVER' });
  assert.equal(parsePath('<unterminated'), null);
  assert.equal(parsePath('<a@b>junk'), null);
});

test('xtextDecode', () => {
  assert.equal(xtextDecode('IPV6:2001+3Adb8'), 'IPV6:2001:db8');
  assert.equal(xtextDecode('a+2Bb+zz'), 'a+b+zz');
});
