/**
 * InflateStream (node:zlib's inflate driven synchronously): output, where the stream
 * ends (tail), bounded pieces, stopping, corruption, and chunk invariance of the exact
 * (onSlice, onData) call sequence the unpackers base their ratio decisions on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { InflateError, InflateStream, OUT_BYTES, SLICE_BYTES } from '../../src/core/unpack/inflate-stream.js';
import { cutAt, pseudoRandom, split } from '../helpers/unpack-harness.js';

interface Run {
  calls: string[]; // 's N' per slice, 'd N' per output piece, in order
  sha: string;
  out: number;
  taken: number;
  done: boolean;
  tail: number[];
  maxPiece: number;
}

function run(chunks: Uint8Array[], opts: { stopAfter?: number; flush?: boolean } = {}): Run {
  const h = createHash('sha256');
  const r: Run = { calls: [], sha: '', out: 0, taken: 0, done: false, tail: [], maxPiece: 0 };
  const s = new InflateStream(
    (d) => {
      r.calls.push(`d ${d.length}`);
      h.update(d);
      r.out += d.length;
      r.maxPiece = Math.max(r.maxPiece, d.length);
      return opts.stopAfter === undefined || r.out < opts.stopAfter;
    },
    (n) => r.calls.push(`s ${n}`),
  );
  for (const c of chunks) r.taken += s.push(c);
  if (opts.flush !== false) s.flush();
  r.done = s.done;
  r.tail = [...s.tail];
  r.sha = h.digest('hex');
  return r;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const cat = (...bs: Uint8Array[]) => Buffer.concat(bs);

describe('InflateStream', () => {
  const text = pseudoRandom(300_000, 5, true);
  const def = deflateRawSync(text);

  it('inflates a stream and reports the bytes after it as the tail', () => {
    const junk = Buffer.from('PK\x03\x04trailing');
    const r = run(split(cat(def, junk), 5000));
    assert.equal(r.sha, sha(text));
    assert.equal(r.done, true);
    assert.equal(r.taken, def.length + junk.length);
    assert.deepEqual(r.tail, [...junk]);
  });

  it('a truncated stream is not done; corrupt data throws InflateError', () => {
    const r = run([def.subarray(0, def.length - 10)]);
    assert.equal(r.done, false);
    assert.ok(r.out < text.length);
    assert.throws(() => run([Buffer.from([0xff, 0xff, 0xff, 0xff])]), InflateError);
    assert.throws(() => run([Buffer.from([0x06, 0, 0])]), InflateError, 'block type 11 is reserved');
  });

  it('a stream ending exactly on a slice boundary is settled by the next slice or by flush()', () => {
    // One stored block: 5 header bytes + data = exactly two slices.
    const len = 2 * SLICE_BYTES - 5;
    const stored = Buffer.alloc(2 * SLICE_BYTES);
    stored.set([1, len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff]);
    for (let i = 5; i < stored.length; i++) stored[i] = (i * 7) & 0xff;
    const viaFlush = run([stored]);
    assert.equal(viaFlush.done, true);
    assert.equal(viaFlush.out, len);
    assert.deepEqual(viaFlush.tail, []);
    const next = Buffer.alloc(SLICE_BYTES, 9);
    const viaNext = run([stored, next], { flush: false });
    assert.equal(viaNext.done, true);
    assert.equal(viaNext.tail.length, SLICE_BYTES);
    const unsettled = run([stored], { flush: false });
    assert.equal(unsettled.done, false, 'without flush() or more input the end is not known yet');
  });

  it('output pieces never exceed OUT_BYTES however explosive the input', () => {
    const zeros = new Uint8Array(20 << 20);
    const bomb = deflateRawSync(zeros, { level: 9 });
    const r = run([bomb]);
    assert.equal(r.out, zeros.length);
    assert.ok(r.maxPiece <= OUT_BYTES, `piece of ${r.maxPiece}`);
    assert.ok(r.calls.filter((c) => c.startsWith('d')).length >= zeros.length / OUT_BYTES);
  });

  it('stops as soon as onData returns false and takes nothing more', () => {
    const zeros = new Uint8Array(64 << 20);
    const bomb = deflateRawSync(zeros); // ~64 KB: several slices
    const r = run(split(bomb, 100), { stopAfter: 100_000 });
    assert.ok(r.out >= 100_000 && r.out < 100_000 + OUT_BYTES);
    assert.equal(r.done, false);
    assert.ok(r.taken < bomb.length);
  });

  it('the (slice, piece) call sequence does not depend on the input chunking', () => {
    const rnd = pseudoRandom(50_000, 3);
    const input = cat(def, Buffer.from([1, 2, 3]), rnd);
    const ref = run([input]);
    assert.equal(ref.sha, sha(text));
    assert.deepEqual(run(split(input, 1)), ref);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 30 }), (cuts) => {
        assert.deepEqual(run(cutAt(input, cuts)), ref);
      }),
      { numRuns: 40 },
    );
  });
});
