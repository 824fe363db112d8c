/**
 * notifier.test.ts — notices through a recording SMTP sink (smtp-server): what an admin
 * notice carries (verdict, where, envelope, queue id, header block) and never carries (the
 * payload), recipients notified one by one only about mail they did not get, the null
 * envelope sender, Auto-Submitted; the queue bound (dropped, counted), the rate limit
 * (the second notice waits for a token), and a relay that is down (failed, counted) —
 * notify() never throws or waits. Real Postfix as the relay: notices-postfix in the
 * integration tests.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Notifier, type NotifierSettings, type Notice } from '../../src/actions/notifier.js';
import { createLogger } from '../../src/log/logger.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { simpleParser } from 'mailparser';
import { freePort } from '../helpers/postfix.js';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const sinks: Sink[] = [];
const notifiers: Notifier[] = [];
after(async () => {
  for (const n of notifiers) await n.close();
  for (const s of sinks) await s.close();
});

function settings(port: number, o: Partial<NotifierSettings> = {}): NotifierSettings {
  return {
    relay: { host: '127.0.0.1', port },
    from: 'midstream <postmaster@mx.test>',
    envelopeFrom: '',
    admin: ['admin@example.org'],
    recipients: false,
    sender: false,
    on: ['infected', 'banned', 'quarantine'],
    maxPerMinute: 600,
    queueSize: 100,
    timeoutMs: 5000,
    hostname: 'mx.test',
    ...o,
  };
}

const NOTICE: Notice = {
  front: 'proxy',
  conn: 'c1.1',
  verdict: { kind: 'infected', name: 'Eicar-Test-Signature', where: '2/eicar.txt', engine: 'builtin' },
  action: 'reject',
  reply: '550 5.7.1 Message rejected: virus found: Eicar-Test-Signature',
  queueId: 'ABC123',
  sender: 'bad@example.net',
  recipients: ['one@example.org', 'two@example.org'],
  client: '192.0.2.7',
  helo: 'client.example',
  headers: { text: 'From: bad@example.net\r\nSubject: invoice\r\nX-Evil: \u00ff\u0001\r\n', truncated: false },
};

function make(s: NotifierSettings, results: string[] = []) {
  const lines: string[] = [];
  const n = new Notifier(s, createLogger({ level: 'debug', write: (l) => lines.push(l) }), (r, t) => results.push(`${t}:${r}`));
  notifiers.push(n);
  return { n, lines, results };
}

test('admin notice: verdict, where, envelope, queue id, header — never the payload; null sender; Auto-Submitted', async () => {
  const sink = await startSink();
  sinks.push(sink);
  const { n, results } = make(settings(sink.port));
  n.notify(NOTICE);
  const m = await sink.waitFor((x) => x.rcpt.includes('admin@example.org'));
  const raw = m.data!.toString('latin1');
  // The body goes out quoted-printable: read it as a mail reader would (mailparser).
  const text = raw.slice(0, raw.indexOf('\r\n\r\n') + 2) + ((await simpleParser(m.data!)).text ?? '');
  assert.equal(m.from, '', 'null envelope sender: a bounce of a notice cannot loop');
  assert.deepEqual(m.rcpt, ['admin@example.org']);
  for (const want of [
    /^Auto-Submitted: auto-generated\r$/m,
    /^Subject: \[midstream\] message rejected: virus Eicar-Test-Signature\r$/m,
    /Verdict: +infected Eicar-Test-Signature \(2\/eicar\.txt\)/,
    /Queue ID: +ABC123/,
    /Sender: +<bad@example\.net>/,
    /Recipients: <one@example\.org>, <two@example\.org>/,
    /Client: +192\.0\.2\.7 \(HELO client\.example\)/,
    /Subject: invoice/,
    /X-Evil: \?\?/,
  ]) assert.match(text, want);
  assert.ok(!text.includes('EICAR'), 'no payload');
  assert.deepEqual(results, ['admin:sent']);
  // Not listed in `on`: nothing.
  n.notify({ ...NOTICE, verdict: { kind: 'limit', which: 'ratio', where: '2' } });
  assert.equal(n.wants('limit', 'reject'), false);
  assert.equal(n.wants('error', 'quarantine'), true, 'an action in `on` counts too');
});

test('recipients: one notice each naming only them, only for mail they did not get; sender only when asked', async () => {
  const sink = await startSink();
  sinks.push(sink);
  const { n } = make(settings(sink.port, { admin: [], recipients: true }));
  n.notify({ ...NOTICE, action: 'tag' });
  n.notify({ ...NOTICE, action: 'quarantine', headers: { text: `Subject: x\r\n\r\n${EICAR}`, truncated: false } });
  const a = await sink.waitFor((x) => x.rcpt[0] === 'one@example.org');
  const b = await sink.waitFor((x) => x.rcpt[0] === 'two@example.org');
  const at = (await simpleParser(a.data!)).text ?? '';
  assert.match(at.replace(/\s+/g, ' '), /A message addressed to you \(one@example\.org\) was quarantined/);
  assert.ok(!at.includes('two@example.org'), 'other recipients (maybe Bcc) are not named');
  assert.ok(!((await simpleParser(b.data!)).text ?? '').includes('one@example.org'));
  assert.ok(!at.includes('EICAR'), 'the header text given was cut at the header: still no payload');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sink.messages.length, 2, 'the tagged (delivered) message made no recipient notice');
  assert.ok(!sink.messages.some((m) => m.rcpt.includes('bad@example.net')), 'never the sender by default');
  const s2 = make(settings(sink.port, { admin: [], sender: true }));
  s2.n.notify({ ...NOTICE, action: 'discard' });
  await sink.waitFor((x) => x.rcpt[0] === 'bad@example.net');
  s2.n.notify({ ...NOTICE, action: 'discard', sender: '' });
  assert.equal(s2.n.wants('infected', 'discard'), true);
});

test('bounded: a full queue drops (logged, counted); the rate limit spaces notices; a dead relay fails them — notify() never waits', async () => {
  const sink = await startSink();
  sinks.push(sink);
  const { n, lines, results } = make(settings(sink.port, { maxPerMinute: 1, queueSize: 1 }));
  const t0 = Date.now();
  for (let i = 0; i < 4; i++) n.notify({ ...NOTICE, queueId: `Q${i}` });
  assert.ok(Date.now() - t0 < 1000);
  await sink.waitFor((x) => x.data!.toString('latin1').includes('Q0'));
  assert.deepEqual(results.filter((r) => r.endsWith('dropped')), ['admin:dropped', 'admin:dropped'], 'one sending, one queued, two dropped');
  assert.ok(lines.some((l) => l.includes('"event":"notice-dropped"') && l.includes('queue full')));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sink.messages.length, 1, 'the queued one waits for the next token (one a minute)');
  await n.close();
  assert.ok(results.filter((r) => r.endsWith('dropped')).length === 3, 'the queued one is dropped at close');

  const dead = await freePort();
  const d = make(settings(dead));
  d.n.notify(NOTICE);
  for (let i = 0; i < 100 && !d.results.includes('admin:failed'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(d.results, ['admin:failed']);
  assert.ok(d.lines.some((l) => l.includes('"event":"notice-failed"') && l.includes('ECONNREFUSED')));
});
