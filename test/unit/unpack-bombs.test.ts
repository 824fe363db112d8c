/**
 * Decompression bombs: limits trip fast, with bounded memory, and whatever the chunking.
 * The 1 GiB-of-zeros streams are made here with streaming zlib (~1 MB each).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createDeflateRaw, crc32 } from 'node:zlib';
import { createUnpacker } from '../../src/core/unpack/index.js';
import type { UnpackBudget } from '../../src/core/unpack/unpack-types.js';
import { budget, buildZip, split, unpack } from '../helpers/unpack-harness.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

async function compressZeros(z: ReturnType<typeof createDeflateRaw>, total: number): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  z.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise<void>((res, rej) => (z.on('end', res), z.on('error', rej)));
  const zero = Buffer.alloc(MiB);
  for (let n = 0; n < total; n += MiB) if (!z.write(zero)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(parts);
}

let gzBomb: Uint8Array;
let rawBomb: Uint8Array;
let zeroCrc = 0;

/** Run and measure: elapsed ms and the rss growth seen between writes. */
function measured(fn: (sample: () => void) => void): { ms: number; rssGrowth: number } {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const sample = () => {
    const r = process.memoryUsage().rss;
    if (r > peak) peak = r;
  };
  const t0 = performance.now();
  fn(sample);
  return { ms: performance.now() - t0, rssGrowth: peak - base };
}

describe('decompression bombs', () => {
  before(async () => {
    rawBomb = await compressZeros(createDeflateRaw({ level: 9 }), GiB);
    const zero = Buffer.alloc(MiB);
    for (let n = 0; n < GiB; n += MiB) zeroCrc = crc32(zero, zeroCrc);
    // The gzip bomb wraps the same deflate stream: header, data, CRC-32, ISIZE (2^30).
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zeroCrc >>> 0, 0);
    trailer.writeUInt32LE(GiB % 2 ** 32, 4);
    gzBomb = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]), rawBomb, trailer]);
  });

  it('gzip of 1 GiB zeros trips ratio right after the grace bytes, fast', () => {
    const b = budget();
    let t!: ReturnType<typeof unpack>;
    const m = measured((sample) => {
      t = unpack('gzip', (function* () {
        for (const c of split(gzBomb, 65536)) {
          sample();
          yield c;
        }
      })(), b);
    });
    assert.deepEqual(t.limits, ['ratio']);
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries[0]!.ended, true);
    // Emitted output never passes the allowance: grace, or 250 × compressed input so far.
    assert.ok(t.entries[0]!.size <= Math.max(b.ratioGraceBytes, 250 * 16384), `emitted ${t.entries[0]!.size}`);
    assert.ok(m.ms < 2000, `took ${m.ms} ms`);
    assert.ok(m.rssGrowth < 64 * MiB, `rss grew ${m.rssGrowth}`);
  });

  it('with the ratio out of the way, unpacked-bytes stops it at the exact cap with bounded memory', () => {
    const b = budget({ maxRatio: 1e9, maxUnpackedBytes: 256 * MiB });
    let total = 0;
    const m = measured((sample) => {
      const u = createUnpacker('gzip', {
        onEntry: () => ({ write: (c) => ((total += c.length), sample()), end() {} }),
        onLimit: (w) => assert.equal(w, 'unpacked-bytes'),
        onEncrypted: () => assert.fail('encrypted'),
        onCorrupt: (d) => assert.fail(d),
        onAnomaly: () => undefined,
        onAltName: () => undefined,
      }, b);
      for (const c of split(gzBomb, 65536)) u.write(c);
      u.end();
    });
    assert.equal(total, 256 * MiB);
    assert.equal(b.unpackedBytes, 256 * MiB);
    assert.ok(m.rssGrowth < 96 * MiB, `rss grew ${m.rssGrowth}`);
  });

  it('a zip entry of 1 GiB zeros trips ratio; declared sizes do not matter', () => {
    for (const declared of [GiB, 100]) {
      const zip = buildZip([{ name: 'zeros.bin', data: new Uint8Array(0), compressed: rawBomb, crc: zeroCrc, usize: declared }]);
      const m = measured(() => {
        const t = unpack('zip', split(zip, 100_000));
        assert.deepEqual(t.limits, ['ratio']);
        assert.ok(t.entries[0]!.size <= 4 * MiB);
      });
      assert.ok(m.ms < 2000, `took ${m.ms}`);
    }
  });

  it('a zip of zero-filled entries each under the grace trips the archive-wide ratio', () => {
    const zero = new Uint8Array(900 * 1024);
    const specs = Array.from({ length: 40 }, (_, i) => ({ name: `z${i}`, data: zero }));
    const t = unpack('zip', [buildZip(specs)]);
    assert.deepEqual(t.limits, ['ratio']);
    assert.ok(t.entries.length > 1 && t.entries.length < 40, `stopped after ${t.entries.length} entries`);
  });

  it('one level of nesting (zip in zip, 42.zip style) trips in the inner unpacker with a shared budget', () => {
    const inner = buildZip([{ name: 'zeros.bin', data: new Uint8Array(0), compressed: rawBomb, crc: zeroCrc, usize: GiB }]);
    const outer = buildZip([{ name: 'inner.zip', data: inner, method: 8 }]);
    const b: UnpackBudget = budget();
    const events: string[] = [];
    const m = measured((sample) => {
      const outerU = createUnpacker('zip', {
        onEntry: (meta) => {
          events.push('outer entry ' + meta.name);
          return createUnpacker('zip', {
            onEntry: (m2) => (events.push('inner entry ' + m2.name), { write: () => sample(), end: () => events.push('inner end') }),
            onLimit: (w) => events.push('inner limit ' + w),
            onEncrypted: () => undefined,
            onCorrupt: (d) => events.push('inner corrupt ' + d),
            onAnomaly: () => undefined,
            onAltName: () => undefined,
          }, b);
        },
        onLimit: (w) => events.push('outer limit ' + w),
        onEncrypted: () => undefined,
        onCorrupt: (d) => events.push('outer corrupt ' + d),
        onAnomaly: () => undefined,
        onAltName: () => undefined,
      }, b);
      for (const c of split(outer, 65536)) outerU.write(c);
      outerU.end();
    });
    assert.equal(events[0], 'outer entry inner.zip');
    assert.ok(events.includes('inner limit ratio'), events.join('; '));
    assert.ok(m.ms < 3000, `took ${m.ms}`);
    assert.ok(b.unpackedBytes < 16 * MiB);
  });

  it('the whole 1 GiB gzip bomb is well-formed (it unpacks fully when limits allow)', () => {
    let total = 0;
    const u = createUnpacker('gzip', {
      onEntry: () => ({ write: (c) => void (total += c.length), end() {} }),
      onLimit: (w) => assert.fail(w),
      onEncrypted: () => assert.fail('encrypted'),
      onCorrupt: (d) => assert.fail(d),
      onAnomaly: () => undefined,
      onAltName: () => undefined,
    }, budget({ maxRatio: 1e9, maxUnpackedBytes: 2 * GiB }));
    for (const c of split(gzBomb, 1 << 20)) u.write(c);
    u.end();
    assert.equal(total, GiB);
  });

  it('the tripping point does not depend on chunking', () => {
    const sizes = [65536, 1000, 7].map((n) => {
      const t = unpack('gzip', split(gzBomb.subarray(0, 200_000), n));
      return `${t.limits.join()}:${t.entries[0]!.size}:${t.entries[0]!.sha256}`;
    });
    assert.equal(new Set(sizes).size, 1, sizes.join('\n'));
  });
});
