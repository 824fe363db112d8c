import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fixture } from '../helpers/paths.js';
import { budget, pseudoRandom, sha256, split, unpack, whole } from '../helpers/unpack-harness.js';

// Fixtures made by bzip2 1.0.8 (see test/fixtures/unpack/README.md); contents regenerated here.
const fx = (n: string) => readFileSync(fixture('unpack', n));
const text = pseudoRandom(250_000, 21, true);
const rnd = pseudoRandom(30_000, 22);
const runs = (() => {
  const r: number[] = [];
  for (let n = 1; n < 300; n++) for (let k = 0; k < n; k++) r.push(n & 0xff);
  return Uint8Array.from(r);
})();

describe('bzip2 unpacker', () => {
  it('decodes ClamAV clam.exe.bz2 to clam.exe', () => {
    const r = unpack('bzip2', split(readFileSync('/usr/share/clamav-testfiles/clam.exe.bz2'), 5));
    assert.deepEqual(r.corrupt, []);
    assert.equal(r.entries.length, 1);
    assert.equal(r.entries[0]!.name, '');
    assert.equal(r.entries[0]!.sha256, sha256(readFileSync('/usr/share/clamav-testfiles/clam.exe')));
  });

  it('decodes multiple blocks and concatenated streams, any chunking', () => {
    const bz = fx('text250k-rnd30k.bz2');
    const wantSha = sha256(Buffer.concat([text, rnd]));
    for (const chunks of [whole(bz), split(bz, 1), split(bz, 4099)]) {
      const t = unpack('bzip2', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.equal(t.entries.length, 1);
      assert.equal(t.entries[0]!.size, text.length + rnd.length);
      assert.equal(t.entries[0]!.sha256, wantSha);
    }
  });

  it('undoes the initial run-length coding at every run length', () => {
    const t = unpack('bzip2', split(fx('runs.bz2'), 3));
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries[0]!.sha256, sha256(runs));
  });

  it('an empty stream is one empty entry', () => {
    const t = unpack('bzip2', [fx('empty.bz2')]);
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(t.entries.map((e) => e.size), [0]);
  });

  it('64 MiB of zeros (79 bytes) trips ratio at the grace', () => {
    const b = budget();
    const t = unpack('bzip2', [fx('zeros64m.bz2')], b);
    assert.deepEqual(t.limits, ['ratio']);
    assert.equal(t.entries[0]!.size, b.ratioGraceBytes);
    const t2 = unpack('bzip2', [fx('zeros64m.bz2')], budget({ maxRatio: 1e9, maxUnpackedBytes: 10_000_000 }));
    assert.deepEqual(t2.limits, ['unpacked-bytes']);
    assert.equal(t2.entries[0]!.size, 10_000_000);
    const full = unpack('bzip2', [fx('zeros64m.bz2')], budget({ maxRatio: 1e9 }));
    assert.deepEqual(full.corrupt, []);
    assert.equal(full.entries[0]!.sha256, sha256(new Uint8Array(64 << 20)));
  });

  it('reports truncation, corruption, CRC mismatches and trailing data', () => {
    const bz = fx('text250k-rnd30k.bz2');
    for (const cut of [0, 3, 10, 100, 30_000, bz.length - 1]) {
      const t = unpack('bzip2', split(bz.subarray(0, cut), 777));
      assert.equal(t.corrupt.length, 1, `cut ${cut}`);
      assert.ok(t.entries.every((e) => e.ended));
    }
    const flipped = Buffer.from(bz);
    flipped[20_000]! ^= 0x10;
    assert.equal(unpack('bzip2', [flipped]).corrupt.length, 1);
    const badCrc = Buffer.from(fx('runs.bz2'));
    badCrc[10]! ^= 1; // block CRC field (bytes 10..13)
    assert.match(unpack('bzip2', [badCrc]).corrupt[0] ?? '', /CRC/);
    const badHeader = Buffer.from(fx('runs.bz2'));
    badHeader[3] = 0x30;
    assert.match(unpack('bzip2', [badHeader]).corrupt[0] ?? '', /header/);
    assert.match(unpack('bzip2', [fx('runs.bz2'), Buffer.from('xyz')]).corrupt[0] ?? '', /trailing/);
    assert.deepEqual(unpack('bzip2', [fx('runs.bz2'), new Uint8Array(100)]).corrupt, []);
  });

  it('reads a "randomised" block (bzip2 < 0.9.5) as libbz2 does, any chunking', () => {
    const bz = fx('randomised.bz2');
    // Oracle: Python's bz2 module (libbz2) decompresses the same bytes.
    const want = execFileSync('python3', ['-c', 'import bz2,sys; sys.stdout.buffer.write(bz2.decompress(sys.stdin.buffer.read()))'], { input: bz });
    assert.equal(want.length, 20_000);
    for (const chunks of [whole(bz), split(bz, 1), split(bz, 999)]) {
      const t = unpack('bzip2', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(t.anomalies, ['bzip2-randomised']);
      assert.equal(t.entries[0]!.sha256, sha256(want));
    }
    // The mask matters: the same block read as not randomised fails its CRC.
    const plain = Buffer.from(bz);
    plain[14]! &= 0x7f;
    assert.match(unpack('bzip2', [plain]).corrupt[0] ?? '', /CRC/);
  });
});
