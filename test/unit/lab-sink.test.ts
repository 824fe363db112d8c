/**
 * lab-sink.test.ts — the lab's sink (docker/sink/) in process, on loopback port 0: a mail
 * sent over SMTP is stored byte for byte, the JSON API lists it with its verdict headers,
 * the web view lists it with everything HTML-escaped, the store keeps within its bounds,
 * and unknown routes answer 404. (test/integration/lab.test.ts drives it inside the lab.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MailStore, parseHeaders } from '../../docker/sink/store.js';
import { startSinkSmtp } from '../../docker/sink/smtp.js';
import { createSinkHttp, escapeHtml } from '../../docker/sink/http.js';
import { sendMessage } from '../helpers/smtp-client.js';

function http(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startSink(limits = { maxMessages: 100, maxBytes: 1 << 20 }) {
  const store = new MailStore(limits);
  const smtp = await startSinkSmtp(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 64 * 1024 });
  const web: Server = createSinkHttp(store);
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  return {
    store,
    smtpPort: (smtp.server.address() as AddressInfo).port,
    httpPort: (web.address() as AddressInfo).port,
    async close() {
      await new Promise<void>((r) => smtp.close(() => r()));
      await new Promise<void>((r) => web.close(() => r()));
    },
  };
}

const MAIL = Buffer.from(
  'Received: from x by y\r\n\tfor <b@lab.example>; Thu, 3 Dec 2026 10:00:00 +0000\r\nFrom: a@lab.example\r\n' +
    'Subject: <script>alert("x")</script> & more\r\nX-Virus-Scanned: midstream (builtin,\r\n clamd)\r\nX-Virus-Status: Clean\r\n\r\n' +
    '.leading dot line\r\nbody\r\n',
  'latin1',
);

test('a mail over SMTP is stored byte for byte and listed with its verdict headers', async () => {
  const sink = await startSink();
  try {
    const r = await sendMessage(sink.smtpPort, { from: 'a@lab.example', to: ['b@lab.example', 'c@lab.example'], message: MAIL });
    assert.equal(r.final.code, 250);
    assert.match(r.final.text, /queued as SINK1$/);
    const list = JSON.parse((await http(sink.httpPort, '/api/messages')).body.toString()) as {
      id: number; from: string; to: string[]; subject: string; size: number; verdict: { name: string; value: string }[];
    }[];
    assert.equal(list.length, 1);
    assert.deepEqual(
      { from: list[0]!.from, to: list[0]!.to, size: list[0]!.size, subject: list[0]!.subject },
      { from: 'a@lab.example', to: ['b@lab.example', 'c@lab.example'], size: MAIL.length, subject: '<script>alert("x")</script> & more' },
    );
    assert.deepEqual(list[0]!.verdict, [
      { name: 'X-Virus-Scanned', value: 'midstream (builtin, clamd)' },
      { name: 'X-Virus-Status', value: 'Clean' },
    ]);
    const raw = await http(sink.httpPort, `/api/messages/${list[0]!.id}/raw`);
    assert.equal(raw.type, 'message/rfc822');
    assert.ok(raw.body.equals(MAIL), 'raw bytes as sent (dot-stuffing undone)');
    const one = JSON.parse((await http(sink.httpPort, `/api/messages/${list[0]!.id}`)).body.toString()) as { headers: { name: string }[] };
    assert.deepEqual(one.headers.map((h) => h.name), ['Received', 'From', 'Subject', 'X-Virus-Scanned', 'X-Virus-Status']);
  } finally {
    await sink.close();
  }
});

test('the web view lists mails with everything from them HTML-escaped', async () => {
  const sink = await startSink();
  try {
    await sendMessage(sink.smtpPort, { from: 'a@lab.example', to: ['b@lab.example'], message: MAIL, ehlo: 'mta.lab.example' });
    const page = await http(sink.httpPort, '/');
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    const html = page.body.toString();
    assert.ok(!html.includes('<script>'), 'no markup from the mail');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more'));
    assert.ok(html.includes('X-Virus-Scanned: midstream (builtin, clamd)'));
    assert.ok(html.includes('<td class="via">mta.lab.example</td>'));
    const detail = (await http(sink.httpPort, '/messages/1')).body.toString();
    assert.ok(detail.includes('.leading dot line') && !detail.includes('<script>'));
    assert.equal((await http(sink.httpPort, '/messages/2')).status, 404);
    assert.equal((await http(sink.httpPort, '/nothing')).status, 404);
    assert.equal((await http(sink.httpPort, '/', 'POST')).status, 405);
    assert.equal((await http(sink.httpPort, '/api/messages', 'DELETE')).status, 200);
    assert.deepEqual(JSON.parse((await http(sink.httpPort, '/api/messages')).body.toString()), []);
  } finally {
    await sink.close();
  }
});

test('too big a mail gets 552 and is not stored', async () => {
  const sink = await startSink();
  try {
    const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(100 * 1024, 'a\r\n')]);
    const r = await sendMessage(sink.smtpPort, { from: 'a@lab.example', to: ['b@lab.example'], message: big });
    assert.equal(r.final.code, 552);
    assert.equal(sink.store.count, 0);
  } finally {
    await sink.close();
  }
});

test('the store keeps at most maxMessages and maxBytes, dropping the oldest', () => {
  const raw = (n: number) => Buffer.from(`Subject: m${n}\r\n\r\n${'x'.repeat(90)}\r\n`);
  const byCount = new MailStore({ maxMessages: 3, maxBytes: 1 << 20 });
  for (let i = 1; i <= 5; i++) byCount.add({ from: '', to: [], helo: '', remoteAddress: '', raw: raw(i) });
  assert.deepEqual(byCount.list().map((m) => m.subject), ['m5', 'm4', 'm3']);
  const size = raw(1).length;
  const byBytes = new MailStore({ maxMessages: 100, maxBytes: size * 2 + 1 });
  for (let i = 1; i <= 4; i++) byBytes.add({ from: '', to: [], helo: '', remoteAddress: '', raw: raw(i) });
  assert.deepEqual(byBytes.list().map((m) => m.subject), ['m4', 'm3']);
  const huge = new MailStore({ maxMessages: 100, maxBytes: 10 });
  huge.add({ from: '', to: [], helo: '', remoteAddress: '', raw: raw(1) });
  assert.equal(huge.count, 1, 'the newest mail stays even when it alone is over maxBytes');
});

test('header parsing: folded lines unfolded, LF-only input, no separator, escaping helper', () => {
  assert.deepEqual(parseHeaders(Buffer.from('A: 1\n\tgoes on\nB:2\n\nbody: not a header\n')), [
    { name: 'A', value: '1 goes on' },
    { name: 'B', value: '2' },
  ]);
  assert.deepEqual(parseHeaders(Buffer.from('Only: header')), [{ name: 'Only', value: 'header' }]);
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});
