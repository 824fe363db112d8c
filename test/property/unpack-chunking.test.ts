/**
 * Chunk invariance: an archive pushed whole, byte by byte, or split at random points
 * gives the same trace — entry names, sha256 of each entry's bytes, and the same
 * limit / corrupt / encrypted events — including truncated, corrupted and bomb inputs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { ArchiveFormat, UnpackBudget } from '../../src/core/unpack/unpack-types.js';
import { readFileSync } from 'node:fs';
import { fixture } from '../helpers/paths.js';
import { budget, buildTar, buildZip, cutAt, paxMember, pseudoRandom, split, unpack } from '../helpers/unpack-harness.js';

const text = pseudoRandom(60_000, 1, true);
const rnd = pseudoRandom(9_000, 2);
const zeros = new Uint8Array(400_000);

interface Case {
  label: string;
  format: ArchiveFormat;
  bytes: Uint8Array;
  budget?: Partial<UnpackBudget>;
}

const zipAll = buildZip([
  { name: 'a.txt', data: text },
  { name: 'r.bin', data: rnd, method: 0 },
  { name: 'dd.txt', data: text.subarray(0, 20_000), descriptor: 'signed' },
  { name: 'du.bin', data: rnd, descriptor: 'unsigned' },
  { name: 'sd.bin', data: rnd.subarray(0, 3000), method: 0, descriptor: 'signed' },
  { name: 'z64', data: text.subarray(0, 5000), zip64: true, descriptor: 'signed' },
  { name: 'enc', data: rnd, method: 0, flags: 1 },
  { name: 'raw12', data: rnd.subarray(0, 700), method: 12 },
  { name: 'zeros', data: zeros },
]);
const gz = Buffer.concat([gzipSync(text), gzipSync(rnd), gzipSync(zeros)]);
const tar = buildTar([
  paxMember({ path: 'pax/long/' + 'p'.repeat(150) }),
  { name: 'x', data: rnd },
  { name: '././@LongLink', type: 'L', data: Buffer.from('gnu/' + 'l'.repeat(200) + '\0'), format: 'gnu' },
  { name: 'y', data: text.subarray(0, 777), format: 'gnu' },
  { name: 'd/', type: '5' },
  { name: 'z', data: rnd.subarray(0, 1) },
]);

const bz = readFileSync(fixture('unpack', 'text250k-rnd30k.bz2'));

const cases: Case[] = [
  { label: 'zip', format: 'zip', bytes: zipAll },
  // Cut inside the last entry's data (the central directory is never parsed).
  { label: 'zip truncated', format: 'zip', bytes: zipAll.subarray(0, Buffer.from(zipAll).readUInt32LE(zipAll.length - 6) - 50) },
  { label: 'zip unpacked-bytes', format: 'zip', bytes: zipAll, budget: { maxUnpackedBytes: 123_457 } },
  { label: 'zip ratio', format: 'zip', bytes: zipAll, budget: { maxRatio: 20, ratioGraceBytes: 50_000 } },
  { label: 'zip entries', format: 'zip', bytes: zipAll, budget: { maxEntries: 4 } },
  { label: 'gzip', format: 'gzip', bytes: gz },
  { label: 'gzip truncated', format: 'gzip', bytes: gz.subarray(0, gz.length - 100) },
  { label: 'gzip ratio', format: 'gzip', bytes: gz, budget: { maxRatio: 10, ratioGraceBytes: 70_000 } },
  { label: 'gzip corrupt', format: 'gzip', bytes: Buffer.concat([gz.subarray(0, 5000), Buffer.from([0xff, 0xff, 0xff]), gz.subarray(5003)]) },
  { label: 'tar', format: 'tar', bytes: tar },
  { label: 'tar truncated', format: 'tar', bytes: tar.subarray(0, 3000) },
  { label: 'tar.gz', format: 'gzip', bytes: gzipSync(tar) },
  { label: 'bzip2', format: 'bzip2', bytes: bz },
  { label: 'bzip2 truncated', format: 'bzip2', bytes: bz.subarray(0, 40_000) },
  { label: 'bzip2 unpacked-bytes', format: 'bzip2', bytes: bz, budget: { maxUnpackedBytes: 150_001 } },
  { label: 'bzip2 ratio', format: 'bzip2', bytes: readFileSync(fixture('unpack', 'zeros64m.bz2')) },
];

const trace = (c: Case, chunks: Uint8Array[]) => unpack(c.format, chunks, budget(c.budget)).events;

describe('unpackers are chunking-invariant', () => {
  for (const c of cases) {
    it(c.label, () => {
      const ref = trace(c, [c.bytes]);
      assert.ok(ref.length > 0);
      assert.deepEqual(trace(c, split(c.bytes, 1)), ref, '1-byte chunks');
      assert.deepEqual(trace(c, split(c.bytes, 8191)), ref, 'odd chunks');
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: c.bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
          assert.deepEqual(trace(c, cutAt(c.bytes, cuts)), ref);
        }),
        { numRuns: 25 },
      );
    });
  }

  it('each case exercises what its label says', () => {
    const ev = (label: string) => trace(cases.find((c) => c.label === label)!, [cases.find((c) => c.label === label)!.bytes]).join('\n');
    assert.match(ev('zip'), /encrypted enc/);
    assert.doesNotMatch(ev('zip'), /corrupt|limit/);
    assert.match(ev('zip truncated'), /corrupt/);
    assert.match(ev('zip unpacked-bytes'), /limit unpacked-bytes/);
    assert.match(ev('zip ratio'), /limit ratio/);
    assert.match(ev('zip entries'), /limit archive-entries/);
    assert.match(ev('gzip ratio'), /limit ratio/);
    assert.match(ev('gzip corrupt'), /corrupt/);
    assert.match(ev('tar truncated'), /corrupt/);
    assert.match(ev('bzip2 truncated'), /corrupt/);
    assert.match(ev('bzip2 unpacked-bytes'), /limit unpacked-bytes/);
    assert.match(ev('bzip2 ratio'), /limit ratio/);
  });
});
