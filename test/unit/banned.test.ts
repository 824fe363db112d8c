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

test('a name is also read cut at its first NUL (C clients)', () => {
  assert.match(bannedNameReason('a.exe\u0000.txt', set) ?? '', /\.exe/);
  assert.equal(bannedNameReason('a.txt\u0000.exe', set)?.includes('.exe'), true, 'whole name: NUL stripped');
  assert.equal(bannedNameReason('\u0000a.exe', set)?.includes('.exe'), true);
});

test('the reviewed default list: each addition has a reason; common documents stay allowed', async () => {
  const { BANNED_EXTENSION_REASONS } = await import('../../src/core/banned.js');
  for (const e of ['one', 'xll', 'url', 'msc', 'appx', 'msix', 'vhd', 'vhdx', 'html', 'htm', 'svg', 'library-ms', 'searchconnector-ms', 'rdp', 'iqy']) {
    assert.ok(set.has(e), e);
    assert.ok((BANNED_EXTENSION_REASONS[e] ?? '').length > 20, `${e} has a reason`);
  }
  for (const n of ['a.pdf', 'a.docx', 'a.xlsx', 'a.png', 'a.jpg', 'a.txt', 'a.csv', 'a.zip', 'a.eml', 'a.ics']) assert.equal(bannedNameReason(n, set), null, n);
});
