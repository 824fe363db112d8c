/**
 * milter-postfix-socket.test.ts — the milter on a unix socket, reached by a real Postfix
 * whose smtpd runs as user postfix: with the defaults (our owner and group, 0660) Postfix
 * gets "Permission denied" and, failing closed, answers 451; with socket_group =
 * "postfix" the same Postfix instance reaches it and EICAR gets our 550. A second milter on
 * the same live path is refused (LISTEN_IN_USE) without touching the running one's socket.
 * (Postfix's chroot is off in these private instances; README covers the chroot layout.)
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { createEngine, MidstreamError, type Engine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { EICAR } from '../helpers/mail-build.js';

mkdirSync(TMP_BASE, { recursive: true });
const dir = mkdtempSync(join(TMP_BASE, 'milter-sock-'));
const sockDir = join(dir, 'run');
const path = join(sockDir, 'milter.sock');
const logs: string[] = [];
const logger = createLogger({ level: 'info', write: (l) => logs.push(l) });
let engine: Engine;
let sink: Sink;
let pf: PostfixInstance | undefined;
let milter: MilterServer | undefined;

before(async () => {
  // The directory is reachable by group postfix only, as install.sh makes /var/spool/postfix/midstream.
  mkdirSync(sockDir, { mode: 0o750 });
  chownSync(sockDir, 0, Number(execFileSync('getent', ['group', 'postfix']).toString().split(':')[2]));
  execFileSync('chmod', ['755', dir]);
  engine = await createEngine();
  sink = await startSink();
  pf = await startPostfix({
    sinkPort: sink.port,
    proxyFilter: false,
    vars: { MILTER: `unix:${path}` },
    mainExtra: [readFileSync(join(ROOT, 'postfix', 'milter.cf.in'), 'utf8')],
  });
});

after(async () => {
  await pf?.stop();
  await sink?.close();
  await milter?.close();
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

const diag = () => `\n--- maillog ---\n${pf?.readLog()}\n--- milter log ---\n${logs.join('\n')}`;
const msg = (subject: string, body: string) => `From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n\r\n${body}\r\n`;
const send = (m: string) => sendMessage(pf!.smtpPort, { from: 'sender@example.test', to: ['rcpt@example.test'], message: m });

test('default owner and group: Postfix (user postfix) cannot connect and fails closed with 451', async () => {
  milter = await startMilter({ listen: `unix:${path}`, engine, logger });
  assert.equal(statSync(path).gid, 0);
  const r = await send(msg('denied', 'hello'));
  assert.equal(Math.floor(r.final.code / 100), 4, r.final.text + diag());
  await pf!.waitForLog(/Permission denied/);
  await milter.close();
  milter = undefined;
});

test('socket_group = "postfix": the same Postfix reaches the milter; EICAR gets our 550', async () => {
  milter = await startMilter({ listen: `unix:${path}`, socketGroup: 'postfix', socketMode: 0o660, engine, logger });
  const st = statSync(path);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.gid, Number(execFileSync('getent', ['group', 'postfix']).toString().split(':')[2]));
  const ok = await send(msg('allowed', 'hello'));
  assert.equal(ok.final.code, 250, ok.final.text + diag());
  const bad = await send(msg('eicar', EICAR));
  assert.equal(bad.final.code, 550, bad.final.text + diag());
  assert.match(bad.final.text, /virus found: Eicar-Test-Signature/);
  // A second instance on the live socket: refused, the first keeps serving.
  await assert.rejects(startMilter({ listen: `unix:${path}`, engine, logger }), (e: unknown) => e instanceof MidstreamError && e.code === 'LISTEN_IN_USE');
  assert.equal((await send(msg('still', 'hello'))).final.code, 250, diag());
});
