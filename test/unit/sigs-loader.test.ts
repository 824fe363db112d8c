/**
 * sigs-loader.test.ts — loading files, directories and .cvd/.cld containers.
 * Containers are built here: 512-byte `ClamAV-VDB:` header + (gzip'd) tar.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SignatureDb, SignatureFileError, SIG_ERROR_CODES } from '../../src/core/scan/sigs/signature-db.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sigs-loader-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MARK = Buffer.from('CONTAINER-MARK-1');
const NDB = `Cvd.Mark:0:*:${MARK.toString('hex')}\n`;
const HASHED = Buffer.from('hash me please');
const HDB = `${createHash('md5').update(HASHED).digest('hex')}:${HASHED.length}:Cvd.Hash\n`;

function scan(db: SignatureDb, data: Uint8Array): string | null {
  const m = db.createMatcher();
  return m.write(data) ?? m.end();
}

/** Minimal ustar writer for the test fixtures. */
function tar(files: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of files) {
    const data = Buffer.from(text);
    const h = Buffer.alloc(512);
    h.write(name, 0, 'latin1');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function container(version: number | string, body: Buffer, md5 = createHash('md5').update(body).digest('hex')): Buffer {
  const header = `ClamAV-VDB:01 Jan 2025 00-00 +0000:${version}:2:90:${md5}:NOSIG:test:1735689600`;
  return Buffer.concat([Buffer.from(header.padEnd(512, ' '), 'latin1'), body]);
}

const MEMBERS: [string, string][] = [
  ['test.ndb', NDB],
  ['test.hdb', HDB],
  ['test.info', 'info\n'],
  ['COPYING', 'license\n'],
];

test('.cvd: header + gzip tar; members dispatched by extension; version from header', async () => {
  const p = join(dir, 'test.cvd');
  await writeFile(p, container(42, gzipSync(tar(MEMBERS))));
  const db = await SignatureDb.load([p]);
  assert.equal(db.version, 'test-42');
  assert.equal(db.count, 3); // ndb + hdb + EICAR
  assert.equal(db.unsupportedFilesSkipped, 2);
  assert.equal(scan(db, Buffer.concat([Buffer.from('xx'), MARK])), 'Cvd.Mark');
  assert.equal(scan(db, HASHED), 'Cvd.Hash');
  assert.equal(scan(db, Buffer.from('CONTAINER-MARK-2')), null);
});

test('.cld: plain tar and gzip tar are both accepted (sniffed)', async () => {
  for (const [name, body] of [
    ['plain.cld', tar(MEMBERS)],
    ['gz.cld', gzipSync(tar(MEMBERS))],
  ] as const) {
    const p = join(dir, name);
    await writeFile(p, container(7, body, 'x'.repeat(32)));
    const db = await SignatureDb.load([p]);
    assert.equal(db.version, name.replace('.cld', '') + '-7');
    assert.equal(scan(db, MARK), 'Cvd.Mark', name);
  }
});

test('.cld made by the system tar is read', async () => {
  const src = join(dir, 'systar');
  await mkdir(src);
  await writeFile(join(src, 'sys.ndb'), NDB);
  const t = execFileSync('tar', ['-C', src, '-cf', '-', 'sys.ndb']);
  const p = join(dir, 'sys.cld');
  await writeFile(p, container(3, t, ''));
  assert.equal(scan(await SignatureDb.load([p]), MARK), 'Cvd.Mark');
});

test('.cvd with a wrong MD5 is refused (SIG_CHECKSUM)', async () => {
  const p = join(dir, 'bad-md5.cvd');
  await writeFile(p, container(1, gzipSync(tar(MEMBERS)), '0'.repeat(32)));
  await assert.rejects(SignatureDb.load([p]), (e: unknown) => e instanceof SignatureFileError && e.code === SIG_ERROR_CODES.checksum && e.file === p);
});

test('broken containers are refused (SIG_CONTAINER)', async () => {
  const cases: [string, Buffer][] = [
    ['nohdr.cvd', Buffer.concat([Buffer.alloc(512, 0x20), gzipSync(tar(MEMBERS))])],
    ['short.cvd', Buffer.from('ClamAV-VDB:x:1')],
    ['badver.cld', container('v1', tar(MEMBERS))],
    ['badgz.cld', container(1, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]))],
    ['trunc.cld', container(1, tar(MEMBERS).subarray(0, 700))],
  ];
  for (const [name, data] of cases) {
    const p = join(dir, name);
    await writeFile(p, data);
    await assert.rejects(SignatureDb.load([p]), (e: unknown) => e instanceof SignatureFileError && e.code === SIG_ERROR_CODES.container, name);
  }
});

test('directory: supported files load, other ClamAV types are counted and skipped', async () => {
  const d = join(dir, 'db1');
  await mkdir(d);
  await writeFile(join(d, 'a.ndb'), NDB);
  await writeFile(join(d, 'b.hdb'), HDB);
  await writeFile(join(d, 'c.fp'), '');
  for (const n of ['x.ldb', 'y.cdb', 'z.info', 'w.ftm', 'v.ign2']) await writeFile(join(d, n), 'whatever:1:2\n');
  await mkdir(join(d, 'subdir'));
  const db = await SignatureDb.load([d]);
  assert.equal(db.unsupportedFilesSkipped, 5);
  assert.equal(db.count, 3);
  assert.match(db.version, /^local-[0-9a-f]{12}$/);
  assert.equal(scan(db, MARK), 'Cvd.Mark');
  assert.equal(scan(db, HASHED), 'Cvd.Hash');
  // The version changes with the content.
  await writeFile(join(d, 'a.ndb'), NDB + 'Other:0:*:41424344\n');
  const db2 = await SignatureDb.load([d]);
  assert.notEqual(db2.version, db.version);
});

test('directory with X.cvd and a newer X.cld uses the .cld only', async () => {
  const d = join(dir, 'db2');
  await mkdir(d);
  await writeFile(join(d, 'daily.cvd'), container(10, gzipSync(tar([['daily.ndb', 'Old:0:*:4f4c44444f4c4444\n']]))));
  await writeFile(join(d, 'daily.cld'), container(11, tar([['daily.ndb', NDB]]), ''));
  const db = await SignatureDb.load([d]);
  assert.equal(db.version, 'daily-11');
  assert.deepEqual(db.skippedFiles, [{ file: join(d, 'daily.cvd'), reason: 'superseded' }]);
  assert.equal(scan(db, MARK), 'Cvd.Mark');
  assert.equal(scan(db, Buffer.from('OLDDOLDD')), null);
});

test('a missing path is SIG_NOT_FOUND; a syntax error names the file and line', async () => {
  await assert.rejects(SignatureDb.load([join(dir, 'nope.ndb')]), (e: unknown) => e instanceof SignatureFileError && e.code === SIG_ERROR_CODES.notFound);
  const d = join(dir, 'db3');
  await mkdir(d);
  await writeFile(join(d, 'bad.ndb'), 'A:0:*:41424344\r\n\r\nB:0:*:41zz\r\n');
  await assert.rejects(SignatureDb.load([d]), (e: unknown) => {
    assert.ok(e instanceof SignatureFileError);
    assert.equal(e.file, join(d, 'bad.ndb'));
    assert.equal(e.line, 3);
    assert.equal(e.code, SIG_ERROR_CODES.syntax);
    return true;
  });
});

test('a syntax error inside a container names container!member', async () => {
  const p = join(dir, 'syn.cld');
  await writeFile(p, container(1, tar([['in.ndb', 'Bad:0:*:4\n']]), ''));
  await assert.rejects(SignatureDb.load([p]), (e: unknown) => e instanceof SignatureFileError && e.file === `${p}!in.ndb` && e.line === 1);
});
