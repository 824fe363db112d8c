/** decode-base64.test.ts — known vectors and tolerance of the streaming base64 decoder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Base64Decoder } from '../../src/core/decode/base64-decoder.js';
import { createDecoder } from '../../src/core/decode/index.js';

function dec(input: string | Uint8Array, chunk = 0): Buffer {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const d = new Base64Decoder();
  const out: Buffer[] = [];
  const push = (b: Uint8Array) => out.push(Buffer.from(b));
  if (chunk > 0) for (let i = 0; i < bytes.length; i += chunk) d.write(bytes.subarray(i, i + chunk), push);
  else d.write(bytes, push);
  d.end(push);
  return Buffer.concat(out);
}

test('RFC 4648 vectors, with and without padding', () => {
  const v: [string, string][] = [['', ''], ['Zg==', 'f'], ['Zm8=', 'fo'], ['Zm9v', 'foo'], ['Zm9vYg==', 'foob'], ['Zm9vYmE=', 'fooba'], ['Zm9vYmFy', 'foobar']];
  for (const [enc, plain] of v) {
    assert.equal(dec(enc).toString('latin1'), plain, enc);
    assert.equal(dec(enc.replace(/=/g, '')).toString('latin1'), plain, `${enc} unpadded`);
    assert.equal(dec(enc, 1).toString('latin1'), plain, `${enc} byte by byte`);
  }
});

test('whitespace, line breaks and junk characters are skipped', () => {
  assert.equal(dec('Zm9v\r\nYmFy\r\n').toString(), 'foobar');
  assert.equal(dec(' Z m\t9 v\nY!m*F-y_ ').toString(), 'foobar');
  assert.equal(dec('Zm9v\x00\xffYmFy').toString(), 'foobar');
});

test('`=` ends a quantum and decoding continues after it', () => {
  assert.equal(dec('QQ==QkI=').toString(), 'ABB');
  assert.equal(dec('QUI=QUJD').toString(), 'ABABC');
  assert.equal(dec('Q=UJD').toString('hex'), Buffer.from('UJD', 'base64').toString('hex'), 'a lone sextet before = is dropped');
  assert.equal(dec('==Zm9v').toString(), 'foo');
});

test('a dangling single sextet at the end is dropped', () => {
  assert.equal(dec('Zm9vY').toString(), 'foo');
});

test('long lines and random data round-trip, any chunking', () => {
  const raw = randomBytes(100_003);
  const oneLine = Buffer.from(raw.toString('base64'));
  const wrapped = Buffer.from(raw.toString('base64').replace(/.{76}/g, '$&\r\n'));
  assert.ok(dec(oneLine).equals(raw));
  assert.ok(dec(wrapped, 77).equals(raw));
  assert.ok(dec(wrapped, 4096).equals(raw));
});

test('a large wrapped base64 body decodes completely in 64 KiB chunks', () => {
  const raw = randomBytes(8 * 1024 * 1024);
  const wrapped = Buffer.from(raw.toString('base64').replace(/.{76}/g, '$&\r\n'));
  for (let r = 0; r < 1; r++) {
    const d = new Base64Decoder();
    let n = 0;
    for (let i = 0; i < wrapped.length; i += 65536) d.write(wrapped.subarray(i, i + 65536), (b) => void (n += b.length));
    d.end((b) => void (n += b.length));
    assert.equal(n, raw.length);
  }
});

test('createDecoder: base64 / quoted-printable case-insensitive, identity otherwise', () => {
  const run = (cte: string, s: string) => {
    const d = createDecoder(cte);
    const out: Buffer[] = [];
    d.write(Buffer.from(s), (b) => out.push(Buffer.from(b)));
    d.end((b) => out.push(Buffer.from(b)));
    return Buffer.concat(out).toString('latin1');
  };
  assert.equal(run('BASE64', 'Zm9v'), 'foo');
  assert.equal(run(' Quoted-Printable ', 'a=3Db'), 'a=b');
  for (const cte of ['7bit', '8bit', 'binary', '', 'x-uuencode', 'x-unknown']) assert.equal(run(cte, 'Zm9v=3D'), 'Zm9v=3D', cte);
});

test('`=` inside a quantum: the decoder reports the skip-`=` reading once, with the rest of the write', () => {
  const enc = Buffer.from('QUJDREVG', 'latin1'); // "ABCDEF"
  const input = Buffer.concat([enc.subarray(0, 2), Buffer.from('='), enc.subarray(2)]); // QU=JDREVG
  for (const size of [input.length, 1, 2, 3]) {
    const d = new Base64Decoder();
    const main: Buffer[] = [];
    const alt: Buffer[] = [];
    let calls = 0;
    let drop = -1;
    let altDec: Base64Decoder | null = null;
    d.onDiverge = (a, rest, dropTail) => {
      calls++;
      drop = dropTail;
      altDec = a;
      a.write(rest, (b) => alt.push(Buffer.from(b)));
    };
    for (let i = 0; i < input.length; i += size) {
      const c = input.subarray(i, i + size);
      const had = altDec as Base64Decoder | null;
      d.write(c, (b) => main.push(Buffer.from(b)));
      if (had) had.write(c, (b) => alt.push(Buffer.from(b)));
    }
    d.end((b) => main.push(Buffer.from(b)));
    (altDec as Base64Decoder | null)?.end((b) => alt.push(Buffer.from(b)));
    assert.equal(calls, 1, `size ${size}`);
    assert.equal(drop, 1, 'the reset reading flushed one byte for "QU="');
    assert.equal(Buffer.concat(main).toString('latin1').slice(0, 1), 'A', 'the reset reading flushes "QU=" as A');
    // the skip reading starts in the state before the `=`: it re-emits that byte itself, so
    // its file is the common prefix minus dropTail bytes, then its own output
    assert.equal(Buffer.concat(alt).toString('latin1'), 'ABCDEF', `size ${size}`);
  }
  // padding at the end and whole quanta before `=` never diverge
  for (const s of ['QUJD', 'QUI=', 'QQ==', 'QUJD====QUJD']) {
    const d = new Base64Decoder();
    let calls = 0;
    d.onDiverge = () => calls++;
    d.write(Buffer.from(s), () => {});
    d.end(() => {});
    assert.equal(calls, 0, s);
  }
});
