/**
 * core-readings.test.ts — the core reads a mail every way a client might (issue #10,
 * classes 1-7), end to end: each case hides EICAR or a banned name from one reading only,
 * and the verdict is the same whatever the chunking. Plus what must stay unchanged for
 * normal mail (one reading, early verdicts, no anomaly recorded).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type Engine, type Verdict } from '../../src/core/index.js';
import { EICAR, EICAR_BYTES, multipartMessage, plainMessage, chunks } from '../helpers/mail-build.js';

const engineP = createEngine({ builtin: true });
const CRLF = '\r\n';
const b64 = (s: string | Uint8Array) => Buffer.from(typeof s === 'string' ? Buffer.from(s, 'latin1') : s).toString('base64');
const msg = (s: string) => Buffer.from(s, 'latin1');

async function scan(e: Engine, m: Uint8Array, size = m.length): Promise<{ v: Verdict; anomalies: string[] }> {
  const s = e.begin();
  for (const c of chunks(m, Math.max(1, size))) await s.push(c);
  const v = await s.end();
  return { v, anomalies: s.stats.anomalies };
}

/** The verdict, checked equal whole, byte by byte and at a few odd chunk sizes. */
async function verdict(m: Uint8Array): Promise<{ v: Verdict; anomalies: string[] }> {
  const e = await engineP;
  const whole = await scan(e, m);
  for (const n of [1, 3, 7, 64]) assert.deepEqual((await scan(e, m, n)).v, whole.v, `chunk size ${n}`);
  return whole;
}

const attachment = (extraHeaders: string, body = b64(EICAR), name = 'notes.txt') =>
  `Content-Type: application/octet-stream; name="${name}"${CRLF}Content-Transfer-Encoding: base64${CRLF}${extraHeaders}${CRLF}${body}${CRLF}`;

test('class 1: a junk line before Content-Type (mailparser skips it, Python ends the header)', async () => {
  const m = msg(`From: a@example.org${CRLF}this line is no field${CRLF}Content-Type: multipart/mixed; boundary=b1${CRLF}${CRLF}--b1${CRLF}${attachment('')}--b1--${CRLF}`);
  const { v, anomalies } = await verdict(m);
  assert.equal(v.kind, 'infected', JSON.stringify(v));
  assert.ok(anomalies.includes('header-junk-line@(message)'), anomalies.join());
});

test('class 1: `Content-Type : …` and a BOM before the header', async () => {
  const a = await verdict(msg(`From: a${CRLF}Content-Type : multipart/mixed; boundary=b1${CRLF}${CRLF}--b1${CRLF}${attachment('')}--b1--${CRLF}`));
  assert.equal(a.v.kind, 'infected');
  const b = await verdict(msg(`\xef\xbb\xbfContent-Type: multipart/mixed; boundary=b1${CRLF}${CRLF}--b1${CRLF}${attachment('')}--b1--${CRLF}`));
  assert.equal(b.v.kind, 'infected');
  assert.ok(b.anomalies.includes('bom@(message)'), b.anomalies.join());
});

test('class 1: a message with bare CR line ends only (Python reads it)', async () => {
  const m = msg(`From: a\rContent-Type: multipart/mixed; boundary=b1\r\r--b1\r${attachment('').replace(/\r\n/g, '\r')}--b1--\r`);
  const { v, anomalies } = await verdict(m);
  assert.equal(v.kind, 'infected');
  assert.ok(anomalies.some((x) => x.startsWith('bare-cr@')), anomalies.join());
});

test('class 2: two Content-Types, a quoted type, a missing `;`, two boundaries, NUL in the boundary', async () => {
  const body = `--b1${CRLF}${attachment('')}--b1--${CRLF}`;
  for (const ct of [
    `Content-Type: text/plain${CRLF}Content-Type: multipart/mixed; boundary=b1`,
    `Content-Type: "multipart/mixed"; boundary=b1`,
    `Content-Type: multipart/mixed boundary=b1`,
    `Content-Type: multipart/mixed; boundary=zz; boundary=b1`,
    `Content-Type: multipart/mixed; boundary="b1\x00zz"`,
  ]) {
    const { v } = await verdict(msg(`From: a${CRLF}${ct}${CRLF}${CRLF}${body}`));
    assert.equal(v.kind, 'infected', ct);
  }
});

test('class 2: two CTEs, 7bit first (the base64 reading finds EICAR)', async () => {
  const m = msg(`Content-Type: multipart/mixed; boundary=b1${CRLF}${CRLF}--b1${CRLF}Content-Type: application/octet-stream${CRLF}Content-Transfer-Encoding: 7bit${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${b64(EICAR)}${CRLF}--b1--${CRLF}`);
  assert.equal((await verdict(m)).v.kind, 'infected');
});

test('class 3: a multipart under base64 is read raw and decoded; under quoted-printable too', async () => {
  const inner = `--in${CRLF}Content-Type: text/plain${CRLF}${CRLF}${EICAR}${CRLF}--in--${CRLF}`;
  const m64 = msg(`Content-Type: multipart/mixed; boundary=in${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${b64(inner)}${CRLF}`);
  const a = await verdict(m64);
  assert.equal(a.v.kind, 'infected');
  assert.ok(a.anomalies.includes('encoded-multipart@(message)'), a.anomalies.join());
  // the raw reading (Python, mailparser): a base64 attachment inside a multipart "labelled" base64
  const raw = msg(`Content-Type: multipart/mixed; boundary=b1${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}--b1${CRLF}${attachment('')}--b1--${CRLF}`);
  assert.equal((await verdict(raw)).v.kind, 'infected');
});

test('class 4: `--b1x` and `--b1--x` (prefix readers), a closed boundary reused, boundary=""', async () => {
  const hidden = `Content-Type: text/plain; name="a.exe"${CRLF}${CRLF}x${CRLF}`;
  for (const [label, body] of [
    ['prefix', `--b1${CRLF}${CRLF}one${CRLF}--b1x${CRLF}${hidden}--b1--${CRLF}`],
    ['after close', `--b1${CRLF}${CRLF}one${CRLF}--b1--${CRLF}--b1${CRLF}${hidden}`],
  ] as const) {
    const { v } = await verdict(msg(`Content-Type: multipart/mixed; boundary=b1${CRLF}${CRLF}${body}`));
    assert.equal(v.kind, 'banned', label);
  }
  const empty = msg(`Content-Type: multipart/mixed; boundary=""${CRLF}${CRLF}--${CRLF}${hidden}----${CRLF}`);
  assert.equal((await verdict(empty)).v.kind, 'banned');
});

test('class 5: message/global, news, external-body and unknown subtypes are messages; message/partial is an anomaly verdict', async () => {
  const inner = `Subject: inner${CRLF}Content-Type: multipart/mixed; boundary=in${CRLF}${CRLF}--in${CRLF}${attachment('')}--in--${CRLF}`;
  for (const t of ['message/global', 'message/news', 'message/external-body', 'message/x-unknown']) {
    const m = multipartMessage([{ contentType: t, content: inner, encoding: '7bit' }]);
    assert.equal((await verdict(m)).v.kind, 'infected', t);
  }
  const e = await engineP;
  const partial = multipartMessage([{ contentType: 'message/partial; id="x"; number=1; total=2', content: `Subject: p${CRLF}${CRLF}harmless${CRLF}`, encoding: '7bit' }]);
  assert.deepEqual((await scan(e, partial)).v, { kind: 'anomaly', which: 'message-partial', where: '2' });
  // with the anomaly action set to accept, the parts inside are still scanned
  const lax = await createEngine({ actions: { anomaly: 'accept' } });
  const infectedPartial = multipartMessage([{ contentType: 'message/partial; id="x"; number=1; total=1', content: inner, encoding: '7bit' }]);
  assert.equal((await scan(lax, infectedPartial)).v.kind, 'infected');
  await lax.close();
});

test('class 6: `=` inside a base64 quantum (Python reads through it)', async () => {
  const enc = b64(EICAR);
  const m = multipartMessage([]).toString('latin1').replace('--midstream-test-boundary--', `--midstream-test-boundary${CRLF}${attachment('', enc.slice(0, 9) + '=' + enc.slice(9))}--midstream-test-boundary--`);
  const { v, anomalies } = await verdict(msg(m));
  assert.equal(v.kind, 'infected');
  assert.ok(anomalies.some((x) => x.startsWith('base64-pad-inside@')), anomalies.join());
});

test('class 6: uuencode with odd modes, no name, BEGIN, under x-uuencode and in octet-stream', async () => {
  const uu = (begin: string, content: Uint8Array = EICAR_BYTES) => {
    const line = (b: Uint8Array) => {
      let s = String.fromCharCode(32 + b.length);
      for (let i = 0; i < b.length; i += 3) {
        const x = b[i]!, y = b[i + 1] ?? 0, z = b[i + 2] ?? 0;
        for (const v of [x >> 2, ((x & 3) << 4) | (y >> 4), ((y & 15) << 2) | (z >> 6), z & 63]) s += String.fromCharCode(v === 0 ? 96 : v + 32);
      }
      return s;
    };
    return `${begin}${CRLF}${line(content.subarray(0, 45))}${CRLF}${line(content.subarray(45))}${CRLF}\`${CRLF}end${CRLF}`;
  };
  for (const [begin, ct, cte] of [
    ['begin 0o644 notes.txt', 'application/octet-stream', 'x-uuencode'],
    ['begin +644', 'application/octet-stream', '7bit'],
    ['BEGIN 644 notes.txt', 'text/plain', '7bit'],
    ['begin 6_44 ', 'application/octet-stream', 'uuencode'],
  ] as const) {
    const m = msg(`Content-Type: ${ct}${CRLF}Content-Transfer-Encoding: ${cte}${CRLF}${CRLF}${uu(begin)}`);
    assert.equal((await verdict(m)).v.kind, 'infected', begin);
  }
  const named = msg(`Content-Type: application/octet-stream${CRLF}${CRLF}${uu('begin 644 "invoice.exe"', Buffer.from('harmless bytes'))}`);
  assert.equal((await verdict(named)).v.kind, 'banned');
});

test('class 7: every name candidate is checked (NUL, 2231 gaps and sections, UTF-7, Content-Location, plain beside 2231)', async () => {
  const part = (h: string) => msg(`Content-Type: multipart/mixed; boundary=n${CRLF}${CRLF}--n${CRLF}${h}${CRLF}${CRLF}harmless${CRLF}--n--${CRLF}`);
  const many = Array.from({ length: 1001 }, (_, i) => `filename*${i}="${i === 1000 ? '.exe' : 'x'}"`).join('; ');
  for (const h of [
    'Content-Disposition: attachment; filename="a.exe\x00.txt"',
    'Content-Disposition: attachment; filename*0="inv"; filename*2="oice.exe"',
    'Content-Disposition: attachment; filename*0="inv"; filename*99999999="oice.exe"',
    `Content-Disposition: attachment; ${many}`,
    'Content-Type: application/octet-stream; name="=?utf-7?Q?invoice+AC4-exe?="',
    'Content-Location: http://example.org/run.exe?x=1',
    "Content-Disposition: attachment; filename=\"safe.txt\"; filename*=utf-8''evil.exe",
    'Content-Type: application/octet-stream name="a.exe"',
  ]) {
    const { v } = await verdict(part(h));
    assert.equal(v.kind, 'banned', h.slice(0, 80));
  }
});

test('the reviewed banned list: OneNote, xll, url, msc, msix, vhdx, html smuggling', async () => {
  for (const name of ['lure.one', 'addin.xll', 'link.url', 'console.msc', 'app.msix', 'disk.vhdx', 'invoice.html', 'pic.svg']) {
    const { v } = await verdict(multipartMessage([{ filename: name, content: 'harmless' }]));
    assert.equal(v.kind, 'banned', name);
  }
});

test('normal mail: one reading, the verdict still latches early, no anomaly recorded', async () => {
  const e = await engineP;
  const m = multipartMessage([{ filename: 'report.pdf', contentType: 'application/pdf', content: 'x'.repeat(5000) }, { filename: 'eicar.txt', content: EICAR }]);
  const s = e.begin();
  let early: Verdict | null = null;
  s.onFinal((v) => (early = v));
  await s.push(m);
  assert.equal((early as Verdict | null)?.kind, 'infected', 'the verdict is final before end()');
  await s.end();
  assert.deepEqual(s.stats.anomalies, []);
  const clean = await scan(e, plainMessage('hello'));
  assert.deepEqual(clean, { v: { kind: 'clean' }, anomalies: [] });
});

test('a message built to be read too many ways: anomaly verdict mime-readings', async () => {
  // every profile at once, then per-part ambiguities in each reading
  let s = `\xef\xbb\xbfFrom: a${CRLF}junk line${CRLF}Content-Type : multipart/mixed; boundary=b1${CRLF}X: a\rb${CRLF}${CRLF}`;
  for (let i = 0; i < 6; i++) s += `--b1${CRLF}Content-Type: text/plain${CRLF}Content-Type: text/html${CRLF}Content-Transfer-Encoding: 7bit${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}QUJD${CRLF}--b1x${CRLF}`;
  s += `--b1--${CRLF}--b1${CRLF}`;
  const { v } = await verdict(msg(s));
  assert.deepEqual(v, { kind: 'anomaly', which: 'mime-readings', where: '(message)' });
});
