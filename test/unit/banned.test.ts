import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bannedNameReason, normalizeName, DEFAULT_BANNED_EXTENSIONS } from '../../src/core/banned.js';

const set = new Set(DEFAULT_BANNED_EXTENSIONS);

test('banned extensions: case, double extensions, trailing dots/spaces, directories', () => {
  for (const n of ['a.exe', 'A.EXE', 'invoice.pdf.exe', 'x.scr', 'run.exe.', 'run.exe . .', 'dir/sub/a.js', 'C:\\x\\y.bat', 'p.PS1', 'a.lnk', 'r.hta']) {
    assert.ok(bannedNameReason(n, set), n);
  }
  for (const n of ['a.pdf', 'exe', 'notes.exe.txt', 'archive.zip', 'a.jpeg', '']) {
    assert.equal(bannedNameReason(n, set), null, n);
  }
});

test('bidi override in a name is banned on its own', () => {
  assert.match(bannedNameReason('invoice\u202Egpj.exe', set) ?? '', /bidi/);
  assert.match(bannedNameReason('photo\u202Efdp.txt', set) ?? '', /bidi/);
});

test('normalizeName strips control chars and trailing dots and spaces', () => {
  assert.equal(normalizeName('A.Exe\u0000. '), 'a.exe');
  assert.equal(normalizeName('dir/B.TXT'), 'b.txt');
});
