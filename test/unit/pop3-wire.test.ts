/**
 * The POP3 front's byte-level parts: the upstream response reader (status lines, multi-line
 * bodies, dot-unstuffing, terminators, SASL continuations), the client command reader, the
 * cushion (wire bytes addressed by content offset), the CAPA filter and command table, and
 * the closing bytes of a cut message — read back by our own MIME splitter (the oracle
 * parsers, Python's email package, are in the Dovecot integration test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ResponseReader, type Expect, type ResponseEvent } from '../../src/pop3/response-reader.js';
import { CommandReader } from '../../src/pop3/command-reader.js';
import { Cushion } from '../../src/pop3/cushion.js';
import { closingBytes, noticeText } from '../../src/pop3/defang.js';
import { filterCapaLine, parseCommand } from '../../src/pop3/pop3-commands.js';
import { MimeSplitter } from '../../src/core/mime/mime-splitter.js';
import { DEFAULT_LIMITS } from '../../src/core/index.js';

interface Read {
  statuses: string[];
  content: string[];
  wire: string[];
  ends: string[];
  other: string[];
}

/** Feed `input` in `sizes` chunks with the given expectations; collect per response. */
function read(input: Buffer, expects: Expect[], sizes: number[]): Read {
  const r = new ResponseReader(200);
  for (const e of expects) r.expect(e);
  const out: Read = { statuses: [], content: [], wire: [], ends: [], other: [] };
  let c = '';
  let w = '';
  const handle = (ev: ResponseEvent) => {
    if (ev.type === 'status') out.statuses.push(`${ev.ok ? 'ok' : ev.continuation ? 'cont' : 'err'}${ev.multi ? '+' : ''} ${ev.line.toString('latin1')}`);
    else if (ev.type === 'data') {
      for (const p of ev.pieces) {
        c += Buffer.from(p.bytes).toString('latin1');
        w += (p.dot ? '.' : '') + Buffer.from(p.bytes).toString('latin1');
      }
    } else if (ev.type === 'end') {
      out.content.push(c);
      out.wire.push(w);
      out.ends.push(ev.line.toString('latin1'));
      c = w = '';
    } else out.other.push(ev.type);
  };
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = sizes[k++ % sizes.length]!;
    r.push(input.subarray(i, i + n));
    i += n;
    for (let ev = r.next(); ev; ev = r.next()) handle(ev);
  }
  return out;
}

const SESSION = [
  '+OK Dovecot ready. <1.2@host>\r\n',
  '+OK 2 messages:\r\n1 120\r\n2 300\r\n.\r\n',
  '+OK 42 octets\r\n',
  'From: a\r\n\r\n..hidden dot line\r\n...two\r\n.\r\n', // body of RETR
  '-ERR no such message\r\n', // a RETR that fails: no body
  '+ \r\n', // SASL continuation
  '+OK Logged in.\r\n',
].join('');

test('responses are framed by the expectations, bodies un-stuffed, whatever the chunking', () => {
  const expects: Expect[] = ['single', 'multi', 'multi', 'multi', 'sasl'];
  const whole = read(Buffer.from(SESSION, 'latin1'), expects, [1 << 20]);
  assert.deepEqual(whole.statuses, [
    'ok +OK Dovecot ready. <1.2@host>\r\n',
    'ok+ +OK 2 messages:\r\n',
    'ok+ +OK 42 octets\r\n',
    'err -ERR no such message\r\n',
    'cont +  \r\n'.replace('+  ', '+ '),
    'ok +OK Logged in.\r\n',
  ]);
  assert.deepEqual(whole.content, ['1 120\r\n2 300\r\n', 'From: a\r\n\r\n.hidden dot line\r\n..two\r\n']);
  assert.deepEqual(whole.wire, ['1 120\r\n2 300\r\n', 'From: a\r\n\r\n..hidden dot line\r\n...two\r\n']);
  assert.deepEqual(whole.ends, ['.\r\n', '.\r\n']);
  assert.deepEqual(whole.other, []);
  for (const sizes of [[1], [2], [3], [5, 1, 7], [13]]) assert.deepEqual(read(Buffer.from(SESSION, 'latin1'), expects, sizes), whole, `sizes ${sizes}`);
});

test('a bare-LF terminator ends a body (as poplib and fetchmail read it); "." CR x is a stuffed line', () => {
  const input = Buffer.from('+OK\r\nline\n.\n+OK\r\n.\rx\r\n.\r\n', 'latin1');
  for (const sizes of [[1], [100]]) {
    const got = read(input, ['multi', 'multi'], sizes);
    assert.deepEqual(got.content, ['line\n', '\rx\r\n']);
    assert.deepEqual(got.wire, ['line\n', '.\rx\r\n']);
    assert.deepEqual(got.ends, ['.\n', '.\r\n']);
  }
});

test('status lines over the limit and responses nobody asked for are reported', () => {
  assert.deepEqual(read(Buffer.from('+OK ' + 'x'.repeat(300) + '\r\n'), ['single'], [50]).other, ['status-too-long']);
  assert.deepEqual(read(Buffer.from('+OK\r\n+OK extra\r\n'), ['single'], [100]).other, ['unsolicited']);
});

test('property: any body, stuffed as RFC 1939 says, reads back as itself, and its wire bytes pass unchanged', () => {
  const line = fc.stringMatching(/^[.a-z \r]{0,12}$/);
  fc.assert(
    fc.property(fc.array(line, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), (lines, sizes) => {
      const content = lines.map((l) => l + '\r\n').join('');
      const wire = lines.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('');
      const got = read(Buffer.from(`+OK\r\n${wire}.\r\n+OK next\r\n`, 'latin1'), ['multi', 'single'], sizes);
      assert.deepEqual(got.content, [content]);
      assert.deepEqual(got.wire, [wire]);
      assert.equal(got.statuses.length, 2);
    }),
    { seed: 0x90b3, numRuns: 300 },
  );
});

test('command lines: CRLF or LF, long lines reported once and skipped, SASL lines may be longer', () => {
  const r = new CommandReader(20);
  r.push(Buffer.from('USER u\r\nPASS p\nSTAT\r'));
  r.push(Buffer.from('\n' + 'X'.repeat(50) + '\r\nNOOP\r\n'));
  const got: string[] = [];
  for (let ev = r.next(); ev; ev = r.next()) got.push(ev.type === 'line' ? ev.line.toString() : ev.type);
  assert.deepEqual(got, ['USER u', 'PASS p', 'STAT', 'too-long', 'NOOP']);
  r.maxLine = 100;
  r.push(Buffer.from('Y'.repeat(50) + '\r\n'));
  assert.equal(r.next()?.type, 'line');
  r.push(Buffer.from('partial'));
  r.reset();
  r.push(Buffer.from('QUIT\r\n'));
  const q = r.next();
  assert.equal(q?.type === 'line' && q.line.toString(), 'QUIT');
});

test('the cushion gives back exact wire bytes up to a content offset, splitting pieces and keeping their dots', () => {
  const c = new Cushion();
  c.add({ bytes: Buffer.from('abc\r\n'), dot: false });
  c.add({ bytes: Buffer.from('.x\r\n'), dot: true }); // wire "..x\r\n", content ".x\r\n"
  c.add({ bytes: Buffer.from('tail'), dot: false });
  const s = (parts: Uint8Array[]) => Buffer.concat(parts).toString('latin1');
  assert.equal(c.held, 13);
  assert.equal(s(c.take(3)), 'abc');
  assert.equal(c.atLineStart, false);
  assert.equal(s(c.take(5)), '\r\n');
  assert.equal(c.atLineStart, true);
  assert.equal(s(c.take(6)), '..'); // the stuffing dot goes out with the first content byte
  assert.equal(s(c.take(100)), 'x\r\ntail');
  assert.equal(c.released, 13);
  assert.equal(c.wireOut, 14);
});

test('commands: only known ones go upstream, with the response shape they get', () => {
  assert.deepEqual(parseCommand('retr 3'), { kind: 'forward', verb: 'RETR', expect: 'multi', scan: 'RETR', msg: '3' });
  assert.deepEqual(parseCommand('TOP 3 10'), { kind: 'forward', verb: 'TOP', expect: 'multi', scan: 'TOP', msg: '3 10' });
  assert.equal(parseCommand('LIST').kind === 'forward' && (parseCommand('LIST') as { expect: string }).expect, 'multi');
  assert.equal((parseCommand('LIST 2') as { expect: string }).expect, 'single');
  assert.equal((parseCommand('UIDL') as { expect: string }).expect, 'multi');
  assert.equal((parseCommand('AUTH PLAIN') as { expect: string }).expect, 'sasl');
  assert.equal((parseCommand('AUTH') as { expect: string }).expect, 'multi');
  assert.equal(parseCommand('STLS').kind, 'stls');
  assert.equal(parseCommand('XTND XLST').kind, 'local');
  assert.equal(parseCommand('RETR x').kind, 'local');
  assert.equal(parseCommand('TOP 1').kind, 'local');
  assert.equal(filterCapaLine('STLS'), null);
  assert.equal(filterCapaLine('stls'), null);
  assert.equal(filterCapaLine('SASL PLAIN'), 'SASL PLAIN');
});

/** What our splitter makes of a message: leaf parts with their bodies, and any warnings. */
function parse(msg: string): { parts: { path: string; type: string; body: string }[]; warnings: string[] } {
  const parts: { path: string; type: string; body: string }[] = [];
  const warnings: string[] = [];
  let cur: { path: string; type: string; body: string } | null = null;
  const sp = new MimeSplitter(
    {
      onPartStart: (p) => {
        cur = { path: p.path, type: p.contentType, body: '' };
        parts.push(cur);
      },
      onPartData: (c) => {
        cur!.body += Buffer.from(c).toString('latin1');
      },
      onPartEnd: () => {},
      onLimit: () => {},
      onWarning: (w) => warnings.push(w),
    },
    DEFAULT_LIMITS,
  );
  sp.write(Buffer.from(msg, 'latin1'));
  sp.end();
  return { parts, warnings };
}

test('a cut message is closed properly: the notice is a part of its own and every multipart ends', () => {
  const text = noticeText('virus found: X (in 2.1/a.exe)');
  const delivered = 'Subject: s\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nhi\r\n--o\r\nContent-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA';
  const at = { kind: 'body' as const, offset: delivered.indexOf('AAAA'), path: '2.1', delimiters: ['--o', '--i'], encoding: 'base64' };
  const out = delivered + closingBytes({ at, offset: delivered.length, atLineStart: false }, text, 'Infected (X)').toString('latin1');
  const p = parse(out);
  assert.deepEqual(p.warnings, [], out);
  // (empty preambles and epilogues are not parts)
  assert.deepEqual(p.parts.map((x) => x.path), ['1', '2.1', '2.2']);
  assert.equal(p.parts.find((x) => x.path === '2.1')!.body, 'AAAA');
  const notice = p.parts.find((x) => x.path === '2.2')!;
  assert.equal(notice.type, 'text/plain');
  assert.equal(notice.body, text);
  assert.ok(out.includes('X-Virus-Status: Infected (X)\r\n'));
  assert.ok(out.endsWith('\r\n'));

  // cut exactly where a part's header block begins: the notice takes that part's place
  const d2 = 'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\n';
  const at2 = { kind: 'header' as const, offset: d2.length, path: '1', delimiters: ['--o'], encoding: '' };
  const p2 = parse(d2 + closingBytes({ at: at2, offset: d2.length, atLineStart: true }, text, null).toString('latin1'));
  assert.deepEqual(p2.warnings, []);
  assert.deepEqual(p2.parts.map((x) => [x.path, x.body]), [['1', text]]);

  // a single-part message: the notice follows the truncated body
  const d3 = 'Subject: s\r\n\r\nsome text';
  const top = { kind: 'body' as const, offset: 14, path: '1', delimiters: [], encoding: '' };
  const p3 = parse(d3 + closingBytes({ at: top, offset: d3.length, atLineStart: false }, text, null).toString('latin1'));
  assert.equal(p3.parts[0]!.body, `some text\r\n\r\n${text}\r\n`);

  // nothing delivered at all: a minimal message that is only the notice
  const none = { kind: 'header' as const, offset: 0, path: '', delimiters: [], encoding: '' };
  const p4 = parse(closingBytes({ at: none, offset: 0, atLineStart: true }, text, null).toString('latin1'));
  assert.equal(p4.parts.length, 1);
  assert.equal(p4.parts[0]!.body, text + '\r\n');

  // no line of ours starts with "." (no stuffing needed before the POP3 terminator)
  for (const s of [out]) for (const l of s.slice(delivered.length).split('\r\n')) assert.ok(!l.startsWith('.'), l);
});
