/**
 * The base64 decoder's native fast path (Node's Buffer#write on runs of regular lines)
 * must decode exactly as the documented tolerant semantics say, whatever the input: the
 * oracle is a plain one-character-at-a-time decoder written here from the rules. Every
 * byte value is tried inside regular bodies (Node's decoder reads some bytes differently:
 * `=` stops it, `-`/`_` are base64url to it), and random bodies mix regular runs with
 * irregular lines, junk, padding and both line-end styles, at random chunkings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Base64Decoder } from '../../src/core/decode/base64-decoder.js';
import { pseudoRandom } from '../helpers/mail-build.js';
import { cutAt } from '../helpers/unpack-harness.js';

const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The rules, one character at a time: skip non-alphabet, `=` flushes the partial quantum. */
function oracle(input: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let k = 0;
  const flush = () => {
    if (k === 2) out.push((acc >> 4) & 0xff);
    if (k === 3) out.push((acc >> 10) & 0xff, (acc >> 2) & 0xff);
    acc = 0;
    k = 0;
  };
  for (const b of input) {
    const v = ALPHA.indexOf(String.fromCharCode(b));
    if (b === 0x3d) flush();
    else if (v >= 0 && b < 128) {
      acc = (acc << 6) | v;
      if (++k === 4) {
        out.push((acc >> 16) & 0xff, (acc >> 8) & 0xff, acc & 0xff);
        acc = 0;
        k = 0;
      }
    }
  }
  flush();
  return Buffer.from(out);
}

function decode(chunks: Uint8Array[]): Buffer {
  const d = new Base64Decoder();
  const parts: Buffer[] = [];
  const take = (b: Uint8Array) => parts.push(Buffer.from(b)); // copy: the output is borrowed
  for (const c of chunks) d.write(c, take);
  d.end(take);
  return Buffer.concat(parts);
}

/** `lines` lines of base64 text, `width` characters each, with the given line end. */
function body(lines: number, width: number, eol: string, seed: number): Buffer {
  const s = Buffer.from(pseudoRandom(Math.ceil((lines * width * 3) / 4) + 3, seed)).toString('base64').replace(/=/g, 'A');
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(s.slice(i * width, (i + 1) * width));
  return Buffer.from(out.join(eol) + eol, 'latin1');
}

test('every byte value inside a regular body decodes as the rules say', () => {
  for (const eol of ['\r\n', '\n']) {
    const base = body(40, 76, eol, 3);
    for (let b = 0; b < 256; b++) {
      for (const at of [0, 5, 76 * 7 + 3, base.length - 1]) {
        const replaced = Buffer.from(base);
        replaced[at] = b;
        const inserted = Buffer.concat([base.subarray(0, at), Buffer.from([b]), base.subarray(at)]);
        for (const input of [replaced, inserted]) {
          assert.deepEqual(decode([input]), oracle(input), `byte ${b} at ${at}, eol ${JSON.stringify(eol)}`);
        }
      }
    }
  }
});

test('random bodies: regular runs, odd lines, junk and padding, any chunking', () => {
  const piece = fc.oneof(
    fc.record({ lines: fc.integer({ min: 1, max: 30 }), width: fc.constantFrom(4, 8, 60, 64, 72, 76, 77, 75, 100), eol: fc.constantFrom('\r\n', '\n', '\r', ''), seed: fc.integer({ min: 1, max: 1e6 }) })
      .map(({ lines, width, eol, seed }) => body(lines, width, eol, seed)),
    fc.constantFrom('=', '==', '-', '_', ' ', '\t', '\r\n', '\n', '\x00', '\xff', '!', 'QQ==', 'A', 'AB', 'ABC').map((s) => Buffer.from(s, 'latin1')),
  );
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
      const input = Buffer.concat(pieces);
      const want = oracle(input);
      assert.deepEqual(decode([input]), want);
      assert.deepEqual(decode(cutAt(input, cuts.map((c) => c % Math.max(1, input.length)))), want);
    }),
    { numRuns: 400 },
  );
});

test('a large regular body decodes exactly across scratch buffers and 64 KiB pushes', () => {
  const raw = pseudoRandom(3 << 20, 11);
  const wrapped = Buffer.from(Buffer.from(raw).toString('base64').replace(/.{76}/g, '$&\r\n'), 'latin1');
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < wrapped.length; i += 65536) chunks.push(wrapped.subarray(i, i + 65536));
  assert.ok(decode(chunks).equals(Buffer.from(raw)));
  assert.ok(decode([wrapped]).equals(Buffer.from(raw)));
});
