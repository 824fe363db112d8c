import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { budget, pseudoRandom, sha256, split, unpack, whole } from '../helpers/unpack-harness.js';

const CLAM = '/usr/share/clamav-testfiles/';

/** Hand-built gzip header with optional fields, followed by a zlib deflate body + trailer. */
function gzipWithHeader(data: Uint8Array, opts: { name?: string; comment?: string; extra?: number; hcrc?: boolean }): Uint8Array {
  const z = gzipSync(data); // 10-byte header, deflate, 8-byte trailer
  let flags = 0;
  const fields: number[] = [];
  if (opts.extra !== undefined) {
    flags |= 4;
    fields.push(opts.extra & 0xff, opts.extra >> 8, ...new Array(opts.extra).fill(0x41));
  }
  if (opts.name !== undefined) {
    flags |= 8;
    fields.push(...Buffer.from(opts.name, 'latin1'), 0);
  }
  if (opts.comment !== undefined) {
    flags |= 16;
    fields.push(...Buffer.from(opts.comment, 'latin1'), 0);
  }
  if (opts.hcrc) {
    flags |= 2;
    fields.push(0x12, 0x34);
  }
  const head = Buffer.from(z.subarray(0, 10));
  head[3] = flags;
  return Buffer.concat([head, Buffer.from(fields), z.subarray(10)]);
}

describe('gzip unpacker', () => {
  it('unpacks a single member, whole and byte by byte, with its FNAME', () => {
    const data = pseudoRandom(100_000, 7, true);
    const gz = gzipWithHeader(data, { name: 'report.exe' });
    for (const chunks of [whole(gz), split(gz, 1), split(gz, 4097)]) {
      const t = unpack('gzip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(t.limits, []);
      assert.equal(t.entries.length, 1);
      assert.equal(t.entries[0]!.name, 'report.exe');
      assert.equal(t.entries[0]!.sha256, sha256(data));
      assert.equal(t.entries[0]!.ended, true);
    }
  });

  it('parses FEXTRA, FCOMMENT and FHCRC; no FNAME gives an empty name', () => {
    const data = pseudoRandom(5000, 3);
    const gz = gzipWithHeader(data, { extra: 300, comment: 'x'.repeat(2000), hcrc: true });
    const t = unpack('gzip', split(gz, 7));
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries.length, 1);
    assert.equal(t.entries[0]!.name, '');
    assert.equal(t.entries[0]!.sha256, sha256(data));
  });

  it('joins concatenated members into one entry named from the first', () => {
    const a = pseudoRandom(70_000, 1, true);
    const b = pseudoRandom(3, 2);
    const c = pseudoRandom(9000, 3);
    const gz = Buffer.concat([gzipWithHeader(a, { name: 'first' }), gzipWithHeader(b, { name: 'second' }), gzipSync(c), gzipSync(new Uint8Array(0))]);
    for (const chunks of [whole(gz), split(gz, 1), split(gz, 333)]) {
      const t = unpack('gzip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.equal(t.entries.length, 1);
      assert.equal(t.entries[0]!.name, 'first');
      assert.equal(t.entries[0]!.sha256, sha256(Buffer.concat([a, b, c])));
    }
  });

  it('tolerates zero padding after the last member but not other trailing data', () => {
    const gz = gzipSync(pseudoRandom(1000, 5));
    assert.deepEqual(unpack('gzip', [gz, new Uint8Array(700)]).corrupt, []);
    const t = unpack('gzip', [gz, Buffer.from('junk')]);
    assert.equal(t.corrupt.length, 1);
    assert.match(t.corrupt[0]!, /trailing/);
  });

  it('reports truncation anywhere (header, deflate body, trailer) and still ends the entry', () => {
    const data = pseudoRandom(50_000, 9);
    const gz = gzipWithHeader(data, { name: 'n' });
    for (const cut of [0, 5, 11, 13, 200, gz.length - 9, gz.length - 4, gz.length - 1]) {
      const t = unpack('gzip', split(gz.subarray(0, cut), 1000));
      assert.equal(t.corrupt.length, 1, `cut at ${cut}`);
      assert.ok(t.entries.every((e) => e.ended), `entries ended at cut ${cut}`);
    }
  });

  it('detects CRC and ISIZE mismatches and corrupt deflate data', () => {
    const gz = Buffer.from(gzipSync(pseudoRandom(10_000, 4)));
    const badCrc = Buffer.from(gz);
    badCrc[gz.length - 8]! ^= 1;
    assert.match(unpack('gzip', [badCrc]).corrupt[0] ?? '', /CRC/);
    const badSize = Buffer.from(gz);
    badSize[gz.length - 1]! ^= 1;
    assert.match(unpack('gzip', [badSize]).corrupt[0] ?? '', /ISIZE/);
    const badBody = Buffer.from(gz);
    badBody[10] = 0xff; // BTYPE 11 is invalid
    assert.equal(unpack('gzip', [badBody]).corrupt.length, 1);
    const badMagic = Buffer.from(gz);
    badMagic[2] = 7;
    assert.match(unpack('gzip', [badMagic]).corrupt[0] ?? '', /method/);
  });

  it('unpacks the ClamAV test file clam.tar.gz', () => {
    const gz = readFileSync(CLAM + 'clam.tar.gz');
    const t = unpack('gzip', split(gz, 17), budget(), true);
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries.length, 1);
    // The member is a tar whose magic sits at 257.
    assert.equal(Buffer.from(t.data[0]!.subarray(257, 262)).toString(), 'ustar');
  });

  it('counts the member against the entry limit', () => {
    const t = unpack('gzip', [gzipSync(Buffer.from('x'))], budget({ entries: 5, maxEntries: 5 }));
    assert.deepEqual(t.limits, ['archive-entries']);
    assert.equal(t.entries.length, 0);
  });

  it('stops at exactly maxUnpackedBytes and reports unpacked-bytes once', () => {
    const data = pseudoRandom(300_000, 11, true);
    const b = budget({ maxUnpackedBytes: 100_000, unpackedBytes: 0 });
    const t = unpack('gzip', split(gzipSync(data), 100), b);
    assert.deepEqual(t.limits, ['unpacked-bytes']);
    assert.equal(t.entries[0]!.size, 100_000);
    assert.equal(t.entries[0]!.sha256, sha256(data.subarray(0, 100_000)));
    assert.equal(b.unpackedBytes, 100_000);
    assert.equal(t.entries[0]!.ended, true);
  });

  it('accepts reserved FLG bits as Python gzip does, and records the anomaly', () => {
    const data = pseudoRandom(30_000, 12, true);
    for (const bits of [0x20, 0x40, 0x80, 0xe0 | 8]) {
      const gz = Buffer.from(gzipWithHeader(data, { name: 'n.txt' }));
      gz[3] = gz[3]! | bits;
      const want = execFileSync('python3', ['-c', 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))'], { input: gz });
      for (const chunks of [whole(gz), split(gz, 1)]) {
        const t = unpack('gzip', chunks);
        assert.deepEqual(t.corrupt, [], `flags ${bits}`);
        assert.deepEqual(t.anomalies, ['gzip-reserved-flags']);
        assert.equal(t.entries[0]!.sha256, sha256(want));
      }
    }
  });
});
