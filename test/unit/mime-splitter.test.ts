/**
 * mime-splitter.test.ts — exact body bytes, paths, limits and boundedness of MimeSplitter.
 * (Whole-message behaviour is in test/golden; chunking in test/property.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeSplitter } from '../../src/core/mime/mime-splitter.js';
import { DEFAULT_LIMITS, type Limits } from '../../src/core/limits.js';
import type { MimeHandler } from '../../src/core/mime/mime-events.js';
import { collectParts, traceMime } from '../helpers/mime-trace.js';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');
const lim = (o: Partial<Limits>): Limits => ({ ...DEFAULT_LIMITS, ...o });

function events(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS, chunk = 0) {
  const ev: string[] = [];
  const h: MimeHandler = {
    onHeader: (p, n, v) => ev.push(`h ${p}|${n}|${v}`),
    onPartStart: (i) => ev.push(`start ${i.path} ${i.role} ${i.contentType}`),
    onPartData: (c) => ev.push(`data ${Buffer.from(c).toString('latin1')}`),
    onPartEnd: () => ev.push('end'),
    onLimit: (w, p) => ev.push(`limit ${w} ${p}`),
    onWarning: (c, p) => ev.push(`warn ${c} ${p}`),
  };
  const s = new MimeSplitter(h, limits);
  if (chunk > 0) for (let i = 0; i < bytes.length; i += chunk) s.write(bytes.subarray(i, i + chunk));
  else s.write(bytes);
  s.end();
  return ev;
}

test('the CRLF before a delimiter belongs to the delimiter; inner line ends are kept', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=b\n\n--b\n\nline1\nline2\n\n--b\nContent-Type: text/plain\n\n\n--b\n\n--b--\n');
  for (const chunk of [0, 1, 3]) {
    const parts = collectParts(m, chunk ? [chunk] : []);
    assert.equal(parts.get('1')!.data, 'line1\r\nline2\r\n', `chunk ${chunk}`);
    assert.equal(parts.get('2')!.data, '', 'a blank line then the delimiter: empty body');
    assert.equal(parts.get('3')!.data, '');
    assert.equal(parts.has('(preamble)'), false, 'empty preamble is not emitted');
    assert.equal(parts.has('(epilogue)'), false, 'the CRLF ending the close delimiter is not an epilogue');
  }
});

test('bare LF and mixed line endings; body directly after the header', () => {
  const m = Buffer.from('Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\na\r\nb\n--q\r\n\nc\n--q--', 'latin1');
  const parts = collectParts(m, [1]);
  assert.equal(parts.get('1')!.data, 'a\r\nb');
  assert.equal(parts.get('2')!.data, 'c');
  assert.equal(parts.get('2')!.info.contentType, '');
});

test('single-part message: path 1, depth 0, every byte of the body passes unchanged', () => {
  const body = 'x\r\n--not-a-boundary\r\n\r\ny\r\n';
  const ev = events(crlf('Subject: a\n b\nX-Case: V\n\n').length ? Buffer.concat([crlf('Subject: a\n b\nX-Case: V\n\n'), Buffer.from(body)]) : Buffer.alloc(0), DEFAULT_LIMITS, 2);
  assert.deepEqual(ev.slice(0, 3), ['h |Subject|a b', 'h |X-Case|V', 'start 1 leaf ']);
  assert.equal(ev.filter((e) => e.startsWith('data ')).map((e) => e.slice(5)).join(''), body);
  assert.equal(ev.at(-1), 'end');
});

test('empty input gives one empty leaf', () => {
  assert.deepEqual(events(new Uint8Array(0)), ['start 1 leaf ', 'end']);
});

test('first Content-Type / CTE / Content-Disposition win; later ones warn', () => {
  const m = crlf('Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=z\nContent-Transfer-Encoding: 7bit\ncontent-transfer-encoding: base64\n\n--z\n\nx\n');
  const ev = events(m);
  assert.ok(ev.includes('warn duplicate-content-type '));
  assert.ok(ev.includes('warn duplicate-content-transfer-encoding '));
  const parts = collectParts(m);
  assert.equal(parts.get('1')!.info.contentType, 'text/plain');
  assert.equal(parts.get('1')!.info.transferEncoding, '7bit');
  assert.equal(parts.get('1')!.data, '--z\r\n\r\nx\r\n', 'not split: the multipart header lost');
});

test('longest open boundary wins; an outer boundary closes the inner multipart', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=abc\n\n--abc\nContent-Type: multipart/mixed; boundary=abcdef\n\n--abcdef\n\ninner\n--abcdef--\n--abc\n\nouter\n--abc--\n');
  const t = traceMime(m);
  assert.doesNotMatch(t, /warn/);
  const parts = collectParts(m);
  assert.equal(parts.get('1.1')!.data, 'inner');
  assert.equal(parts.get('2')!.data, 'outer');
  const unclosed = crlf('Content-Type: multipart/mixed; boundary=abc\n\n--abc\nContent-Type: multipart/mixed; boundary=abcdef\n\n--abcdef\n\ninner\n--abc\n\nouter\n--abc--\n');
  assert.match(traceMime(unclosed), /warn missing-close-boundary 1\n/);
  assert.equal(collectParts(unclosed).get('2')!.data, 'outer');
});

test('mime-depth: the too-deep multipart becomes an opaque leaf holding its children', () => {
  const m = crlf(
    'Content-Type: multipart/mixed; boundary=l0\n\n--l0\nContent-Type: multipart/mixed; boundary=l1\n\n--l1\nContent-Type: multipart/mixed; boundary=l2\n\n--l2\n\ndeep\n--l2--\n--l1--\n--l0--\n',
  );
  const ev = events(m, lim({ mimeDepth: 2 }));
  assert.ok(ev.includes('limit mime-depth 1.1'), ev.join('\n'));
  const parts = collectParts(m, [], lim({ mimeDepth: 2 }));
  assert.equal(parts.get('1.1')!.info.contentType, 'multipart/mixed');
  assert.equal(parts.get('1.1')!.data, '--l2\r\n\r\ndeep\r\n--l2--');
  assert.equal(events(m, lim({ mimeDepth: 3 })).some((e) => e.startsWith('limit')), false);
});

test('mime-parts: the rest of the message becomes one opaque leaf, still delivered', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=p\n\n--p\n\none\n--p\n\ntwo\n--p\nContent-Type: text/html\n\nthree\n--p--\ntail\n');
  const ev = events(m, lim({ mimeParts: 2 }));
  assert.equal(ev.filter((e) => e.startsWith('limit')).join(), 'limit mime-parts 2');
  const parts = collectParts(m, [1], lim({ mimeParts: 2 }));
  assert.deepEqual([...parts.keys()], ['1', '2']);
  assert.equal(parts.get('2')!.data, '\r\ntwo\r\n--p\r\nContent-Type: text/html\r\n\r\nthree\r\n--p--\r\ntail\r\n');
});

test('header-fields: fields past the limit are neither emitted nor interpreted', () => {
  const m = crlf('A: 1\nB: 2\nContent-Type: multipart/mixed; boundary=f\n\n--f\n\nx\n--f--\n');
  const ev = events(m, lim({ headerFields: 2 }));
  assert.deepEqual(ev.slice(0, 4), ['h |A|1', 'h |B|2', 'limit header-fields ', 'start 1 leaf ']);
});

test('header-bytes: the header block ends at the limit and the rest is scanned as body', () => {
  const m = crlf('Subject: ' + 'x'.repeat(50) + '\nX-Later: 1\nX-More: 2\n\nbody\n');
  const ev = events(m, lim({ headerBytes: 70 }), 7);
  const norm = (e: string[]) => [e.filter((x) => !x.startsWith('data ')), e.filter((x) => x.startsWith('data ')).map((x) => x.slice(5)).join('')];
  assert.deepEqual(norm(events(m, lim({ headerBytes: 70 }), 1)), norm(ev), 'byte by byte: same cut');
  assert.deepEqual(norm(events(m, lim({ headerBytes: 70 }))), norm(ev), 'whole: same cut');
  assert.ok(ev.includes('limit header-bytes '));
  assert.equal(ev.filter((e) => e.startsWith('h ')).length, 1);
  const data = ev.filter((e) => e.startsWith('data ')).map((e) => e.slice(5)).join('');
  assert.equal(data, 'X-Later: 1\r\nX-More: 2\r\n\r\nbody\r\n');
});

test('header-line: a long field is cut to the limit, the message goes on, memory stays bounded', () => {
  const limits = lim({ headerLineBytes: 1000 });
  let maxCarry = 0;
  const ev: string[] = [];
  const s = new MimeSplitter(
    {
      onHeader: (_p, n, v) => ev.push(`${n}:${v.length}`),
      onPartStart: (i) => ev.push(`start ${i.path}`),
      onPartData: (c) => ev.push(`data ${c.length}`),
      onPartEnd: () => ev.push('end'),
      onLimit: (w) => ev.push(`limit ${w}`),
    },
    limits,
  );
  const m = crlf('X-Long: ' + 'y'.repeat(200_000) + '\nSubject: ok\n\nb');
  for (let i = 0; i < m.length; i += 7) {
    s.write(m.subarray(i, i + 7));
    maxCarry = Math.max(maxCarry, s.carryBytes);
  }
  s.end();
  assert.ok(maxCarry <= 2 * 1000 + 2, `carry grew to ${maxCarry}`);
  assert.deepEqual(ev, ['limit header-line', 'X-Long:992', 'Subject:2', 'start 1', 'data 1', 'end']);
});

test('body carry stays within the longest delimiter, whatever the chunking', () => {
  const b = 'B'.repeat(200);
  const body = ('--' + b.slice(0, 150) + 'x\r\n' + '-'.repeat(300) + '\r\nline\r\n').repeat(200);
  const m = crlf(`Content-Type: multipart/mixed; boundary=${b}\n\n--${b}\n\n`);
  const all = Buffer.concat([m, Buffer.from(body), crlf(`\n--${b}--\n`)]);
  let got = '';
  let maxCarry = 0;
  const s = new MimeSplitter({ onPartStart() {}, onPartData: (c) => void (got += Buffer.from(c).toString('latin1')), onPartEnd() {}, onLimit() {} }, DEFAULT_LIMITS);
  for (let i = 0; i < all.length; i += 13) {
    s.write(all.subarray(i, i + 13));
    if (i > m.length) maxCarry = Math.max(maxCarry, s.carryBytes); // body only: header lines have their own limit
  }
  s.end();
  assert.equal(got.length, body.length);
  assert.equal(got, body);
  assert.ok(maxCarry <= b.length + 2 + 4, `carry ${maxCarry}`);
});

test('boundary-length: an over-long boundary makes the multipart one leaf', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=' + 'k'.repeat(20) + '\n\n--' + 'k'.repeat(20) + '\n\nx\n');
  const ev = events(m, lim({ boundaryBytes: 19 }));
  assert.deepEqual(ev.slice(1, 3), ['limit boundary-length ', 'start 1 leaf multipart/mixed']);
  assert.equal(events(m, lim({ boundaryBytes: 20 })).some((e) => e.startsWith('limit')), false);
});

test('multipart/digest children default to message/rfc822; elsewhere the type stays empty', () => {
  const d = crlf('Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: x\n\nhi\n--d--\n');
  assert.equal(collectParts(d).get('1')!.info.contentType, 'message/rfc822');
  const mixed = crlf('Content-Type: multipart/mixed; boundary=d\n\n--d\n\nSubject: x\n\nhi\n--d--\n');
  assert.equal(collectParts(mixed).get('1')!.info.contentType, '');
});

test('message/rfc822 is a leaf: its inner boundaries are not split', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=i\n\n--i\n\nx\n--i--\n--o--\n');
  const parts = collectParts(m);
  assert.deepEqual([...parts.keys()], ['1']);
  assert.equal(parts.get('1')!.data, 'Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--');
});

test('paths: nested numbering, preamble and epilogue paths', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=a\n\npre\n--a\n\n1\n--a\nContent-Type: multipart/alternative; boundary=b\n\npre2\n--b\n\n2.1\n--b--\nepi2\n--a--\nepi\n');
  const parts = collectParts(m);
  assert.deepEqual([...parts.keys()], ['(preamble)', '1', '2/(preamble)', '2.1', '2/(epilogue)', '(epilogue)']);
  assert.equal(parts.get('2/(epilogue)')!.data, 'epi2');
  assert.equal(parts.get('2/(epilogue)')!.info.role, 'epilogue');
  assert.equal(parts.get('2.1')!.info.depth, 2);
  assert.equal(parts.get('(epilogue)')!.data, 'epi\r\n');
});

test('write() after end() is ignored and end() is idempotent', () => {
  const ev: string[] = [];
  const s = new MimeSplitter({ onPartStart: () => ev.push('s'), onPartData: () => ev.push('d'), onPartEnd: () => ev.push('e'), onLimit() {} }, DEFAULT_LIMITS);
  s.write(crlf('A: b\n\nx'));
  s.end();
  s.write(crlf('more'));
  s.end();
  assert.deepEqual(ev, ['s', 'd', 'e']);
});

test('a large multipart base64 body passes through the splitter intact', () => {
  const line = Buffer.from('QUJD'.repeat(19) + '\r\n');
  const body = Buffer.alloc(line.length * 200_000);
  for (let i = 0; i < 200_000; i++) line.copy(body, i * line.length);
  const m = Buffer.concat([crlf('Content-Type: multipart/mixed; boundary=t\n\n--t\nContent-Transfer-Encoding: base64\n\n'), body, crlf('\n--t--\n')]);
  let n = 0;
  const s = new MimeSplitter({ onPartStart() {}, onPartData: (c) => void (n += c.length), onPartEnd() {}, onLimit() {} }, DEFAULT_LIMITS);
  for (let i = 0; i < m.length; i += 65536) s.write(m.subarray(i, i + 65536));
  s.end();
  assert.equal(n, body.length, 'the CRLF before the close delimiter is not data');
});

test('a nested multipart reusing its parent boundary: the innermost wins', () => {
  const m = crlf('Content-Type: multipart/mixed; boundary=s\n\n--s\nContent-Type: multipart/mixed; boundary=s\n\n--s\n\ninner\n--s--\n--s\n\nouter\n--s--\n');
  const parts = collectParts(m);
  assert.deepEqual([...parts.keys()], ['1.1', '2']);
  assert.equal(parts.get('1.1')!.data, 'inner');
  assert.equal(parts.get('2')!.data, 'outer');
});

test('every warning the splitter emits is a listed code', async () => {
  const { MIME_WARNINGS } = await import('../../src/core/mime/mime-splitter.js');
  const { readdirSync, readFileSync } = await import('node:fs');
  const { fixture } = await import('../helpers/paths.js');
  const seen = new Set<string>();
  for (const f of readdirSync(fixture('mime')).filter((x) => x.endsWith('.trace')))
    for (const m of readFileSync(fixture('mime', f), 'utf8').matchAll(/^warn (\S+)/gm)) seen.add(m[1]!);
  assert.ok(seen.size >= 6, [...seen].join());
  for (const w of seen) assert.ok((MIME_WARNINGS as readonly string[]).includes(w), w);
});
