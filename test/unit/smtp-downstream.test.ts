/**
 * smtp-downstream.test.ts — dot-stuffing (round trip through our own decoder, chunk
 * invariance), reply parsing (multi-line, splits, control characters, garbage),
 * queue-id extraction, endpoint parsing, path parsing and xtext decoding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DotStuffer } from '../../src/smtp/downstream-client.js';
import { DataDecoder } from '../../src/smtp/smtp-reader.js';
import { ReplyParser, formatReply, queueIdOf, MAX_REPLY_LINES } from '../../src/smtp/smtp-reply.js';
import { parsePath, xtextDecode } from '../../src/smtp/proxy-session.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function stuffAll(content: Buffer, cuts: number[]): Buffer {
  const s = new DotStuffer();
  const pts = [0, ...cuts.filter((x) => x > 0 && x < content.length).sort((x, y) => x - y), content.length];
  const out: Uint8Array[] = [];
  for (let k = 0; k + 1 < pts.length; k++) out.push(...s.stuff(content.subarray(pts[k], pts[k + 1])));
  out.push(s.terminator());
  return Buffer.concat(out);
}

test('DotStuffer: leading dots doubled, terminator appended', () => {
  assert.equal(stuffAll(b('.a\r\nb.\r\n..\r\n.\r\n'), []).toString('latin1'), '..a\r\nb.\r\n...\r\n..\r\n.\r\n');
  assert.equal(stuffAll(b(''), []).toString('latin1'), '.\r\n');
  // Content not ending in CRLF still gets a well-formed terminator.
  assert.equal(stuffAll(b('x'), []).toString('latin1'), 'x\r\n.\r\n');
});

const arbLines = fc
  .array(fc.array(fc.constantFrom('.', 'a', ' ', '..', 'Z'), { maxLength: 6 }).map((a) => a.join('') + '\r\n'), { maxLength: 12 })
  .map((a) => a.join(''));

test('property: stuff → our decoder gives the content back, for any split', () => {
  fc.assert(
    fc.property(arbLines, fc.array(fc.nat(100), { maxLength: 6 }), (content, cuts) => {
      const wire = stuffAll(b(content), cuts);
      const dec = new DataDecoder();
      const r = dec.decode(wire);
      assert.equal(r.done, true);
      assert.equal(r.consumed, wire.length, 'terminator exactly at the end');
      assert.equal(Buffer.concat(r.out).toString('latin1'), content);
      assert.deepEqual(stuffAll(b(content), []), wire, 'split-invariant');
    }),
    { numRuns: 1000 },
  );
});

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
