/**
 * parity.test.ts — one set of fixtures through both fronts gives the same verdicts.
 *
 * SMTP front: in-process startProxy → sink, our SMTP client (dot-stuffing on the wire).
 * Milter front: in-process startMilter, our MTA-side client sending header fields one
 * packet each (folded values joined by LF) and the body in 64 KiB BODY chunks.
 * Both use the same core engine (built-in signatures, mime_depth = 3). The verdict
 * kind and `where` come from each front's per-message log line; the SMTP reply class
 * and the milter reply must agree too.
 *
 * Also: [[rules]] applied through each front (the engine's policyFor hook, as the CLI runs it): a
 * trusted client network (XFORWARD ADDR / milter connect address) and an
 * authenticated sender (milter {auth_authen}) with skip_banned get the .exe through
 * while EICAR is still rejected; a per-recipient-domain override applies, and two
 * recipients in one transaction take the strictest policy.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startProxy } from '../../src/smtp/proxy-server.js';
import { startMilter } from '../../milter/milter-server.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';
import { parseConfigText } from '../../src/config/load-config.js';
import { rulesPolicy } from '../../src/cli/server-runtime.js';
import { engineOptions } from '../../src/cli/settings.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import { multipartMessage, plainMessage, zip, b64lines, EICAR } from '../helpers/mail-build.js';
import { buildZip } from '../helpers/unpack-harness.js';
import { CLAM_EXE } from '../helpers/clamd.js';
import { sendViaMilter } from '../helpers/milter-mta.js';
import { TicketBook } from '../../src/actions/verdict-tickets.js';

type Rec = Record<string, unknown>;
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function depthBomb(depth: number): Buffer {
  let inner = 'Content-Type: text/plain\r\n\r\nbottom\r\n';
  for (let i = depth; i > 0; i--) inner = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${inner}\r\n--b${i}--\r\n`;
  return Buffer.from(`From: a@example.org\r\nTo: b@example.net\r\nSubject: deep\r\nMIME-Version: 1.0\r\n${inner}`, 'latin1');
}

function nestedRfc822(): Buffer {
  const inner = multipartMessage([{ filename: 'inner.txt', content: EICAR }], { subject: 'inner', boundary: 'inner-b' }).toString('latin1');
  return Buffer.from(
    'From: a@example.org\r\nTo: b@example.net\r\nSubject: forwarded\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="outer-b"\r\n\r\n' +
      '--outer-b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n' +
      '--outer-b\r\nContent-Type: message/rfc822\r\n\r\n' + inner + '\r\n--outer-b--\r\n',
    'latin1',
  );
}

const encryptedZip = () => buildZip([{ name: 'secret.txt', data: Buffer.from('encrypted payload bytes'), flags: 1 }]);

const FIXTURES: Record<string, Buffer> = {
  'clean text': plainMessage('Hello,\r\nnothing to see here.\r\n'),
  'clean multipart with a PDF': multipartMessage([{ filename: 'report.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n') }]),
  'EICAR plain': plainMessage(`${EICAR}`),
  'EICAR base64': multipartMessage([{ filename: 'eicar.txt', content: EICAR }]),
  'EICAR in zip': multipartMessage([{ filename: 'docs.zip', contentType: 'application/zip', content: zip({ 'docs/eicar.txt': EICAR }) }]),
  'EICAR in nested message/rfc822': nestedRfc822(),
  'banned .exe': multipartMessage([{ filename: 'setup.exe', content: 'not really a program' }]),
  'banned inside zip': multipartMessage([{ filename: 'bundle.zip', contentType: 'application/zip', content: zip({ 'tools/run.exe': 'hello' }) }]),
  'PE by magic': multipartMessage([{ filename: 'data.bin', content: readFileSync(CLAM_EXE) }]),
  'encrypted zip': multipartMessage([{ filename: 'secret.zip', contentType: 'application/zip', content: encryptedZip() }]),
  'MIME depth bomb': depthBomb(6),
  'LF-only message': Buffer.from(
    multipartMessage([{ filename: 'eicar.txt', content: EICAR }]).toString('latin1').replace(/\r\n/g, '\n'),
    'latin1',
  ),
  'dot-lines': Buffer.from(
    'From: a@example.org\r\nTo: b@example.net\r\nSubject: dots\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="d"\r\n\r\n' +
      '--d\r\nContent-Type: text/plain\r\n\r\n.\r\n..\r\n.leading\r\n' +
      '--d\r\nContent-Type: application/octet-stream; name="e.txt"\r\nContent-Disposition: attachment; filename="e.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      b64lines(Buffer.from(EICAR, 'latin1')) + '\r\n--d--\r\n.\r\n',
    'latin1',
  ),
};

/** The verdict kind each fixture must get (the same through both fronts). */
const EXPECTED: Record<string, string> = {
  'clean text': 'clean',
  'clean multipart with a PDF': 'clean',
  'EICAR plain': 'infected',
  'EICAR base64': 'infected',
  'EICAR in zip': 'infected',
  'EICAR in nested message/rfc822': 'infected',
  'banned .exe': 'banned',
  'banned inside zip': 'banned',
  'PE by magic': 'banned',
  'encrypted zip': 'banned',
  'MIME depth bomb': 'limit',
  'LF-only message': 'infected',
  'dot-lines': 'infected',
};

interface Front {
  send(name: string, msg: Buffer, o?: { client?: string; to?: string[]; auth?: string }): Promise<{ line: Rec; reply: string; replyClass: number }>;
}

async function proxyFront(engine: Pick<Engine, 'begin' | 'engines' | 'policy'>, tickets: TicketBook | null = null): Promise<Front & { sink: Sink }> {
  const sink = await startSink();
  const logs: Rec[] = [];
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    forward: `127.0.0.1:${sink.port}`,
    engine,
    tickets,
    logger: createLogger({ level: 'info', write: (l) => logs.push(JSON.parse(l) as Rec) }),
    hostname: 'proxy.test',
    shutdownGraceMs: 1000,
  });
  cleanups.push(() => proxy.close(), () => sink.close());
  const port = Number(proxy.address.split(':').pop());
  return {
    sink,
    async send(name, msg, o = {}) {
      const c = await TestSmtpClient.connect(port);
      try {
        await c.read();
        await c.cmd('EHLO mx.example');
        if (o.client) assert.equal((await c.cmd(`XFORWARD ADDR=${o.client}`)).code, 250);
        assert.equal((await c.cmd(`MAIL FROM:<${name.replace(/\W+/g, '-')}@example.org>`)).code, 250);
        for (const t of o.to ?? ['b@example.net']) assert.equal((await c.cmd(`RCPT TO:<${t}>`)).code, 250);
        assert.equal((await c.cmd('DATA')).code, 354);
        const n = logs.length;
        c.write(dotStuff(msg));
        const fin = await c.read(30_000);
        const until = Date.now() + 5000;
        while (!logs.slice(n).some((l) => l.event === 'message') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
        const line = logs.slice(n).find((l) => l.event === 'message')!;
        return { line, reply: fin.text, replyClass: Math.floor(fin.code / 100) };
      } finally {
        await c.quit();
      }
    },
  };
}

async function milterFront(engine: Engine): Promise<Front> {
  const logs: Rec[] = [];
  const m = await startMilter({
    listen: 'inet:0@127.0.0.1',
    engine,
    logger: createLogger({ level: 'info', write: (l) => logs.push(JSON.parse(l) as Rec) }),
    shutdownGraceMs: 1000,
  });
  cleanups.push(() => m.close());
  return {
    async send(name, msg, o = {}) {
      const n = logs.length;
      const r = await sendViaMilter(m.address, {
        from: `${name.replace(/\W+/g, '-')}@example.org`,
        to: o.to ?? ['b@example.net'],
        message: msg,
        ...(o.client ? { clientAddress: o.client } : {}),
        macros: { T: ['i', 'QPARITY'], ...(o.auth ? { M: ['{auth_authen}', o.auth] } : {}) },
      });
      const until = Date.now() + 5000;
      while (!logs.slice(n).some((l) => l.event === 'message') && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
      const line = logs.slice(n).find((l) => l.event === 'message')!;
      // CONTINUE or DISCARD: the MTA answers 250 either way.
      const cls = r.text === 'c' || r.text === 'd' ? 2 : Number(r.text[0]);
      return { line, reply: r.text, replyClass: cls };
    },
  };
}

let engine: Engine;
let proxy: Front;
let milter: Front;
before(async () => {
  engine = await createEngine({ limits: { mimeDepth: 3 } });
  cleanups.push(() => engine.close());
  proxy = await proxyFront(engine);
  milter = await milterFront(engine);
});

for (const [name, msg] of Object.entries(FIXTURES)) {
  test(`parity: ${name}`, async () => {
    const p = await proxy.send(name, msg);
    const m = await milter.send(name, msg);
    assert.ok(p.line && m.line, 'both fronts logged the message');
    assert.equal(p.line.verdict, EXPECTED[name], `proxy verdict (${JSON.stringify(p.line)})`);
    assert.equal(m.line.verdict, p.line.verdict, 'same verdict kind');
    assert.equal(m.line.where, p.line.where, 'same where');
    assert.equal(m.line.name, p.line.name, 'same virus name');
    assert.equal(m.line.action, p.line.action, 'same action');
    assert.equal(m.replyClass, p.replyClass, `same reply class (proxy ${p.reply} / milter ${m.reply})`);
  });
}

// ---- [[rules]] through the fronts -------------------------------------------------

const RULES = `
[[rules]]
name = "trusted-net"
match = { client = ["10.1.0.0/16"] }
skip_banned = true

[[rules]]
name = "authenticated"
match = { authenticated = true }
skip_banned = true

[[rules]]
name = "lenient-domain"
match = { recipient_domain = ["lenient.example"] }
skip_banned = true

[[rules]]
name = "strict-domain"
match = { recipient_domain = ["strict.example"] }
actions = { banned = "tempfail" }
`;

test('rules: trusted network and authenticated sender skip banned checks, never virus scanning; strictest recipient wins', async () => {
  const config = parseConfigText(RULES, '/tmp/rules-parity.toml');
  // As the CLI runs it: the [[rules]] are the engine's policy hook (server-runtime.ts).
  const policyFor = rulesPolicy(config);
  assert.ok(policyFor);
  const holder = await createEngine({ ...engineOptions(config), policyFor });
  cleanups.push(() => holder.close());
  const rp = await proxyFront(holder);
  const rm = await milterFront(holder);
  const exe = FIXTURES['banned .exe']!;
  const eicar = FIXTURES['EICAR base64']!;

  // Untrusted client: banned.
  assert.equal((await rp.send('u', exe, { client: '192.0.2.1' })).line.verdict, 'banned');
  assert.equal((await rm.send('u', exe, { client: '192.0.2.1' })).line.verdict, 'banned');
  // Trusted network (XFORWARD ADDR / milter connect address): the .exe passes, EICAR does not.
  const pt = await rp.send('t', exe, { client: '10.1.2.3' });
  assert.equal(pt.line.verdict, 'clean');
  assert.equal(pt.replyClass, 2);
  assert.equal((await rm.send('t', exe, { client: '10.1.2.3' })).line.verdict, 'clean');
  const pe = await rp.send('te', eicar, { client: '10.1.2.3' });
  assert.equal(pe.line.verdict, 'infected');
  assert.equal(pe.replyClass, 5);
  assert.equal((await rm.send('te', eicar, { client: '10.1.2.3' })).line.verdict, 'infected');
  // Authenticated sender (milter {auth_authen}).
  assert.equal((await rm.send('a', exe, { client: '192.0.2.1', auth: 'alice' })).line.verdict, 'clean');
  const ae = await rm.send('ae', eicar, { client: '192.0.2.1', auth: 'alice' });
  assert.equal(ae.line.verdict, 'infected');
  assert.equal(ae.replyClass, 5);
  // Per-recipient-domain: lenient passes the .exe, strict tempfails it.
  for (const f of [rp, rm]) {
    const l = await f.send('l', exe, { client: '192.0.2.1', to: ['x@lenient.example'] });
    assert.equal(l.line.verdict, 'clean');
    const s = await f.send('s', exe, { client: '192.0.2.1', to: ['x@strict.example'] });
    assert.equal(s.line.verdict, 'banned');
    assert.equal(s.replyClass, 4, 'strict domain: banned → tempfail');
    // Two recipients: skip_banned holds only if every recipient's rule says so, and each
    // action takes the strictest: lenient's banned action is the global reject, so 5xx.
    const both = await f.send('b', exe, { client: '192.0.2.1', to: ['x@lenient.example', 'y@strict.example'] });
    assert.equal(both.line.verdict, 'banned');
    assert.equal(both.replyClass, 5);
  }
});

// ---- the actions of issue #13 through the fronts -------------------------------------

const ACTION_RULES = `
[[rules]]
name = "q"
match = { recipient_domain = ["quarantine.test"] }
actions = { infected = "quarantine", banned = "quarantine" }
[[rules]]
name = "t"
match = { recipient_domain = ["tag.test"] }
actions = { infected = "tag", banned = "tag" }
[[rules]]
name = "d"
match = { recipient_domain = ["discard.test"] }
actions = { infected = "discard", banned = "discard" }
[[rules]]
name = "tf"
match = { recipient_domain = ["tempfail.test"] }
actions = { infected = "tempfail", banned = "tempfail" }
[reply]
banned = "Attachment refused: %r"
`;

test('actions: quarantine, tag, discard, tempfail and a template give the same action and reply class through both fronts', async () => {
  const config = parseConfigText(ACTION_RULES, '/tmp/actions-parity.toml');
  const holder = await createEngine({ ...engineOptions(config), policyFor: rulesPolicy(config)! });
  cleanups.push(() => holder.close());
  // The proxy files its edits for an after-filter milter (the sink runs none: what the
  // message becomes is tested on real Postfix; here the action and the reply must agree).
  const rp = await proxyFront(holder, new TicketBook());
  const rm = await milterFront(holder);
  const cases: [string, Buffer, string, string, number][] = [
    ['q', FIXTURES['EICAR in zip']!, 'x@quarantine.test', 'quarantine', 2],
    ['t', FIXTURES['EICAR base64']!, 'x@tag.test', 'tag', 2],
    ['d', FIXTURES['banned inside zip']!, 'x@discard.test', 'discard', 2],
    ['tf', FIXTURES['banned .exe']!, 'x@tempfail.test', 'tempfail', 4],
    ['r', FIXTURES['banned .exe']!, 'x@other.test', 'reject', 5],
    ['strictest', FIXTURES['EICAR plain']!, 'x@tag.test', 'quarantine', 2],
  ];
  for (const [name, msg, to, action, cls] of cases) {
    const rcpts = name === 'strictest' ? [to, 'y@quarantine.test'] : [to];
    const p = await rp.send(name, msg, { to: rcpts });
    const m = await rm.send(name, msg, { to: rcpts });
    assert.equal(p.line.action, action, `proxy ${name}: ${JSON.stringify(p.line)}`);
    assert.equal(m.line.action, action, `milter ${name}: ${JSON.stringify(m.line)}`);
    assert.equal(m.line.verdict, p.line.verdict);
    assert.equal(p.replyClass, cls, `proxy ${name}: ${p.reply}`);
    assert.equal(m.replyClass, cls, `milter ${name}: ${m.reply}`);
    if (cls === 5) assert.match(p.reply, /Attachment refused: banned file name \.exe/);
    if (cls === 5) assert.match(m.reply, /Attachment refused: banned file name \.exe/);
  }
  // Discarded: never reached the proxy's downstream.
  assert.ok(!rp.sink.messages.some((x) => x.rcpt.includes('x@discard.test')));
});
