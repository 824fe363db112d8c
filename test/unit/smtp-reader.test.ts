/**
 * smtp-reader.test.ts — DATA decoder and SmtpReader: the wire (forwarded as received) and
 * the view (what the downstream will deliver), dot handling, end-of-data detection, bare
 * CR/LF, command lines, and chunk-split invariance (whole, 1-byte, random splits) against a
 * whole-buffer reference model and against a model of how Postfix's smtpd reads the wire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataDecoder, DataState, SmtpReader } from '../../src/smtp/smtp-reader.js';
import { postfixReadData } from '../helpers/postfix-read.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function decodeAll(input: string, splits: number[] = []): { view: string; wire: string; consumed: number; done: boolean; dec: DataDecoder } {
  const dec = new DataDecoder();
  const buf = b(input);
  const cuts = [0, ...splits.filter((x) => x > 0 && x < buf.length).sort((x, y) => x - y), buf.length];
  const view: Buffer[] = [];
  const wire: Buffer[] = [];
  let consumed = 0;
  let done = false;
  for (let k = 0; k + 1 < cuts.length && !done; k++) {
    const r = dec.decode(buf.subarray(cuts[k], cuts[k + 1]));
    for (const o of r.view) view.push(Buffer.from(o));
    for (const o of r.wire) wire.push(Buffer.from(o));
    consumed += r.consumed;
    done = r.done;
  }
  return { view: Buffer.concat(view).toString('latin1'), wire: Buffer.concat(wire).toString('latin1'), consumed, done, dec };
}

/**
 * Reference model, line by line over the whole input (complete lines only). A line ends at
 * LF; "strict" = the previous line ended in CR LF (or this is the first line).
 */
function reference(input: string): { view: string; wire: string; consumed: number; done: boolean } {
  let view = '';
  let wire = '';
  let pos = 0;
  let strict = true;
  for (;;) {
    const lf = input.indexOf('\n', pos);
    if (lf < 0) return { view, wire, consumed: pos, done: false };
    const line = input.slice(pos, lf + 1);
    const body = line.slice(0, -1);
    const text = body.replace(/\r+$/, '');
    const crlf = body.endsWith('\r');
    pos = lf + 1;
    if (strict && body === '.\r') return { view, wire, consumed: pos, done: true };
    if (strict && text === '.') {
      view += '\r\n';
      wire += '\r\n';
    } else {
      view += (strict && text.startsWith('.') ? text.slice(1) : text) + '\r\n';
      wire += (!strict && text.startsWith('.') ? '.' : '') + (crlf ? line : body + '\r\n');
    }
    strict = crlf;
  }
}

test('plain message: forwarded byte for byte, terminator withheld', () => {
  const r = decodeAll('Subject: x\r\n\r\nbody\r\n.\r\n');
  assert.equal(r.view, 'Subject: x\r\n\r\nbody\r\n');
  assert.equal(r.wire, 'Subject: x\r\n\r\nbody\r\n');
  assert.equal(r.done, true);
  assert.equal(r.consumed, 'Subject: x\r\n\r\nbody\r\n.\r\n'.length);
  assert.equal(r.dec.state, DataState.Done);
});

test('empty message: ". CRLF" as the first line ends DATA', () => {
  const r = decodeAll('.\r\nQUIT\r\n');
  assert.equal(r.view, '');
  assert.equal(r.wire, '');
  assert.equal(r.done, true);
  assert.equal(r.consumed, 3);
});

test('dot-stuffed lines lose exactly one leading dot in the view, none on the wire', () => {
  const r = decodeAll('..\r\n..hidden\r\n...\r\nmid.dle\r\n.x\r\n.\r\n');
  assert.equal(r.view, '.\r\n.hidden\r\n..\r\nmid.dle\r\nx\r\n');
  assert.equal(r.wire, '..\r\n..hidden\r\n...\r\nmid.dle\r\n.x\r\n');
  assert.equal(r.done, true);
});

test('first line ".." is content, not a terminator', () => {
  const r = decodeAll('..\r\n.\r\n');
  assert.equal(r.view, '.\r\n');
  assert.equal(r.wire, '..\r\n');
  assert.equal(r.done, true);
});

test('bare LF becomes CRLF and the next line cannot end DATA (smuggling): its dot is doubled on the wire', () => {
  const input = 'a\r\nb\n.\r\nMAIL FROM:<evil@x>\r\n.\r\n';
  const r = decodeAll(input);
  assert.equal(r.view, 'a\r\nb\r\n.\r\nMAIL FROM:<evil@x>\r\n');
  assert.equal(r.wire, 'a\r\nb\r\n..\r\nMAIL FROM:<evil@x>\r\n');
  assert.equal(r.done, true);
  assert.equal(r.consumed, input.length);
  assert.equal(r.dec.bareLf, 1);
});

test('"CRLF . LF" and "CRLF . CR CR LF" are not end of data; the wire gets an empty line there', () => {
  for (const dotLine of ['.\n', '.\r\r\n', '.\r\r\r\n']) {
    const input = `a\r\n${dotLine}RCPT TO:<x>\r\n.\r\n`;
    const r = decodeAll(input);
    assert.equal(r.done, true);
    assert.equal(r.consumed, input.length);
    assert.equal(r.view, 'a\r\n\r\nRCPT TO:<x>\r\n');
    assert.equal(r.wire, 'a\r\n\r\nRCPT TO:<x>\r\n', JSON.stringify(dotLine));
  }
});

test('bare CR inside a line is forwarded and scanned unchanged (DKIM); CRs before CRLF leave the view only', () => {
  const r = decodeAll('a\rb\r\n.\rX\r\n\r\r\nend\r\r\r\n.\r\n');
  assert.equal(r.view, 'a\rb\r\n\rX\r\n\r\nend\r\n');
  assert.equal(r.wire, 'a\rb\r\n.\rX\r\n\r\r\nend\r\r\r\n');
  assert.equal(r.dec.bareCr, 3, 'the CRs dropped before a CRLF');
});

test('incomplete input keeps only state and counters, emits everything safe so far', () => {
  const dec = new DataDecoder();
  const take = (s: string) => {
    const r = dec.decode(b(s));
    return [Buffer.concat(r.view).toString('latin1'), Buffer.concat(r.wire).toString('latin1'), r.done] as const;
  };
  assert.deepEqual(take('abc\r'), ['abc', 'abc\r', false]);
  assert.equal(dec.state, DataState.InLine);
  assert.deepEqual(take('\r'), ['', '\r', false], 'a second CR is held from the view too');
  assert.deepEqual(take('\n.'), ['\r\n', '\n', false]);
  assert.equal(dec.state, DataState.Dot);
  assert.deepEqual(take('\r'), ['', '', false]);
  assert.deepEqual(take('\r\n'), ['\r\n', '\r\n', false], '". CR CR LF" across chunks: an empty line');
  assert.deepEqual(take('.\r'), ['', '', false]);
  assert.deepEqual(take('\n'), ['', '', true]);
  assert.equal(dec.bytes, 7);
});

test('a long run of CRs across many chunks is held as a count, not as bytes', () => {
  const dec = new DataDecoder();
  const view: Buffer[] = [];
  dec.decode(b('x'));
  for (let k = 0; k < 100; k++) {
    const r = dec.decode(Buffer.alloc(1000, 0x0d));
    assert.equal(r.view.length, 0);
  }
  const r = dec.decode(b('y\r\n'));
  for (const v of r.view) view.push(Buffer.from(v));
  const out = Buffer.concat(view);
  assert.equal(out.length, 100_000 + 3, 'held CRs come back as content');
  assert.equal(out.subarray(0, 100_000).every((c) => c === 0x0d), true);
});

const ALPHABET = ['.', '\r', '\n', 'a', 'Z', ' ', '\r\n', '\r\n.', '.\r\n', '\r\n.\r\n', '..', '\r\r\n', '.\r\r\n'];
const arbInput = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 40 }).map((a) => a.join(''));

test('property: decoder equals the reference model, for any split', () => {
  fc.assert(
    fc.property(arbInput, fc.array(fc.nat(200), { maxLength: 8 }), (body, splits) => {
      const input = body + '\r\n.\r\ntrailing';
      const want = reference(input);
      const got = decodeAll(input, splits);
      assert.equal(got.view, want.view);
      assert.equal(got.wire, want.wire);
      assert.equal(got.consumed, want.consumed);
      assert.equal(got.done, want.done);
    }),
    { numRuns: 3000 },
  );
});

test('property: Postfix reads the wire, plus the dot line we withheld, as exactly the view, ending where we end', () => {
  fc.assert(
    fc.property(arbInput, fc.array(fc.nat(200), { maxLength: 8 }), (body, splits) => {
      const got = decodeAll(body + '\r\n.\r\n', splits);
      assert.ok(!/(?<!\r)\n/.test(got.wire), 'no bare LF on the wire');
      const pf = postfixReadData(b(got.wire + '.\r\n'));
      assert.equal(pf.content.toString('latin1'), got.view);
      assert.equal(pf.consumed, got.wire.length + 3, 'the downstream ends DATA exactly at our terminator');
    }),
    { numRuns: 3000 },
  );
});

test('property: a well-formed message is forwarded byte for byte', () => {
  // CRLF lines, bare CRs anywhere but before a CRLF, 8-bit bytes, dots: what a DKIM signer signed.
  const line = fc.array(fc.constantFrom('.', 'a', ' ', '\r', '\xe9', '\x00', '..', '\t'), { maxLength: 12 })
    .map((a) => a.join('').replace(/\r+$/, ''));
  fc.assert(
    fc.property(fc.array(line, { maxLength: 15 }), fc.array(fc.nat(300), { maxLength: 8 }), (lines, splits) => {
      const msg = lines.map((l) => l + '\r\n').join('');
      const stuffed = msg.replace(/(^|\n)\./g, '$1..'); // not /^/m: that matches after a bare CR too
      const got = decodeAll(stuffed + '.\r\n', splits);
      assert.equal(got.wire, stuffed);
      assert.equal(got.view, msg);
      assert.equal(got.done, true);
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
      assert.deepEqual([every.view, every.wire, every.consumed, every.done], [whole.view, whole.wire, whole.consumed, whole.done]);
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
  let wire = '';
  const flushData = () => {
    if (data || wire) trace.push('D:' + data, 'W:' + wire);
    data = wire = '';
  };
  for (let k = 0; k + 1 < points.length; k++) {
    r.push(input.subarray(points[k], points[k + 1]));
    for (let ev = r.next(); ev; ev = r.next()) {
      if (ev.type === 'data') {
        data += Buffer.concat(ev.view).toString('latin1');
        wire += Buffer.concat(ev.wire).toString('latin1');
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
    'D:Subject: t\r\n\r\n.dot\r\nbare\r\nlf\r\n\r\nnot-end\r\nx\ry\r\n',
    'W:Subject: t\r\n\r\n..dot\r\nbare\r\nlf\r\n\r\nnot-end\r\nx\ry\r\n',
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
