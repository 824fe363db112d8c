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
