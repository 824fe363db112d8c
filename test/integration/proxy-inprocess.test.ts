/**
 * proxy-inprocess.test.ts — the proxy alone: our test client → startProxy → recording
 * sink (smtp-server), with a controllable stub engine. No Postfix.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { startProxy, type ProxyOptions } from '../../src/smtp/proxy-server.js';
import { createLogger } from '../../src/log/logger.js';
import { startSink, type Sink, type SinkOptions } from '../helpers/sink.js';
import { TestSmtpClient, sendMessage, dotStuff } from '../helpers/smtp-client.js';
import { createStubEngine, EICAR, type StubEngineOptions } from '../helpers/stub-engine.js';

type Rec = Record<string, unknown>;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function setup(o: { sink?: SinkOptions; engine?: StubEngineOptions; proxy?: Partial<ProxyOptions>; forward?: string } = {}) {
  const sink = await startSink(o.sink);
  const engine = createStubEngine({ record: true, ...o.engine });
  const logs: Rec[] = [];
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    forward: o.forward ?? `127.0.0.1:${sink.port}`,
    engine,
    logger: createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) }),
    hostname: 'proxy.test',
    ...o.proxy,
  });
  cleanups.push(() => proxy.close(), () => sink.close());
  const port = Number(proxy.address.split(':').pop());
  return { sink, engine, proxy, port, logs };
}

const MSG =
  'From: a@example.org\r\nTo: b@example.net\r\nSubject: clean\r\nMessage-ID: <m1@example.org>\r\n\r\n' +
  'Hello.\r\n.leading dot\r\n..two dots\r\n.\r\n' + // the lone "." is content here (stuffed on the wire)
  'tail\r\n';

const waitUntil = async (cond: () => boolean, ms = 5000) => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('clean message: byte-identical at the sink, downstream final reply passed through, one log line', async () => {
  const { sink, engine, port, logs } = await setup();
  const r = await sendMessage(port, { from: 'a@example.org', to: ['b@example.net'], message: MSG });
  assert.equal(r.final.code, 250);
  assert.match(r.final.text, /^250 (2\.0\.0 )?Ok: queued as SINK1$/);
  const m = await sink.waitFor(() => true);
  assert.equal(m.data?.toString('latin1'), MSG);
  assert.equal(m.from, 'a@example.org');
  assert.deepEqual(m.rcpt, ['b@example.net']);
  // The core saw the same un-stuffed bytes.
  assert.equal(Buffer.concat(engine.sessions[0].chunks).toString('latin1'), MSG);
  assert.deepEqual(engine.sessions[0].envelope.recipients, ['b@example.net']);
  const line = logs.find((l) => l.event === 'message');
  assert.ok(line, 'message log line');
  assert.equal(line.queueId, 'SINK1');
  assert.equal(line.verdict, 'clean');
  assert.deepEqual(line.rcpts, ['b@example.net']);
  assert.equal(line.size, MSG.length);
  assert.equal(line.sender, 'a@example.org');
  assert.equal(line.front, 'proxy');
  assert.equal(line.action, 'accept');
  assert.equal(line.reply, r.final.text, 'the after-filter reply, as the client got it');
  assert.equal(typeof line.ms, 'number');
  assert.equal(logs.filter((l) => l.event === 'message').length, 1);
});

test('EHLO advertises the extensions; XFORWARD only to trusted peers', async () => {
  const { port } = await setup();
  const c = await TestSmtpClient.connect(port);
  await c.read();
  const e = await c.cmd('EHLO me');
  for (const k of ['PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES', 'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE']) {
    assert.ok(e.lines.some((l) => l.slice(4) === k), `${k} in ${e.text}`);
  }
  assert.ok(!e.lines.some((l) => /AUTH|STARTTLS|CHUNKING/.test(l)));
  assert.equal((await c.cmd('STARTTLS')).code, 502);
  await c.quit();

  const u = await setup({ proxy: { trustedXforward: ['10.0.0.0/8'] } });
  const c2 = await TestSmtpClient.connect(u.port);
  await c2.read();
  assert.ok(!(await c2.cmd('EHLO me')).text.includes('XFORWARD'));
  assert.equal((await c2.cmd('XFORWARD ADDR=10.9.9.9')).code, 550);
  await c2.quit();
});

test('XFORWARD attributes reach the downstream; client address in the log', async () => {
  const { sink, port, logs } = await setup();
  const c = await TestSmtpClient.connect(port);
  await c.read();
  await c.cmd('EHLO front.example');
  assert.equal((await c.cmd('XFORWARD NAME=client.example ADDR=192.0.2.7 PORT=4242')).code, 250);
  assert.equal((await c.cmd('XFORWARD PROTO=ESMTP HELO=helo.client.example SOURCE=REMOTE')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<x@example.org>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<y@example.net>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(dotStuff('Subject: x\r\n\r\nhi\r\n'));
  assert.equal((await c.read()).code, 250);
  await c.quit();
  const m = await sink.waitFor(() => true);
  assert.equal(m.xforward.ADDR, '192.0.2.7');
  assert.equal(m.xforward.NAME, 'client.example');
  assert.equal(m.xforward.HELO, 'helo.client.example');
  assert.equal(logs.find((l) => l.event === 'message')?.client, '192.0.2.7');
});

test('EICAR: 550 5.7.1 from the policy table, downstream destroyed, nothing delivered', async () => {
  const { sink, engine, port, logs } = await setup();
  const big = 'x'.repeat(998) + '\r\n';
  const msg = 'Subject: v\r\n\r\n' + EICAR.toString('latin1') + '\r\n' + big.repeat(5000);
  const r = await sendMessage(port, { from: 'a@example.org', to: ['b@example.net'], message: msg });
  assert.equal(r.final.code, 550);
  assert.match(r.final.text, /^550 5\.7\.1 Message rejected: virus found: Eicar-Test-Signature$/);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(sink.messages.length, 0);
  // Early verdict: the rest of DATA was read but not pushed into the core any more.
  assert.ok(engine.sessions[0].size < msg.length, `core saw ${engine.sessions[0].size} of ${msg.length}`);
  const line = logs.find((l) => l.event === 'message');
  assert.equal(line?.verdict, 'infected');
  assert.equal(line?.name, 'Eicar-Test-Signature');
  assert.equal(line?.reply, '550 5.7.1 Message rejected: virus found: Eicar-Test-Signature');
  assert.equal(line?.action, 'reject');
  assert.equal(line?.early, true);
});

test('per-recipient reject from downstream reaches the client; mail goes to the others', async () => {
  const { sink, port } = await setup({ sink: { rejectRcpt: (a) => (a.startsWith('nobody@') ? 'No such user here' : null) } });
  const r = await sendMessage(port, { from: 'a@example.org', to: ['b@example.net', 'nobody@example.net'], message: MSG });
  assert.equal(r.rcpt[0].code, 250);
  assert.equal(r.rcpt[1].code, 550);
  assert.match(r.rcpt[1].text, /No such user here/);
  assert.equal(r.final.code, 250);
  const m = await sink.waitFor(() => true);
  assert.deepEqual(m.rcpt, ['b@example.net']);
});

test('multi-line downstream replies are relayed verbatim', async () => {
  // A scripted downstream: multi-line 550 for RCPT, multi-line final 250.
  const srv = createServer((s) => {
    s.write('220 ds ESMTP\r\n');
    let buf = '';
    s.on('data', (c) => {
      buf += c.toString('latin1');
      for (let i; (i = buf.indexOf('\r\n')) >= 0; ) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('EHLO')) s.write('250-ds\r\n250 PIPELINING\r\n');
        else if (line.startsWith('MAIL')) s.write('250 2.1.0 Ok\r\n');
        else if (line === 'RCPT TO:<bad@x>') s.write('550-5.1.1 first line\r\n550-5.1.1 second line\r\n550 5.1.1 last line\r\n');
        else if (line.startsWith('RCPT')) s.write('250 2.1.5 Ok\r\n');
        else if (line === 'DATA') s.write('354 go\r\n');
        else if (line === '.') s.write('250-2.0.0 accepted\r\n250 2.0.0 Ok: queued as ABC123\r\n');
        else if (line === 'QUIT') s.end('221 bye\r\n');
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => srv.close(() => r())));
  const { port, logs } = await setup({ forward: `127.0.0.1:${(srv.address() as AddressInfo).port}` });
  const r = await sendMessage(port, { from: 'a@x', to: ['bad@x', 'good@x'], message: 'Subject: s\r\n\r\nb\r\n' });
  assert.deepEqual(r.rcpt[0].lines, ['550-5.1.1 first line', '550-5.1.1 second line', '550 5.1.1 last line']);
  assert.deepEqual(r.final.lines, ['250-2.0.0 accepted', '250 2.0.0 Ok: queued as ABC123']);
  assert.equal(logs.find((l) => l.event === 'message')?.queueId, 'ABC123');
});

test('8BITMIME and SMTPUTF8: parameters passed on, 8-bit bytes intact', async () => {
  const { sink, port } = await setup();
  const msg = Buffer.concat([
    Buffer.from('From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n', 'utf8'),
    Buffer.from('Größe: 8 bit ✓ \u00ff\r\n', 'utf8'),
  ]);
  const r = await sendMessage(port, { from: 'jürgen@例え.jp', to: ['b@example.net'], message: msg, mailParams: 'BODY=8BITMIME SMTPUTF8' });
  assert.equal(r.final.code, 250, r.final.text);
  const m = await sink.waitFor(() => true);
  assert.deepEqual(m.data, msg);
  assert.equal(m.mailParams.BODY, '8BITMIME');
  assert.ok('SMTPUTF8' in m.mailParams);
});

test('addHeader: prepended downstream only when configured', async () => {
  const { sink, engine, port } = await setup({ proxy: { addHeader: 'X-Virus-Scanned: midstream' } });
  await sendMessage(port, { from: 'a@x', to: ['b@x'], message: MSG });
  const m = await sink.waitFor(() => true);
  assert.equal(m.data?.toString('latin1'), 'X-Virus-Scanned: midstream\r\n' + MSG);
  assert.equal(Buffer.concat(engine.sessions[0].chunks).toString('latin1'), MSG, 'core sees the original');
  await assert.rejects(startProxy({ engine, logger: createLogger(), listen: '127.0.0.1:0', addHeader: 'Bad\r\nInjected: x' }));
});

test('client gone mid-DATA: session aborted, downstream destroyed, nothing delivered', async () => {
  const { sink, engine, port, logs } = await setup();
  const c = await TestSmtpClient.connect(port);
  await c.read();
  await c.cmd('EHLO me');
  await c.cmd('MAIL FROM:<a@x>');
  await c.cmd('RCPT TO:<b@x>');
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('Subject: partial\r\n\r\n' + 'line\r\n'.repeat(1000));
  await waitUntil(() => (engine.sessions[0]?.size ?? 0) > 1000);
  c.destroy();
  await waitUntil(() => engine.sessions[0].aborted);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sink.messages.length, 0);
  assert.equal(logs.find((l) => l.event === 'message')?.verdict, 'aborted');
});

test('downstream killed mid-DATA: 451, nothing delivered', async () => {
  const { sink, port } = await setup({ sink: { killAfterBytes: 100_000 } });
  const msg = 'Subject: big\r\n\r\n' + ('y'.repeat(78) + '\r\n').repeat(20_000);
  const r = await sendMessage(port, { from: 'a@x', to: ['b@x'], message: msg });
  assert.equal(r.final.code, 451);
  assert.match(r.final.text, /^451 4\.4\.0 /);
  assert.equal(sink.messages.length, 0);
  assert.ok(sink.abortedData >= 1);
});

test('downstream down at MAIL: 451', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const { port } = await setup({ forward: `127.0.0.1:${deadPort}` });
  const c = await TestSmtpClient.connect(port);
  await c.read();
  await c.cmd('EHLO me');
  const m = await c.cmd('MAIL FROM:<a@x>');
  assert.equal(m.code, 451);
  assert.equal((await c.cmd('RCPT TO:<b@x>')).code, 503, 'no transaction after a failed MAIL');
  await c.quit();
});

test('reply budget: no verdict in time → our 451, and the dot is never sent afterwards', async () => {
  const { sink, engine, port, logs } = await setup({ engine: { verdictDelayMs: 1200 }, proxy: { replyBudgetMs: 300 } });
  const t0 = Date.now();
  const r = await sendMessage(port, { from: 'a@x', to: ['b@x'], message: MSG });
  const took = Date.now() - t0;
  assert.equal(r.final.code, 451);
  assert.match(r.final.text, /^451 4\.7\.1 /);
  assert.ok(took < 1100, `answered after ${took} ms, before the verdict`);
  await new Promise((res) => setTimeout(res, 1500)); // the verdict (clean) has arrived by now
  assert.equal(sink.messages.length, 0, 'no late delivery');
  assert.equal(engine.sessions[0].aborted, true);
  const budgetLine = logs.find((l) => l.event === 'message');
  assert.equal(budgetLine?.verdict, 'error');
  assert.equal(budgetLine?.name, 'reply-budget');
  assert.equal(budgetLine?.level, 'warn', 'error verdicts are logged at warn');
});

test('PIPELINING: a pipelined command group gets its replies in order', async () => {
  const { sink, port } = await setup();
  const c = await TestSmtpClient.connect(port);
  await c.read();
  c.write('EHLO me\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n');
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await c.read()).code);
  assert.deepEqual(codes, [250, 250, 250, 250, 354]);
  c.write(dotStuff(MSG) + 'QUIT\r\n');
  assert.equal((await c.read()).code, 250);
  assert.equal((await c.read()).code, 221);
  const m = await sink.waitFor(() => true);
  assert.deepEqual(m.rcpt, ['b@x', 'c@x']);
});

test('command errors: sequence, syntax, unknown, over-long', async () => {
  const { port } = await setup();
  const c = await TestSmtpClient.connect(port);
  await c.read();
  assert.equal((await c.cmd('MAIL FROM:<a@x>')).code, 503, 'EHLO first');
  await c.cmd('EHLO me');
  assert.equal((await c.cmd('RCPT TO:<b@x>')).code, 503);
  assert.equal((await c.cmd('DATA')).code, 503);
  assert.equal((await c.cmd('MAIL FROM <a@x>')).code, 501, 'syntax');
  assert.equal((await c.cmd('MAIL FROM:<a@x')).code, 501, 'syntax');
  assert.equal((await c.cmd('MAIL FROM:<a@x>')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<a@x>')).code, 503, 'nested MAIL');
  assert.equal((await c.cmd('DATA')).code, 554, 'no valid recipients');
  assert.equal((await c.cmd('RSET')).code, 250);
  assert.equal((await c.cmd('FOO')).code, 500);
  assert.equal((await c.cmd('NOOP ' + 'x'.repeat(5000))).code, 500);
  assert.equal((await c.cmd('NOOP')).code, 250);
  await c.quit();
});

test('maxConnections: the extra connection gets 421', async () => {
  const { port } = await setup({ proxy: { maxConnections: 1 } });
  const c1 = await TestSmtpClient.connect(port);
  assert.equal((await c1.read()).code, 220);
  const c2 = await TestSmtpClient.connect(port);
  assert.equal((await c2.read()).code, 421);
  await c1.quit();
  c2.destroy();
});
