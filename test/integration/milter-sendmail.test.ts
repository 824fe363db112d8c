/**
 * milter-sendmail: real Sendmail 8.17 → midstream milter (in this process, real core)
 * → relay to a recording SMTP sink. EICAR gets a 5xx at the SMTP level and never
 * reaches the sink; clean mail reaches the sink unchanged (Sendmail only adds its
 * Received header). Sendmail's syslog is captured for the failure messages.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { createEngine, type Engine, type Session } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { startSendmail, type SendmailInstance } from '../helpers/sendmail.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

let engine: Engine;
let milter: MilterServer;
/** Slow scan for messages containing this marker: longer than Sendmail's T=R:10s. */
const SLOW_MARKER = 'SLOW-SCAN-MARKER';
const SLOW_MS = 12_000;

/** The real engine, but end() takes SLOW_MS when the message carries SLOW_MARKER. */
function slowWhenMarked(inner: Engine): Engine {
  return new Proxy(inner, {
    get(target, prop, recv) {
      if (prop !== 'begin') return Reflect.get(target, prop, recv);
      return (...args: Parameters<Engine['begin']>): Session => {
        const s = target.begin(...args);
        let seen = '';
        let slow = false;
        return new Proxy(s, {
          get(t, p, r) {
            if (p === 'push') {
              return (chunk: Uint8Array) => {
                seen = (seen + Buffer.from(chunk).toString('latin1')).slice(-64);
                if (seen.includes(SLOW_MARKER)) slow = true;
                return t.push(chunk);
              };
            }
            if (p === 'end') {
              return async () => {
                if (slow) await new Promise((res) => setTimeout(res, SLOW_MS));
                return t.end();
              };
            }
            const v = Reflect.get(t, p, r);
            return typeof v === 'function' ? v.bind(t) : v;
          },
        });
      };
    },
  });
}
let sink: Sink;
let sm: SendmailInstance | undefined;
const logs: string[] = [];

before(async () => {
  engine = await createEngine();
  milter = await startMilter({
    listen: 'inet:0@127.0.0.1',
    engine: slowWhenMarked(engine),
    logger: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    progressIntervalMs: 2000,
  });
  sink = await startSink();
  sm = await startSendmail({ milter: milter.address, sinkPort: sink.port });
});

after(async () => {
  await sm?.stop();
  await sink?.close();
  await milter?.close();
  await engine?.close();
});

const diag = () => `\n--- sendmail log ---\n${sm?.log()}\n--- milter log ---\n${logs.join('\n')}`;

function message(subject: string, body: string): string {
  return (
    `From: Sender <sender@example.test>\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${subject.replace(/\W/g, '')}@example.test>\r\nX-Folded: first\r\n\tsecond\r\n\r\n${body}`
  );
}

test('sendmail: the .cf carries our X line and the filter is active', () => {
  assert.match(sm!.cf, new RegExp(`^Xmidstream, S=${milter.address.replace(/[.]/g, '\\.')}, F=T, T=S:10s;R:10s;E:5m$`, 'm'));
  assert.match(sm!.cf, /^O InputMailFilters=midstream$/m);
});

test('sendmail: clean mail is delivered to the sink unchanged', async () => {
  // ~200 KB in short lines (Sendmail folds lines over ~990 bytes when relaying), so several BODY chunks.
  const body = 'Hello,\r\n\r\nthis is clean.\r\n.leading dot line\r\n' + `${'x'.repeat(76)}\r\n`.repeat(2600) + 'bye\r\n';
  const msg = message('clean one', body);
  const r = await sendMessage(sm!.port, { from: 'sender@example.test', to: ['rcpt@example.test'], message: msg });
  assert.equal(r.final.code, 250, r.final.text + diag());
  const got = await sink.waitFor((m) => (m.data?.toString('latin1') ?? '').includes('Message-ID: <cleanone@example.test>'), 30_000);
  const data = got.data!.toString('latin1');
  const split = data.indexOf('\r\n\r\n');
  assert.equal(data.slice(split + 4), body, 'body byte-identical');
  const head = data.slice(0, split + 2);
  for (const line of ['From: Sender <sender@example.test>\r\n', 'Subject: clean one\r\n', 'X-Folded: first\r\n\tsecond\r\n']) {
    assert.ok(head.includes(line), `header kept: ${JSON.stringify(line)}\n${head}`);
  }
  assert.deepEqual(got.rcpt, ['rcpt@example.test']);
  assert.ok(logs.some((l) => l.includes('"event":"message"') && l.includes('"verdict":"clean"')), diag());
});

test('sendmail: EICAR gets 550 5.7.1 at the final dot and never reaches the sink', async () => {
  const before = sink.messages.length;
  const msg = message('virus one', `${EICAR}\r\n`);
  const r = await sendMessage(sm!.port, { from: 'sender@example.test', to: ['rcpt@example.test'], message: msg });
  assert.equal(r.final.code, 550, r.final.text + diag());
  assert.match(r.final.text, /5\.7\.1 Message rejected: virus found: Eicar-Test-Signature/);
  // A clean marker message sent afterwards proves the relay path is live, so "absent" means rejected.
  const r2 = await sendMessage(sm!.port, { from: 'sender@example.test', to: ['rcpt@example.test'], message: message('after virus', 'ok\r\n') });
  assert.equal(r2.final.code, 250, r2.final.text + diag());
  await sink.waitFor((m) => (m.data?.toString('latin1') ?? '').includes('<aftervirus@example.test>'), 30_000);
  assert.ok(!sink.messages.slice(before).some((m) => (m.data?.toString('latin1') ?? '').includes('EICAR')), 'EICAR not delivered');
  assert.match(sm!.log(), /Milter: data, reject=550 5\.7\.1/, diag());
});

test('sendmail: infected attachment followed by >64 KiB of body is rejected mid-body (early verdict)', async () => {
  const earlyBefore = logs.filter((l) => l.includes('"event":"message"') && l.includes('"early":true')).length;
  const msg =
    'From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: attach\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
    '--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n' +
    'Content-Disposition: attachment; filename="eicar.txt"\r\n\r\n' +
    Buffer.from(EICAR).toString('base64') + '\r\n--BB\r\nContent-Type: text/plain\r\n\r\n' +
    `${'z'.repeat(76)}\r\n`.repeat(3000) + '--BB--\r\n';
  const r = await sendMessage(sm!.port, { from: 'sender@example.test', to: ['rcpt@example.test'], message: msg });
  assert.equal(r.final.code, 550, r.final.text + diag());
  assert.match(r.final.text, /Eicar-Test-Signature/);
  const early = logs.filter((l) => l.includes('"event":"message"') && l.includes('"early":true'));
  assert.equal(early.length, earlyBefore + 1, diag());
  assert.match(early.at(-1)!, /"at":"BODY"/);
});

test('sendmail: a scan slower than T=R:10s survives thanks to PROGRESS at end of message', async () => {
  const t0 = Date.now();
  const r = await sendMessage(sm!.port, { from: 'sender@example.test', to: ['rcpt@example.test'], message: message('slow scan', `${SLOW_MARKER}\r\n`) });
  assert.ok(Date.now() - t0 >= SLOW_MS, 'the scan really took longer than the read timeout');
  assert.equal(r.final.code, 250, r.final.text + diag());
  await sink.waitFor((m) => (m.data?.toString('latin1') ?? '').includes('<slowscan@example.test>'), 30_000);
});

test('sendmail: no milter errors in its log', () => {
  assert.match(sm!.log(), /Milter \(midstream\)|milter/i, 'the log is being captured');
  assert.doesNotMatch(sm!.log(), /Milter.*(error|timeout|unexpected|protocol)/i, diag());
});
