/** mime-headers.test.ts — structured header values, RFC 2231 parameters, RFC 2047 words. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContentType, parseDisposition, parseTransferEncoding, pickFilename, parseStructured } from '../../src/core/mime/header-parse.js';
import { decodeEncodedWords } from '../../src/core/mime/rfc2047.js';
import { assembleParams } from '../../src/core/mime/rfc2231.js';

test('Content-Type: case, comments, quoting, junk', () => {
  const ct = parseContentType('Multipart/Mixed (a comment); BOUNDARY="=_a \\"q\\" b"; charset=us-ascii (c)');
  assert.equal(ct.value, 'multipart/mixed');
  assert.equal(ct.params.get('boundary'), '=_a "q" b');
  assert.equal(ct.params.get('charset'), 'us-ascii (c)', 'unquoted values run to the next ;');
  assert.equal(parseContentType('text').value, '', 'no subtype: invalid');
  assert.equal(parseContentType('text/plain/x').value, '');
  assert.equal(parseContentType(undefined).value, '');
  assert.equal(parseContentType('application/octet-stream; name=my file.exe').params.get('name'), 'my file.exe');
  assert.equal(parseContentType('a/b; ;; x ; name="unterminated').params.get('name'), 'unterminated');
  assert.equal(parseContentType('a/b; name="first"; NAME="second"').params.get('name'), 'first', 'first param wins');
});

test('Content-Transfer-Encoding and Content-Disposition tokens', () => {
  assert.equal(parseTransferEncoding(' BASE64 (why not)'), 'base64');
  assert.equal(parseTransferEncoding(undefined), '');
  assert.equal(parseDisposition('Attachment; filename=a.exe').value, 'attachment');
  assert.equal(parseDisposition('bad value; x=y').value, '');
});

test('RFC 2231: continuations, charsets, order independence, precedence', () => {
  const p = assembleParams([
    ['filename*1', ' two'],
    ['filename*0*', "utf-8'en'%E2%82%AC"],
    ['filename*2*', '%C3%A9'],
  ]);
  assert.equal(p.get('filename'), '€ twoé');
  assert.equal(assembleParams([['name*', "iso-8859-1''caf%E9"]]).get('name'), 'café');
  assert.equal(assembleParams([['name*', "windows-1252''%80"]]).get('name'), '€');
  assert.equal(assembleParams([['name*', "no-such-charset''%E9"]]).get('name'), 'é', 'unknown charset: latin1');
  assert.equal(assembleParams([['name', 'plain'], ['name*', "utf-8''ext"]]).get('name'), 'ext', '2231 beats plain');
  assert.equal(assembleParams([['f*0', 'a'], ['f*2', 'c']]).get('f'), 'a', 'stops at a gap');
  assert.equal(assembleParams([['name*', 'no-quotes%41']]).get('name'), 'no-quotesA');
});

test('RFC 2047: B and Q, adjacent words, split multibyte, malformed', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?B?0J/RgNC40LLQtdGC?='), 'Привет');
  assert.equal(decodeEncodedWords('=?iso-8859-1?q?caf=E9_au_lait?='), 'café au lait');
  assert.equal(decodeEncodedWords('=?utf-8?q?a?= \t =?utf-8?q?b?='), 'ab', 'whitespace between words dropped');
  assert.equal(decodeEncodedWords('=?utf-8?q?a?= x =?utf-8?q?b?='), 'a x b', 'text between words kept');
  assert.equal(decodeEncodedWords('=?utf-8?q?=E2=82?= =?utf-8?q?=AC?='), '€', 'bytes joined before decoding');
  assert.equal(decodeEncodedWords('=?utf-8*en?Q?x?='), 'x', 'RFC 2231 language suffix');
  assert.equal(decodeEncodedWords('=?utf-8?X?abc?='), '=?utf-8?X?abc?=', 'unknown encoding left alone');
  assert.equal(decodeEncodedWords('plain.txt'), 'plain.txt');
  assert.equal(decodeEncodedWords('\xc3\xa9.txt'), 'é.txt', 'raw UTF-8 bytes (latin1 string) read as UTF-8');
  assert.equal(decodeEncodedWords('\xe9.txt'), 'é.txt', 'invalid UTF-8 stays latin1');
});

test('filename: Content-Disposition beats Content-Type name; encoded-words in quoted names', () => {
  const cd = parseDisposition('attachment; filename="=?UTF-8?B?0JA=?=.exe"');
  const ct = parseContentType('application/x-msdownload; name="other.exe"');
  assert.equal(pickFilename(cd, ct), 'А.exe');
  assert.equal(pickFilename(parseDisposition('inline'), ct), 'other.exe');
  assert.equal(pickFilename(parseDisposition('attachment; filename=""'), ct), 'other.exe', 'empty filename counts as absent');
  assert.equal(pickFilename(parseDisposition(undefined), parseContentType(undefined)), undefined);
  assert.equal(parseStructured('x; a = "b" junk ; c=d').params.get('a'), 'b');
  assert.equal(parseStructured('x; a = "b" junk ; c=d').params.get('c'), 'd');
});

test('contentTypeReadings: the strict reading first, then what lenient clients read', async () => {
  const { contentTypeReadings } = await import('../../src/core/mime/header-parse.js');
  const r = (v: string) => contentTypeReadings(v).map((x) => `${x.type}|${x.boundary ?? '-'}`);
  assert.deepEqual(r('text/plain; charset=us-ascii'), ['text/plain|-'], 'a plain value has one reading');
  assert.deepEqual(r('multipart/mixed; boundary=b1'), ['multipart/mixed|b1']);
  assert.deepEqual(r('"multipart/mixed"; boundary=b1'), ['|b1', 'multipart/mixed|b1']);
  assert.deepEqual(r('multipart/mixed boundary=b1'), ['|-', '|b1', 'multipart/mixed|-', 'multipart/mixed|b1']);
  assert.deepEqual(r('multipart/mixed; boundary=a; boundary=b'), ['multipart/mixed|a', 'multipart/mixed|b']);
  assert.deepEqual(r('multipart/mixed; boundary="a\0b"'), ['multipart/mixed|a\0b', 'multipart/mixed|a']);
});

test('name candidates: every source, RFC 2231 three ways, NUL cuts, charsets', async () => {
  const { NameCollector } = await import('../../src/core/mime/names.js');
  const names = (...hs: string[]) => {
    const c = new NameCollector();
    for (const h of hs) c.addStructured(h);
    return c.names;
  };
  assert.deepEqual(names('attachment; filename="a.exe\0.txt"'), ['a.exe\0.txt', 'a.exe']);
  assert.ok(names('attachment; filename*0="inv"; filename*2="oice.exe"').includes('invoice.exe'), 'gaps ignored');
  assert.ok(names('attachment; filename*0="inv"; filename*2="oice.exe"').includes('inv'), 'and stopping at the gap');
  assert.ok(names('attachment; filename*0="a"; filename*99999999999="b.exe"').includes('ab.exe'), 'huge index');
  const many = Array.from({ length: 1001 }, (_, i) => `filename*${i}="${i === 1000 ? '.exe' : 'x'}"`).join('; ');
  assert.ok(names(`attachment; ${many}`).some((n) => n.endsWith('x.exe')), 'more than 1000 sections');
  assert.ok(names('x/y; name="=?utf-7?Q?a+AC4-exe?="').includes('a.exe'), 'UTF-7');
  assert.ok(names("x/y; name*=utf-16''%00a%00.%00e%00x%00e").includes('a.exe'), 'unmarked UTF-16 read both ways');
  assert.ok(names('x/y name="a.exe"').includes('a.exe'), 'no `;` before the parameter');
  assert.ok(names("attachment; filename=\"safe.txt\"; filename*=utf-8''evil.exe").includes('evil.exe'));
  assert.ok(names("attachment; filename=\"safe.txt\"; filename*=utf-8''evil.exe").includes('safe.txt'));
  assert.deepEqual(names('text/plain; charset=utf-8'), [], 'no name, no candidates');
  const c = new NameCollector();
  c.addPlain('http://example.org/a/run.exe?x=1');
  assert.ok(c.names.includes('http://example.org/a/run.exe'), 'Content-Location without the query');
});

test('charsets: UTF-7 and UTF-32 (not in WHATWG TextDecoder), variants', async () => {
  const { decodeCharset, charsetVariants } = await import('../../src/core/mime/charset.js');
  assert.equal(decodeCharset(Buffer.from('Hi +AGEAYgBj- 1+-2'), 'utf-7'), 'Hi abc 1+2');
  assert.equal(decodeCharset(Buffer.from([0, 0, 0, 0x61, 0, 0, 0, 0x2e]), 'utf-32be'), 'a.');
  assert.equal(decodeCharset(Buffer.from([0x61, 0, 0, 0, 0x2e, 0, 0, 0]), 'utf-32le'), 'a.');
  const v = charsetVariants(Buffer.from([0xc3, 0xa9]), 'iso-8859-1');
  assert.ok(v.includes('Ã©') && v.includes('é'), v.join());
});
