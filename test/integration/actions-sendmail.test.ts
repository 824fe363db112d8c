/**
 * actions-sendmail.test.ts — issue #13 end to end through the milter on real Sendmail 8.17
 * (sendmail/midstream.mc.in): `midstream milter` (the compiled CLI, real config) with the
 * same policy as the Postfix tests (test/helpers/actions-fixture.ts).
 *
 *   quarantine  SMFIR_QUARANTINE: 250, the queue file is kept as hf* (Sendmail's quarantine)
 *               with our reason on its q line, and the message is not delivered
 *   tag         X-Virus-Status and the subject prefix
 *   discard     SMFIR_DISCARD: 250, nothing delivered
 *   reject      the [reply] template; sender_block
 *   headers     X-Virus-Scanned: midstream VERSION on HOST; forged X-Virus-* never delivered
 *   rules       {daemon_name} (Sendmail's DAEMON_OPTIONS Name=MTA)
 *   notices     to admin@notice.test through the same Sendmail
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startSendmail, freePort, type SendmailInstance } from '../helpers/sendmail.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { TMP_BASE } from '../helpers/paths.js';
import { EICAR, actionsConfig, assertNoForgery, deliveryChecks, fieldValues, headerOf, mail, ruleTypes } from '../helpers/actions-fixture.js';

let sink: Sink;
let sm: SendmailInstance;
let cli: CliServer;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(TMP_BASE, 'actions-sendmail-'));
  sink = await startSink();
  const milterPort = await freePort();
  // Notices go to the sink directly here (Sendmail's port is chosen by its helper after the
  // milter must already listen); the Postfix tests send them through the MTA.
  const rules =
    `[[rules]]\nname = "mta-daemon"\nmatch = { daemon_name = ["MTA"], recipient_domain = ["daemon.test"] }\nactions = { infected = "tag" }\n\n` +
    `[[rules]]\nname = "msa-daemon"\nmatch = { daemon_name = ["MSA"], recipient_domain = ["msa.test"] }\nactions = { infected = "tag" }\n`;
  cli = await startCli('milter', `[milter]\nlisten = "inet:${milterPort}@127.0.0.1"\n` + actionsConfig(sink.port, rules), dir);
  sm = await startSendmail({ milter: `inet:${milterPort}@127.0.0.1`, sinkPort: sink.port });
});

after(async () => {
  await sm?.stop();
  await cli?.stop();
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const diag = () => `\n--- sendmail ---\n${sm.log().split('\n').slice(-30).join('\n')}\n--- midstream ---\n${cli.rawLog().split('\n').slice(-15).join('\n')}`;
const send = (to: string, text: string, from = 'sender@example.org') => sendMessage(sm.port, { from, to: [to], message: text });
const { delivered, neverDelivered } = deliveryChecks(() => sink, send);
const noForgery = assertNoForgery;

test('clean mail: our X-Virus-Scanned, the forged X-Virus-* removed', async () => {
  const m = mail('hello\r\n');
  const r = await send('x@example.net', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const head = headerOf((await delivered(m.marker)).data);
  noForgery(head);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), []);
});

test('quarantine (SMFIR_QUARANTINE): 250, kept as an hf queue file with our reason, not delivered', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@quarantine.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const qid = /^2\.0\.0 (\w+) Message accepted/.exec(r.final.text.replace(/^250 /, ''))?.[1];
  assert.ok(qid, r.final.text);
  const qdir = join(sm.dir, 'queue');
  const until = Date.now() + 10_000;
  let hf: string | undefined;
  while (!(hf = readdirSync(qdir).find((f) => f === `hf${qid}`)) && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
  assert.ok(hf, `hf${qid} in ${readdirSync(qdir).join(' ')}` + diag());
  const qf = readFileSync(join(qdir, hf), 'latin1');
  assert.match(qf, /^qmidstream: infected Eicar-Test-Signature \(1\)$/m, 'the quarantine reason');
  assert.match(qf, /^H\?\?X-Virus-Status: Infected \(Eicar-Test-Signature\)$/m);
  await neverDelivered(m.marker);
  const line = await cli.waitForLog((l) => l.event === 'message' && l.action === 'quarantine');
  assert.equal(line.queueId, qid);
});

test('tag: X-Virus-Status and the subject prefix; {daemon_name} is MTA, not MSA', async () => {
  const m = mail(`${EICAR}\r\n`, { subject: 'quarterly numbers' });
  assert.equal((await send('x@tag.test', m.text)).final.code, 250);
  const head = headerOf((await delivered(m.marker)).data);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  assert.deepEqual(fieldValues(head, 'Subject'), ['***VIRUS*** quarterly numbers']);
  noForgery(head);
  const d = mail(`${EICAR}\r\n`);
  assert.equal((await send('x@daemon.test', d.text)).final.code, 250, 'the MTA daemon rule tags');
  await delivered(d.marker);
  assert.equal((await send('x@msa.test', mail(`${EICAR}\r\n`).text)).final.code, 550, 'no MSA daemon here: rejected');
});

test('discard (SMFIR_DISCARD): 250, nothing delivered, logged at warn', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@discard.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const line = await cli.waitForLog((l) => l.event === 'message' && l.action === 'discard');
  assert.equal(line.level, 'warn');
  await neverDelivered(m.marker);
  assert.match(sm.log(), /discard/i);
});

test('reject with the template; sender_block; notices reach the admin without the payload', async () => {
  const r = await send('x@example.net', mail(`${EICAR}\r\n`, { subject: 'notice me' }).text);
  assert.equal(r.final.code, 550, r.final.text + diag());
  assert.match(r.final.text, /5\.7\.1 Virus found: Eicar-Test-Signature/);
  const b = await send('x@example.net', mail('hello\r\n').text, 'bulk@spammer.test');
  assert.equal(b.final.code, 550);
  assert.match(b.final.text, /sender blocked/);
  const n = await sink.waitFor((x) => x.rcpt.includes('admin@notice.test') && (x.data?.toString('latin1') ?? '').includes('notice me'));
  const text = n.data!.toString('latin1');
  assert.match(text, /^Subject: \[midstream\] message rejected: virus Eicar-Test-Signature\r$/m);
  assert.ok(!text.includes('EICAR-STANDARD'));
});

test('rule types: by sender domain, by full recipient address; sender_allow', async () => {
  await ruleTypes((to, text, from) => send(to, text, from), delivered, neverDelivered, assert);
});
