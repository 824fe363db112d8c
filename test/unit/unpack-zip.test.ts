import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { budget, buildZip, pseudoRandom, sha256, split, unpack, whole } from '../helpers/unpack-harness.js';

const CLAM = '/usr/share/clamav-testfiles/';
const a = pseudoRandom(50_000, 1, true);
const b = pseudoRandom(20_000, 2);
const c = pseudoRandom(5, 3);

function names(t: ReturnType<typeof unpack>) {
  return t.entries.map((e) => `${e.name}:${e.sha256.slice(0, 12)}:${e.ended}`);
}
const expect = (...xs: [string, Uint8Array][]) => xs.map(([n, d]) => `${n}:${sha256(d).slice(0, 12)}:true`);

describe('zip unpacker', () => {
  it('unpacks a zip written by fflate (stored + deflate), any chunking', () => {
    const zip = zipSync({ 'docs/a.txt': a, 'b.bin': [b, { level: 0 }], 'dir/': new Uint8Array(0), 'c.exe': c });
    for (const chunks of [whole(zip), split(zip, 1), split(zip, 4095)]) {
      const t = unpack('zip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(names(t), expect(['docs/a.txt', a], ['b.bin', b], ['c.exe', c]));
    }
  });

  it('counts directories as entries without opening them', () => {
    const zip = zipSync({ 'dir/': new Uint8Array(0), 'x': c });
    const bud = budget();
    const t = unpack('zip', [zip], bud);
    assert.equal(t.entries.length, 1);
    assert.equal(bud.entries, 2);
  });

  it('follows data descriptors: deflate (signed and unsigned) and stored (signed)', () => {
    const zip = buildZip([
      { name: 'd1', data: a, descriptor: 'signed' },
      { name: 'd2', data: b, descriptor: 'unsigned' },
      { name: 's1', data: b, method: 0, descriptor: 'signed' },
      { name: 's-empty', data: new Uint8Array(0), method: 0, descriptor: 'signed' },
      { name: 'd3', data: c, descriptor: 'signed' },
    ]);
    for (const chunks of [whole(zip), split(zip, 1), split(zip, 1000)]) {
      const t = unpack('zip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(names(t), expect(['d1', a], ['d2', b], ['s1', b], ['s-empty', new Uint8Array(0)], ['d3', c]));
    }
  });

  it('stored data containing a fake descriptor signature is not cut short', () => {
    const tricky = Buffer.concat([b.subarray(0, 100), Buffer.from([0x50, 0x4b, 7, 8]), new Uint8Array(20).fill(0x50), b.subarray(100, 200)]);
    const zip = buildZip([{ name: 't', data: tricky, method: 0, descriptor: 'signed' }, { name: 'u', data: c }]);
    for (const chunks of [whole(zip), split(zip, 1), split(zip, 13)]) {
      const t = unpack('zip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(names(t), expect(['t', tricky], ['u', c]));
    }
  });

  it('stored data with an unsigned descriptor ends where the descriptor and the next record match', () => {
    // A 12-byte lookalike (wrong CRC) before a real signature must not end it early.
    const tricky = Buffer.concat([b.subarray(0, 300), new Uint8Array(12), Buffer.from('PK\x03\x04'), b.subarray(300, 600)]);
    const zip = buildZip([{ name: 's', data: tricky, method: 0, descriptor: 'unsigned' }, { name: 'n', data: c, method: 0, descriptor: 'unsigned' }]);
    for (const chunks of [whole(zip), split(zip, 1), split(zip, 13)]) {
      const t = unpack('zip', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(names(t), expect(['s', tricky], ['n', c]));
    }
  });

  it('reads ZIP64 sizes from the extra field, with and without descriptors', () => {
    const zip = buildZip([
      { name: 'z1', data: a, zip64: true },
      { name: 'z2', data: b, method: 0, zip64: true },
      { name: 'z3', data: a, zip64: true, descriptor: 'signed' },
      { name: 'z4', data: b, method: 0, zip64: true, descriptor: 'signed' },
    ]);
    const t = unpack('zip', split(zip, 77));
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(names(t), expect(['z1', a], ['z2', b], ['z3', a], ['z4', b]));
    assert.equal(t.entries[0]!.declaredSize, a.length);
  });

  it('reports encrypted entries and skips their data, also of unknown size (descriptor)', () => {
    const zip = buildZip([
      { name: 'secret.exe', data: b, method: 0, flags: 1 },
      { name: 'aes.doc', data: a, method: 99 },
      { name: 'plain', data: c },
    ]);
    const t = unpack('zip', split(zip, 5));
    assert.deepEqual(t.encrypted, ['secret.exe', 'aes.doc']);
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(names(t), expect(['plain', c]));
    const enc2 = buildZip([{ name: 'e', data: b, method: 0, flags: 1, descriptor: 'signed' }, { name: 'f', data: c }]);
    const t2 = unpack('zip', [enc2]);
    assert.deepEqual(t2.encrypted, ['e']);
    assert.deepEqual(t2.corrupt, []);
    assert.deepEqual(names(t2), expect(['f', c]));
  });

  it('emits entries of unsupported methods raw', () => {
    const raw = pseudoRandom(3000, 8);
    const zip = buildZip([{ name: 'bz.bin', data: raw, method: 12, usize: 9999 }, { name: 'n', data: c }]);
    const t = unpack('zip', [zip]);
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(names(t), expect(['bz.bin', raw], ['n', c]));
  });

  it('catches declared sizes that lie', () => {
    const real = buildZip([{ name: 'x', data: a }]);
    const csize = Buffer.from(real).readUInt32LE(18);
    const cases: [string, Parameters<typeof buildZip>[0][0]][] = [
      ['usize too small', { name: 'x', data: a, usize: 1000 }],
      ['usize too large', { name: 'x', data: a, usize: a.length + 1 }],
      ['csize too small', { name: 'x', data: a, csize: csize - 10 }],
      ['csize too large', { name: 'x', data: a, csize: csize + 10 }],
      ['crc wrong', { name: 'x', data: a, crc: 1234 }],
      ['stored csize != usize', { name: 'x', data: b, method: 0, usize: 10 }],
      ['descriptor crc wrong', { name: 'x', data: a, crc: 99, descriptor: 'signed' }],
      ['descriptor usize wrong', { name: 'x', data: a, usize: 5, descriptor: 'signed' }],
    ];
    for (const [what, spec] of cases) {
      for (const chunks of [whole, (z: Uint8Array) => split(z, 1)]) {
        const t = unpack('zip', chunks(buildZip([spec, { name: 'next', data: c }])));
        assert.equal(t.corrupt.length, 1, what);
        assert.ok(t.entries.every((e) => e.ended), what);
        assert.ok(t.entries.every((e) => e.size <= a.length && e.name === "x"), what);
      }
    }
  });

  it('reports truncation and a missing central directory', () => {
    const zip = Buffer.from(zipSync({ 'a': a, 'b': b }));
    const cdOffset = zip.readUInt32LE(zip.length - 6);
    for (const cut of [2, 20, 40, 500, cdOffset - 100, cdOffset - 1]) {
      const t = unpack('zip', split(zip.subarray(0, cut), 512));
      assert.equal(t.corrupt.length, 1, `cut ${cut}`);
      assert.match(t.corrupt[0]!, /truncated/);
    }
    const noCd = buildZip([{ name: 'a', data: c }], { centralDirectory: false });
    assert.match(unpack('zip', [noCd]).corrupt[0] ?? '', /central directory/);
  });

  it('accepts the empty zip and junk after the end record', () => {
    const empty = zipSync({});
    const t = unpack('zip', [empty]);
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries.length, 0);
    // After the end record we only look for a further archive.
    const withJunk = Buffer.concat([zipSync({ x: c }), Buffer.from('garbage after end')]);
    assert.deepEqual(unpack('zip', [withJunk]).corrupt, []);
  });

  it('rejects garbage in place of a local header', () => {
    const t = unpack('zip', [Buffer.from('PK\x03\x04'), new Uint8Array(26), Buffer.from('not a zip')]);
    assert.equal(t.corrupt.length, 1);
  });

  it('trips archive-entries at the limit and ends the open entry', () => {
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 20; i++) files[`f${i}`] = c;
    const bud = budget({ maxEntries: 10 });
    const t = unpack('zip', [zipSync(files)], bud);
    assert.deepEqual(t.limits, ['archive-entries']);
    assert.equal(t.entries.length, 10);
    assert.ok(t.entries.every((e) => e.ended));
  });

  it('unpacks ClamAV test archives clam.zip, clam.bz2.zip (raw method 12), clam.impl.zip', () => {
    const z = unpack('zip', split(readFileSync(CLAM + 'clam.zip'), 3), budget(), true);
    assert.deepEqual(z.corrupt, []);
    assert.deepEqual(z.entries.map((e) => e.name), ['clam.exe']);
    assert.equal(Buffer.from(z.data[0]!.subarray(0, 2)).toString(), 'MZ');
    assert.equal(z.data[0]!.length, readFileSync(CLAM + 'clam.exe').length);
    assert.equal(sha256(z.data[0]!), sha256(readFileSync(CLAM + 'clam.exe')));
    const bz = unpack('zip', [readFileSync(CLAM + 'clam.bz2.zip')], budget(), true);
    assert.deepEqual(bz.corrupt, []);
    assert.equal(bz.entries.length, 1);
    assert.equal(Buffer.from(bz.data[0]!.subarray(0, 3)).toString(), 'BZh'); // method 12 raw = a bzip2 stream
    const impl = unpack('zip', [readFileSync(CLAM + 'clam.impl.zip')]);
    assert.deepEqual(impl.corrupt, []);
    assert.equal(impl.entries.length, 1); // method 6 (implode): emitted raw
  });
});
