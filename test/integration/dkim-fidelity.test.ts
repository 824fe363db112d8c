/**
 * dkim-fidelity.test.ts — what we forward is what we received (issue #10 item 6): messages
 * signed with DKIM (simple/simple: any changed byte breaks the signature) still verify after
 * passing midstream, on real Postfix 3.7:
 *   control: test client → Postfix (the after-filter smtpd, no filter) → sink
 *   proxy:   test client → front smtpd → midstream proxy → after-filter smtpd → sink
 *   milter:  test client → smtpd with smtpd_milters → midstream milter → sink
 * One Postfix instance carries all three (an extra front listener for the milter);
 * midstream runs in this process with the real core. Signing and verifying use Debian's
 * python3-dkim with a throwaway RSA key made here and a key record answered without DNS.
 * The messages carry what broke signatures before: bare CRs inside lines (the proxy used to
 * turn them into spaces), 8-bit bytes, lines longer than Postfix's 2048-byte line limit,
 * dot-stuffed lines, and enough body to cross many socket reads.
 * Postfix itself changes three things on the way, for every path alike, so the instance
 * turns two off — cleanup_replace_stray_cr_lf = no (since 3.7.10 cleanup stores a bare CR
 * as a space by default: then no signature over one survives any path) and
 * smtp_line_length_limit = 0 (no folding of lines over 998 bytes) — and the messages avoid
 * the third (CRs right before a CRLF, which smtpd drops on receipt).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { startProxy, type ProxyHandle } from '../../src/smtp/proxy-server.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { freePort, startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { ROOT } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { PYTHON } from '../differential/python.js';

const TOOL = join(ROOT, 'test', 'helpers', 'dkim-tool.py');
const SELECTOR = 'fidelity';
const DOMAIN = 'signer.example';

let dir: string;
let keyFile: string;
let pubB64: string;
let engine: Engine;
let milter: MilterServer;
let proxy: ProxyHandle;
let sink: Sink;
let pf: PostfixInstance | undefined;
let milterFront: number;
const logs: string[] = [];

/** Sendmail notation inet:PORT@HOST → Postfix notation inet:HOST:PORT. */
function postfixSocket(addr: string): string {
  const m = /^inet:(\d+)@(.+)$/.exec(addr);
  return m ? `inet:${m[2]}:${m[1]}` : addr;
}

function tool(args: string[], input: Buffer): Promise<{ code: number; out: Buffer }> {
  return new Promise((resolve, reject) => {
    const p = execFile(PYTHON, [TOOL, ...args], { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`${err.message}\n${stderr.toString()}`));
      resolve({ code: err ? Number(err.code) : 0, out: Buffer.concat([stdout, stderr]) });
    });
    p.stdin!.end(input);
  });
}

async function waitPort(port: number): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ port, host: '127.0.0.1' }, () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} not listening`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midstream-dkim-'));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }));
  pubB64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

  engine = await createEngine();
  const logger = createLogger({ level: 'info', write: (l) => logs.push(l) });
  milter = await startMilter({ listen: 'inet:0@127.0.0.1', engine, logger });
  sink = await startSink();
  milterFront = await freePort();
  pf = await startPostfix({
    sinkPort: sink.port,
    mainExtra: ['cleanup_replace_stray_cr_lf = no', 'smtp_line_length_limit = 0'],
    masterExtra: [
      `127.0.0.1:${milterFront} inet n - n - - smtpd`,
      '    -o syslog_name=postfix/milterfront',
      `    -o smtpd_milters=${postfixSocket(milter.address)}`,
      '    -o milter_default_action=tempfail',
      '    -o milter_protocol=6',
    ],
  });
  proxy = await startProxy({ listen: `127.0.0.1:${pf.filterPort}`, forward: `127.0.0.1:${pf.reinjectPort}`, engine, logger, hostname: 'filter.midstream.test' });
  await waitPort(milterFront);
});

after(async () => {
  await proxy?.close();
  await pf?.stop();
  await sink?.close();
  await milter?.close();
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const diag = () => `\n--- maillog ---\n${pf?.readLog().slice(-3000)}\n--- midstream log ---\n${logs.slice(-10).join('\n')}`;

/** A body line generator: bare CRs inside lines, 8-bit bytes, dots, long lines. */
function hostileText(lines: number, seed: number): string {
  const out: string[] = [];
  let x = seed;
  for (let i = 0; i < lines; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    switch (x % 9) {
      case 0: out.push(`col ${i}\rcol-b\rcol-c`); break; // bare CRs inside a line
      case 1: out.push(`.dot line ${i}`); break;
      case 2: out.push('.'); break;
      case 3: out.push(`caf\xe9 \xfc\xdf \xff\xfe \xc3\xa9t\xc3\xa9 ${i}`); break; // latin-1 and UTF-8 bytes
      case 4: out.push(`\rstarts with CR ${i}`); break;
      case 5: out.push(`tab\tand trailing space ${i} `); break;
      case 6: out.push(''); break;
      default: out.push(`plain words line ${i} `.repeat(3));
    }
  }
  return out.map((l) => l + '\r\n').join('');
}

function unsigned(name: string, body: string, contentType = 'text/plain; charset=iso-8859-1'): Buffer {
  return Buffer.from(
    `From: Signer <author@${DOMAIN}>\r\nTo: rcpt@example.net\r\nSubject: fidelity ${name}\r\n` +
      `Date: Sat, 22 Nov 2025 12:00:00 +0000\r\nMessage-ID: <${name}.${process.pid}@${DOMAIN}>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` + body,
    'latin1',
  );
}

const MESSAGES: Record<string, Buffer> = {
  // Short, and every kind of line once or more.
  'bare-cr': unsigned('bare-cr', 'one\rtwo\r\n\rthree\r\n..\r\n.\r\n' + hostileText(60, 7)),
  // Long lines across Postfix's 2048-byte line limit and our socket reads.
  long: unsigned('long', `${'L'.repeat(5000)}\r\n${'m\rn'.repeat(1500)}\r\n` + hostileText(40, 11) + `${'\xe9'.repeat(3000)}\r\n`),
  // ~400 KB: a multipart with a base64 part between hostile text parts.
  big: unsigned(
    'big',
    '--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' + hostileText(4000, 3) +
      '--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      (Buffer.alloc(150_000, 0x5a).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n' +
      '--B\r\nContent-Type: text/plain\r\n\r\n' + hostileText(2000, 5) + '--B--\r\n',
    'multipart/mixed; boundary="B"',
  ),
};

async function signed(name: string): Promise<Buffer> {
  const r = await tool(['sign', keyFile, SELECTOR, DOMAIN], MESSAGES[name]!);
  assert.equal(r.code, 0, r.out.toString());
  return r.out;
}

async function deliverAndVerify(port: number, path: string, name: string): Promise<void> {
  const msg = await signed(name);
  const id = `<${name}.${process.pid}@${DOMAIN}>`;
  const before = sink.messages.length;
  const r = await sendMessage(port, { from: `author@${DOMAIN}`, to: ['rcpt@example.net'], message: msg, mailParams: 'BODY=8BITMIME' });
  assert.equal(r.final.code, 250, `${path} ${name}: ${r.final.text}${diag()}`);
  const got = await sink.waitFor((m) => sink.messages.indexOf(m) >= before && !!m.data && m.data.includes(`Message-ID: ${id}`), 30_000);
  const data = got.data!;
  // The test is only worth something if what it guards arrived: bare CRs and 8-bit bytes.
  assert.ok(/\r[^\n]/.test(data.toString('latin1')), `${path} ${name}: no bare CR at the sink`);
  assert.ok(data.some((c) => c >= 0x80), `${path} ${name}: no 8-bit byte at the sink`);
  const v = await tool(['verify', SELECTOR, DOMAIN, pubB64], data);
  assert.equal(v.out.toString().trim(), 'pass', `${path} ${name}: DKIM after ${path}: ${v.out.toString()}`);
}

for (const name of Object.keys(MESSAGES)) {
  test(`DKIM (${name}): signature verifies after Postfix alone, after the proxy and after the milter`, { timeout: 90_000 }, async () => {
    // The control first: if Postfix alone broke it, the message is at fault, not midstream.
    await deliverAndVerify(pf!.reinjectPort, 'Postfix alone', name);
    await deliverAndVerify(pf!.smtpPort, 'the proxy', name);
    await deliverAndVerify(milterFront, 'the milter', name);
  });
}

test('the verifier is not vacuous: one changed byte (a bare CR made a space) fails', async () => {
  const msg = await signed('bare-cr');
  const i = msg.indexOf('one\rtwo');
  assert.ok(i > 0);
  const broken = Buffer.from(msg);
  broken[i + 3] = 0x20;
  const v = await tool(['verify', SELECTOR, DOMAIN, pubB64], broken);
  assert.notEqual(v.code, 0);
  assert.match(v.out.toString(), /^fail/);
  assert.equal((await tool(['verify', SELECTOR, DOMAIN, pubB64], msg)).out.toString().trim(), 'pass');
});
