/**
 * mime-chunking.test.ts — chunk-split invariance: for every MIME fixture, and for each
 * transfer decoder, whole / byte-by-byte / random splits give identical traces or
 * decoded-content hashes (fast-check generates the random split points).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { fixture } from '../helpers/paths.js';
import { traceChunks, traceMime } from '../helpers/mime-trace.js';
import { createDecoder } from '../../src/core/decode/index.js';
import { UuExtractor } from '../../src/core/decode/uu-extractor.js';

const dir = fixture('mime');
const emls = readdirSync(dir).filter((f) => f.endsWith('.eml')).sort();

/** Cut `bytes` at the given (sorted, deduplicated) offsets. */
function cutAt(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const cuts = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const c of cuts) {
    out.push(bytes.slice(last, c)); // empty chunks included on purpose
    last = c;
  }
  out.push(bytes.slice(last));
  return out;
}

const cuts = fc.array(fc.nat(), { minLength: 1, maxLength: 40 });

for (const eml of emls) {
  test(`chunk invariance: ${eml}`, () => {
    const bytes = readFileSync(fixture('mime', eml));
    const whole = traceMime(bytes);
    assert.match(whole, /^start /m); // a real trace, not an empty one
    // the huge fixture is 70 KB: byte-by-byte is fine, but keep the random runs modest
    assert.equal(traceMime(bytes, [1]), whole, 'byte by byte');
    assert.equal(traceMime(bytes, [2, 3, 5, 7]), whole, 'small odd chunks');
    fc.assert(
      fc.property(cuts, (offs) => traceChunks(cutAt(bytes, offs)) === whole),
      { numRuns: bytes.length > 10_000 ? 20 : 150 },
    );
  });
}

// ---- decoders -------------------------------------------------------------------------

function decodeHash(cte: string, chunks: Uint8Array[]): string {
  const d = createDecoder(cte);
  const h = createHash('sha256');
  const out = (b: Uint8Array) => h.update(b);
  for (const c of chunks) d.write(c, out);
  d.end(out);
  return h.digest('hex');
}

const b64Input = fc
  .array(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n \t!*-'.split('')), { maxLength: 400 })
  .map((cs) => Buffer.from(cs.join(''), 'latin1'));
const qpInput = fc
  .array(fc.constantFrom('=', '=\r\n', '=\n', '= \r\n', 'A', 'z', '3', 'D', 'f', ' ', '\t', '\r\n', '\n', '\r', '=3D', '=ZZ', '=a', '\xff'), { maxLength: 300 })
  .map((cs) => Buffer.from(cs.join(''), 'latin1'));

for (const [cte, input] of [
  ['base64', b64Input],
  ['quoted-printable', qpInput],
] as const) {
  test(`decoder chunk invariance: ${cte}`, () => {
    fc.assert(
      fc.property(input, cuts, (bytes, offs) => {
        const whole = decodeHash(cte, [bytes]);
        return decodeHash(cte, cutAt(bytes, offs)) === whole && decodeHash(cte, cutAt(bytes, [...bytes.keys()])) === whole;
      }),
      { numRuns: 300 },
    );
  });
}

test('uu extractor chunk invariance', () => {
  const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff));
  const lines: string[] = [];
  for (let i = 0; i < payload.length; i += 45) {
    const part = payload.subarray(i, i + 45);
    let s = String.fromCharCode(32 + part.length);
    for (let k = 0; k < part.length; k += 3) {
      const a = part[k]!, b = part[k + 1] ?? 0, c = part[k + 2] ?? 0;
      for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) s += String.fromCharCode(v === 0 ? 96 : v + 32);
    }
    lines.push(s);
  }
  const text = Buffer.from(`intro\r\nbegin 644 a.bin\r\n${lines.join('\r\n')}\r\n\`\r\nend\r\noutro\nbegin-base64 600 b.txt\nSGVsbG8s\nIHdvcmxk\n====\n`, 'latin1');
  const run = (chunks: Uint8Array[]) => {
    const files: string[] = [];
    const ex = new UuExtractor((name) => {
      const h = createHash('sha256');
      let n = 0;
      return { write: (c) => { h.update(c); n += c.length; }, end: () => files.push(`${name} ${n} ${h.digest('hex').slice(0, 16)}`) };
    });
    for (const c of chunks) ex.write(c);
    ex.end();
    return files.join('\n');
  };
  const whole = run([text]);
  assert.equal(whole, `a.bin 300 ${createHash('sha256').update(payload).digest('hex').slice(0, 16)}\nb.txt 12 ${createHash('sha256').update('Hello, world').digest('hex').slice(0, 16)}`);
  fc.assert(fc.property(cuts, (offs) => run(cutAt(text, offs)) === whole), { numRuns: 200 });
  assert.equal(run(cutAt(text, [...text.keys()])), whole);
});

test('base64 skip-`=` reading: both readings chunk-invariant', async () => {
  const { Base64Decoder } = await import('../../src/core/decode/base64-decoder.js');
  const run = (chunks: Uint8Array[]) => {
    const d = new Base64Decoder();
    const h = createHash('sha256');
    const a = createHash('sha256');
    let alt: InstanceType<typeof Base64Decoder> | null = null;
    let drop = -1;
    d.onDiverge = (x, rest, dropTail) => {
      alt = x;
      drop = dropTail;
      x.write(rest, (b) => a.update(b));
    };
    for (const c of chunks) {
      const had = alt as InstanceType<typeof Base64Decoder> | null;
      d.write(c, (b) => h.update(b));
      if (had) had.write(c, (b) => a.update(b));
    }
    d.end((b) => h.update(b));
    (alt as InstanceType<typeof Base64Decoder> | null)?.end((b) => a.update(b));
    return `${h.digest('hex')} ${drop} ${a.digest('hex')}`;
  };
  fc.assert(
    fc.property(b64Input, cuts, (bytes, offs) => {
      const whole = run([bytes]);
      return run(cutAt(bytes, offs)) === whole && run(cutAt(bytes, [...bytes.keys()])) === whole;
    }),
    { numRuns: 300 },
  );
});
