/**
 * actions-proxy-postfix.test.ts — issue #13 end to end through the before-queue proxy on
 * real Postfix: `midstream proxy` (the compiled CLI, real config) between Postfix's front
 * smtpd and its after-filter smtpd, whose smtpd_milters is the proxy's after-filter
 * milter (postfix/master.cf.in). One Postfix instance and one proxy for every case.
 *
 *   quarantine  client 250 with the after-filter's queue id; the message sits in Postfix's
 *               hold queue (postqueue -j) with X-Virus-Status; postsuper -H releases it to
 *               the mailbox, postsuper -d deletes another one
 *   tag         delivered with X-Virus-Status: Infected (…) and the subject prefix
 *   discard     client 250 from us, nothing delivered, logged at warn
 *   reject      the [reply] template; sender_block; a name glob; a declared MIME type
 *   headers     X-Virus-Scanned: midstream VERSION on HOST; a forged X-Virus-Status: Clean
 *               and X-Virus-Scanned never reach the mailbox; no ticket header either
 *   rules       virus_lovers; listen_port (a second front smtpd with its own filter port)
 *   notices     to admin@notice.test through the same Postfix: verdict, queue id, header,
 *               never the payload
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostfix, freePort, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { CLI_JS, startCli, type CliServer } from '../helpers/cli-server.js';
import { spawnSync } from 'node:child_process';
import { TMP_BASE } from '../helpers/paths.js';
import { EICAR, actionsConfig, assertNoForgery, deliveryChecks, fieldValues, headerOf, mail, ruleTypes, withAttachment } from '../helpers/actions-fixture.js';

let sink: Sink;
let pf: PostfixInstance;
let cli: CliServer;
let subPort: number;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(TMP_BASE, 'actions-proxy-'));
  sink = await startSink();
  const [filter, subFilter, af] = await Promise.all([freePort(), freePort(), freePort()]);
  subPort = await freePort();
  pf = await startPostfix({
    sinkPort: sink.port,
    filterPort: filter,
    vars: { AFTER_FILTER_MILTER: `inet:127.0.0.1:${af}`, SUB_PORT: String(subPort), SUB_FILTER: String(subFilter) },
    // A second front smtpd (think: submission) with its own filter port: rules tell them apart by listen_port.
    masterExtra: ['127.0.0.1:@SUB_PORT@ inet n - n - 20 smtpd', '    -o syslog_name=postfix/sub', '    -o smtpd_proxy_filter=127.0.0.1:@SUB_FILTER@'],
  });
  const config =
    `[proxy]\nlisten = "127.0.0.1:${filter}"\nlisten_also = ["127.0.0.1:${subFilter}"]\nforward = "127.0.0.1:${pf.reinjectPort}"\n` +
    `after_filter_milter = "inet:${af}@127.0.0.1"\nreply_budget = "30s"\n` +
    actionsConfig(pf.smtpPort, `[[rules]]\nname = "submission"\nmatch = { listen_port = [${subFilter}] }\nactions = { banned = "tempfail" }\n`);
  cli = await startCli('proxy', config, dir);
});

after(async () => {
  await cli?.stop();
  await pf?.stop();
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const diag = () => `\n--- maillog ---\n${pf.readLog().split('\n').slice(-40).join('\n')}\n--- midstream ---\n${cli.rawLog().split('\n').slice(-20).join('\n')}`;
const send = (to: string, text: string, o: { port?: number; from?: string } = {}) =>
  sendMessage(o.port ?? pf.smtpPort, { from: o.from ?? 'sender@example.org', to: [to], message: text });
const { delivered, neverDelivered } = deliveryChecks(() => sink, send);

function noForgery(head: string): void {
  assert.deepEqual(fieldValues(head, 'X-Midstream-Ticket'), [], 'the ticket never leaves the after-filter');
  assertNoForgery(head);
}

test('clean mail: our X-Virus-Scanned, forged X-Virus-* removed, no X-Virus-Status (status off)', async () => {
  const m = mail('hello, nothing to see\r\n');
  const r = await send('x@example.net', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const head = headerOf((await delivered(m.marker)).data);
  noForgery(head);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), []);
});

test('quarantine: 250 with a queue id, held (postqueue -j), released with postsuper -H; another deleted with -d', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@quarantine.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const qid = /queued as ([0-9A-F]+)/.exec(r.final.text)?.[1];
  assert.ok(qid, r.final.text);
  const held = (await pf.queueJson()).find((e) => e.queue_id === qid);
  assert.equal(held?.queue_name, 'hold', JSON.stringify(await pf.queueJson()) + diag());
  assert.deepEqual(held.recipients.map((x) => x.address), ['x@quarantine.test']);
  const file = await pf.postcat(qid);
  assert.match(file, /^X-Virus-Status: Infected \(Eicar-Test-Signature\)$/m);
  assert.match(await pf.waitForLog(new RegExp(`${qid}: milter-hold:`)), /milter triggers HOLD action/);
  const line = await cli.waitForLog((l) => l.event === 'message' && l.queueId === qid);
  assert.equal(line.action, 'quarantine');
  assert.equal(line.verdict, 'infected');
  // Not delivered while held.
  await neverDelivered(m.marker);
  // Release (it moves to the deferred queue) and deliver it now: delivered, marked.
  assert.equal((await pf.postsuper(['-H', qid])).code, 0);
  assert.equal((await pf.postqueue(['-i', qid])).code, 0);
  const got = await delivered(m.marker);
  assert.deepEqual(fieldValues(headerOf(got.data), 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  noForgery(headerOf(got.data));

  const d = mail(`${EICAR}\r\n`);
  const r2 = await send('y@quarantine.test', d.text);
  const qid2 = /queued as ([0-9A-F]+)/.exec(r2.final.text)![1]!;
  assert.equal((await pf.queueJson()).find((e) => e.queue_id === qid2)?.queue_name, 'hold');
  assert.equal((await pf.postsuper(['-d', qid2])).code, 0);
  assert.equal((await pf.queueJson()).find((e) => e.queue_id === qid2), undefined, 'deleted');
  await neverDelivered(d.marker);
});

test('tag: delivered with X-Virus-Status and the subject prefix; virus_lovers get it tagged too', async () => {
  const m = mail(`${EICAR}\r\n`, { subject: 'quarterly numbers' });
  const r = await send('x@tag.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  const head = headerOf((await delivered(m.marker)).data);
  assert.deepEqual(fieldValues(head, 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  assert.deepEqual(fieldValues(head, 'Subject'), ['***VIRUS*** quarterly numbers']);
  noForgery(head);
  const l = mail(`${EICAR}\r\n`);
  assert.equal((await send('abuse@lovers.test', l.text)).final.code, 250);
  assert.deepEqual(fieldValues(headerOf((await delivered(l.marker)).data), 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
});

test('discard: the client hears 250, nothing is delivered, the line is at warn', async () => {
  const m = mail(`${EICAR}\r\n`);
  const r = await send('x@discard.test', m.text);
  assert.equal(r.final.code, 250, r.final.text + diag());
  assert.doesNotMatch(r.final.text, /queued as/, 'nothing was queued');
  const line = await cli.waitForLog((l) => l.event === 'message' && l.action === 'discard');
  assert.equal(line.level, 'warn');
  await neverDelivered(m.marker);
  assert.match(pf.readLog(), /proxy-accept: END-OF-MESSAGE: 250 2\.0\.0 Ok/);
});

test('reject with the template; sender_block; a name glob; a declared MIME type; listen_port rule', async () => {
  const v = await send('x@example.net', mail(`${EICAR}\r\n`).text);
  assert.equal(v.final.text, '550 5.7.1 Virus found: Eicar-Test-Signature');
  const b = await send('x@example.net', mail('hello\r\n').text, { from: 'bulk@spammer.test' });
  assert.equal(b.final.code, 550);
  assert.match(b.final.text, /sender blocked/);
  const g = await send('x@example.net', withAttachment('Report.DOCM', 'application/octet-stream', 'macros').text);
  assert.equal(g.final.text, '550 5.7.1 Message rejected: banned file name (*.docm)');
  const t = await send('x@example.net', withAttachment('tool.dat', 'application/x-msdownload', 'MZ not really').text);
  assert.match(t.final.text, /banned declared type application\/x-msdownload/);
  // The same banned file through the second front smtpd: its filter port's rule says tempfail.
  const sub = await send('x@example.net', withAttachment('setup.exe', 'application/octet-stream', 'x').text, { port: subPort });
  assert.equal(sub.final.code, 451, sub.final.text + diag());
  const line = await cli.waitForLog((l) => l.event === 'message' && l.rule === 'submission');
  assert.equal(line.action, 'tempfail');
});

test('notices: admin@notice.test gets one per listed message through Postfix, with queue id, never the payload', async () => {
  const m = mail(`${EICAR}\r\n`, { subject: 'notice me' });
  const r = await send('z@quarantine.test', m.text);
  const qid = /queued as ([0-9A-F]+)/.exec(r.final.text)![1]!;
  const n = await sink.waitFor((x) => x.rcpt.includes('admin@notice.test') && (x.data?.toString('latin1') ?? '').includes(qid));
  const text = n.data!.toString('latin1');
  assert.equal(n.from, '', 'null envelope sender');
  assert.match(text, /^Subject: \[midstream\] message quarantined: virus Eicar-Test-Signature\r$/m);
  assert.match(text, /Auto-Submitted: auto-generated/);
  assert.match(text, /Subject: notice me/, 'the header block of the message');
  assert.ok(!text.includes('EICAR-STANDARD'), 'never the payload');
  assert.ok(cli.logs().some((l) => l.event === 'notice-sent'));
});

test('rule types: by sender domain, by full recipient address; sender_allow', async () => {
  await ruleTypes((to, text, from) => send(to, text, from ? { from } : {}), delivered, neverDelivered, assert);
});

test('check-config on this very config: how the rules combine, and a rule that can never match', () => {
  const cfg = join(dir, 'proxy.toml');
  const ok = spawnSync(process.execPath, [CLI_JS, 'check-config', cfg], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^# policy: 6 \[\[rules\]\]\. Per recipient the first rule whose every condition holds applies/m);
  assert.match(ok.stdout, /^# {3}1\. "submission": if came in on port \d+ then banned → tempfail$/m);
  assert.match(ok.stdout, /^# {3}then virus_lovers \(abuse@lovers\.test\)/m);
  // The same file with a rule after a catch-all: check-config warns, the proxy still starts.
  const shadowed = join(dir, 'shadowed.toml');
  writeFileSync(shadowed, readFileSync(cfg, 'utf8') + '\n[[rules]]\nname = "all"\n\n[[rules]]\nname = "late"\nmatch = { recipient_domain = ["late.test"] }\n');
  const w = spawnSync(process.execPath, [CLI_JS, 'check-config', shadowed], { encoding: 'utf8' });
  assert.equal(w.status, 0, w.stderr);
  assert.match(w.stderr, /warning: rules\[7\]: rule "late" can never match: rules\[6\] "all" before it matches everything it would/);
});
