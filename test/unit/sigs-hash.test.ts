/**
 * sigs-hash.test.ts — .hdb/.hsb hash signatures and .fp/.sfp allow-lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignatureDb, SignatureFileError, SIG_ERROR_CODES } from '../../src/core/scan/sigs/signature-db.js';
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
