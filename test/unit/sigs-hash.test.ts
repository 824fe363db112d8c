/**
 * sigs-hash.test.ts — .hdb/.hsb hash signatures and .fp/.sfp allow-lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignatureDb, SignatureFileError, SIG_ERROR_CODES } from '../../src/core/scan/sigs/signature-db.js';
import { HashSet, StreamHasher, hashNeeds, parseHashLine } from '../../src/core/scan/sigs/hash-db.js';
import type { SourceKind } from '../../src/core/scan/sigs/sig-loader.js';

const FILE = Buffer.from('this is a harmless file with a BODYMARK inside, used as a hash target\n');
const OTHER = Buffer.from('this is a harmless file with a BODYMARK inside, used as a hash targeT\n');
const h = (algo: string, d: Uint8Array) => createHash(algo).update(d).digest('hex');
const BODY = `Body.Mark:0:*:${Buffer.from('BODYMARK').toString('hex')}`;

function db(...srcs: [SourceKind, string, string][]): SignatureDb {
  return SignatureDb.fromSources(srcs.map(([kind, label, text]) => ({ kind, label, text })));
}
function feed(d: SignatureDb, data: Uint8Array, chunk = 7): { fromWrite: string | null; atEnd: string | null } {
  const m = d.createMatcher();
  let fromWrite: string | null = null;
  for (let i = 0; i < data.length && fromWrite === null; i += chunk) fromWrite = m.write(data.subarray(i, i + chunk));
  return { fromWrite, atEnd: m.end() };
}

test('.hdb md5:size:name detects at end(), not from write()', () => {
  const d = db(['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length}:Test.Hash.Md5`]);
  assert.equal(d.count, 2);
  assert.deepEqual(feed(d, FILE), { fromWrite: null, atEnd: 'Test.Hash.Md5' });
  assert.deepEqual(feed(d, OTHER), { fromWrite: null, atEnd: null });
});

test('.hdb size must match unless it is *', () => {
  assert.equal(feed(db(['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length + 1}:X`]), FILE).atEnd, null);
  assert.equal(feed(db(['hash', 'a.hdb', `${h('md5', FILE)}:*:X:73`]), FILE).atEnd, 'X');
});

test('.hsb sha256 and sha1, upper-case hex accepted', () => {
  const d = db(['hash', 'a.hsb', `${h('sha256', FILE).toUpperCase()}:${FILE.length}:S256\n${h('sha1', OTHER)}:*:S1`]);
  assert.equal(feed(d, FILE).atEnd, 'S256');
  assert.equal(feed(d, OTHER).atEnd, 'S1');
  assert.equal(feed(d, Buffer.from('nothing')).atEnd, null);
});

test('without an allow-list a body hit is reported immediately from write()', () => {
  const d = db(['ndb', 'b.ndb', BODY]);
  const r = feed(d, FILE);
  assert.equal(r.fromWrite, 'Body.Mark');
  assert.equal(r.atEnd, 'Body.Mark');
});

test('.fp allow-list: an allow-listed file is clean despite a body hit', () => {
  const d = db(['ndb', 'b.ndb', BODY], ['allow', 'c.fp', `${h('md5', FILE)}:${FILE.length}:Clean.File`]);
  assert.equal(d.allowCount, 1);
  assert.deepEqual(feed(d, FILE), { fromWrite: null, atEnd: null });
  // Not allow-listed: the held body hit is reported at end().
  assert.deepEqual(feed(d, OTHER), { fromWrite: null, atEnd: 'Body.Mark' });
});

test('.sfp sha256 allow-list overrides a hash detection; size is checked', () => {
  const hdb: [SourceKind, string, string] = ['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length}:Bad`];
  assert.equal(feed(db(hdb, ['allow', 'c.sfp', `${h('sha256', FILE)}:${FILE.length}:Ok`]), FILE).atEnd, null);
  assert.equal(feed(db(hdb, ['allow', 'c.sfp', `${h('sha256', FILE)}:${FILE.length + 1}:Ok`]), FILE).atEnd, 'Bad');
});

test('EICAR with an allow-list loaded is held until end()', () => {
  const eicar = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
  const d = db(['allow', 'c.fp', `${h('md5', FILE)}:*:Ok`]);
  assert.deepEqual(feed(d, eicar, 100), { fromWrite: null, atEnd: 'Eicar-Test-Signature' });
});

test('a hash is computed only up to the largest size its signatures list; results unchanged', () => {
  // Two md5 sizes and one sha256 size: each algorithm is bounded by its own largest size.
  const big = Buffer.alloc(5000, 0x41);
  const d = db(['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length}:Small\n${h('md5', big)}:${big.length}:Big\n${h('sha256', OTHER)}:${OTHER.length}:S`]);
  assert.equal(feed(d, FILE).atEnd, 'Small');
  assert.equal(feed(d, big, 333).atEnd, 'Big');
  assert.equal(feed(d, OTHER).atEnd, 'S');
  // One byte past the largest size: no match, whatever the chunking.
  assert.equal(feed(d, Buffer.concat([big, Buffer.from('x')]), 1000).atEnd, null);
  const set = new HashSet();
  for (const line of [`${h('md5', FILE)}:10:A`, `${h('md5', FILE)}:5000:B`, `${h('sha1', FILE)}:20:C`]) set.add(parseHashLine(line, 'x.hdb', 1)!);
  assert.deepEqual(hashNeeds([set]), [
    { algo: 'md5', sizes: new Set([10, 5000]), maxSize: 5000 },
    { algo: 'sha1', sizes: new Set([20]), maxSize: 20 },
  ]);
  const needs = hashNeeds([set]);
  // md5 (max 5000 > HOLD_BYTES) is hashed as it streams; sha1 (max 20) holds the bytes.
  const s = new StreamHasher(needs);
  s.update(new Uint8Array(10));
  const at10 = new StreamHasher(needs);
  at10.update(new Uint8Array(10));
  assert.deepEqual([...at10.finish().digests.keys()], ['md5'], 'a digest only for a size some signature names');
  s.update(new Uint8Array(10));
  assert.equal(s.active, true);
  assert.deepEqual(s.finish().digests, new Map([['sha1', h('sha1', new Uint8Array(20))]]));
  const t = new StreamHasher(needs);
  t.update(new Uint8Array(5001));
  assert.equal(t.active, false);
  assert.deepEqual(t.finish(), { size: 5001, digests: new Map() });
  const u = new StreamHasher(needs);
  for (let i = 0; i < 50; i++) u.update(new Uint8Array(100).fill(i));
  const whole = Buffer.concat(Array.from({ length: 50 }, (_, i) => new Uint8Array(100).fill(i)));
  assert.deepEqual(u.finish().digests, new Map([['md5', h('md5', whole)]]));
});

test('held small-file hashes: a copy, not the caller\'s borrowed chunk, is hashed at the end', () => {
  const d = db(['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length}:Small`]);
  const m = d.createMatcher();
  const buf = Buffer.from(FILE);
  for (let i = 0; i < buf.length; i += 5) {
    const piece = Buffer.from(buf.subarray(i, i + 5));
    m.write(piece);
    piece.fill(0xa5); // the producer reuses its buffer once write() returned
  }
  assert.equal(m.end(), 'Small');
});

test('a `*` size (here in an allow-list) keeps its algorithm hashed at any size', () => {
  const big = Buffer.alloc(100_000, 0x42);
  const d = db(['hash', 'a.hdb', `${h('md5', FILE)}:${FILE.length}:Small`], ['allow', 'c.fp', `${h('md5', big)}:*:Ok`]);
  assert.equal(feed(d, big, 4096).atEnd, null);
  assert.equal(feed(d, FILE).atEnd, 'Small');
  const all = db(['hash', 'a.hdb', `${h('md5', big)}:*:Any:73`]);
  assert.equal(feed(all, big, 4096).atEnd, 'Any');
  // An empty file has a digest too.
  const empty = db(['hash', 'a.hdb', `${h('md5', new Uint8Array(0))}:0:Empty`]);
  assert.equal(feed(empty, new Uint8Array(0)).atEnd, 'Empty');
});

test('hash signatures excluded by FLEVEL are counted as skipped', () => {
  const d = db(['hash', 'a.hdb', `${h('md5', FILE)}:*:New:999\n${h('md5', OTHER)}:*:Old:1:20`]);
  assert.equal(d.skipped.flevel, 2);
  assert.equal(feed(d, FILE).atEnd, null);
});

for (const [line, why] of [
  ['abc:12:Name', 'short hash'],
  [`${'g'.repeat(32)}:12:Name`, 'non-hex hash'],
  [`${'a'.repeat(32)}:12x:Name`, 'bad size'],
  [`${'a'.repeat(32)}:12:`, 'empty name'],
  [`${'a'.repeat(32)}:12`, 'missing name'],
] as const) {
  test(`bad hash line (${why}) throws SignatureFileError`, () => {
    assert.throws(
      () => db(['hash', 'z.hdb', `\n${line}`]),
      (e: unknown) => e instanceof SignatureFileError && e.code === SIG_ERROR_CODES.syntax && e.file === 'z.hdb' && e.line === 2,
    );
  });
}
