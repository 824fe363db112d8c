/**
 * cli-ops.test.ts — the command line as an admin uses it (the compiled CLI via
 * bin/midstream): --version, per-subcommand help with the defaults, flags that do not
 * exist or do not apply (exit 2), check-config --quiet / --probe (real clamd, the sink as
 * the forward target) and its warnings (skipped signatures, authenticated rules through
 * the proxy, range checks that know Postfix's timeout, an unwritable log.file); a log
 * file that cannot be written (/dev/full) does not stop mail; SIGUSR1 reopens the log
 * file after logrotate (the shipped snippet, its path and postrotate pointed at the test).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { multipartMessage } from '../helpers/mail-build.js';
import { startCli } from '../helpers/midstream-cli.js';
import { startCli as startLogged } from '../helpers/cli-server.js';
import { startClamd, freePort, type RealClamd } from '../helpers/clamd.js';

const BIN = join(ROOT, 'bin', 'midstream');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
mkdirSync(TMP_BASE, { recursive: true });
let dir: string;
let sink: Sink;
before(async () => {
  dir = mkdtempSync(join(TMP_BASE, 'cli-ops-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  sink = await startSink();
  cleanups.push(() => sink.close());
});

function run(args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Like run(), without blocking the event loop (the in-process sink must answer meanwhile). */
function runAsync(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test('--version, and each subcommand\'s help lists its own flags with their defaults', () => {
  for (const args of [['--version'], ['-V'], ['proxy', '--version']]) {
    const r = run(args);
    assert.equal(r.code, 0);
    assert.equal(r.out, `midstream ${VERSION}\n`);
  }
  const proxy = run(['proxy', '--help']);
  assert.equal(proxy.code, 0);
  assert.match(proxy.out, /^usage: midstream proxy /);
  assert.match(proxy.out, /--listen ADDR .*default 127\.0\.0\.1:10025/);
  assert.match(proxy.out, /--forward ADDR .*default 127\.0\.0\.1:10026/);
  assert.match(proxy.out, /--clamd-mode MODE .*default per-file/);
  const milter = run(['milter', '--help']);
  assert.match(milter.out, /--listen ADDR .*default inet:7357@127\.0\.0\.1/);
  assert.doesNotMatch(milter.out, /--forward/, 'the milter has no forward target');
  const check = run(['check-config', '--help']);
  assert.match(check.out, /--quiet/);
  assert.match(check.out, /--probe/);
  assert.notEqual(proxy.out, milter.out);
  assert.notEqual(milter.out, check.out);
});

test('unknown flags, flags that do not apply and stray arguments exit 2 and say which', () => {
  const cases: [string[], RegExp][] = [
    [['proxy', '--no-such-flag'], /no-such-flag/],
    [['milter', '--forward', '127.0.0.1:10026'], /--forward does not apply to "midstream milter"/],
    [['scan', '--listen', '127.0.0.1:1', 'x.eml'], /--listen does not apply to "midstream scan"/],
    [['check-config', '--json'], /--json does not apply/],
    [['proxy', 'extra.toml'], /takes no arguments/],
    [['scan'], /needs at least one FILE/],
    [['frobnicate'], /unknown command: frobnicate/],
  ];
  for (const [args, want] of cases) {
    const r = run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit 2 (${r.err})`);
    assert.match(r.err, want, args.join(' '));
    assert.equal(r.out, '');
  }
});

test('check-config: --quiet prints nothing when valid; warnings for skipped signatures and for authenticated rules; range and log.file checks', () => {
  const sigs = join(dir, 'sigs');
  mkdirSync(sigs, { recursive: true });
  // A PE-section offset and a logical signature: valid ClamAV, not for the built-in engine.
  writeFileSync(join(sigs, 'a.ndb'), 'Ok.Sig:0:*:4142434445464748\nPe.Sig:1:EP+0:4142434445464748\n');
  writeFileSync(join(sigs, 'b.ldb'), 'Logical.Sig;Target:0;0;41424344\n');
  const cfg = file('check.toml', `[engine]\nsignatures = [${JSON.stringify(sigs)}]\n[[rules]]\nname = "staff"\nmatch = { authenticated = true }\nskip_banned = true\n`);
  const loud = run(['check-config', cfg]);
  assert.equal(loud.code, 0, loud.err);
  assert.match(loud.out, /^\[proxy\]$/m, 'the effective config');
  assert.match(loud.err, /warning: engine\.signatures: 2 signatures .* skipped \(.*pe-offset: 1.*file-ldb: 1.*\)/);
  assert.match(loud.err, /warning: rules\[0\]\.match\.authenticated: applies to the milter only/);
  const quiet = run(['check-config', '--quiet', '--config', cfg]);
  assert.equal(quiet.code, 0);
  assert.equal(quiet.out, '', '--quiet: nothing on stdout');
  assert.doesNotMatch(quiet.err, /config ok/);
  assert.match(quiet.err, /warning: rules\[0\]/, 'warnings still go to stderr');

  // More connections than one clamd queues at its defaults: a warning, not an error (clamd.conf may raise MaxQueue).
  const busy = run(['check-config', '--quiet', file('busy.toml', '[clamd]\nendpoints = ["tcp:127.0.0.1:3310"]\nmax_concurrent = 80\nraw_max_concurrent = 40\n')]);
  assert.equal(busy.code, 0, busy.err);
  assert.match(busy.err, /warning: clamd\.raw_max_concurrent: max_concurrent \(80\) \+ raw_max_concurrent \(40\) \+ 1 health check = 121 connections to one clamd, over its default MaxQueue \(100/);
  assert.doesNotMatch(loud.err, /MaxQueue/, 'the defaults do not warn');

  const budget = run(['check-config', file('budget.toml', '[proxy]\nreply_budget = "120s"\n')]);
  assert.equal(budget.code, 2);
  assert.match(budget.err, /proxy\.reply_budget: must stay below Postfix's smtpd_proxy_timeout/);
  const badLog = run(['check-config', file('log.toml', `[log]\nfile = ${JSON.stringify(join(dir, 'no', 'such', 'dir', 'x.log'))}\n`)]);
  assert.equal(badLog.code, 2);
  assert.match(badLog.err, /LOG_WRITE: cannot open log file .*x\.log/);
  const okLog = run(['check-config', '--quiet', file('log2.toml', `[log]\nfile = ${JSON.stringify(join(dir, 'ok.log'))}\n`)]);
  assert.equal(okLog.code, 0, okLog.err);
  assert.ok(existsSync(join(dir, 'ok.log')), 'the log file was opened for appending');
});

test('the running proxy reports skipped signatures (log line and metric) and warns about authenticated rules', async () => {
  const sigs = join(dir, 'sigs');
  const srvDir = mkdtempSync(join(dir, 'skip-'));
  const srv = await startLogged(
    'proxy',
    `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[engine]\nsignatures = [${JSON.stringify(sigs)}]\n[metrics]\nlisten = "127.0.0.1:0"\n` +
      '[[rules]]\nname = "staff"\nmatch = { authenticated = true }\nskip_banned = true\n',
    srvDir,
  );
  cleanups.push(() => srv.stop());
  const skipped = srv.logs().find((l) => l.event === 'signatures-skipped');
  assert.ok(skipped, 'signatures-skipped at load');
  assert.equal(skipped.level, 'warn');
  assert.deepEqual(skipped.byReason, { 'pe-offset': 1, 'file-ldb': 1 });
  const text = await srv.metrics();
  assert.match(text, /^midstream_signatures_skipped\{reason="pe-offset"\} 1$/m);
  assert.match(text, /^midstream_signatures_skipped\{reason="file-ldb"\} 1$/m);
  const w = srv.logs().find((l) => l.event === 'config-warning');
  assert.equal(w?.key, 'rules[0].match.authenticated');
  assert.match(String(w?.reason), /milter only/);
  assert.equal(await srv.stop(), 0);
});

test('check-config --probe: real clamd and the forward target each reported; a dead target is exit 1', async () => {
  const clamd: RealClamd = await startClamd();
  cleanups.push(() => clamd.stop());
  const dead = await freePort();
  const good = await runAsync(['check-config', '--quiet', '--probe', file('probe.toml', `[proxy]\nforward = "127.0.0.1:${sink.port}"\n[clamd]\nendpoints = ["${clamd.tcp}", "${clamd.unix}"]\n`)]);
  assert.equal(good.code, 0, good.out + good.err);
  assert.match(good.out, new RegExp(`^probe: clamd ${clamd.tcp}: ok \\(ClamAV \\d`, 'm'));
  assert.match(good.out, new RegExp(`^probe: clamd ${clamd.unix}: ok \\(ClamAV \\d`, 'm'));
  assert.match(good.out, new RegExp(`^probe: forward 127\\.0\\.0\\.1:${sink.port}: ok \\(220 `, 'm'));
  const bad = await runAsync(['check-config', '--quiet', '--probe', file('probe2.toml', `[proxy]\nforward = "127.0.0.1:${dead}"\n[clamd]\nendpoints = ["tcp:127.0.0.1:${dead}"]\n`)]);
  assert.equal(bad.code, 1);
  assert.match(bad.out, new RegExp(`^probe: clamd tcp:127\\.0\\.0\\.1:${dead}: FAILED \\(CLAMD_UNAVAILABLE: .*ECONNREFUSED`, 'm'));
  assert.match(bad.out, new RegExp(`^probe: forward 127\\.0\\.0\\.1:${dead}: FAILED \\(DOWNSTREAM_CONNECT: .*ECONNREFUSED`, 'm'));
  // Without --probe nothing is contacted: valid while clamd is down.
  assert.equal(run(['check-config', '--quiet', join(dir, 'probe2.toml')]).code, 0);
});

test('a log file that cannot be written is reported and mail still flows', async () => {
  const cfg = file('full.toml', `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[log]\nfile = "/dev/full"\n`);
  // The "listening" line cannot reach /dev/full: it follows on stderr, where startCli reads it.
  const p = await startCli(['proxy', '--config', cfg]);
  cleanups.push(() => p.stop());
  const r = await sendMessage(Number(p.address.split(':').pop()), { from: 'full@example.org', to: ['rcpt@example.net'], message: multipartMessage([]) });
  assert.equal(r.final.code, 250);
  await sink.waitFor((m) => m.from === 'full@example.org');
  const failures = p.stderr().split('\n').filter((l) => l.includes('"log-write-failed"'));
  assert.equal(failures.length, 1, 'reported once, not per line');
  assert.match(failures[0]!, /"errno":"ENOSPC"/);
  assert.ok(p.stderr().includes('"event":"message"'), 'the message line went to stderr instead');
  assert.equal(p.proc.exitCode, null, 'still running');
  await p.stop();
  assert.equal((await p.exited).code, 0);
});

test('logrotate + SIGUSR1: the shipped snippet rotates, the daemon reopens and writes to the new file', async () => {
  const shipped = join(ROOT, 'deploy/logrotate/midstream');
  const parse = spawnSync('logrotate', ['-d', '-s', join(dir, 'state-d'), shipped], { encoding: 'utf8' });
  assert.equal(parse.status, 0, `the shipped file parses: ${parse.stderr}`);
  const logDir = mkdtempSync(join(dir, 'rot-'));
  const srv = await startLogged('proxy', `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n`, logDir);
  cleanups.push(() => srv.stop());
  assert.equal((await sendMessage(srv.port, { from: 'before@example.org', to: ['rcpt@example.net'], message: multipartMessage([]) })).final.code, 250);
  await srv.waitForLog((l) => l.event === 'message' && l.sender === 'before@example.org');
  // The shipped directives, pointed at this test's file and process (no systemd here).
  const conf = readFileSync(shipped, 'utf8')
    .replace('/var/log/midstream/*.log', join(logDir, '*.log'))
    .replace(/for u in .*done/, `kill -USR1 ${srv.pid}`);
  assert.match(conf, /postrotate\n\s*kill -USR1 \d+\n\s*endscript/);
  const rot = spawnSync('logrotate', ['-f', '-s', join(logDir, 'state'), file('rot.conf', conf)], { encoding: 'utf8' });
  assert.equal(rot.status, 0, rot.stderr);
  const old = readFileSync(join(logDir, 'proxy.log.1'), 'utf8');
  assert.match(old, /"sender":"before@example.org"/, 'the old lines moved with the file');
  await srv.waitForLog((l) => l.event === 'log-reopened', 5000);
  assert.equal((await sendMessage(srv.port, { from: 'after@example.org', to: ['rcpt@example.net'], message: multipartMessage([]) })).final.code, 250);
  await srv.waitForLog((l) => l.event === 'message' && l.sender === 'after@example.org', 5000);
  assert.doesNotMatch(readFileSync(join(logDir, 'proxy.log.1'), 'utf8'), /after@example.org/, 'nothing written to the rotated file');
  assert.doesNotMatch(readFileSync(join(logDir, 'proxy.log'), 'utf8'), /before@example.org/);
  assert.equal(await srv.stop(), 0);
});
