/** decode-qp.test.ts — known vectors and tolerance of the streaming quoted-printable decoder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QpDecoder } from '../../src/core/decode/qp-decoder.js';

function dec(input: string, chunk = 0): string {
  const bytes = Buffer.from(input, 'latin1');
  const d = new QpDecoder();
  const out: Buffer[] = [];
  const push = (b: Uint8Array) => out.push(Buffer.from(b));
  if (chunk > 0) for (let i = 0; i < bytes.length; i += chunk) d.write(bytes.subarray(i, i + chunk), push);
  else d.write(bytes, push);
  d.end(push);
  return Buffer.concat(out).toString('latin1');
}

const cases: [string, string, string][] = [
  ['plain', 'Hello, world!\r\n', 'Hello, world!\r\n'],
  ['hex escapes', 'a=3Db=3db=E9', 'a=b=b\xe9'],
  ['soft break CRLF', 'long=\r\nline', 'longline'],
  ['soft break LF', 'long=\nline', 'longline'],
  ['soft break with transport padding', 'long=  \t\r\nline', 'longline'],
  ['malformed escape passes literally', 'x=ZZy', 'x=ZZy'],
  ['half a hex pair', 'x=Ay', 'x=Ay'],
  ['= before CR not LF', 'x=\ry', 'x=\ry'],
  ['= at end of data', 'end=', 'end='],
  ['=X at end of data', 'end=4', 'end=4'],
  ['trailing whitespace on hard breaks is kept', 'a  \r\nb', 'a  \r\nb'],
  ['dense escapes', '=00=01=FF=fe', '\x00\x01\xff\xfe'],
  ['long run then escape', 'x'.repeat(100) + '=41', 'x'.repeat(100) + 'A'],
];

for (const [name, input, expected] of cases) {
  test(`qp: ${name}`, () => {
    assert.equal(dec(input), expected);
    assert.equal(dec(input, 1), expected, 'byte by byte');
    assert.equal(dec(input, 2), expected, 'two bytes at a time');
  });
}

test('qp: padding longer than the carry bound is literal, not buffered forever', () => {
  const input = 'a=' + ' '.repeat(100) + '\r\nb';
  assert.equal(dec(input), input);
  assert.equal(dec(input, 1), input);
});
