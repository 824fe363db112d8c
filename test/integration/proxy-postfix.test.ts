/**
 * proxy-postfix.test.ts — the proxy behind a real Postfix 3.7:
 *   test client → front smtpd (smtpd_proxy_filter) → midstream proxy → after-filter smtpd
 *   → queue → relay → recording sink.
 * One Postfix instance for the whole file. The proxy runs in-process with the stub
 * engine (restarted on the same filter port when a test needs other options), and as a
 * child process for the 100 MB memory test. Engine-dependent cases live in
 * proxy-postfix-engine.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { startProxy, type ProxyOptions, type ProxyHandle } from '../../src/smtp/proxy-server.js';
import { createLogger } from '../../src/log/logger.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { TestSmtpClient, sendMessage, dotStuff, type Reply } from '../helpers/smtp-client.js';
import { createStubEngine, EICAR } from '../helpers/stub-engine.js';
import { spawnProxyChild } from '../helpers/proxy-child.js';

type Rec = Record<string, unknown>;
let pf: PostfixInstance;
let sink: Sink;
let proxy: ProxyHandle | null = null;
const logs: Rec[] = [];
let seq = 0;

async function useProxy(o: Partial<ProxyOptions> = {}): Promise<void> {
  if (proxy) await proxy.close();
  proxy = null;
  proxy = await startProxy({
    listen: `127.0.0.1:${pf.filterPort}`,
    forward: `127.0.0.1:${pf.reinjectPort}`,
    engine: createStubEngine(),
    logger: createLogger({ write: (l) => logs.push(JSON.parse(l)) }),
    hostname: 'filter.midstream.test',
    ...o,
  });
}

before(async () => {
  sink = await startSink();
  pf = await startPostfix({
    sinkPort: sink.port,
    vars: { AFTER_RECIPIENT_RESTRICTIONS: 'check_recipient_access,texthash:@CONFIG_DIR@/rcpt_access,permit_mynetworks,reject' },
    files: { rcpt_access: 'reject-me@example.net REJECT 5.1.1 No such user here (after-filter)\n' },
  });
  await useProxy();
});

after(async () => {
  if (proxy) await proxy.close().catch(() => {});
  if (pf) await pf.stop();
  if (sink) await sink.close();
});

/** A message with every header Postfix would otherwise add itself, and a unique marker. */
function message(body: string, extraHeaders = ''): { marker: string; text: string } {
  const marker = `pfx-${process.pid}-${++seq}`;
  const text =
    `From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\nSubject: ${marker}\r\n` +
    `Date: Sat, 22 Nov 2025 12:00:00 +0000\r\nMessage-ID: <${marker}@example.org>\r\n${extraHeaders}\r\n` +
    body;
  return { marker, text };
}

const hasMarker = (marker: string) => (m: { data: Buffer | null }) => !!m.data && m.data.includes(`Subject: ${marker}\r\n`);

/** Everything before `original` consists of whole header lines (what Postfix adds on the way). */
function assertOnlyHeadersAdded(got: Buffer, original: Buffer): string {
  assert.ok(got.length >= original.length, 'sink got at least the original');
  assert.deepEqual(got.subarray(got.length - original.length), original, 'original bytes intact at the end');
  const prefix = got.subarray(0, got.length - original.length).toString('latin1');
  assert.match(prefix, /^(?:[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*$/, 'only header lines were added');
  return prefix;
}

/** Proves a rejected/aborted message never arrives: a later clean message does, it does not. */
async function assertNotDelivered(marker: string): Promise<void> {
  const s = message('sentinel\r\n');
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: s.text });
  assert.equal(r.final.code, 250, r.final.text);
  await sink.waitFor(hasMarker(s.marker), 30_000);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(sink.messages.filter(hasMarker(marker)).length, 0, `${marker} must not be delivered`);
  assert.match(await pf.queue(), /Mail queue is empty/);
}

test('clean message: reaches the sink byte-identical below the added headers; queue id passed back', async () => {
  const { marker, text } = message('Hello.\r\n.leading dot\r\n..two\r\n.\r\nlast line\r\n');
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: text });
  assert.equal(r.final.code, 250, r.final.text);
  const qid = /queued as ([0-9A-Za-z]+)/.exec(r.final.text)?.[1];
  assert.ok(qid, `queue id in ${r.final.text}`);
  const m = await sink.waitFor(hasMarker(marker));
  const prefix = assertOnlyHeadersAdded(m.data as Buffer, Buffer.from(text, 'latin1'));
  assert.match(prefix, /^Received: /);
  assert.match(m.data!.toString('latin1'), /\r\n\.leading dot\r\n\.\.two\r\n\.\r\nlast line\r\n$/, 'dot lines survive');
  // The front smtpd logged our (= the after-filter's) reply: the only queue-id trace there.
  await pf.waitForLog(new RegExp(`proxy-accept: END-OF-MESSAGE: 250 2\\.0\\.0 Ok: queued as ${qid}`));
  const line = logs.find((l) => l.event === 'message' && l.queueId === qid);
  assert.ok(line, 'our log line carries the queue id');
  assert.equal(line.verdict, 'clean');
  assert.equal(line.client, '127.0.0.1');
});

test('XFORWARD: the after-filter smtpd sees the original client, not the proxy', async () => {
  const { marker, text } = message('xforward\r\n');
  const c = await TestSmtpClient.connect(pf.smtpPort);
  const clientPort = c.localPort;
  await c.read();
  await c.cmd('EHLO xfwd-probe.example');
  assert.equal((await c.cmd('MAIL FROM:<sender@example.org>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<rcpt@example.net>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(dotStuff(text));
  const fin = await c.read();
  await c.quit();
  assert.equal(fin.code, 250, fin.text);
  const qid = /queued as ([0-9A-Za-z]+)/.exec(fin.text)?.[1];
  const m = await sink.waitFor(hasMarker(marker));
  // And the after-filter logged the client's own source port (XFORWARD PORT).
  // Postfix logs "client=<proxy>, orig_client=<XFORWARD client>".
  await pf.waitForLog(new RegExp(`postfix/after/smtpd\\[\\d+\\]: ${qid}: client=.*, orig_client=unknown\\[127\\.0\\.0\\.1\\]:${clientPort}$`));
  assert.equal(m.xforward.HELO, 'xfwd-probe.example', 'the relay passed the client on too');
});

test('per-recipient reject from the after-filter smtpd reaches the client', async () => {
  const { marker, text } = message('two recipients\r\n');
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net', 'reject-me@example.net'], message: text });
  assert.equal(r.rcpt[0].code, 250);
  assert.ok(r.rcpt[1].code >= 500 && r.rcpt[1].code < 600, r.rcpt[1].text);
  assert.match(r.rcpt[1].text, /5\.1\.1 .*No such user here \(after-filter\)/);
  assert.equal(r.final.code, 250);
  const m = await sink.waitFor(hasMarker(marker));
  assert.deepEqual(m.rcpt, ['rcpt@example.net']);
});

test('8BITMIME and SMTPUTF8 messages pass unchanged', async () => {
  const body = Buffer.from('Grüße, 8-bit body ✓\r\n\u00e9t\u00e9\r\n', 'utf8').toString('latin1');
  const m1 = message(body, 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n');
  const r1 = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: m1.text, mailParams: 'BODY=8BITMIME' });
  assert.equal(r1.final.code, 250, r1.final.text);
  const got1 = await sink.waitFor(hasMarker(m1.marker));
  assertOnlyHeadersAdded(got1.data as Buffer, Buffer.from(m1.text, 'latin1'));

  const utf8Header = Buffer.from('X-Name: Jürgen Ünïcødé\r\n', 'utf8').toString('latin1');
  const m2 = message(body, utf8Header);
  const from = Buffer.from('jürgen@exämple.org', 'utf8').toString('latin1');
  const r2 = await sendMessage(pf.smtpPort, { from, to: ['rcpt@example.net'], message: m2.text, mailParams: 'BODY=8BITMIME SMTPUTF8' });
  assert.equal(r2.final.code, 250, r2.final.text);
  const got2 = await sink.waitFor(hasMarker(m2.marker));
  assertOnlyHeadersAdded(got2.data as Buffer, Buffer.from(m2.text, 'latin1'));
  assert.equal(got2.from, 'jürgen@exämple.org');
  assert.ok('SMTPUTF8' in got2.mailParams, 'SMTPUTF8 kept all the way');
});

test('EICAR (stub engine): 550 5.7.1 to the client, Postfix logs proxy-reject, nothing delivered', async () => {
  const { marker, text } = message(EICAR.toString('latin1') + '\r\n' + 'filler line\r\n'.repeat(20_000));
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: text });
  assert.equal(r.final.code, 550);
  assert.match(r.final.text, /^550 5\.7\.1 Message rejected: virus found: Eicar-Test-Signature$/);
  await pf.waitForLog(/proxy-reject: END-OF-MESSAGE: 550 5\.7\.1 Message rejected: virus found: Eicar-Test-Signature/);
  await assertNotDelivered(marker);
});

test('slow verdict: our 451 within the reply budget, never delivered afterwards', async () => {
  await useProxy({ engine: createStubEngine({ verdictDelayMs: 3000 }), replyBudgetMs: 1000 });
  try {
    const { marker, text } = message('slow\r\n');
    const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: text });
    assert.equal(r.final.code, 451);
    assert.match(r.final.text, /^451 4\.7\.1 /);
    await new Promise((res) => setTimeout(res, 2500)); // past the (clean) verdict
    await useProxy();
    await assertNotDelivered(marker);
  } finally {
    await useProxy();
  }
});

test('filter down: Postfix answers 451 and the sink gets nothing', async () => {
  await proxy!.close();
  proxy = null;
  try {
    const { marker, text } = message('filter down\r\n');
    const c = await TestSmtpClient.connect(pf.smtpPort);
    const seen: Reply[] = [];
    await c.read();
    await c.cmd('EHLO client.example');
    seen.push(await c.cmd('MAIL FROM:<sender@example.org>'));
    seen.push(await c.cmd('RCPT TO:<rcpt@example.net>'));
    const d = await c.cmd('DATA');
    seen.push(d);
    if (d.code === 354) {
      c.write(dotStuff(text));
      seen.push(await c.read());
    }
    await c.quit();
    assert.ok(seen.some((x) => /^451 4\.3\.0 /.test(x.text)), seen.map((x) => x.text).join(' | '));
    assert.ok(!seen.some((x) => /queued as/.test(x.text)));
    await pf.waitForLog(new RegExp(`connect to proxy filter 127\\.0\\.0\\.1:${pf.filterPort}`));
    await useProxy();
    await assertNotDelivered(marker);
  } finally {
    if (!proxy) await useProxy();
  }
});

test('client disconnects mid-DATA: nothing delivered', async () => {
  const { marker, text } = message('line of a message that never ends\r\n'.repeat(5000));
  const before = logs.length;
  const c = await TestSmtpClient.connect(pf.smtpPort);
  await c.read();
  await c.cmd('EHLO client.example');
  await c.cmd('MAIL FROM:<sender@example.org>');
  await c.cmd('RCPT TO:<rcpt@example.net>');
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(text); // no terminator
  await new Promise((r) => setTimeout(r, 500));
  c.destroy();
  const until = Date.now() + 10_000;
  while (!logs.slice(before).some((l) => l.event === 'message' && l.verdict === 'aborted') && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(logs.slice(before).some((l) => l.event === 'message' && l.verdict === 'aborted'), 'proxy aborted the transaction');
  await assertNotDelivered(marker);
});

/** A TCP relay to `port` that cuts both sides after `limit` bytes from the client. */
async function startCutPipe(port: number, limit: number): Promise<{ port: number; server: Server }> {
  const server = createServer((a: Socket) => {
    const b = connect({ port, host: '127.0.0.1' });
    let n = 0;
    a.on('data', (c) => {
      n += c.length;
      if (n >= limit) {
        a.destroy();
        b.destroy();
      } else b.write(c);
    });
    b.on('data', (c) => a.write(c));
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server };
}

test('downstream killed mid-DATA: 451 to the client, nothing delivered', async () => {
  const pipe = await startCutPipe(pf.reinjectPort, 200_000);
  await useProxy({ forward: `127.0.0.1:${pipe.port}` });
  try {
    const { marker, text } = message(('z'.repeat(70) + '\r\n').repeat(10_000));
    const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: text });
    assert.equal(r.final.code, 451, r.final.text);
    await useProxy();
    await assertNotDelivered(marker);
  } finally {
    await new Promise((r) => pipe.server.close(r));
    await useProxy();
  }
});

test('100 MB message passes; the proxy process grows < 16 MB', { timeout: 150_000 }, async (t) => {
  await proxy!.close();
  proxy = null;
  const child = await spawnProxyChild({
    listen: `127.0.0.1:${pf.filterPort}`,
    forward: `127.0.0.1:${pf.reinjectPort}`,
    engine: 'stub',
  });
  sink.store = false;
  try {
    // Warm up code paths, then take the baseline peak.
    const w = message('warm-up\r\n');
    assert.equal((await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: w.text })).final.code, 250);
    const baseKb = child.peakRssKb();

    const { text: head } = message('');
    const line = Buffer.from('.' + 'abcdefghij'.repeat(7) + '0123456\r\n', 'latin1'); // 80 bytes, dot-stuffed below
    const lines = Math.ceil((100 * 1024 * 1024) / line.length);
    const body = createHash('sha256');
    const stuffed = Buffer.concat([Buffer.from('.'), line]); // every line starts with "." on the wire as ".."
    const perChunk = 800;
    const c = await TestSmtpClient.connect(pf.smtpPort);
    await c.read();
    await c.cmd('EHLO big.example');
    assert.equal((await c.cmd('MAIL FROM:<sender@example.org> SIZE=' + (lines * line.length + head.length))).code, 250);
    assert.equal((await c.cmd('RCPT TO:<rcpt@example.net>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const chunk = Buffer.concat(Array.from({ length: perChunk }, () => stuffed));
    const plain = Buffer.concat(Array.from({ length: perChunk }, () => line));
    function* gen() {
      yield Buffer.from(head, 'latin1');
      for (let i = 0; i < lines; i += perChunk) {
        const n = Math.min(perChunk, lines - i);
        body.update(n === perChunk ? plain : plain.subarray(0, n * line.length));
        yield n === perChunk ? chunk : chunk.subarray(0, n * stuffed.length);
      }
      yield Buffer.from('.\r\n');
    }
    await c.streamData(gen());
    const fin = await c.read(120_000);
    await c.quit();
    assert.equal(fin.code, 250, fin.text);
    const m = await sink.waitFor((x) => x.size > 100 * 1024 * 1024 && x.from === 'sender@example.org', 120_000);
    assert.equal(m.bodySha256, body.digest('hex'), 'body bytes intact');
    const growthKb = child.peakRssKb() - baseKb;
    t.diagnostic(`proxy peak RSS: base ${baseKb} KiB, growth ${growthKb} KiB`);
    assert.ok(growthKb < 16 * 1024, `proxy peak RSS grew by ${growthKb} KiB (base ${baseKb} KiB)`);
  } finally {
    sink.store = true;
    await child.stop();
    await useProxy();
  }
});
