/**
 * actions-milter-postfix.test.ts — issue #13 end to end through the milter on real
 * Postfix (smtpd_milters, postfix/milter.cf.in): `midstream milter` (the compiled CLI,
 * real config) with the same policy as the proxy test (test/helpers/actions-fixture.ts).
 *
 *   quarantine  SMFIR_QUARANTINE: 250 with a queue id, in Postfix's hold queue (postqueue -j)
 *               with X-Virus-Status; postsuper -H + postqueue -i delivers it
 *   tag         X-Virus-Status: Infected (…) and the subject prefix (CHGHEADER)
 *   discard     SMFIR_DISCARD: 250, Postfix logs milter-discard, nothing delivered
 *   reject      the [reply] template; sender_block; a name glob; a declared MIME type
 *   headers     X-Virus-Scanned: midstream VERSION on HOST; forged X-Virus-* never delivered
 *   rules       {daemon_name} (a second smtpd with milter_macro_daemon_name=ORIGINATING),
 *               {daemon_addr} as if_addr, virus_lovers
 *   notices     to admin@notice.test through the same Postfix
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startPostfix, freePort, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import { EICAR, actionsConfig, assertNoForgery, deliveryChecks, fieldValues, headerOf, mail, ruleTypes, withAttachment } from '../helpers/actions-fixture.js';

let sink: Sink;
let pf: PostfixInstance;
let cli: CliServer;
let origPort: number;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(TMP_BASE, 'actions-milter-pf-'));
  sink = await startSink();
  const milterPort = await freePort();
  origPort = await freePort();
  pf = await startPostfix({
    sinkPort: sink.port,
    proxyFilter: false,
    vars: { MILTER: `inet:127.0.0.1:${milterPort}`, ORIG_PORT: String(origPort) },
    mainExtra: [readFileSync(join(ROOT, 'postfix', 'milter.cf.in'), 'utf8')],
    // Submission-like smtpd: same milter, but {daemon_name} says ORIGINATING (the usual Postfix idiom).
    masterExtra: ['127.0.0.1:@ORIG_PORT@ inet n - n - 20 smtpd', '    -o syslog_name=postfix/orig', '    -o milter_macro_daemon_name=ORIGINATING'],
  });
  const rules =
    `[[rules]]\nname = "originating"\nmatch = { daemon_name = ["ORIGINATING"] }\nactions = { banned = "tempfail" }\n\n` +
    `[[rules]]\nname = "loopback-if"\nmatch = { if_addr = ["127.0.0.0/8"], recipient_domain = ["ifaddr.test"] }\nactions = { infected = "tag" }\n\n` +
    `[[rules]]\nname = "other-if"\nmatch = { if_addr = ["192.0.2.0/24"], recipient_domain = ["otherif.test"] }\nactions = { infected = "tag" }\n`;
  cli = await startCli('milter', `[milter]\nlisten = "inet:${milterPort}@127.0.0.1"\n` + actionsConfig(pf.smtpPort, rules), dir);
});

after(async () => {
  await cli?.stop();
  await pf?.stop();
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const diag = () => `\n--- maillog ---\n${pf.readLog().split('\n').slice(-30).join('\n')}\n--- midstream ---\n${cli.rawLog().split('\n').slice(-15).join('\n')}`;
const send = (to: string, text: string, o: { port?: number; from?: string } = {}) =>
  sendMessage(o.port ?? pf.smtpPort, { from: o.from ?? 'sender@example.org', to: [to], message: text });
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

test('quarantine (SMFIR_QUARANTINE): held by Postfix, released with postsuper -H', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@quarantine.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const qid = /queued as ([0-9A-F]+)/.exec(r.final.text)![1]!;
  assert.equal((await pf.queueJson()).find((e) => e.queue_id === qid)?.queue_name, 'hold', diag());
  assert.match(await pf.postcat(qid), /^X-Virus-Status: Infected \(Eicar-Test-Signature\)$/m);
  assert.match(await pf.waitForLog(new RegExp(`${qid}: milter-hold:`)), /milter triggers HOLD action/);
  const line = await cli.waitForLog((l) => l.event === 'message' && l.queueId === qid && l.action === 'quarantine');
  assert.equal(line.verdict, 'infected');
  await neverDelivered(m.marker);
  assert.equal((await pf.postsuper(['-H', qid])).code, 0);
  assert.equal((await pf.postqueue(['-i', qid])).code, 0);
  const head = headerOf((await delivered(m.marker)).data);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  noForgery(head);
});

test('tag: X-Virus-Status and the subject prefix; virus_lovers; if_addr ({daemon_addr})', async () => {
  const m = mail(`${EICAR}\r\n`, { subject: 'quarterly numbers' });
  assert.equal((await send('x@tag.test', m.text)).final.code, 250);
  const head = headerOf((await delivered(m.marker)).data);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  assert.deepEqual(fieldValues(head, 'Subject'), ['***VIRUS*** quarterly numbers']);
  noForgery(head);
  const l = mail(`${EICAR}\r\n`);
  assert.equal((await send('abuse@lovers.test', l.text)).final.code, 250);
  assert.deepEqual(fieldValues(headerOf((await delivered(l.marker)).data), 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  // Postfix listens on 127.0.0.1: the loopback rule matches, the 192.0.2.0/24 one does not.
  const i = mail(`${EICAR}\r\n`);
  assert.equal((await send('x@ifaddr.test', i.text)).final.code, 250);
  await delivered(i.marker);
  assert.equal((await send('x@otherif.test', mail(`${EICAR}\r\n`).text)).final.code, 550);
});

test('discard (SMFIR_DISCARD): 250, milter-discard, nothing delivered, logged at warn', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@discard.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  await pf.waitForLog(/milter-discard: END-OF-MESSAGE/);
  const line = await cli.waitForLog((l) => l.event === 'message' && l.action === 'discard');
  assert.equal(line.level, 'warn');
  await neverDelivered(m.marker);
});

test('reject: template, sender_block, name glob, declared type; {daemon_name} rule on the ORIGINATING smtpd', async () => {
  assert.equal((await send('x@example.net', mail(`${EICAR}\r\n`).text)).final.text, '550 5.7.1 Virus found: Eicar-Test-Signature');
  const b = await send('x@example.net', mail('hello\r\n').text, { from: 'bulk@spammer.test' });
  assert.match(b.final.text, /^550 5\.7\.1 .*sender blocked/);
  assert.equal((await send('x@example.net', withAttachment('Report.docm', 'application/octet-stream', 'm').text)).final.text, '550 5.7.1 Message rejected: banned file name (*.docm)');
  assert.match((await send('x@example.net', withAttachment('t.dat', 'application/x-msdownload', 'x').text)).final.text, /banned declared type application\/x-msdownload/);
  const exe = withAttachment('setup.exe', 'application/octet-stream', 'x').text;
  assert.equal((await send('x@example.net', exe)).final.code, 550, 'port 25 smtpd: reject');
  const o = await send('x@example.net', exe, { port: origPort });
  assert.equal(o.final.code, 451, o.final.text + diag());
  assert.equal((await cli.waitForLog((l) => l.event === 'message' && l.rule === 'originating')).action, 'tempfail');
});

test('notices: admin@notice.test gets them through Postfix, never the payload', async () => {
  const m = mail(`${EICAR}\r\n`, { subject: 'notice me' });
  const r = await send('z@quarantine.test', m.text);
  const qid = /queued as ([0-9A-F]+)/.exec(r.final.text)![1]!;
  const n = await sink.waitFor((x) => x.rcpt.includes('admin@notice.test') && (x.data?.toString('latin1') ?? '').includes(qid));
  const text = n.data!.toString('latin1');
  assert.equal(n.from, '');
  assert.match(text, /^Subject: \[midstream\] message quarantined: virus Eicar-Test-Signature\r$/m);
  assert.match(text, /Subject: notice me/);
  assert.ok(!text.includes('EICAR-STANDARD'));
});

test('rule types: by sender domain, by full recipient address; sender_allow', async () => {
  await ruleTypes((to, text, from) => send(to, text, from ? { from } : {}), delivered, neverDelivered, assert);
});
