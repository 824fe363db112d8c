/**
 * reliability-accounting.test.ts — issue 7 item 1: every message sent through a real
 * Postfix 3.7 + midstream (the compiled CLI, with a real clamd) is accounted for:
 * accepted ⇒ delivered exactly once and unaltered below added headers; rejected or
 * tempfailed ⇒ never delivered; a client gone before the final reply ⇒ never delivered
 * unless Postfix sent the 250. Also the peer failure mode measured on this machine: a
 * scan slower than our reply budget (our 451) or slower than Postfix's own
 * smtpd_proxy_timeout (Postfix's 451): the late clean verdict must never send the dot.
 *
 * One Postfix instance with three front smtpd services:
 *   smtpPort       → smtpd_proxy_filter → `midstream proxy --clamd <real clamd>`
 *   slowFrontPort  → smtpd_proxy_filter (smtpd_proxy_timeout=5s) → `midstream proxy`
 *                    whose clamd is a fake that answers late
 *   milterFrontPort→ smtpd_milters → `midstream milter --clamd <real clamd>`
 * all relaying through the after-filter smtpd / queue to one recording sink.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostfix, freePort, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { startClamd, type RealClamd } from '../helpers/clamd.js';
import { startFakeClamd, type FakeClamd } from '../helpers/fake-clamd.js';
import { startCli, writeConfig, type CliProcess } from '../helpers/midstream-cli.js';
import {
  audit, buildMail, proxyAcceptedIds, runPool, sendTracked, settle, waitDelivered, messageIdOf,
  type Entry, type Kind, type Stage,
} from '../helpers/accounting.js';

let pf: PostfixInstance;
let sink: Sink;
let clamd: RealClamd;
let proxy: CliProcess;
let milter: CliProcess;
let slow: CliProcess | null = null;
let fake: FakeClamd | null = null;
let dir: string;
let milterPort: number;
let slowFilterPort: number;
const RUN = `r${process.pid.toString(36)}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midstream-acct-'));
  sink = await startSink();
  clamd = await startClamd();
  [milterPort, slowFilterPort] = [await freePort(), await freePort()];
  const [milterFrontPort, slowFrontPort] = [await freePort(), await freePort()];
  pf = await startPostfix({
    sinkPort: sink.port,
    vars: {
      MILTER_PORT: String(milterPort),
      MILTER_FRONT_PORT: String(milterFrontPort),
      SLOW_FILTER_PORT: String(slowFilterPort),
      SLOW_FRONT_PORT: String(slowFrontPort),
    },
    masterExtra: [
      '127.0.0.1:@MILTER_FRONT_PORT@ inet n - n - 20 smtpd',
      '    -o syslog_name=postfix/mfront',
      '    -o smtpd_milters=inet:127.0.0.1:@MILTER_PORT@',
      '    -o milter_default_action=tempfail',
      '    -o milter_protocol=6',
      '127.0.0.1:@SLOW_FRONT_PORT@ inet n - n - 20 smtpd',
      '    -o syslog_name=postfix/slowfront',
      '    -o smtpd_proxy_filter=127.0.0.1:@SLOW_FILTER_PORT@',
      '    -o smtpd_proxy_timeout=5s',
    ],
  });
  proxy = await startCli(['proxy', '--listen', `127.0.0.1:${pf.filterPort}`, '--forward', `127.0.0.1:${pf.reinjectPort}`, '--clamd', clamd.unix]);
  milter = await startCli(['milter', '--listen', `inet:${milterPort}@127.0.0.1`, '--clamd', clamd.unix]);
});

after(async () => {
  await slow?.stop();
  await proxy?.stop();
  await milter?.stop();
  await pf?.stop();
  await fake?.close();
  await clamd?.stop();
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const port = (name: string) => Number(pf.vars[name]);

function mix(tag: string, spec: { kind: Kind; n: number; disconnectAt?: Stage }[]): Entry[] {
  const out: Entry[] = [];
  let i = 0;
  for (const s of spec) {
    for (let k = 0; k < s.n; k++) {
      const id = `${RUN}-${tag}-${++i}`;
      out.push({ id, kind: s.kind, message: buildMail(s.kind, id, 20 + ((i * 37) % 200)), ...(s.disconnectAt ? { disconnectAt: s.disconnectAt } : {}) });
    }
  }
  // Interleave kinds deterministically.
  return out.map((e, j) => ({ e, k: (j * 7919) % out.length })).sort((a, b) => a.k - b.k).map((x) => x.e);
}

function diag(cli?: CliProcess): string {
  return `\n--- maillog tail ---\n${pf.readLog().slice(-4000)}\n--- midstream stderr tail ---\n${(cli ?? proxy).stderr().slice(-3000)}`;
}

test('proxy: 70 mixed messages (clean / EICAR / banned / clients leaving mid-DATA and after the dot) all accounted for', { timeout: 150_000 }, async (t) => {
  const entries = mix('px', [
    { kind: 'clean', n: 34 },
    { kind: 'eicar', n: 12 },
    { kind: 'banned', n: 12 },
    { kind: 'clean', n: 4, disconnectAt: 'mid-data' },
    { kind: 'eicar', n: 2, disconnectAt: 'mid-data' },
    { kind: 'clean', n: 6, disconnectAt: 'after-dot' },
  ]);
  await runPool(entries, 10, (e) => sendTracked(pf.smtpPort, e));
  const accepted = entries.filter((e) => e.outcome === 'accepted').map((e) => e.id);
  await waitDelivered(sink, accepted);
  await settle(sink, 2000);
  // Postfix must finish logging the after-dot sessions before we read the oracle.
  await new Promise((r) => setTimeout(r, 500));
  const acc250 = proxyAcceptedIds(pf.readLog());
  const res = audit(entries, sink, { prefix: `${RUN}-px-`, accepted250: acc250 });
  t.diagnostic(`outcomes: ${JSON.stringify(res.counts)}; delivered ${res.delivered}; after-dot with 250: ${entries.filter((e) => e.disconnectAt === 'after-dot' && acc250.has(e.id)).length}`);
  assert.deepEqual(res.violations, [], diag());
  assert.equal(accepted.length, 34, 'every full clean transaction got 2xx');
  assert.equal(entries.filter((e) => e.outcome === 'rejected').length, 24);
  assert.match(await pf.queue(), /Mail queue is empty/);
  // The oracle itself must be able to see accepts (else the after-dot rule proves nothing).
  assert.ok(entries.filter((e) => e.outcome === 'accepted').every((e) => acc250.has(e.id)), 'maillog oracle sees every 2xx');
});

test('milter: 44 mixed messages through smtpd_milters all accounted for', { timeout: 120_000 }, async (t) => {
  const entries = mix('mx', [
    { kind: 'clean', n: 24 },
    { kind: 'eicar', n: 8 },
    { kind: 'banned', n: 8 },
    { kind: 'clean', n: 4, disconnectAt: 'mid-data' },
  ]);
  await runPool(entries, 8, (e) => sendTracked(port('MILTER_FRONT_PORT'), e));
  const accepted = entries.filter((e) => e.outcome === 'accepted').map((e) => e.id);
  await waitDelivered(sink, accepted);
  await settle(sink, 2000);
  const res = audit(entries, sink, { prefix: `${RUN}-mx-` });
  t.diagnostic(`outcomes: ${JSON.stringify(res.counts)}; delivered ${res.delivered}`);
  assert.deepEqual(res.violations, [], diag(milter));
  assert.equal(accepted.length, 24);
  // One summary line per message ("message"), early rejects included ("early": true).
  const scanned = milter.logs().filter((l) => l.event === 'message' || l.event === 'milter.message').length;
  assert.ok(scanned >= 40, `the milter scanned them (${scanned} log lines)`);
});

async function useSlowProxy(replyBudget: string, clamdDelayMs: number): Promise<void> {
  await slow?.stop();
  slow = null;
  await fake?.close();
  fake = await startFakeClamd({ action: 'reply', reply: 'stream: OK\0', delayMs: clamdDelayMs });
  const cfg = writeConfig(dir, `slow-${replyBudget}.toml`, [
    '[proxy]',
    `listen = "127.0.0.1:${slowFilterPort}"`,
    `forward = "127.0.0.1:${pf.reinjectPort}"`,
    `reply_budget = "${replyBudget}"`,
    '[clamd]',
    `endpoints = ["${fake.address}"]`,
    'keepalive = "0s"', // the fake answers one command per connection (no IDSESSION)
    'mode = "whole-message"',
    'idle_timeout = "60s"',
    'total_timeout = "60s"',
    '[limits]',
    'scan_time = "60s"',
    '',
  ].join('\n'));
  slow = await startCli(['proxy', '--config', cfg]);
}

test('slow verdict past our reply budget: our 451 4.7.1, and the late clean verdict never delivers it', { timeout: 60_000 }, async () => {
  await useSlowProxy('2s', 5000);
  const id = `${RUN}-budget-1`;
  const e: Entry = { id, kind: 'clean', message: buildMail('clean', id), expect: 'tempfailed' };
  const t0 = Date.now();
  await sendTracked(port('SLOW_FRONT_PORT'), e);
  const took = Date.now() - t0;
  assert.equal(e.outcome, 'tempfailed', e.reply);
  assert.match(e.reply ?? '', /^451 4\.7\.1 /, 'our reply, not Postfix\'s generic one');
  assert.ok(took < 4500, `answered within the 2 s budget (+ slack): ${took} ms`);
  // The fake clamd says OK at ~5 s; give it time, then the message must still be absent.
  await new Promise((r) => setTimeout(r, 5000 - took + 2500));
  assert.ok(fake!.sessions.some((s) => s.terminated), 'the scan really reached clamd');
  const res = audit([e], sink, { prefix: `${RUN}-budget-` });
  assert.deepEqual(res.violations, [], diag(slow!));
  assert.ok(slow!.logs().some((l) => l.event === 'message' && l.verdict === 'error' && l.name === 'reply-budget'), 'proxy logged the budget timeout');
  assert.match(await pf.queue(), /Mail queue is empty/);
});

test("scan slower than Postfix's smtpd_proxy_timeout (5s): Postfix's 451, the dot is never sent downstream", { timeout: 60_000 }, async (t) => {
  // Our budget (30 s) is far beyond Postfix's 5 s: Postfix gives up first and drops us.
  await useSlowProxy('30s', 9000);
  const id = `${RUN}-pftimeout-1`;
  const e: Entry = { id, kind: 'clean', message: buildMail('clean', id), expect: 'tempfailed' };
  const t0 = Date.now();
  await sendTracked(port('SLOW_FRONT_PORT'), e);
  const took = Date.now() - t0;
  assert.equal(e.outcome, 'tempfailed', e.reply);
  assert.match(e.reply ?? '', /^451 4\.3\.0 Error: queue file write error/, "Postfix's own reply");
  assert.ok(took >= 4500 && took < 8500, `Postfix timed out after ~5 s: ${took} ms`);
  await pf.waitForLog(/postfix\/slowfront\/smtpd\[\d+\]: .*timeout (talking to|after END-OF-MESSAGE from) proxy|postfix\/slowfront\/smtpd\[\d+\]: warning: timeout talking to proxy/);
  // The proxy sees its client leave and abandons the transaction (no dot downstream)…
  const aborted = await slow!.waitForLog((l) => l.event === 'message' && l.verdict === 'aborted', 10_000);
  t.diagnostic(`proxy saw: ${JSON.stringify(aborted)} (${Date.now() - t0} ms after the client started)`);
  // …and the clean verdict at ~9 s changes nothing: wait well past it.
  while (Date.now() - t0 < 13_000) await new Promise((r) => setTimeout(r, 200));
  assert.ok(fake!.sessions.some((s) => s.terminated), 'the scan really reached clamd');
  await settle(sink, 1000, 5000);
  assert.equal(sink.messages.filter((m) => messageIdOf(m.data) === id).length, 0, `${id} must never be delivered${diag(slow!)}`);
  assert.match(await pf.queue(), /Mail queue is empty/);
  // And the filter still works afterwards (a clean message with a fast verdict).
  await useSlowProxy('30s', 0);
  const ok: Entry = { id: `${RUN}-pftimeout-2`, kind: 'clean', message: buildMail('clean', `${RUN}-pftimeout-2`) };
  await sendTracked(port('SLOW_FRONT_PORT'), ok);
  assert.equal(ok.outcome, 'accepted', ok.reply);
  await waitDelivered(sink, [ok.id]);
  assert.deepEqual(audit([e, ok], sink, { prefix: `${RUN}-pftimeout-` }).violations, []);
});
