/**
 * milter-postfix: real Postfix (private instance, smtpd_milters from postfix/milter.cf.in)
 * → midstream milter (in this process, real core) → relay to a recording SMTP sink.
 * EICAR gets 550 5.7.1 at the SMTP level and never reaches the sink; clean mail reaches
 * the sink unchanged; an infected attachment followed by >64 KiB of body is rejected
 * while body chunks are still arriving (early verdict).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { ROOT } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

let engine: Engine;
let milter: MilterServer;
let sink: Sink;
let pf: PostfixInstance | undefined;
const logs: string[] = [];

/** Sendmail notation inet:PORT@HOST → Postfix notation inet:HOST:PORT. */
function postfixSocket(addr: string): string {
  const m = /^inet:(\d+)@(.+)$/.exec(addr);
  return m ? `inet:${m[2]}:${m[1]}` : addr;
}

before(async () => {
  engine = await createEngine();
  milter = await startMilter({ listen: 'inet:0@127.0.0.1', engine, logger: createLogger({ level: 'info', write: (l) => logs.push(l) }) });
  sink = await startSink();
  const fragment = readFileSync(join(ROOT, 'postfix', 'milter.cf.in'), 'utf8');
  pf = await startPostfix({
    sinkPort: sink.port,
    proxyFilter: false,
    vars: { MILTER: postfixSocket(milter.address) },
    mainExtra: [fragment],
  });
});

after(async () => {
  await pf?.stop();
  await sink?.close();
  await milter?.close();
  await engine?.close();
});

const diag = () => `\n--- maillog ---\n${pf?.readLog()}\n--- milter log ---\n${logs.join('\n')}`;

function message(subject: string, body: string): string {
  return (
    `From: Sender <sender@example.test>\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${subject.replace(/\W/g, '')}@example.test>\r\nX-Folded: first\r\n\tsecond\r\n\r\n${body}`
  );
}

const send = (msg: string) => sendMessage(pf!.smtpPort, { from: 'sender@example.test', to: ['rcpt@example.test'], message: msg });

test('postfix: clean mail is delivered to the sink unchanged', async () => {
  const body = 'Hello,\r\n\r\nthis is clean.\r\n.leading dot line\r\n' + `${'y'.repeat(76)}\r\n`.repeat(2600) + 'bye\r\n';
  const r = await send(message('pf clean', body));
  assert.equal(r.final.code, 250, r.final.text + diag());
  const got = await sink.waitFor((m) => (m.data?.toString('latin1') ?? '').includes('<pfclean@example.test>'), 30_000);
  const data = got.data!.toString('latin1');
  const split = data.indexOf('\r\n\r\n');
  assert.equal(data.slice(split + 4), body, 'body byte-identical');
  const head = data.slice(0, split + 2);
  for (const line of ['From: Sender <sender@example.test>\r\n', 'Subject: pf clean\r\n', 'X-Folded: first\r\n\tsecond\r\n']) {
    assert.ok(head.includes(line), `header kept: ${JSON.stringify(line)}\n${head}`);
  }
  assert.ok(logs.some((l) => l.includes('"event":"message"') && l.includes('"verdict":"clean"') && /"queueId":"[0-9A-F]+"/.test(l)), diag());
});

test('postfix: EICAR gets 550 5.7.1 at the final dot and never reaches the sink', async () => {
  const before = sink.messages.length;
  const r = await send(message('pf virus', `${EICAR}\r\n`));
  assert.equal(r.final.code, 550, r.final.text + diag());
  assert.match(r.final.text, /5\.7\.1 Message rejected: virus found: Eicar-Test-Signature/);
  await pf!.waitForLog(/milter-reject: END-OF-MESSAGE .*5\.7\.1 Message rejected: virus found: Eicar-Test-Signature/);
  const r2 = await send(message('pf after virus', 'ok\r\n'));
  assert.equal(r2.final.code, 250, r2.final.text + diag());
  await sink.waitFor((m) => (m.data?.toString('latin1') ?? '').includes('<pfaftervirus@example.test>'), 30_000);
  assert.ok(!sink.messages.slice(before).some((m) => (m.data?.toString('latin1') ?? '').includes('EICAR')), 'EICAR not delivered');
});

test('postfix: infected attachment followed by >64 KiB of body is rejected mid-body (early verdict)', async () => {
  const msg =
    'From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: pf early\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
    '--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n' +
    'Content-Disposition: attachment; filename="eicar.txt"\r\n\r\n' +
    Buffer.from(EICAR).toString('base64') + '\r\n--BB\r\nContent-Type: text/plain\r\n\r\n' +
    `${'z'.repeat(76)}\r\n`.repeat(3000) + '--BB--\r\n';
  const earlyBefore = logs.filter((l) => l.includes('"event":"message"') && l.includes('"early":true')).length;
  const r = await send(msg);
  assert.equal(r.final.code, 550, r.final.text + diag());
  assert.match(r.final.text, /Eicar-Test-Signature/);
  const early = logs.filter((l) => l.includes('"event":"message"') && l.includes('"early":true'));
  assert.equal(early.length, earlyBefore + 1, diag());
  assert.match(early.at(-1)!, /"at":"BODY"/);
});

test('postfix: no milter warnings in the maillog (negotiation, replies, macros all accepted)', async () => {
  await pf!.waitForLog(/status=sent/);
  assert.doesNotMatch(pf!.readLog(), /(warning|error|fatal):.*milter/i, diag());
});
