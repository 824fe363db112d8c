/**
 * Raw offsets reported by the MIME splitter (and, through the session, by the release
 * gate's structure events): where header blocks and bodies begin, where part data ends,
 * which delimiters are open — exact positions in the raw input, whatever the chunking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeSplitter } from '../../src/core/mime/mime-splitter.js';
import type { MimeHandler, PartInfo } from '../../src/core/mime/mime-events.js';
import { DEFAULT_LIMITS, createEngine, type StructureEvent } from '../../src/core/index.js';

const MSG = [
  'From: a@example.com\r\n',
  'Content-Type: multipart/mixed; boundary="outer"\r\n',
  '\r\n',
  'preamble text\r\n',
  '--outer\r\n',
  'Content-Type: text/plain\r\n',
  '\r\n',
  'first body\r\n',
  '--outer  \r\n', // transport padding after the delimiter
  'Content-Type: multipart/alternative; boundary="in"\r\n',
  '\r\n',
  '--in\r\n',
  'Content-Type: text/html\r\n',
  '\r\n',
  '<p>x</p>\r\n',
  '--in--\r\n',
  'inner epilogue\r\n',
  '--outer--\r\n',
  'outer epilogue\r\n',
].join('');

type Ev = [string, string, number, string?];

function trace(msg: Buffer, sizes: number[]): Ev[] {
  const out: Ev[] = [];
  let sp: MimeSplitter;
  const h: MimeHandler = {
    onBlock: (kind, path, encoding) => out.push([kind, path, sp.offset, `${encoding}|${sp.delimiters.join(',')}`]),
    onPartStart: (p: PartInfo) => out.push(['start', p.path, sp.offset]),
    onPartData: () => {
      // data offsets depend on chunking; only their last value per part is compared (at end)
    },
    onPartEnd: () => out.push(['end', '', sp.offset]),
    onLimit: () => {},
  };
  sp = new MimeSplitter(h, DEFAULT_LIMITS);
  let i = 0;
  let k = 0;
  while (i < msg.length) {
    const n = sizes[k++ % sizes.length]!;
    sp.write(msg.subarray(i, i + n));
    i += n;
  }
  sp.end();
  return out;
}

test('header and body starts, part ends and open delimiters sit at their raw offsets', () => {
  const msg = Buffer.from(MSG, 'latin1');
  const at = (s: string, after = 0) => MSG.indexOf(s, after);
  const ev = trace(msg, [msg.length]);
  const expected: Ev[] = [
    ['body', '(preamble)', at('preamble text'), '|--outer'],
    ['start', '(preamble)', at('preamble text')],
    ['end', '', at('\r\n--outer\r\n')],
    ['header', '1', at('Content-Type: text/plain'), '|--outer'],
    ['body', '1', at('first body'), '|--outer'],
    ['start', '1', at('first body')],
    ['end', '', at('\r\n--outer  ')],
    ['header', '2', at('Content-Type: multipart/alternative'), '|--outer'],
    ['body', '2/(preamble)', at('--in\r\n'), '|--outer,--in'],
    ['header', '2.1', at('Content-Type: text/html'), '|--outer,--in'],
    ['body', '2.1', at('<p>x</p>'), '|--outer,--in'],
    ['start', '2.1', at('<p>x</p>')],
    ['end', '', at('\r\n--in--')],
    ['body', '2/(epilogue)', at('inner epilogue'), '|--outer'],
    ['start', '2/(epilogue)', at('inner epilogue')],
    ['end', '', at('\r\n--outer--')],
    ['body', '(epilogue)', at('outer epilogue'), '|'],
    ['start', '(epilogue)', at('outer epilogue')],
    ['end', '', msg.length],
  ];
  assert.deepEqual(ev, expected);
});

test('the offsets do not depend on chunking', () => {
  const msg = Buffer.from(MSG, 'latin1');
  const whole = trace(msg, [msg.length]);
  for (const sizes of [[1], [2], [3], [7], [5, 1, 13], [64]]) assert.deepEqual(trace(msg, sizes), whole, `sizes ${sizes}`);
});

test('part data slices end at their raw offsets', () => {
  const msg = Buffer.from(MSG, 'latin1');
  for (const sizes of [[1], [4], [msg.length]]) {
    let sp: MimeSplitter;
    const seen: string[] = [];
    sp = new MimeSplitter(
      {
        onPartStart: () => {},
        onPartData: (c) => {
          // a slice [offset - len, offset) of the raw input holds exactly these bytes
          assert.equal(Buffer.from(c).toString('latin1'), MSG.slice(sp.offset - c.length, sp.offset));
          seen.push(Buffer.from(c).toString('latin1'));
        },
        onPartEnd: () => {},
        onLimit: () => {},
      },
      DEFAULT_LIMITS,
    );
    for (let i = 0; i < msg.length; i += sizes[0]!) sp.write(msg.subarray(i, i + sizes[0]!));
    sp.end();
    assert.ok(seen.join('').includes('first body'));
  }
});

test('header blocks that end without a blank line, and replays, keep exact offsets', () => {
  // "missing header separator": the non-header line starts the body
  const m1 = 'Subject: x\r\nthis is not a header\r\nmore\r\n';
  const ev = trace(Buffer.from(m1, 'latin1'), [3]);
  assert.deepEqual(ev[0], ['body', '1', m1.indexOf('this is'), '|']);
  // a header-bytes overflow: the body begins where the limit cut
  let sp: MimeSplitter;
  const limits = { ...DEFAULT_LIMITS, headerBytes: 1024 };
  const m2 = 'Subject: ' + 'y'.repeat(2000) + '\r\n\r\nbody\r\n';
  const got: Ev[] = [];
  sp = new MimeSplitter(
    {
      onBlock: (k, p) => got.push([k, p, sp.offset]),
      onPartStart: () => {},
      onPartData: (c) => assert.equal(Buffer.from(c).toString('latin1'), m2.slice(sp.offset - c.length, sp.offset)),
      onPartEnd: () => {},
      onLimit: () => {},
    },
    limits,
  );
  for (let i = 0; i < m2.length; i += 100) sp.write(Buffer.from(m2.slice(i, i + 100), 'latin1'));
  sp.end();
  assert.deepEqual(got[0], ['body', '1', 0]);
});

test('the session reports structure in raw offsets, through attached messages that are not encoded', async () => {
  const inner = 'Subject: inner\r\nContent-Type: multipart/mixed; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b2--\r\n';
  const msg =
    'Subject: outer\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n' +
    inner +
    '\r\n--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    Buffer.from(inner).toString('base64') +
    '\r\n--b1--\r\n';
  const engine = await createEngine();
  for (const size of [1, 9, msg.length]) {
    const s = engine.begin();
    const ev: StructureEvent[] = [];
    s.gate.onStructure((e) => ev.push(e));
    for (let i = 0; i < msg.length; i += size) await s.push(Buffer.from(msg.slice(i, i + size), 'latin1'));
    assert.equal((await s.end()).kind, 'clean');
    const show = ev.map((e) => `${e.kind} ${e.path} ${e.offset} ${e.delimiters.join(',')}`);
    const innerAt = msg.indexOf('Subject: inner');
    assert.deepEqual(show, [
      `body (preamble) ${msg.indexOf('--b1')} --b1`,
      `header 1 ${msg.indexOf('Content-Type: message/rfc822')} --b1`,
      `body 1 ${innerAt} --b1`,
      // inside the attached message: its own structure, at raw offsets, outer delimiters first
      `body 1/(preamble) ${msg.indexOf('--b2', innerAt)} --b1,--b2`,
      `header 1.1 ${msg.indexOf('Content-Type: text/plain', innerAt)} --b1,--b2`,
      `body 1.1 ${msg.indexOf('hi\r\n', innerAt)} --b1,--b2`,
      `body 1/(epilogue) ${msg.indexOf('--b2--', innerAt) + 8} --b1`,
      `header 2 ${msg.indexOf('Content-Type: message/rfc822\r\nContent-Transfer-Encoding')} --b1`,
      // the base64-encoded one is a body; its inside is not visible in the raw bytes
      `body 2 ${msg.indexOf('U3Vi')} --b1`,
      `body (epilogue) ${msg.length} `,
    ]);
  }
});
