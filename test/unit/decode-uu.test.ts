/** decode-uu.test.ts — uuencode / begin-base64 extraction from decoded text. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UuExtractor } from '../../src/core/decode/uu-extractor.js';

function extract(text: string, chunk = 0): [string, string][] {
  const files: [string, string][] = [];
  const ex = new UuExtractor((name) => {
    const parts: Buffer[] = [];
    return { write: (c) => void parts.push(Buffer.from(c)), end: () => void files.push([name, Buffer.concat(parts).toString('latin1')]) };
  });
  const b = Buffer.from(text, 'latin1');
  if (chunk > 0) for (let i = 0; i < b.length; i += chunk) ex.write(b.subarray(i, i + chunk));
  else ex.write(b);
  ex.end();
  return files;
}

// "Cat" and "Hello, world!" uuencoded by hand from the algorithm (known vectors).
const CAT = 'begin 644 cat.txt\n#0V%T\n`\nend\n';

test('classic uuencode block', () => {
  for (const chunk of [0, 1, 5]) assert.deepEqual(extract(`some text\n${CAT}more text\n`, chunk), [['cat.txt', 'Cat']], `chunk ${chunk}`);
});

test('CRLF lines, spaces in the name, stripped trailing spaces', () => {
  // "Hi!" = 0x48 0x69 0x21 → sextets 18 6 36 33 → "2&DA"; a length-2 line with "Hi" = "2&D "
  const t = 'begin 600 my file.bin\r\n"2&D \r\nend\r\n';
  const stripped = 'begin 600 my file.bin\r\n"2&D\r\nend\r\n';
  assert.deepEqual(extract(t), [['my file.bin', 'Hi']]);
  assert.deepEqual(extract(stripped), [['my file.bin', 'Hi']]);
});

test('missing end: the file closes at the first non-uu line, or at end()', () => {
  assert.deepEqual(extract('begin 644 a\n#0V%T\nthis is prose, not uuencode\n'), [['a', 'Cat']]);
  assert.deepEqual(extract('begin 644 a\n#0V%T'), [['a', 'Cat']]);
});

test('begin-base64 blocks and several files', () => {
  const t = `${CAT}begin-base64 644 b.txt\nSGVsbG8s\nIHdvcmxk\n====\n${CAT.replace('cat.txt', 'c2')}`;
  assert.deepEqual(extract(t, 3), [['cat.txt', 'Cat'], ['b.txt', 'Hello, world'], ['c2', 'Cat']]);
});

test('not begin lines: indented, no mode, non-octal mode, mid-line', () => {
  assert.deepEqual(extract(' begin 644 a\n#0V%T\nend\n'), []);
  assert.deepEqual(extract('begin a\n#0V%T\nend\n'), []);
  assert.deepEqual(extract('begin 999 a\n#0V%T\nend\n'), []);
  assert.deepEqual(extract('we begin 644 a\n#0V%T\nend\n'), []);
  assert.deepEqual(extract('beginning of the text\n'), []);
});

test('a very long line cannot grow the carry (name truncated, no crash)', () => {
  const files = extract('begin 644 ' + 'n'.repeat(5000) + '\n#0V%T\nend\n', 100);
  assert.equal(files.length, 1);
  assert.ok(files[0]![0].length < 1024);
  assert.equal(files[0]![1], 'Cat');
});

test('begin lines as Python and ripmime take them: odd modes, no name, upper case; trailing garbage ignored', () => {
  for (const begin of ['begin 0o644 cat.txt', 'begin +644 cat.txt', 'begin 6_44 cat.txt', 'BEGIN 644 cat.txt', 'begin 0644\tcat.txt']) {
    assert.deepEqual(extract(`${begin}\n#0V%T\nend\n`), [['cat.txt', 'Cat']], begin);
  }
  assert.deepEqual(extract('begin 644\n#0V%T\nend\n'), [['', 'Cat']], 'no name');
  assert.deepEqual(extract('begin 644 \n#0V%T\nend\n'), [['', 'Cat']], 'empty name');
  assert.deepEqual(extract('begin 644 a\n#0V%Tjunk\nend\n'), [['a', 'Cat']], 'Python decodes the characters the length needs');
  assert.deepEqual(extract('begin the meeting\n#0V%T\nend\n'), [], 'a mode must be octal');
  assert.deepEqual(extract('begin 8 a\n#0V%T\nend\n'), []);
});
