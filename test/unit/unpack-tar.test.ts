import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildTar, paxMember, pseudoRandom, sha256, split, tarHeader, unpack, whole } from '../helpers/unpack-harness.js';
import { parseNumber } from '../../src/core/unpack/tar-unpacker.js';

const a = pseudoRandom(10_000, 1);
const b = pseudoRandom(512, 2);
const c = pseudoRandom(1, 3);
const sig = (t: ReturnType<typeof unpack>) => t.entries.map((e) => `${e.name}:${e.sha256.slice(0, 12)}:${e.ended}`);
const want = (...xs: [string, Uint8Array][]) => xs.map(([n, d]) => `${n}:${sha256(d).slice(0, 12)}:true`);

describe('tar unpacker', () => {
  it('unpacks ustar members with prefix, any chunking; skips dirs and links', () => {
    const tar = buildTar([
      { name: 'dir/', type: '5' },
      { name: 'a.bin', data: a, prefix: 'deep/path' },
      { name: 'link', type: '2', linkname: 'a.bin' },
      { name: 'hard', type: '1', linkname: 'a.bin' },
      { name: 'b.bin', data: b },
      { name: 'empty', data: new Uint8Array(0) },
      { name: 'c', data: c, type: '\0' },
    ]);
    for (const chunks of [whole(tar), split(tar, 1), split(tar, 511), split(tar, 513)]) {
      const t = unpack('tar', chunks);
      assert.deepEqual(t.corrupt, []);
      assert.deepEqual(sig(t), want(['deep/path/a.bin', a], ['b.bin', b], ['empty', new Uint8Array(0)], ['c', c]));
    }
  });

  it('emits members of unknown type flags and contiguous files', () => {
    const t = unpack('tar', [buildTar([{ name: 'odd', type: 'Z', data: b }, { name: 'cont', type: '7', data: c }])]);
    assert.deepEqual(sig(t), want(['odd', b], ['cont', c]));
  });

  it('applies GNU long names (L) and skips long link names (K)', () => {
    const long = 'x/'.repeat(150) + 'file.exe';
    const tar = buildTar([
      { name: '././@LongLink', type: 'L', data: Buffer.from(long + '\0'), format: 'gnu' },
      { name: 'trunc', data: a, format: 'gnu' },
      { name: '././@LongLink', type: 'K', data: Buffer.from('t'.repeat(300) + '\0'), format: 'gnu' },
      { name: 'sym', type: '2', format: 'gnu' },
      { name: 'after', data: c, format: 'gnu' },
    ]);
    const t = unpack('tar', split(tar, 100));
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(sig(t), want([long, a], ['after', c]));
  });

  it('applies pax path= and size=, ignores global headers', () => {
    const name = 'ünïcode/' + 'p'.repeat(200) + '.scr';
    const tar = buildTar([
      paxMember({ comment: 'hi' }, 'g'),
      paxMember({ path: name, mtime: '1.5' }),
      { name: 'short', data: a },
      paxMember({ size: String(b.length) }),
      { name: 'sized', data: b, size: 99 }, // header lies; pax size wins
      { name: 'plain', data: c },
    ]);
    const t = unpack('tar', split(tar, 7));
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(sig(t), want([name, a], ['sized', b], ['plain', c]));
  });

  it('reads base-256 sizes and rejects bad number fields', () => {
    const t = unpack('tar', [buildTar([{ name: 'big', data: a, base256: true }])]);
    assert.deepEqual(sig(t), want(['big', a]));
    assert.equal(parseNumber(Buffer.from('00000000012\0')), 10);
    assert.equal(parseNumber(Buffer.from('     17 \0\0\0\0')), 15);
    assert.equal(parseNumber(Buffer.from('0000000009\0\0')), null);
    assert.equal(parseNumber(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), null);
  });

  it('reports checksum errors, truncation and oversize pax data', () => {
    assert.match(unpack('tar', [buildTar([{ name: 'x', data: a, badChecksum: true }])]).corrupt[0] ?? '', /checksum/);
    const tar = buildTar([{ name: 'x', data: a }, { name: 'y', data: b }]);
    for (const cut of [100, 600, 5000, 10_752 + 300]) {
      const t = unpack('tar', split(tar.subarray(0, cut), 64));
      assert.equal(t.corrupt.length, 1, `cut ${cut}`);
      assert.ok(t.entries.every((e) => e.ended));
    }
    const hugePax = tarHeader({ name: 'p', type: 'x', size: 2 * 1024 * 1024 });
    assert.match(unpack('tar', [hugePax]).corrupt[0] ?? '', /too large/);
    const badPax = buildTar([{ name: 'p', type: 'x', data: Buffer.from('99 path=x\n') }, { name: 'q', data: c }]);
    assert.match(unpack('tar', [badPax]).corrupt[0] ?? '', /pax/);
  });

  it('accepts EOF at a header boundary and stops at two zero blocks', () => {
    const noEnd = buildTar([{ name: 'x', data: c }], false);
    assert.deepEqual(unpack('tar', [noEnd]).corrupt, []);
    const trailing = Buffer.concat([buildTar([{ name: 'x', data: c }]), Buffer.from('ignored trailing bytes')]);
    const t = unpack('tar', [trailing]);
    assert.deepEqual(t.corrupt, []);
    assert.equal(t.entries.length, 1);
  });

  it('counts regular members against the entry limit', () => {
    const specs = Array.from({ length: 8 }, (_, i) => ({ name: `f${i}`, data: c }));
    const t = unpack('tar', [buildTar(specs)], { unpackedBytes: 0, maxUnpackedBytes: 1e9, entries: 0, maxEntries: 5, maxRatio: 250, ratioGraceBytes: 1e6 });
    assert.deepEqual(t.limits, ['archive-entries']);
    assert.equal(t.entries.length, 5);
  });

  it('unpacks tars written by GNU tar (gnu and pax formats) and ClamAV clam.tar.gz', () => {
    const dir = mkdtempSync(join(tmpdir(), 'midstream-tar-'));
    try {
      // > 100 bytes in all: ustar splits it into prefix/name, GNU uses 'L', pax a path record.
      const longName = 'd'.repeat(80) + '/' + 'n'.repeat(60) + '.txt';
      mkdirSync(join(dir, 'src', 'd'.repeat(80)), { recursive: true });
      writeFileSync(join(dir, 'src', longName), a);
      writeFileSync(join(dir, 'src', 'small'), c);
      for (const fmt of ['gnu', 'pax', 'ustar']) {
        const out = join(dir, `t-${fmt}.tar`);
        execFileSync('tar', ['--format=' + fmt, '--sort=name', '-cf', out, '-C', join(dir, 'src'), '.']);
        const t = unpack('tar', split(readFileSync(out), 1000));
        assert.deepEqual(t.corrupt, [], fmt);
        assert.deepEqual(sig(t), want([`./${longName}`, a], [`./small`, c]), fmt);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const clam = gunzipSync(readFileSync('/usr/share/clamav-testfiles/clam.tar.gz'));
    const t = unpack('tar', [clam]);
    assert.deepEqual(t.corrupt, []);
    assert.deepEqual(t.entries.map((e) => e.name), ['clam.exe']);
  });
});
