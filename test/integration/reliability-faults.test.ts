/**
 * reliability-faults.test.ts — issue 7 item 2 (and issue 3 "clamd down → 451 from us"):
 * faults around `midstream proxy` (the compiled CLI) behind a real Postfix 3.7, each
 * with its outcome asserted and every message audited against the recording sink:
 *   clamd down / killed mid-scan / not accepting (full backlog, and accepting but never
 *   reading) / answering garbage / "size limit exceeded" → our 451 4.7.1, not delivered;
 *   after-filter smtpd killed mid-DATA → 451, not delivered;
 *   client leaving at each SMTP stage → nothing delivered unless the 250 was sent;
 *   midstream SIGKILLed mid-DATA → Postfix's 451, nothing queued or delivered;
 *   SIGHUP ×10 during 50 messages → none tempfailed;
 *   TMPDIR on a full, read-only tmpfs → mail still flows, no file is ever opened.
 * One Postfix instance; the proxy CLI is restarted on the same filter port per scenario.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { startClamd, type RealClamd } from '../helpers/clamd.js';
import { startFakeClamd, FAKE, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';
import { startCli, writeConfig, procFds, type CliProcess } from '../helpers/midstream-cli.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import {
  audit, buildMail, proxyAcceptedIds, runPool, sendTracked, settle, waitDelivered, messageIdOf,
  type Entry, type Stage,
} from '../helpers/accounting.js';

let pf: PostfixInstance;
let sink: Sink;
let clamd: RealClamd | null = null;
let proxy: CliProcess | null = null;
const fakes: FakeClamd[] = [];
let dir: string;
let seq = 0;
const RUN = `f${process.pid.toString(36)}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midstream-faults-'));
  sink = await startSink();
  clamd = await startClamd();
  pf = await startPostfix({ sinkPort: sink.port });
});

after(async () => {
  await proxy?.stop();
  await pf?.stop();
  for (const f of fakes) await f.close();
  await clamd?.stop();
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** (Re)start the proxy CLI on Postfix's filter port with `[clamd]` (and other) settings. */
async function useProxy(extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<CliProcess> {
  await proxy?.stop();
  proxy = null;
  const cfg = writeConfig(dir, `proxy-${++seq}.toml`, [
    '[proxy]',
    `listen = "127.0.0.1:${pf.filterPort}"`,
    `forward = "127.0.0.1:${pf.reinjectPort}"`,
    'reply_budget = "20s"',
    ...extra,
    '',
  ].join('\n'));
  proxy = await startCli(['proxy', '--config', cfg], env ? { env } : {});
  return proxy;
}

const clamdSection = (endpoint: string, more: string[] = []) => ['[clamd]', `endpoints = ["${endpoint}"]`, ...more];
/** The fake clamd answers one command per connection (no IDSESSION): no connection reuse with it. */
const fakeSection = (endpoint: string, more: string[] = []) => clamdSection(endpoint, ['keepalive = "0s"', ...more]);

async function fake(b: FakeBehaviour): Promise<FakeClamd> {
  const f = await startFakeClamd(b);
  fakes.push(f);
  return f;
}

function entry(tag: string, kind: Entry['kind'] = 'clean', lines = 40): Entry {
  const id = `${RUN}-${tag}-${++seq}`;
  return { id, kind, message: buildMail(kind, id, lines) };
}

const diag = () => `\n--- maillog tail ---\n${pf.readLog().slice(-3000)}\n--- midstream stderr tail ---\n${proxy?.stderr().slice(-3000)}`;

/** Nothing of `entries` that should not be there is in the sink, now or after a quiet period; queue empty. */
const all: Entry[] = [];
async function assertAccounted(entries: Entry[], prefix: string, accepted250?: Set<string>): Promise<void> {
  all.push(...entries);
  await waitDelivered(sink, entries.filter((e) => e.outcome === 'accepted').map((e) => e.id));
  await settle(sink, 1500, 20_000);
  const res = audit(entries, sink, { prefix, ...(accepted250 ? { accepted250 } : {}) });
  assert.deepEqual(res.violations, [], diag());
  assert.match(await pf.queue(), /Mail queue is empty/);
}

/**
 * Send one message, expecting our tempfail (451 4.7.1) within `maxMs`: the generic "could
 * not be scanned" for scanner errors, or `text` where a policy decision deferred it.
 */
async function expectScanTempfail(tag: string, maxMs: number, text = 'Message could not be scanned, try again later'): Promise<void> {
  const e = entry(tag);
  e.expect = 'tempfailed';
  const t0 = Date.now();
  await sendTracked(pf.smtpPort, e);
  const took = Date.now() - t0;
  assert.equal(e.outcome, 'tempfailed', `${e.reply}${diag()}`);
  assert.equal(e.reply, `451 4.7.1 ${text}`, 'our tempfail text');
  assert.ok(took < maxMs, `answered in ${took} ms (limit ${maxMs})`);
  await assertAccounted([e], `${RUN}-${tag}-`);
}

test('clamd down (nothing listening): 451 4.7.1 from us, not delivered', async () => {
  await clamd!.stop();
  const dead = clamd!.unix;
  clamd = null;
  await useProxy(clamdSection(dead));
  await expectScanTempfail('down', 10_000);
  clamd = await startClamd();
});

test('clamd killed mid-scan: 451 4.7.1, not delivered', async () => {
  // A counting relay between midstream and the real clamd kills clamd once 64 KiB of scan
  // data went through: the INSTREAM is provably in progress when clamd dies.
  const c = clamd!;
  let forwarded = 0;
  let killedAt = -1;
  const relay: Server = createServer((a: Socket) => {
    const b = connect({ path: c.socketPath });
    a.on('data', (d) => {
      forwarded += d.length;
      if (forwarded >= 64 * 1024 && killedAt < 0) {
        killedAt = forwarded;
        c.kill();
      }
      b.write(d);
    });
    b.on('data', (d) => a.write(d));
    for (const [x, y] of [[a, b], [b, a]] as const) {
      x.on('error', () => y.destroy());
      x.on('close', () => y.destroy());
    }
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  try {
    await useProxy(clamdSection(`tcp:127.0.0.1:${(relay.address() as AddressInfo).port}`, ['mode = "whole-message"']));
    const e = entry('killed', 'clean', 8000); // ~400 KiB
    e.expect = 'tempfailed';
    await sendTracked(pf.smtpPort, e);
    assert.ok(killedAt > 0, 'clamd was killed during the stream');
    assert.equal(e.outcome, 'tempfailed', `${e.reply}${diag()}`);
    assert.match(e.reply ?? '', /^451 4\.7\.1 /);
    await assertAccounted([e], `${RUN}-killed-`);
  } finally {
    await new Promise((r) => relay.close(r));
    await c.stop();
    clamd = await startClamd();
  }
});

/** A listener that never accepts: a child node process whose event loop is blocked, its backlog filled. */
async function startNonAccepting(): Promise<{ port: number; child: ChildProcess; fillers: Socket[] }> {
  const child = spawn(process.execPath, ['-e', `
    const s = require('net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(String(s.address().port) + '\\n');
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 100);
    });`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise<number>((res, rej) => {
    child.stdout!.once('data', (d: Buffer) => res(Number(d.toString().trim())));
    child.once('exit', () => rej(new Error('non-accepting listener died')));
  });
  await new Promise((r) => setTimeout(r, 400)); // its loop is blocked now
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
  return { port, child, fillers };
}

test('clamd not accepting (listen backlog full, connects hang): 451 4.7.1 within the connect timeout', async () => {
  const na = await startNonAccepting();
  try {
    await useProxy(clamdSection(`tcp:127.0.0.1:${na.port}`, ['connect_timeout = "2s"']));
    await expectScanTempfail('backlog', 8_000);
  } finally {
    for (const s of na.fillers) s.destroy();
    na.child.kill('SIGKILL');
  }
});

test('clamd accepting but never reading: 451 4.7.1 within the idle timeout', async () => {
  const f = await fake(FAKE.neverRead as FakeBehaviour);
  await useProxy(fakeSection(f.address, ['idle_timeout = "2s"', 'mode = "whole-message"']));
  // Big enough that the unread stream fills the socket buffers and the writer must wait.
  const e = entry('neverread', 'clean', 60_000);
  e.expect = 'tempfailed';
  const t0 = Date.now();
  await sendTracked(pf.smtpPort, e);
  assert.equal(e.outcome, 'tempfailed', `${e.reply}${diag()}`);
  assert.match(e.reply ?? '', /^451 4\.7\.1 /);
  assert.ok(Date.now() - t0 < 15_000, `answered in ${Date.now() - t0} ms`);
  assert.ok(f.connections >= 1, 'midstream did connect to the fake');
  await assertAccounted([e], `${RUN}-neverread-`);
});

test('clamd answering garbage: 451 4.7.1, not delivered', async () => {
  const f = await fake(FAKE.garbage as FakeBehaviour);
  await useProxy(fakeSection(f.address));
  await expectScanTempfail('garbage', 10_000);
  assert.ok(f.sessions.some((s) => s.command === 'zINSTREAM'), 'the fake was asked to scan');
});

test('clamd "INSTREAM size limit exceeded": a scan-bytes limit verdict (550 by default, 451 with actions.limit = tempfail), never delivered', async () => {
  // Design choice (src/core/session.ts, README "limits"): a byte cap is deterministic, a
  // retry cannot help, so it is a `limit` verdict for policy (reject by default), not a
  // tempfail that would loop forever. Either way the message is never delivered.
  const f = await fake(FAKE.sizeLimit as FakeBehaviour);
  await useProxy(fakeSection(f.address));
  const e = entry('sizelimit');
  await sendTracked(pf.smtpPort, e);
  assert.equal(e.reply, '550 5.7.1 Message rejected: exceeds the scan-bytes limit', diag());
  assert.ok(f.sessions.some((s) => s.command === 'zINSTREAM'), 'the fake was asked to scan');
  e.expect = 'rejected';
  await assertAccounted([e], `${RUN}-sizelimit-`);
  await useProxy([...fakeSection(f.address), '[actions]', 'limit = "tempfail"']);
  // A limit deferred by policy says so; it is not a scanner failure.
  await expectScanTempfail('sizelimit-tf', 10_000, 'Message deferred: exceeds the scan-bytes limit, try again later');
});

/** PIDs of this instance's after-filter smtpd processes (their command line names the reinject port). */
function afterFilterSmtpdPids(): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
      if (argv[0]?.endsWith('smtpd') && argv.includes(`127.0.0.1:${pf.reinjectPort}`)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Opens a transaction through the front smtpd and sends the first half of `e`'s DATA. */
async function halfSent(e: Entry): Promise<{ c: TestSmtpClient; wire: Buffer }> {
  const c = await TestSmtpClient.connect(pf.smtpPort);
  await c.read();
  await c.cmd('EHLO client.example');
  assert.equal((await c.cmd('MAIL FROM:<sender@accounting.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<rcpt@example.net>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  const wire = dotStuff(e.message);
  await c.streamData([wire.subarray(0, wire.length >> 1)]);
  return { c, wire };
}

test('after-filter smtpd killed mid-DATA: 451 from us, nothing queued or delivered', async () => {
  await useProxy(clamdSection(clamd!.unix));
  const e = entry('afterkill', 'clean', 4000);
  e.expect = 'tempfailed';
  const { c, wire } = await halfSent(e);
  await new Promise((r) => setTimeout(r, 500));
  const pids = afterFilterSmtpdPids();
  assert.ok(pids.length >= 1, 'an after-filter smtpd is serving the transaction');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await c.streamData([wire.subarray(wire.length >> 1)]);
  const fin = await c.read(30_000);
  await c.quit();
  e.outcome = fin.code >= 400 && fin.code < 500 ? 'tempfailed' : fin.code < 300 ? 'accepted' : 'rejected';
  e.reply = fin.text;
  assert.match(fin.text, /^451 4\.4\.0 /, fin.text + diag());
  await assertAccounted([e], `${RUN}-afterkill-`);
});

test('client leaves at every SMTP stage: nothing delivered unless the 250 was sent', { timeout: 90_000 }, async (t) => {
  await useProxy(clamdSection(clamd!.unix));
  const stages: Stage[] = ['connect', 'ehlo', 'mail', 'rcpt', 'data', 'mid-data', 'after-dot'];
  const entries: Entry[] = [];
  for (const s of stages) {
    for (let i = 0; i < 2; i++) {
      const e = entry('stage', 'clean', s === 'mid-data' ? 3000 : 40);
      e.disconnectAt = s;
      entries.push(e);
    }
  }
  const before = proxy!.logs().length;
  await runPool(entries, 4, (e) => sendTracked(pf.smtpPort, e));
  await settle(sink, 2000, 20_000);
  await new Promise((r) => setTimeout(r, 500));
  const acc250 = proxyAcceptedIds(pf.readLog());
  t.diagnostic(`after-dot clients whose 250 Postfix sent: ${entries.filter((e) => e.disconnectAt === 'after-dot' && acc250.has(e.id)).length}/2`);
  await assertAccounted(entries, `${RUN}-stage-`, acc250);
  const aborted = proxy!.logs().slice(before).filter((l) => l.event === 'message' && l.verdict === 'aborted').length;
  assert.ok(aborted >= 2, `the proxy abandoned the mid-DATA transactions (${aborted} aborted)`);
});

test('midstream SIGKILLed mid-DATA: Postfix answers 451, nothing queued or delivered', async () => {
  const p = await useProxy(clamdSection(clamd!.unix));
  const e = entry('sigkill', 'clean', 4000);
  e.expect = 'tempfailed';
  const { c, wire } = await halfSent(e);
  await new Promise((r) => setTimeout(r, 300));
  p.kill('SIGKILL');
  const ex = await p.exited;
  assert.equal(ex.signal, 'SIGKILL');
  await c.streamData([wire.subarray(wire.length >> 1)]).catch(() => {});
  const fin = await c.read(30_000);
  await c.quit();
  e.outcome = fin.code >= 400 && fin.code < 500 ? 'tempfailed' : fin.code < 300 ? 'accepted' : 'rejected';
  e.reply = fin.text;
  assert.match(fin.text, /^451 4\.3\.0 Error: queue file write error/, fin.text + diag());
  await pf.waitForLog(/postfix\/front\/smtpd\[\d+\]: .*lost connection with proxy/);
  await assertAccounted([e], `${RUN}-sigkill-`);
  proxy = null;
});

test('SIGHUP ×10 while 50 messages flow: none tempfailed, all accounted for', { timeout: 120_000 }, async (t) => {
  const sigs = join(dir, 'sigs.ndb');
  writeFileSync(sigs, `Reload-Test-Sig:0:*:${Buffer.from('reload-test-pattern-xyzzy').toString('hex')}\n`);
  const p = await useProxy(['[engine]', `signatures = ["${sigs}"]`, ...clamdSection(clamd!.unix)]);
  const entries: Entry[] = [];
  for (let i = 0; i < 50; i++) entries.push(entry('hup', i % 10 === 3 ? 'eicar' : 'clean', 200 + (i % 7) * 300));
  let hups = 0;
  const hupper = (async () => {
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 250));
      p.kill('SIGHUP');
      hups++;
    }
  })();
  await runPool(entries, 6, (e) => sendTracked(pf.smtpPort, e));
  await hupper;
  const reloaded = await (async () => {
    const until = Date.now() + 10_000;
    for (;;) {
      const n = p.logs().filter((l) => l.event === 'reloaded').length;
      if (n >= 10 || Date.now() > until) return n;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  t.diagnostic(`SIGHUPs sent: ${hups}; reloads logged: ${reloaded}; reload failures: ${p.logs().filter((l) => l.event === 'reload-failed').length}`);
  assert.equal(hups, 10);
  assert.ok(reloaded >= 5, `the CLI reloaded (${reloaded} reloads)`);
  assert.equal(entries.filter((e) => e.outcome === 'tempfailed').length, 0, entries.filter((e) => e.outcome !== 'accepted' && e.outcome !== 'rejected').map((e) => `${e.id}: ${e.reply}`).join('\n') + diag());
  await assertAccounted(entries, `${RUN}-hup-`);
  assert.equal(p.proc.exitCode, null, 'still running');
});

test('"disk full is irrelevant": TMPDIR on a full read-only tmpfs, mail flows, no file is opened', { timeout: 90_000 }, async (t) => {
  const mnt = join(dir, 'fulltmp');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0555', 'tmpfs', mnt]);
  try {
    // Fill it up, then make it read-only for everybody (root included).
    try {
      writeFileSync(join(mnt, 'filler'), Buffer.alloc(1024 * 1024));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    assert.throws(() => writeFileSync(join(mnt, 'probe'), 'x'), /EROFS|ENOSPC/);
    const before = readdirSync(mnt).map((f) => `${f}:${statSync(join(mnt, f)).size}`).sort();
    const p = await useProxy(clamdSection(clamd!.unix), { ...process.env, TMPDIR: mnt, TMP: mnt, TEMP: mnt });
    const regular = (pid: number) => procFds(pid).filter((f) => f.target.startsWith('/') && !f.target.startsWith('/dev/'));
    const baseline = new Set(regular(p.pid).map((f) => f.target));
    t.diagnostic(`baseline regular-file fds: ${JSON.stringify([...baseline])}`);
    // A large message sent slowly, sampling the descriptors while it is in flight.
    const big = entry('tmpfs', 'clean', 40_000); // ~2 MB
    const c = await TestSmtpClient.connect(pf.smtpPort);
    await c.read();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<sender@accounting.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<rcpt@example.net>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const wire = dotStuff(big.message);
    const seen = new Set<string>();
    let samples = 0;
    for (let off = 0; off < wire.length; off += 256 * 1024) {
      await c.streamData([wire.subarray(off, Math.min(wire.length, off + 256 * 1024))]);
      await new Promise((r) => setTimeout(r, 50));
      for (const f of regular(p.pid)) seen.add(f.target);
      samples++;
    }
    const fin = await c.read(60_000);
    await c.quit();
    big.outcome = fin.code === 250 ? 'accepted' : 'tempfailed';
    big.reply = fin.text;
    assert.equal(fin.code, 250, fin.text + diag());
    // Plus a mix of small ones.
    const small = [entry('tmpfs', 'clean'), entry('tmpfs', 'eicar'), entry('tmpfs', 'banned'), entry('tmpfs', 'clean')];
    await runPool(small, 4, (e) => sendTracked(pf.smtpPort, e));
    for (const f of regular(p.pid)) seen.add(f.target);
    const opened = [...seen].filter((f) => !baseline.has(f));
    t.diagnostic(`${samples} fd samples during a ${wire.length}-byte message; new regular files: ${JSON.stringify(opened)}`);
    assert.deepEqual(opened, [], 'no regular file was opened while mail flowed');
    assert.ok(![...seen].some((f) => f.startsWith(mnt)), 'nothing under TMPDIR');
    assert.deepEqual(readdirSync(mnt).map((f) => `${f}:${statSync(join(mnt, f)).size}`).sort(), before, 'TMPDIR unchanged');
    await assertAccounted([big, ...small], `${RUN}-tmpfs-`);
    await p.stop();
    proxy = null;
  } finally {
    execFileSync('umount', ['-l', mnt]);
  }
});

test('whole file: every message sent in any test above is still accounted for (no late deliveries)', async () => {
  await settle(sink, 2000, 20_000);
  const res = audit(all, sink, { prefix: `${RUN}-`, accepted250: proxyAcceptedIds(pf.readLog()) });
  assert.deepEqual(res.violations, []);
  assert.ok(all.length >= 70 && res.delivered >= 50, `${all.length} sent, ${res.delivered} delivered`);
  assert.equal(sink.messages.filter((m) => messageIdOf(m.data)?.startsWith(RUN)).length, res.delivered);
});
