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
import { budget, buildTar, buildZip, cutAt, paxMember, pseudoRandom, split, tarHeader, unpack, ZipWriter } from '../helpers/unpack-harness.js';

const text = pseudoRandom(60_000, 1, true);
const rnd = pseudoRandom(9_000, 2);
const zeros = new Uint8Array(400_000);

interface Case {
  label: string;
  format: ArchiveFormat | 'zip-embedded';
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

// Zips read every way: behind junk, a second one in the comment, descriptors of unknown size, a hidden header.
const zipInner = buildZip([{ name: 'in.txt', data: text.subarray(0, 3000) }]);
const zipEmbedded = (() => {
  const w = new ZipWriter(1000);
  w.raw(pseudoRandom(1000, 5, true));
  w.entry({ name: 'u.bin', data: rnd, method: 0, descriptor: 'unsigned' });
  w.entry({ name: 'd.txt', data: text.subarray(0, 9000), descriptor: 'signed' });
  return Buffer.concat([w.finish({ comment: zipInner }), pseudoRandom(500, 6)]);
})();
const zipHidden = (() => {
  const w = new ZipWriter();
  const inner = ZipWriter.localBytes({ name: 'hidden.txt', data: text.subarray(0, 5000) });
  const at = w.entry({ name: 'cover.bin', data: Buffer.concat([rnd.subarray(0, 100), inner.bytes]), method: 0 });
  w.centralRecord({ ...inner.fields, offset: at + 30 + 'cover.bin'.length + 100 });
  return w.finish();
})();
const zipDecoyJunk = Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00'), new Uint8Array(16), Buffer.from('\x30\x00\x00\x00'), new Uint8Array(48).fill(3), buildZip([{ name: 'z.txt', data: text.subarray(0, 2000) }])]);

/** An old GNU sparse member ('S'): regions of `data` at the map's offsets in a file of `real` bytes. */
function gnuSparse(name: string, map: [number, number][], real: number, data: Uint8Array): Uint8Array {
  const o8 = (v: number) => Buffer.from(v.toString(8).padStart(11, '0') + '\0');
  const h = tarHeader({
    name, type: 'S', format: 'gnu', size: data.length,
    patch: (x) => {
      map.forEach(([o, n], k) => {
        x.set(o8(o), 386 + 24 * k);
        x.set(o8(n), 398 + 24 * k);
      });
      x.set(o8(real), 483);
    },
  });
  return Buffer.concat([h, data, new Uint8Array((512 - (data.length % 512)) % 512)]);
}
const map10 = Buffer.alloc(512);
map10.write('2\n100\n50\n70000\n900\n', 'latin1');
const tarSparse = Buffer.concat([
  gnuSparse('s.bin', [[1000, 700], [9000, 1300]], 20_000, rnd.subarray(0, 2000)),
  buildTar([
    paxMember({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'p10.bin', 'GNU.sparse.realsize': '80000' }),
    { name: 'GNUSparseFile.0/p10.bin', data: Buffer.concat([map10, rnd.subarray(0, 950)]) },
    paxMember({ 'GNU.sparse.map': '0,300,5000,200', 'GNU.sparse.size': '6000', 'GNU.sparse.name': 'p01.bin' }),
    { name: 'GNUSparseFile.0/p01.bin', data: rnd.subarray(0, 500) },
  ]),
  buildTar([{ name: 'after-end.txt', data: text.subarray(0, 700), format: 'v7' }]),
]);
const tarSparseBomb = Buffer.concat([gnuSparse('big.bin', [[0, 100], [40_000_000, 100]], 50_000_000, rnd.subarray(0, 200)), new Uint8Array(1024)]);

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
  { label: 'bzip2 randomised', format: 'bzip2', bytes: readFileSync(fixture('unpack', 'randomised.bz2')) },
  { label: 'zip embedded (junk, descriptors, zip in comment)', format: 'zip-embedded', bytes: zipEmbedded },
  { label: 'zip embedded behind a decoy header', format: 'zip-embedded', bytes: zipDecoyJunk },
  { label: 'zip hidden local header', format: 'zip', bytes: zipHidden },
  { label: 'tar sparse (S, pax 1.0, pax 0.1), after the end', format: 'tar', bytes: tarSparse },
  { label: 'tar sparse holes trip ratio', format: 'tar', bytes: tarSparseBomb },
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
    assert.match(ev('bzip2 randomised'), /anomaly bzip2-randomised/);
    assert.match(ev('zip embedded (junk, descriptors, zip in comment)'), /entry u.bin[^]*entry d.txt[^]*entry in.txt/);
    assert.doesNotMatch(ev('zip embedded (junk, descriptors, zip in comment)'), /corrupt|!/);
    assert.match(ev('zip embedded behind a decoy header'), /entry z.txt/);
    assert.match(ev('zip hidden local header'), /anomaly zip-directory-mismatch!/);
    assert.match(ev('tar sparse (S, pax 1.0, pax 0.1), after the end'), /end s.bin 20000 [^]*end p10.bin 80000 [^]*end p01.bin 6000 [^]*tar-after-end[^]*end after-end.txt 700/);
    assert.match(ev('tar sparse holes trip ratio'), /limit ratio/);
  });
});
