/**
 * graceful-shutdown.test.ts — close() of both fronts (what SIGTERM does in the CLI):
 * the listener stops at once, a message in progress still completes (proxy: delivered
 * with the sink's queue id; milter: end of body answered), an idle session gets
 * "421 4.3.2" (proxy) or is closed (milter), and after the grace period the rest is dropped.
 * In-process, real core engine (built-in signatures), loopback, port 0.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startProxy } from '../../src/smtp/proxy-server.js';
import { startMilter } from '../../milter/milter-server.js';
import { createEngine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { SMFIR } from '../../milter/milter-codes.js';
import { startSink } from '../helpers/sink.js';
import { TestSmtpClient } from '../helpers/smtp-client.js';
import { MilterClient } from '../helpers/milter-client.js';

type Rec = Record<string, unknown>;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });

const HEAD = 'From: a@example.org\r\nTo: b@example.net\r\nSubject: drain\r\n\r\n';
const BODY1 = 'first half of the body\r\n'.repeat(200);
const BODY2 = 'second half of the body\r\n'.repeat(200);

async function proxySetup(graceMs: number) {
  const sink = await startSink();
  const engine = await createEngine();
  const logs: Rec[] = [];
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    forward: `127.0.0.1:${sink.port}`,
    engine,
    logger: createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as Rec) }),
    hostname: 'proxy.test',
    shutdownGraceMs: graceMs,
  });
  cleanups.push(() => proxy.close(), () => sink.close(), () => engine.close());
  return { sink, proxy, logs, port: Number(proxy.address.split(':').pop()) };
}

async function openTx(port: number): Promise<TestSmtpClient> {
  const c = await TestSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<b@example.net>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  return c;
}

test('proxy close(): mid-DATA message completes and is delivered; idle session gets 421 4.3.2; new connections refused', async () => {
  const { sink, proxy, logs, port } = await proxySetup(10_000);
  const busy = await openTx(port);
  busy.write(HEAD + BODY1);
  const idle = await TestSmtpClient.connect(port);
  assert.equal((await idle.read()).code, 220);
  assert.equal((await idle.cmd('EHLO idle.test')).code, 250);
  // Let the first half reach the proxy before shutdown starts.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(proxy.connections, 2);

  let closed = false;
  const closing = proxy.close().then(() => (closed = true));
  const idleReply = await idle.read(5000);
  assert.equal(idleReply.code, 421);
  assert.match(idleReply.text, /^421 4\.3\.2 Service shutting down/);
  await idle.closed;
  assert.equal(await refused(port), 'ECONNREFUSED');
  assert.equal(closed, false, 'close() waits for the message in progress');

  busy.write(BODY2 + '.\r\n');
  const fin = await busy.read(10_000);
  assert.equal(fin.code, 250);
  assert.match(fin.text, /queued as SINK1/);
  // After its transaction the drained session says goodbye with 421 and closes.
  const bye = await busy.read(5000);
  assert.equal(bye.code, 421);
  await busy.closed;
  await closing;
  assert.equal(sink.messages.length, 1);
  assert.equal(sink.messages[0]!.data?.toString('latin1'), HEAD + BODY1 + BODY2);
  const line = logs.find((l) => l.event === 'message');
  assert.equal(line?.verdict, 'clean');
  assert.equal(line?.queueId, 'SINK1');
  assert.equal(logs.find((l) => l.event === 'closed' && l.front === 'proxy')?.how, 'drained');
});

test('proxy close(): EICAR arriving during the drain is still scanned and rejected', async () => {
  const { sink, proxy, port } = await proxySetup(10_000);
  const busy = await openTx(port);
  busy.write(HEAD);
  await new Promise((r) => setTimeout(r, 50));
  const closing = proxy.close();
  busy.write('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\r\n.\r\n');
  const fin = await busy.read(10_000);
  assert.equal(fin.code, 550);
  await closing;
  assert.equal(sink.messages.length, 0);
});

test('proxy close(): after the grace period a stalled transaction is dropped and nothing is delivered', async () => {
  const { sink, proxy, logs, port } = await proxySetup(300);
  const busy = await openTx(port);
  busy.write(HEAD + BODY1); // and never the final dot
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await proxy.close();
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 5000, `close took ${took} ms`);
  await busy.closed;
  assert.equal(sink.messages.length, 0);
  assert.equal(logs.find((l) => l.event === 'closed' && l.front === 'proxy')?.how, 'deadline');
  assert.equal(logs.find((l) => l.event === 'message')?.verdict, 'aborted');
});

async function milterSetup(graceMs: number) {
  const engine = await createEngine();
  const logs: Rec[] = [];
  const m = await startMilter({
    listen: 'inet:0@127.0.0.1',
    engine,
    logger: createLogger({ level: 'info', write: (l) => logs.push(JSON.parse(l) as Rec) }),
    shutdownGraceMs: graceMs,
  });
  cleanups.push(() => m.close(), () => engine.close());
  return { m, logs, port: Number(/^inet:(\d+)@/.exec(m.address)![1]) };
}

async function milterMessageStart(address: string): Promise<MilterClient> {
  const c = await MilterClient.connect(address);
  await c.negotiate();
  await c.connectInfo('client.test', '192.0.2.1');
  await c.mail('<a@example.org>');
  await c.rcpt('<b@example.net>');
  await c.header('Subject', 'drain');
  await c.eoh();
  await c.body(BODY1);
  return c;
}

test('milter close(): a message in progress gets its end-of-body reply, idle connections close, new ones are refused', async () => {
  const { m, logs, port } = await milterSetup(10_000);
  const busy = await milterMessageStart(m.address);
  const idle = await MilterClient.connect(m.address);
  await idle.negotiate();
  await idle.connectInfo('idle.test', '192.0.2.2');
  assert.equal(m.connections, 2);

  let closed = false;
  const closing = m.close().then(() => (closed = true));
  assert.equal(await idle.next(5000), null, 'idle connection closed without a packet');
  assert.equal(await refused(port), 'ECONNREFUSED');
  assert.equal(closed, false);

  await busy.body(BODY2);
  const r = await busy.eob();
  assert.equal(r.final.cmd, SMFIR.CONTINUE);
  assert.equal(await busy.next(5000), null, 'closed after its message');
  await closing;
  const line = logs.find((l) => l.event === 'message');
  assert.equal(line?.verdict, 'clean');
  assert.equal(line?.size, Buffer.byteLength('Subject: drain\r\n\r\n' + BODY1 + BODY2));
  assert.equal(logs.find((l) => l.event === 'closed' && l.front === 'milter')?.how, 'drained');
});

test('milter close(): after the grace period a stalled message is dropped', async () => {
  const { m, logs } = await milterSetup(300);
  const busy = await milterMessageStart(m.address);
  const t0 = Date.now();
  await m.close();
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 5000, `close took ${took} ms`);
  assert.equal(await busy.next(2000), null);
  assert.equal(logs.find((l) => l.event === 'closed' && l.front === 'milter')?.how, 'deadline');
  assert.equal(logs.filter((l) => l.event === 'message').length, 0);
});
