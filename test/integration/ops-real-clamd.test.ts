/**
 * ops-real-clamd.test.ts — operations with a REAL clamd, through the compiled CLI proxy:
 *   - honest reload: a slow message is in flight when SIGHUP swaps the engine; its clamd
 *     stream opens only after the swap (and after the old code's 1 s close timer) and
 *     still gets clamd's verdict; the new add_header and log level apply to the next
 *     connection; a changed listen logs `restart required: proxy.listen` and the old
 *     socket keeps working; a broken config fails the reload and counts in the metrics;
 *   - a file both banned (PE type, .exe name) and infected (clamd's clam.exe signature)
 *     is reported as the virus, as is EICAR named eicar.com;
 *   - clamd state is visible: down and up transitions at warn, the error detail in the
 *     message line, clamd_up in the metrics, and a warning at start-up when unreachable.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { TestSmtpClient, dotStuff, sendMessage } from '../helpers/smtp-client.js';
import { multipartMessage, EICAR, zip, pseudoRandom } from '../helpers/mail-build.js';
import { startCli, metric, type CliServer } from '../helpers/cli-server.js';
import { startClamd, freePort, CLAM_EXE, type RealClamd } from '../helpers/clamd.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
mkdirSync(TMP_BASE, { recursive: true });

let clamd: RealClamd;
let sink: Sink;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(TMP_BASE, 'ops-real-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  clamd = await startClamd();
  cleanups.push(() => clamd.stop());
  sink = await startSink();
  cleanups.push(() => sink.close());
});

const CLAM = readFileSync(CLAM_EXE);

function proxyConfig(o: { listen: string; header?: string; level?: string; clamd?: string; health?: string; extra?: string }): string {
  return [
    '[proxy]',
    `listen = "${o.listen}"`,
    `forward = "127.0.0.1:${sink.port}"`,
    ...(o.header ? [`add_header = "${o.header}"`] : []),
    '[clamd]',
    `endpoints = ["${o.clamd ?? clamd.tcp}"]`,
    'cache_entries = 0',
    `health_interval = "${o.health ?? '1s'}"`,
    'connect_timeout = "1s"',
    '[metrics]',
    'listen = "127.0.0.1:0"',
    o.extra ?? '',
  ].join('\n');
}

/** Rewrite the CLI's config file the way startCli wrote it (its [log] section kept). */
function rewrite(srvDir: string, text: string, level = 'info'): void {
  writeFileSync(join(srvDir, 'proxy.toml'), `${text}\n[log]\nfile = ${JSON.stringify(join(srvDir, 'proxy.log'))}\nlevel = "${level}"\n`);
}

test('SIGHUP with a message in flight: its clamd stream opens after the swap and still gets a verdict; every setting applies or says restart required', async () => {
  const srvDir = mkdtempSync(join(dir, 'reload-'));
  const srv: CliServer = await startCli('proxy', proxyConfig({ listen: '127.0.0.1:0' }), srvDir);
  cleanups.push(() => srv.stop());

  // A message that stops after its headers and the first MIME part (no clamd stream yet).
  const msg = multipartMessage([{ filename: 'clam.exe', content: CLAM }], { text: 'slow one' });
  const cut = msg.indexOf('Content-Type: application/octet-stream');
  const c = await TestSmtpClient.connect(srv.port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO slow.example')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<slow@example.org>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<rcpt@example.net>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  const stuffed = dotStuff(msg);
  c.write(stuffed.subarray(0, cut));

  // Reload: a new header, debug logging, and a new listen address (needs a restart).
  const from = srv.logs().length;
  const newPort = await freePort();
  rewrite(srvDir, proxyConfig({ listen: `127.0.0.1:${newPort}`, header: 'X-Reloaded: yes' }), 'debug');
  srv.hup();
  const reloaded = await srv.waitForLog((l) => l.event === 'reloaded', 20_000, from);
  assert.equal(reloaded.inFlightOnOld, 1, 'the in-flight message holds the old engine');
  const restart = await srv.waitForLog((l) => l.event === 'restart-required', 5000, from);
  assert.equal(restart.level, 'warn');
  assert.equal(restart.message, 'restart required: proxy.listen');
  // Longer than the old code's 1 s close timer: the old clamd client must still be open.
  await new Promise((r) => setTimeout(r, 1500));
  c.write(stuffed.subarray(cut));
  const fin = await c.read(30_000);
  await c.quit();
  assert.equal(fin.code, 550, `the slow message got clamd's verdict, not a 451: ${fin.text}`);
  assert.match(fin.text, /virus found: .*UNOFFICIAL/, 'clamd found clam.exe, and the virus wins over the banned .exe name and PE type');
  const line = await srv.waitForLog((l) => l.event === 'message' && l.sender === 'slow@example.org', 5000);
  assert.equal(line.verdict, 'infected');
  assert.equal(line.engine, 'clamd');
  assert.equal(line.where, '2/clam.exe');

  // New connections get the new settings: the header is added, debug lines appear.
  const ok = await sendMessage(srv.port, { from: 'after@example.org', to: ['rcpt@example.net'], message: multipartMessage([{ filename: 'a.txt', content: 'fine' }]) });
  assert.equal(ok.final.code, 250);
  const got = await sink.waitFor((m) => m.from === 'after@example.org');
  // [headers] scanned (on by default) comes first, then proxy.add_header.
  assert.match(got.data!.toString('latin1'), /^X-Virus-Scanned: midstream [^\r\n]+\r\nX-Reloaded: yes\r\n/);
  assert.ok(srv.logs().slice(from).some((l) => l.level === 'debug'), 'log.level applied');
  // EICAR named eicar.com (clamd and the built-in engine both see it): infected, not banned.
  const ei = await sendMessage(srv.port, { from: 'e@example.org', to: ['rcpt@example.net'], message: multipartMessage([{ filename: 'eicar.com', content: EICAR }]) });
  assert.equal(ei.final.code, 550);
  assert.match(ei.final.text, /virus found/);
  // A truncated zip: unparseable, and the admin's line says why.
  const z = zip({ 'a.bin': pseudoRandom(20_000, 7) });
  const cz = await sendMessage(srv.port, { from: 'zip@example.org', to: ['rcpt@example.net'], message: multipartMessage([{ filename: 'a.zip', content: z.subarray(0, 10_000) }]) });
  assert.equal(cz.final.code, 550, cz.final.text);
  assert.match(cz.final.text, /corrupt archive cannot be read/);
  const zl = await srv.waitForLog((l) => l.event === 'message' && l.sender === 'zip@example.org', 5000);
  assert.equal(zl.verdict, 'unparseable');
  assert.equal(zl.where, '2/a.zip');
  assert.ok(typeof zl.detail === 'string' && zl.detail.length > 0, 'the corrupt-archive reason is logged');

  // A broken config: the reload fails, nothing changes, the metrics say so.
  const from2 = srv.logs().length;
  writeFileSync(join(srvDir, 'proxy.toml'), '[proxy]\nreply_budget = "2h"\n');
  srv.hup();
  const failed = await srv.waitForLog((l) => l.event === 'reload-failed', 20_000, from2);
  assert.equal(failed.code, 'CONFIG_INVALID');
  const text = await srv.metrics();
  assert.equal(metric(text, 'midstream_reloads_total', { result: 'success' }), 1);
  assert.equal(metric(text, 'midstream_reloads_total', { result: 'failure' }), 1);
  assert.equal(metric(text, 'midstream_last_reload_success'), 0);
  assert.equal((await sendMessage(srv.port, { from: 'still@example.org', to: ['rcpt@example.net'], message: multipartMessage([]) })).final.code, 250);
  assert.equal(await srv.stop(), 0);
});

test('clamd down and back: warn lines for each transition, the detail in the message line, clamd_up follows; unreachable at start-up is a warning', async () => {
  const own = await startClamd();
  cleanups.push(() => own.stop());
  const srvDir = mkdtempSync(join(dir, 'updown-'));
  const srv = await startCli('proxy', proxyConfig({ listen: '127.0.0.1:0', clamd: own.tcp }), srvDir);
  cleanups.push(() => srv.stop());
  assert.equal(metric(await srv.metrics(), 'midstream_clamd_up', { endpoint: own.tcp }), 1);
  assert.ok(!srv.logs().some((l) => l.event === 'clamd-unreachable'));

  own.kill();
  const r = await sendMessage(srv.port, { from: 'down@example.org', to: ['rcpt@example.net'], message: multipartMessage([{ filename: 'a.txt', content: 'needs clamd' }]) });
  assert.equal(r.final.code, 451);
  assert.equal(r.final.text, '451 4.7.1 Message could not be scanned, try again later', 'generic text for the client');
  const down = await srv.waitForLog((l) => l.event === 'clamd-down', 5000);
  assert.equal(down.level, 'warn');
  assert.equal(down.endpoint, own.tcp);
  assert.match(String(down.error), /ECONNREFUSED/);
  const line = await srv.waitForLog((l) => l.event === 'message' && l.sender === 'down@example.org', 5000);
  assert.equal(line.level, 'warn');
  assert.equal(line.name, 'scanner-unavailable');
  assert.ok(String(line.detail).includes(own.tcp) && /ECONNREFUSED/.test(String(line.detail)), String(line.detail));
  assert.equal(metric(await srv.metrics(), 'midstream_clamd_up', { endpoint: own.tcp }), 0);

  // clamd comes back on the same port: the health check (1 s) notices.
  const back = await startClamd({ port: own.port });
  cleanups.push(() => back.stop());
  const up = await srv.waitForLog((l) => l.event === 'clamd-up', 15_000);
  assert.equal(up.level, 'warn');
  assert.equal(up.endpoint, own.tcp);
  assert.equal(metric(await srv.metrics(), 'midstream_clamd_up', { endpoint: own.tcp }), 1);
  assert.equal((await sendMessage(srv.port, { from: 'up@example.org', to: ['rcpt@example.net'], message: multipartMessage([]) })).final.code, 250);
  await srv.stop();

  // Start-up with nothing listening there: a warning, and the proxy serves anyway.
  await back.stop();
  const dead = mkdtempSync(join(dir, 'dead-'));
  const srv2 = await startCli('proxy', proxyConfig({ listen: '127.0.0.1:0', clamd: own.tcp }), dead);
  cleanups.push(() => srv2.stop());
  const w = srv2.logs().find((l) => l.event === 'clamd-unreachable');
  assert.ok(w, 'clamd-unreachable at start-up');
  assert.equal(w.level, 'warn');
  assert.equal(w.endpoint, own.tcp);
  assert.equal(metric(await srv2.metrics(), 'midstream_clamd_up', { endpoint: own.tcp }), 0);
  await srv2.stop();
});
