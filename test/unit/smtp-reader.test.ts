/**
 * smtp-reader.test.ts — DATA decoder and SmtpReader: dot handling, end-of-data detection,
 * bare CR/LF normalisation, command lines, and chunk-split invariance (whole, 1-byte,
 * random splits) against a whole-buffer reference model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataDecoder, DataState, SmtpReader } from '../../src/smtp/smtp-reader.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function decodeAll(input: string, splits: number[] = []): { out: string; consumed: number; done: boolean; dec: DataDecoder } {
  const dec = new DataDecoder();
  const buf = b(input);
  const cuts = [0, ...splits.filter((x) => x > 0 && x < buf.length).sort((x, y) => x - y), buf.length];
  const out: Buffer[] = [];
  let consumed = 0;
  let done = false;
  for (let k = 0; k + 1 < cuts.length && !done; k++) {
    const r = dec.decode(buf.subarray(cuts[k], cuts[k + 1]));
    for (const o of r.out) out.push(Buffer.from(o));
    consumed += r.consumed;
    done = r.done;
  }
  return { out: Buffer.concat(out).toString('latin1'), consumed, done, dec };
}

/** Reference model: the same rules, written over the whole buffer with lookahead. */
function reference(input: string): { out: string; consumed: number; done: boolean } {
  let out = '';
  let pos = 0;
  let strictLineStart = true;
  while (pos < input.length) {
    if (strictLineStart && input[pos] === '.') {
      if (input.startsWith('.\r\n', pos)) return { out, consumed: pos + 3, done: true };
      pos++;
      strictLineStart = false;
      continue;
    }
    const c = input[pos];
    if (c === '\r' && input[pos + 1] === '\n') {
      out += '\r\n';
      pos += 2;
      strictLineStart = true;
    } else if (c === '\r') {
      out += ' ';
      pos++;
      strictLineStart = false;
    } else if (c === '\n') {
      out += '\r\n';
      pos++;
      strictLineStart = false;
    } else {
      out += c;
      pos++;
      strictLineStart = false;
    }
  }
  return { out, consumed: pos, done: false };
}

test('plain message: content ends with its CRLF, terminator consumed', () => {
  const r = decodeAll('Subject: x\r\n\r\nbody\r\n.\r\n');
  assert.equal(r.out, 'Subject: x\r\n\r\nbody\r\n');
  assert.equal(r.done, true);
  assert.equal(r.consumed, 'Subject: x\r\n\r\nbody\r\n.\r\n'.length);
  assert.equal(r.dec.state, DataState.Done);
});

test('empty message: ". CRLF" as the first line ends DATA', () => {
  const r = decodeAll('.\r\nQUIT\r\n');
  assert.equal(r.out, '');
  assert.equal(r.done, true);
  assert.equal(r.consumed, 3);
});

test('dot-stuffed lines lose exactly one leading dot', () => {
  const r = decodeAll('..\r\n..hidden\r\n...\r\nmid.dle\r\n.x\r\n.\r\n');
  assert.equal(r.out, '.\r\n.hidden\r\n..\r\nmid.dle\r\nx\r\n');
  assert.equal(r.done, true);
});

test('first line ".." is content, not a terminator', () => {
  const r = decodeAll('..\r\n.\r\n');
  assert.equal(r.out, '.\r\n');
  assert.equal(r.done, true);
});

test('bare LF becomes CRLF and the next line cannot end DATA (smuggling)', () => {
  const input = 'a\r\nb\n.\r\nMAIL FROM:<evil@x>\r\n.\r\n';
  const r = decodeAll(input);
  assert.equal(r.out, 'a\r\nb\r\n.\r\nMAIL FROM:<evil@x>\r\n');
  assert.equal(r.done, true);
  assert.equal(r.consumed, input.length);
  assert.equal(r.dec.bareLf, 1);
});

test('"CRLF . LF" is not end of data', () => {
  const input = 'a\r\n.\nRCPT TO:<x>\r\n.\r\n';
  const r = decodeAll(input);
  assert.equal(r.done, true);
  assert.equal(r.consumed, input.length);
  assert.equal(r.out, 'a\r\n\r\nRCPT TO:<x>\r\n');
});

test('bare CR becomes a space, also after a line-start dot', () => {
  const r = decodeAll('a\rb\r\n.\rX\r\n\r\r\n.\r\n');
  assert.equal(r.out, 'a b\r\n X\r\n \r\n');
  assert.equal(r.dec.bareCr, 3);
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(r.out), 'no bare CR/LF in output');
});

test('incomplete input keeps only state, emits everything safe so far', () => {
  const dec = new DataDecoder();
  const r1 = dec.decode(b('abc\r'));
  assert.equal(Buffer.concat(r1.out).toString('latin1'), 'abc');
  assert.equal(dec.state, DataState.Cr);
  const r2 = dec.decode(b('\n.'));
  assert.equal(Buffer.concat(r2.out).toString('latin1'), '\r\n');
  assert.equal(dec.state, DataState.Dot);
  const r3 = dec.decode(b('\r\n'));
  assert.equal(r3.done, true);
  assert.equal(dec.bytes, 5);
});

const ALPHABET = ['.', '\r', '\n', 'a', 'Z', ' ', '\r\n', '\r\n.', '.\r\n', '\r\n.\r\n', '..'];
const arbInput = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 40 }).map((a) => a.join(''));

test('property: decoder equals the reference model, for any split', () => {
  fc.assert(
    fc.property(arbInput, fc.array(fc.nat(200), { maxLength: 8 }), (body, splits) => {
      const input = body + '\r\n.\r\ntrailing';
      const want = reference(input);
      const got = decodeAll(input, splits);
      assert.equal(got.out, want.out);
      assert.equal(got.consumed, want.consumed);
      assert.equal(got.done, want.done);
      assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(got.out), 'no bare CR/LF in output');
    }),
    { numRuns: 2000 },
  );
});

test('property: byte-by-byte split gives the same result as whole', () => {
  fc.assert(
    fc.property(arbInput, (body) => {
      const input = body + '\r\n.\r\n';
      const whole = decodeAll(input);
      const every = decodeAll(input, Array.from({ length: input.length }, (_, i) => i));
      assert.deepEqual([every.out, every.consumed, every.done], [whole.out, whole.consumed, whole.done]);
    }),
    { numRuns: 500 },
  );
});

/** Drive SmtpReader like the proxy does; returns a readable trace. */
function readerTrace(input: Buffer, cuts: number[], maxLineBytes = 64): string[] {
  const r = new SmtpReader({ maxLineBytes });
  const trace: string[] = [];
  const points = [0, ...cuts.filter((x) => x > 0 && x < input.length).sort((x, y) => x - y), input.length];
  let data = '';
  const flushData = () => {
    if (data) trace.push('D:' + data);
    data = '';
  };
  for (let k = 0; k + 1 < points.length; k++) {
    r.push(input.subarray(points[k], points[k + 1]));
    for (let ev = r.next(); ev; ev = r.next()) {
      if (ev.type === 'data') {
        data += Buffer.from(ev.chunk).toString('latin1');
        continue;
      }
      flushData();
      if (ev.type === 'command') {
        const line = ev.line.toString('latin1');
        trace.push('C:' + line);
        if (line === 'DATA') r.startData();
      } else trace.push(ev.type);
    }
  }
  flushData();
  return trace;
}

const SESSION = b(
  'EHLO x\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\r\nDATA\r\n' +
    'Subject: t\r\n\r\n..dot\r\nbare\nlf\r\n.\nnot-end\r\nx\ry\r\n.\r\n' +
    'NOOP ' + 'z'.repeat(100) + '\r\nRSET\r\nDATA\r\n.\r\nQUIT\r\n',
);

test('SmtpReader: commands, data, data-end, over-long line, pipelined tail', () => {
  assert.deepEqual(readerTrace(SESSION, []), [
    'C:EHLO x',
    'C:MAIL FROM:<a@b>',
    'C:RCPT TO:<c@d>',
    'C:DATA',
    'D:Subject: t\r\n\r\n.dot\r\nbare\r\nlf\r\n\r\nnot-end\r\nx y\r\n',
    'data-end',
    'command-too-long',
    'C:RSET',
    'C:DATA',
    'data-end',
    'C:QUIT',
  ]);
});

test('SmtpReader: identical trace for 1-byte and random splits', () => {
  const whole = readerTrace(SESSION, []);
  assert.deepEqual(readerTrace(SESSION, Array.from({ length: SESSION.length }, (_, i) => i)), whole);
  fc.assert(
    fc.property(fc.array(fc.nat(SESSION.length), { maxLength: 30 }), (cuts) => {
      assert.deepEqual(readerTrace(SESSION, cuts), whole);
    }),
    { numRuns: 500 },
  );
});

test('SmtpReader: push before the chunk is consumed is a bug and throws', () => {
  const r = new SmtpReader();
  r.push(b('NOOP\r\nNOOP\r\n'));
  assert.equal(r.next()?.type, 'command');
  assert.throws(() => r.push(b('x')));
});

test('SmtpReader: a command line split across many chunks is bounded by maxLineBytes', () => {
  const r = new SmtpReader({ maxLineBytes: 10 });
  for (const piece of ['0123', '4567', '89AB', 'CDEF']) {
    r.push(b(piece));
    assert.equal(r.next(), null);
  }
  assert.ok(r.buffered <= 11, `carry stays bounded (${r.buffered})`);
  r.push(b('\r\nNOOP\r\n'));
  assert.deepEqual(r.next(), { type: 'command-too-long' });
  const ev = r.next();
  assert.equal(ev?.type, 'command');
  assert.equal(ev?.type === 'command' && ev.line.toString(), 'NOOP');
});
