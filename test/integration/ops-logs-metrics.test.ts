/**
 * ops-logs-metrics.test.ts — the per-message JSON log line and the Prometheus values,
 * through the real CLI (`node dist/src/cli.js proxy|milter --config FILE`), for one
 * message of each verdict kind: clean, infected, banned, limit (mime depth), error
 * (clamd gone). Proxy: our SMTP client plays Postfix (XFORWARD), an in-process sink is
 * the after-filter. Milter: our MTA-side client with the `i` macro.
 * clamd is a fake (OK) so the error case is real: it is stopped before the last message.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { startSink } from '../helpers/sink.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import { startFakeClamd, FAKE, type FakeBehaviour } from '../helpers/fake-clamd.js';
import { multipartMessage, EICAR } from '../helpers/mail-build.js';
import { startCli, metric, type CliServer, type LogLine } from '../helpers/cli-server.js';
import { sendViaMilter } from '../helpers/milter-mta.js';
import { MilterClient } from '../helpers/milter-client.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
mkdirSync(TMP_BASE, { recursive: true });

function depthBomb(depth: number, marker: string): Buffer {
  let inner = `Content-Type: text/plain\r\n\r\n${marker}\r\n`;
  for (let i = depth; i > 0; i--) inner = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${inner}\r\n--b${i}--\r\n`;
  return Buffer.from(`From: a@example.org\r\nTo: b@example.net\r\nSubject: deep\r\nMIME-Version: 1.0\r\n${inner}`, 'latin1');
}

interface Case {
  kind: 'clean' | 'infected' | 'banned' | 'limit' | 'error';
  message: Buffer;
  rcpts: string[];
  marker: string;
}

function cases(): Case[] {
  const m = (k: string) => `BODY-MARKER-${k}-7f3a`;
  return [
    { kind: 'clean', marker: m('clean'), rcpts: ['b@example.net', 'c@example.net'], message: multipartMessage([{ filename: 'notes.txt', content: 'quarterly numbers' }], { text: m('clean') }) },
    { kind: 'infected', marker: m('infected'), rcpts: ['b@example.net'], message: multipartMessage([{ filename: 'eicar.com.txt', content: EICAR }], { text: m('infected') }) },
    { kind: 'banned', marker: m('banned'), rcpts: ['b@example.net'], message: multipartMessage([{ filename: 'setup.exe', content: 'harmless bytes' }], { text: m('banned') }) },
    { kind: 'limit', marker: m('limit'), rcpts: ['b@example.net'], message: depthBomb(6, m('limit')) },
    { kind: 'error', marker: m('error'), rcpts: ['b@example.net'], message: multipartMessage([{ filename: 'fine.txt', content: 'needs clamd' }], { text: m('error') }) },
  ];
}

const CONFIG = (clamd: string, extra: string) => `
[clamd]
endpoints = ["${clamd}"]
keepalive = "0s"  # the fake clamd answers one command per connection (no IDSESSION)
cache_entries = 0
connect_timeout = "500ms"
[limits]
mime_depth = 3
[metrics]
listen = "127.0.0.1:0"
${extra}`;

async function sendProxy(port: number, c: Case, clientAddr: string): Promise<{ final: string; code: number }> {
  const cl = await TestSmtpClient.connect(port);
  try {
    assert.equal((await cl.read()).code, 220);
    assert.equal((await cl.cmd('EHLO mx.example')).code, 250);
    assert.equal((await cl.cmd(`XFORWARD ADDR=${clientAddr} NAME=client.example HELO=client.example PROTO=ESMTP`)).code, 250);
    assert.equal((await cl.cmd('MAIL FROM:<sender@example.org>')).code, 250);
    for (const r of c.rcpts) assert.equal((await cl.cmd(`RCPT TO:<${r}>`)).code, 250);
    assert.equal((await cl.cmd('DATA')).code, 354);
    cl.write(dotStuff(c.message));
    const fin = await cl.read(30_000);
    return { final: fin.text, code: fin.code };
  } finally {
    await cl.quit();
  }
}

/**
 * The README's log schema: every field of a message line, with its type. Both fronts
 * must write exactly these (a field absent when unknown), nothing else.
 */
const SCHEMA: Record<string, 'string' | 'number' | 'boolean' | 'string[]'> = {
  time: 'string', level: 'string', event: 'string',
  front: 'string', conn: 'string', client: 'string', clientPort: 'number', helo: 'string', sender: 'string', rcpts: 'string[]',
  queueId: 'string', size: 'number', verdict: 'string', name: 'string', where: 'string', engine: 'string', detail: 'string',
  rule: 'string', action: 'string', reply: 'string', ms: 'number', eodMs: 'number', early: 'boolean', at: 'string', anomalies: 'string[]', rawScan: 'string',
};
const ALWAYS = ['time', 'level', 'event', 'front', 'conn', 'rcpts', 'size', 'verdict', 'action', 'ms'];

function checkSchema(l: LogLine) {
  for (const [k, v] of Object.entries(l)) {
    const t = SCHEMA[k];
    assert.ok(t, `field ${k} is in the documented schema`);
    if (t === 'string[]') assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${k} is a string list`);
    else assert.equal(typeof v, t, `${k} is a ${t}`);
  }
  for (const k of ALWAYS) assert.ok(k in l, `${k} is always there`);
}

/** Fields every message line has, and none that could carry body content. */
function checkCommon(l: LogLine, c: Case, expect: { client: string; sender: string; front: string }) {
  checkSchema(l);
  assert.equal(l.level, c.kind === 'error' ? 'warn' : 'info', 'error verdicts at warn, the rest at info');
  assert.equal(l.front, expect.front);
  assert.match(String(l.conn), /^[0-9a-z]+\.[0-9a-z]+$/);
  assert.equal(l.client, expect.client);
  assert.equal(l.sender, expect.sender);
  assert.deepEqual(l.rcpts, c.rcpts);
  assert.equal(l.helo, 'client.example');
  assert.ok((l.ms as number) >= 0 && (l.ms as number) < 30_000);
  assert.equal(l.verdict, c.kind);
  assert.equal(l.action, { clean: 'accept', error: 'tempfail' }[c.kind as string] ?? 'reject');
}

function checkVerdict(l: LogLine, c: Case, clamdEndpoint: string) {
  switch (c.kind) {
    case 'clean':
      assert.equal(l.where, undefined);
      break;
    case 'infected':
      assert.equal(l.name, 'Eicar-Test-Signature');
      assert.equal(l.where, '2/eicar.com.txt');
      assert.equal(l.engine, 'builtin');
      break;
    case 'banned':
      assert.equal(l.where, '2/setup.exe');
      assert.match(String(l.name), /exe/);
      break;
    case 'limit':
      assert.equal(l.name, 'mime-depth');
      assert.equal(typeof l.where, 'string');
      break;
    case 'error':
      assert.equal(l.name, 'scanner-unavailable');
      // The admin sees which endpoint and why (the client gets generic text only).
      assert.ok(String(l.detail).includes(clamdEndpoint), `detail names the endpoint: ${l.detail}`);
      assert.match(String(l.detail), /ECONNREFUSED/);
      break;
  }
}

/** clamd going away is a warn line naming the endpoint and the errno, before the error verdict's line. */
function checkClamdDown(logs: LogLine[], endpoint: string) {
  const i = logs.findIndex((l) => l.event === 'clamd-down');
  assert.ok(i >= 0, 'a clamd-down line');
  assert.equal(logs[i]!.level, 'warn');
  assert.equal(logs[i]!.endpoint, endpoint);
  assert.match(String(logs[i]!.error), /ECONNREFUSED/);
  assert.ok(i < logs.findIndex((l) => l.event === 'message' && l.verdict === 'error'));
}

async function checkMetrics(srv: CliServer, front: 'proxy' | 'milter', sizes: { full: number; all: number }, clamdEndpoint: string) {
  const text = await srv.metrics();
  for (const v of ['clean', 'infected', 'banned', 'limit', 'error']) {
    assert.equal(metric(text, 'midstream_messages_total', { front, verdict: v }), 1, `messages_total{${front},${v}}`);
  }
  const other = front === 'proxy' ? 'milter' : 'proxy';
  assert.equal(metric(text, 'midstream_messages_total', { front: other, verdict: 'clean' }), 0);
  const bytes = metric(text, 'midstream_bytes_total', { front })!;
  // Messages rejected early count the bytes seen up to the verdict; clean and error ones all of theirs.
  assert.ok(bytes >= sizes.full && bytes <= sizes.all, `bytes_total ${bytes} in [${sizes.full}, ${sizes.all}]`);
  assert.equal(metric(text, 'midstream_limits_total', { which: 'mime-depth' }), 1);
  assert.equal(metric(text, 'midstream_actions_total', { front, action: 'accept' }), 1);
  assert.equal(metric(text, 'midstream_actions_total', { front, action: 'reject' }), 3);
  assert.equal(metric(text, 'midstream_actions_total', { front, action: 'tempfail' }), 1);
  assert.equal(metric(text, 'midstream_reloads_total', { result: 'success' }), 0);
  assert.ok(/^midstream_build_info\{version="\d+\.\d+\.\d+[^"]*",node="[^"]+"\} 1$/m.test(text), 'build info with the version');
  // The last client just quit: the server side closes a moment later.
  let conns = metric(text, 'midstream_connections', { front });
  for (const until = Date.now() + 5000; conns !== 0 && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 50));
    conns = metric(await srv.metrics(), 'midstream_connections', { front });
  }
  assert.equal(conns, 0, 'connections gauge back to 0');
  assert.ok((metric(text, 'midstream_scan_seconds_count') ?? 0) >= 5);
  // clamd went away before the error message: health drops to 0 within the poll interval.
  const until = Date.now() + 10_000;
  let up = metric(text, 'midstream_clamd_up', { endpoint: clamdEndpoint });
  while (up !== 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    up = metric(await srv.metrics(), 'midstream_clamd_up', { endpoint: clamdEndpoint });
  }
  assert.equal(up, 0, 'clamd endpoint reported down');
}

test('proxy CLI: one log line and metric values per verdict kind', async () => {
  const dir = mkdtempSync(join(TMP_BASE, 'ops-proxy-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const fake = await startFakeClamd(FAKE.ok as FakeBehaviour);
  const sink = await startSink();
  cleanups.push(() => fake.close(), () => sink.close());
  const srv = await startCli('proxy', CONFIG(fake.address, `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\nreply_budget = "20s"`), dir);
  cleanups.push(() => srv.stop());

  // The gauge follows an open connection.
  assert.equal(metric(await srv.metrics(), 'midstream_clamd_up', { endpoint: fake.address }), 1);
  const idle = await TestSmtpClient.connect(srv.port);
  await idle.read();
  assert.equal(metric(await srv.metrics(), 'midstream_connections', { front: 'proxy' }), 1);
  await idle.quit();

  const cs = cases();
  const replies: Record<string, { final: string; code: number }> = {};
  for (const [i, c] of cs.entries()) {
    if (c.kind === 'error') await fake.close();
    replies[c.kind] = await sendProxy(srv.port, c, `192.0.2.${10 + i}`);
  }
  assert.equal(replies.clean!.code, 250);
  assert.match(replies.clean!.final, /queued as SINK1/);
  assert.match(replies.infected!.final, /^550 5\.7\.1 /);
  assert.equal(Math.floor(replies.banned!.code / 100), 5);
  assert.equal(replies.error!.code, 451);
  assert.equal(sink.messages.length, 1, 'only the clean message was delivered');

  await srv.waitForLog((l) => l.event === 'message' && l.verdict === 'error');
  const lines = srv.logs().filter((l) => l.event === 'message');
  assert.equal(lines.length, 5);
  checkClamdDown(srv.logs(), fake.address);
  for (const [i, c] of cs.entries()) {
    const l = lines.find((x) => x.verdict === c.kind)!;
    assert.ok(l, `a line for ${c.kind}`);
    checkCommon(l, c, { client: `192.0.2.${10 + i}`, sender: 'sender@example.org', front: 'proxy' });
    checkVerdict(l, c, fake.address);
    assert.equal(l.size, c.message.length, `${c.kind}: size is the un-stuffed message size`);
    assert.equal(l.queueId, c.kind === 'clean' ? 'SINK1' : undefined);
    assert.equal(l.reply, replies[c.kind]!.final, 'the reply as the client got it');
  }
  const raw = srv.rawLog();
  for (const c of cs) assert.ok(!raw.includes(c.marker), `no body content of ${c.kind} in the log`);
  const sizes = cs.map((c) => c.message.length);
  await checkMetrics(srv, 'proxy', { full: sizes[0]! + sizes[4]!, all: sizes.reduce((a, b) => a + b, 0) }, fake.address);
  assert.equal(await srv.stop(), 0);
});

test('milter CLI: one log line (queue id from the i macro) and metric values per verdict kind', async () => {
  const dir = mkdtempSync(join(TMP_BASE, 'ops-milter-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const fake = await startFakeClamd(FAKE.ok as FakeBehaviour);
  cleanups.push(() => fake.close());
  const srv = await startCli('milter', CONFIG(fake.address, `[milter]\nlisten = "inet:0@127.0.0.1"`), dir);
  cleanups.push(() => srv.stop());

  const idle = await MilterClient.connect(srv.address);
  await idle.negotiate();
  assert.equal(metric(await srv.metrics(), 'midstream_connections', { front: 'milter' }), 1);
  idle.close();

  const cs = cases();
  const replies: Record<string, string> = {};
  for (const [i, c] of cs.entries()) {
    if (c.kind === 'error') await fake.close();
    const r = await sendViaMilter(srv.address, {
      from: 'sender@example.org',
      to: c.rcpts,
      message: c.message,
      clientAddress: `198.51.100.${10 + i}`,
      macros: { T: ['i', `MQ${i}ABC`] },
    });
    replies[c.kind] = r.text;
  }
  assert.equal(replies.clean, 'c');
  assert.match(replies.infected!, /^550 5\.7\.1 /);
  assert.match(replies.banned!, /^5\d\d /);
  assert.match(replies.error!, /^451 4\.\d\.\d /);

  await srv.waitForLog((l) => l.event === 'message' && l.verdict === 'error');
  const lines = srv.logs().filter((l) => l.event === 'message');
  assert.equal(lines.length, 5, 'one line per message (an early reject too)');
  checkClamdDown(srv.logs(), fake.address);
  for (const [i, c] of cs.entries()) {
    const l = lines.find((x) => x.verdict === c.kind)!;
    assert.ok(l, `a line for ${c.kind}`);
    checkCommon(l, c, { client: `198.51.100.${10 + i}`, sender: 'sender@example.org', front: 'milter' });
    checkVerdict(l, c, fake.address);
    assert.equal(l.queueId, `MQ${i}ABC`);
    assert.equal(typeof l.size, 'number');
    if (c.kind === 'clean') assert.equal(l.reply, undefined, 'milter accept: the MTA answers itself');
    else assert.equal(l.reply, replies[c.kind], 'the reply as the MTA got it');
  }
  const clean = lines.find((x) => x.verdict === 'clean')!;
  assert.equal(clean.size, cs[0]!.message.length, 'the milter rebuilds the same bytes');
  const raw = srv.rawLog();
  for (const c of cs) assert.ok(!raw.includes(c.marker), `no body content of ${c.kind} in the log`);
  const sizes = cs.map((c) => c.message.length);
  await checkMetrics(srv, 'milter', { full: sizes[0]! + sizes[4]!, all: sizes.reduce((a, b) => a + b, 0) }, fake.address);
  assert.equal(await srv.stop(), 0);
});
