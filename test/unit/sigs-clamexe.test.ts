/**
 * sigs-clamexe.test.ts — Debian's ClamAV test file clam.exe (package clamav-testfiles)
 * detected by an .hdb line built from its MD5 and by .ndb body signatures over its bytes,
 * loaded from files on disk and scanned through BuiltinScanner in small chunks.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import type { ScanResult } from '../../src/core/types.js';

const CLAM_EXE = '/usr/share/clamav-testfiles/clam.exe';
let exe: Buffer;
let dir: string;
before(async () => {
  exe = await readFile(CLAM_EXE);
  dir = await mkdtemp(join(tmpdir(), 'sigs-clamexe-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function scanChunks(db: SignatureDb, data: Uint8Array, size: number): Promise<{ early: ScanResult | null; final: ScanResult }> {
  const s = new BuiltinScanner(db).open({ where: '1', archiveDepth: 0 });
  let early: ScanResult | null = null;
  for (let i = 0; i < data.length && early === null; i += size) early = s.write(data.subarray(i, i + size));
  return { early, final: await s.end() };
}

test('clam.exe: .hdb line from its MD5', async () => {
  assert.ok(exe.length > 200, 'clam.exe present');
  const p = join(dir, 'clam.hdb');
  await writeFile(p, `${createHash('md5').update(exe).digest('hex')}:${exe.length}:Clamav.Test.File-6\n`);
  const db = await SignatureDb.load([p]);
  for (const size of [1, 64, 4096]) {
    const r = await scanChunks(db, exe, size);
    assert.equal(r.early, null, 'hash signatures are decided at end()');
    assert.deepEqual(r.final, { kind: 'infected', name: 'Clamav.Test.File-6' });
  }
  const altered = Buffer.from(exe);
  altered[exe.length - 1] ^= 1;
  assert.deepEqual((await scanChunks(db, altered, 64)).final, { kind: 'clean' });
});

test('clam.exe: .ndb body signatures over its bytes (static, wildcard, offset)', async () => {
  const seg = (a: number, b: number) => exe.subarray(a, b).toString('hex');
  const lines = [
    `ClamExe.Static:1:*:${seg(0x100, 0x118)}`,
    `ClamExe.Wild:0:*:${seg(0x60, 0x68)}????${seg(0x6a, 0x70)}*${seg(0x180, 0x188)}`,
    `ClamExe.Offset:0:${0x40}:${seg(0x40, 0x50)}`,
  ];
  for (const line of lines) {
    const p = join(dir, 'one.ndb');
    await writeFile(p, line + '\n');
    const db = await SignatureDb.load([p]);
    const name = line.split(':')[0]!;
    for (const size of [1, 7, 512]) {
      const r = await scanChunks(db, exe, size);
      assert.deepEqual(r.early, { kind: 'infected', name }, `${name} chunk ${size}`);
    }
    // Near miss: change one byte inside the matched area.
    const altered = Buffer.from(exe);
    const at = name === 'ClamExe.Static' ? 0x10a : name === 'ClamExe.Wild' ? 0x184 : 0x48;
    altered[at] ^= 0x10;
    assert.deepEqual((await scanChunks(db, altered, 33)).final, { kind: 'clean' }, name + ' near miss');
  }
});
