/**
 * security.test.ts — issue 7 item 6, against the compiled CLI (no MTA needed: the proxy
 * forwards straight to a recording sink, the milter is driven by our milter client):
 *   - listeners bind loopback by default (schema defaults, and the bound sockets of a
 *     running proxy/milter/metrics endpoint given only a port);
 *   - XFORWARD believed only from trusted peers (refused and not passed on otherwise);
 *   - the proxy connects only to its configured next hop, whatever the recipients;
 *   - unix sockets: milter 0660 by default; the proxy's socket never world-writable;
 *   - peer-controlled strings (clamd virus names with CR/LF, attachment names with
 *     CR/LF and '%') cannot inject into SMTP replies, milter replies or log lines;
 *   - runs unprivileged: systemd units set User=, `midstream scan` and `proxy` work as nobody;
 *   - no dynamic code: src/ and milter/ have no eval / new Function / vm / computed import.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROXY, MILTER, METRICS, CLAMD } from '../../src/config/schema.js';
import { parseAddress } from '../../src/core/address.js';
import { ROOT } from '../helpers/paths.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { startFakeClamd, FAKE, type FakeClamd } from '../helpers/fake-clamd.js';
import { startCli, writeConfig, procFds, CLI_JS, type CliProcess } from '../helpers/midstream-cli.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import { MilterClient, replyCodeText } from '../helpers/milter-client.js';
import { SMFIR } from '../../milter/milter-codes.js';
import { freePort } from '../helpers/postfix.js';

let dir: string;
let sink: Sink;
const started: { stop(): Promise<void> }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midstream-sec-'));
  chmodSync(dir, 0o755);
  sink = await startSink();
});

after(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => {});
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], opts: Parameters<typeof startCli>[1] = {}): Promise<CliProcess> {
  const p = await startCli(args, opts);
  started.push(p);
  return p;
}

async function fake(b: Parameters<typeof startFakeClamd>[0]): Promise<FakeClamd> {
  const f = await startFakeClamd(b);
  started.push({ stop: () => f.close() });
  return f;
}

/** Local addresses of the LISTEN TCP sockets held by `pid` (from /proc/net/tcp{,6}). */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set(procFds(pid).map((f) => /^socket:\[(\d+)\]$/.exec(f.target)?.[1]).filter((x): x is string => !!x));
  const out: string[] = [];
  for (const [table, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [hex, port] = f[1]!.split(':') as [string, string];
      let addr: string;
      if (!v6) addr = Buffer.from(hex, 'hex').reverse().join('.');
      else {
        const b = Buffer.from(hex, 'hex');
        for (let i = 0; i < 16; i += 4) b.subarray(i, i + 4).reverse();
        addr = b.equals(Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), b.subarray(12)])) ? `::ffff:${[...b.subarray(12)].join('.')}` : b.toString('hex').replace(/(.{4})/g, '$1:').slice(0, -1);
      }
      out.push(`${addr}:${parseInt(port, 16)}`);
    }
  }
  return out;
}

const isLoopback = (a: string) => /^(127\.\d+\.\d+\.\d+|::ffff:127\.\d+\.\d+\.\d+|0000:0000:0000:0000:0000:0000:0000:0001):\d+$/.test(a);

test('defaults bind loopback only: schema defaults, and the sockets a running proxy / milter / metrics endpoint holds', async () => {
  assert.match(PROXY.listen.def, /^127\.0\.0\.1:\d+$/);
  assert.match(PROXY.forward.def, /^127\.0\.0\.1:\d+$/);
  assert.match(MILTER.listen.def, /@127\.0\.0\.1$/);
  assert.equal(METRICS.listen.def, '', 'metrics off by default');
  assert.equal((parseAddress(':9357', 'metrics') as { host: string }).host, '127.0.0.1', 'a bare metrics port means loopback');
  assert.deepEqual(CLAMD.endpoints.def, []);
  assert.deepEqual([...PROXY.trustedXforward.def], ['127.0.0.0/8', '::1/128'], 'XFORWARD trusted from loopback only');
  // Running servers given only a port (host left to the defaults).
  const mport = await freePort();
  const metrics = await freePort();
  const cfg = writeConfig(dir, 'metrics.toml', `[metrics]\nlisten = ":${metrics}"\n[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n`);
  const p = await cli(['proxy', '--config', cfg]);
  const m = await cli(['milter', '--listen', `inet:${mport}`]);
  const pl = listeningAddresses(p.pid);
  const ml = listeningAddresses(m.pid);
  assert.ok(pl.length >= 2, `proxy + metrics listeners: ${pl.join(' ')}`);
  assert.ok(pl.some((a) => a.endsWith(`:${metrics}`)), `metrics listener present: ${pl.join(' ')}`);
  assert.ok(pl.every(isLoopback), `proxy listens on loopback only: ${pl.join(' ')}`);
  assert.deepEqual(ml.map((a) => a.replace(/^::ffff:/, '')), [`127.0.0.1:${mport}`], '"inet:PORT" without a host binds loopback');
  await p.stop();
  await m.stop();
});

/** One SMTP transaction straight to the proxy; returns every byte the proxy sent after DATA's 354. */
async function rawTransaction(port: number, o: { pre?: string[]; message: string; rcpt?: string[] }): Promise<{ pre: string[]; after354: string }> {
  const c = await TestSmtpClient.connect(port);
  let raw = '';
  c.socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
  const pre: string[] = [];
  try {
    await c.read();
    await c.cmd('EHLO client.example');
    for (const l of o.pre ?? []) pre.push((await c.cmd(l)).text);
    assert.equal((await c.cmd('MAIL FROM:<sender@example.org>')).code, 250);
    for (const r of o.rcpt ?? ['rcpt@example.net']) assert.equal((await c.cmd(`RCPT TO:<${r}>`)).code, 250, r);
    assert.equal((await c.cmd('DATA')).code, 354);
    const mark = raw.length;
    c.write(dotStuff(o.message));
    await c.read(30_000);
    await new Promise((r) => setTimeout(r, 100)); // anything more than one reply would show now
    return { pre, after354: raw.slice(mark) };
  } finally {
    await c.quit();
  }
}

const portOf = (addr: string) => Number(addr.split(':').pop());

function msg(id: string, body = 'hello\r\n', extra = ''): string {
  return `From: a@example.org\r\nTo: b@example.net\r\nSubject: ${id}\r\nMessage-ID: <${id}@security.test>\r\n${extra}\r\n${body}`;
}
const delivered = (id: string) => sink.messages.filter((m) => m.data?.includes(`<${id}@security.test>`));

test('XFORWARD: refused from an untrusted peer and not passed on; accepted and passed on from a trusted one', async () => {
  const cfg = writeConfig(dir, 'untrusted.toml', `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\ntrusted_xforward = ["10.0.0.0/8"]\n`);
  const untrusted = await cli(['proxy', '--config', cfg]);
  const c = await TestSmtpClient.connect(portOf(untrusted.address));
  await c.read();
  const ehlo = await c.cmd('EHLO client.example');
  await c.quit();
  assert.doesNotMatch(ehlo.text, /XFORWARD/, 'not advertised to an untrusted peer');
  const r1 = await rawTransaction(portOf(untrusted.address), { pre: ['XFORWARD ADDR=6.6.6.6 NAME=evil.example HELO=evil.example'], message: msg('xf-untrusted') });
  assert.match(r1.pre[0]!, /^550 5\.7\.0 /, 'XFORWARD refused');
  assert.match(r1.after354, /^250 /);
  const m1 = delivered('xf-untrusted');
  assert.equal(m1.length, 1);
  assert.deepEqual(m1[0]!.xforward, {}, 'nothing forged reached the next hop');
  assert.equal(m1[0]!.remoteAddress.replace(/^::ffff:/, ''), '127.0.0.1');

  const trustedCfg = writeConfig(dir, 'trusted.toml', `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n`);
  const trusted = await cli(['proxy', '--config', trustedCfg]);
  const r2 = await rawTransaction(portOf(trusted.address), { pre: ['XFORWARD ADDR=192.0.2.7 NAME=client.example'], message: msg('xf-trusted') });
  assert.match(r2.pre[0]!, /^250 /);
  const m2 = delivered('xf-trusted');
  assert.equal(m2.length, 1);
  assert.equal(m2[0]!.xforward.ADDR, '192.0.2.7', 'a trusted peer\'s XFORWARD is passed on (so the check above can fail)');
  await untrusted.stop();
  await trusted.stop();
});

test('the proxy connects only to its configured next hop, whatever the recipient domains', async () => {
  const p = await cli(['proxy', '--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${sink.port}`]);
  const listenPort = portOf(p.address);
  const remotes = new Set<string>();
  const sampleRemotes = () => {
    const inodes = new Set(procFds(p.pid).map((f) => /^socket:\[(\d+)\]$/.exec(f.target)?.[1]).filter(Boolean));
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || !inodes.has(f[9]!) || f[3] === '0A') continue;
        const localPort = parseInt(f[1]!.split(':')[1]!, 16);
        if (localPort === listenPort) continue; // inbound
        remotes.add(`${f[2]!.split(':')[0]}:${parseInt(f[2]!.split(':')[1]!, 16)}`);
      }
    }
  };
  const rcpts = ['user@example.com', 'postmaster@[192.0.2.1]', 'x@127.0.0.2', 'relay%other@example.org', '@hop.example:u@dest.example'];
  const c = await TestSmtpClient.connect(listenPort);
  await c.read();
  await c.cmd('EHLO client.example');
  assert.equal((await c.cmd('MAIL FROM:<sender@example.org>')).code, 250);
  sampleRemotes();
  for (const r of rcpts) {
    const rr = await c.cmd(`RCPT TO:<${r}>`);
    assert.equal(rr.code, 250, `${r}: ${rr.text}`);
    sampleRemotes();
  }
  assert.equal((await c.cmd('DATA')).code, 354);
  sampleRemotes();
  c.write(dotStuff(msg('nexthop')));
  assert.equal((await c.read()).code, 250);
  await c.quit();
  const m = delivered('nexthop');
  assert.equal(m.length, 1, 'delivered to the next hop');
  assert.equal(m[0]!.rcpt.length, rcpts.length, 'every recipient went to the next hop, unchanged in number');
  const sinkHex = `:${sink.port}`;
  assert.ok(remotes.size >= 1, 'the downstream connection was seen');
  assert.deepEqual([...remotes].filter((r) => !r.endsWith(sinkHex)), [], `no other outbound connection: ${[...remotes].join(' ')}`);
  await p.stop();
});

const UMASK0 = ['sh', '-c', 'umask 000; exec "$0" "$@"'];

test('unix sockets: the milter socket gets mode 0660 by default, even with umask 000', async () => {
  const msock = join(dir, 'milter.sock');
  const m = await cli(['milter', '--listen', `unix:${msock}`], { wrapper: UMASK0 });
  assert.equal(statSync(msock).mode & 0o777, 0o660, `milter socket mode ${(statSync(msock).mode & 0o777).toString(8)}`);
  await m.stop();
});

// The proxy's unix socket gets [proxy] socket_mode (0660) whatever the umask: bound under a
// narrowed umask, then chmod'ed (src/net/listen-unix.ts).
test('unix sockets: the proxy socket is never world-writable, even with umask 000', async () => {
  const psock = join(dir, 'proxy.sock');
  const p = await cli(['proxy', '--listen', `unix:${psock}`, '--forward', `127.0.0.1:${sink.port}`], { wrapper: UMASK0 });
  const mode = statSync(psock).mode & 0o777;
  // It serves over the socket (so the mode check is about a live listener).
  const greeting = await new Promise<string>((res, rej) => {
    const so = connect(psock);
    so.once('data', (d: Buffer) => (so.destroy(), res(d.toString('latin1'))));
    so.once('error', rej);
  });
  assert.match(greeting, /^220 /);
  await p.stop();
  assert.equal(mode, 0o660, `proxy socket mode ${mode.toString(8)}`);
});

/** EICAR-free message through a milter client; returns the final REPLYCODE text. */
async function milterReject(address: string, headers: [string, string][], body: string): Promise<string> {
  const mc = await MilterClient.connect(address);
  try {
    await mc.negotiate(6, 0x1ff, 0);
    await mc.connectInfo();
    await mc.mail('<a@example.org>');
    await mc.rcpt('<b@example.net>');
    for (const [k, v] of headers) await mc.header(k, v);
    await mc.eoh();
    const b = await mc.body(body);
    const final = b && b.final.cmd === SMFIR.REPLYCODE ? b.final : (await mc.eob(10_000)).final;
    assert.equal(final.cmd, SMFIR.REPLYCODE, `final milter packet ${final.cmd}`);
    return replyCodeText(final);
  } finally {
    mc.close();
  }
}

function assertLogsIntact(proc: CliProcess): string[] {
  const lines = proc.stderr().split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `log line is one JSON object: ${l}`);
  assert.ok(!lines.some((l) => /^\d{3}[ -]/.test(l)), 'no injected reply-looking line');
  return lines;
}

test('peer-controlled strings: clamd virus names with CR/LF, %, 8-bit and huge lengths cannot inject into SMTP replies, milter replies or logs', async () => {
  const cases: { name: string; expect: RegExp }[] = [
    // Control characters in a FOUND name: the clamd client refuses the reply (fail closed, generic text).
    { name: 'Evil\r\n250 2.0.0 Ok: queued as FAKE\r\n', expect: /^451 4\.7\.1 Message could not be scanned, try again later$/ },
    // Printable but hostile: '%' for Sendmail's printf, 8-bit bytes, and 5000 characters.
    { name: `Evil%s%n.\u00ff\u00e9-${'A'.repeat(5000)}`, expect: /^550 5\.7\.1 Message rejected: virus found: Evil%s%n\.\?+-A+\.\.\.$/ },
  ];
  for (const [i, c] of cases.entries()) {
    const f = await fake(FAKE.found(c.name));
    const cfg = writeConfig(dir, `evil-${i}.toml`, `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[milter]\nlisten = "inet:0@127.0.0.1"\n[clamd]\nendpoints = ["${f.address}"]\nkeepalive = "0s"\nmode = "whole-message"\n`);
    const p = await cli(['proxy', '--config', cfg]);
    const id = `evil-name-${i}`;
    const r = await rawTransaction(portOf(p.address), { message: msg(id) });
    assert.ok(f.sessions.some((s) => s.command === 'zINSTREAM'), 'clamd (fake) was asked');
    assert.equal(r.after354.split('\r\n').length, 2, `exactly one reply line: ${JSON.stringify(r.after354)}`);
    assert.ok(r.after354.length <= 512, `reply capped: ${r.after354.length} bytes`);
    assert.match(r.after354.slice(0, -2), c.expect);
    assert.ok(/^[\x20-\x7e]*\r\n$/.test(r.after354), 'printable ASCII only');
    assert.equal(delivered(id).length, 0);

    const m = await cli(['milter', '--config', cfg]);
    const text = await milterReject(m.address, [['Subject', 'evil']], 'hello\r\n');
    assert.ok(/^[\x20-\x7e]*$/.test(text) && text.length <= 512, `milter reply printable and capped: ${JSON.stringify(text.slice(0, 100))}`);
    if (i === 1) assert.match(text, /^550 5\.7\.1 Message rejected: virus found: Evil%%s%%n\./, "'%' doubled for Sendmail's printf");
    else assert.match(text, /^451 4\.7\.1 /);
    for (const proc of [p, m]) {
      const lines = assertLogsIntact(proc);
      if (i === 1) assert.ok(lines.some((l) => l.includes('Evil%s')), 'the name was logged (escaped)');
      assert.ok(lines.every((l) => l.length < 8192), 'log lines capped');
    }
    await p.stop();
    await m.stop();
  }
});

test("peer-controlled strings: attachment names that decode to CR/LF and '%' never reach SMTP or milter replies", async () => {
  const cfg = writeConfig(dir, 'names.toml', `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[milter]\nlisten = "inet:0@127.0.0.1"\n`);
  const p = await cli(['proxy', '--config', cfg]);
  const m = await cli(['milter', '--config', cfg]);
  const names = [
    // RFC 2231 percent-encoding and an RFC 2047 encoded word both decode to a name with CR LF that ends in .exe.
    `filename*=UTF-8''evil%0D%0A250%202.0.0%20Ok%25s%25n.exe`,
    `filename="=?UTF-8?Q?evil=0D=0A250_2.0.0_Ok%s%n.exe?="`,
  ];
  for (const [i, disp] of names.entries()) {
    const body = `--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; ${disp}\r\n\r\n${Buffer.from('harmless').toString('base64')}\r\n--B--\r\n`;
    const id = `evil-file-${i}`;
    const message = msg(id, body, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n');
    const r = await rawTransaction(portOf(p.address), { message });
    // Banned by the decoded name's extension (so the name really was decoded), and the
    // reply names only the extension: no peer text at all.
    assert.equal(r.after354, '550 5.7.1 Message rejected: banned file name .exe\r\n', disp);
    assert.equal(delivered(id).length, 0);
    const text = await milterReject(m.address, [['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary="B"']], body);
    assert.equal(text, '550 5.7.1 Message rejected: banned file name .exe');
  }
  for (const proc of [p, m]) assertLogsIntact(proc);
  await p.stop();
  await m.stop();
});

test('runs unprivileged: systemd units set a non-root User=; scan and proxy work as nobody', async () => {
  const unitDir = join(ROOT, 'deploy', 'systemd');
  const units = readdirSync(unitDir).filter((f) => f.endsWith('.service'));
  assert.ok(units.length >= 2, units.join(' '));
  for (const u of units) {
    const text = readFileSync(join(unitDir, u), 'utf8');
    const user = /^User=(.+)$/m.exec(text)?.[1];
    assert.ok(user && user !== 'root' && user !== '0', `${u}: User=${user}`);
    assert.match(text, /^NoNewPrivileges=yes$/m, u);
    assert.match(text, /^CapabilityBoundingSet=$/m, `${u}: no capabilities`);
  }
  const eicar = join(dir, 'eicar.txt');
  const clean = join(dir, 'clean.txt');
  writeFileSync(eicar, 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*');
  writeFileSync(clean, 'hello\n');
  chmodSync(eicar, 0o644);
  chmodSync(clean, 0o644);
  const asNobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
  const run = (args: string[]) =>
    new Promise<{ code: number; out: string }>((res) => {
      execFile(asNobody[0]!, [...asNobody.slice(1), process.execPath, CLI_JS, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      });
    });
  const whoami = await new Promise<string>((res) => execFile(asNobody[0]!, [...asNobody.slice(1), 'id', '-u'], (_e, o) => res(o.trim())));
  assert.equal(whoami, '65534', 'setpriv really drops to nobody');
  const r1 = await run(['scan', clean, eicar]);
  assert.equal(r1.code, 1, r1.out);
  assert.match(r1.out, new RegExp(`${clean}: clean`));
  assert.match(r1.out, new RegExp(`${eicar}: infected Eicar`, 'i'));
  const p = await cli(['proxy', '--listen', '127.0.0.1:0', '--forward', `127.0.0.1:${sink.port}`], { wrapper: asNobody });
  // The wrapper exec()s node, so the PID is the proxy's own.
  const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
  assert.deepEqual([uid?.[1], uid?.[2]], ['65534', '65534'], 'the proxy runs as nobody');
  const r = await rawTransaction(portOf(p.address), { message: msg('as-nobody') });
  assert.match(r.after354, /^250 /);
  assert.equal(delivered('as-nobody').length, 1);
  await p.stop();
});

test('no dynamic code from config: src/ and milter/ have no eval, new Function, vm, child_process or computed import()', () => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'milter'));
  assert.ok(files.length > 20, `${files.length} files scanned`);
  const rules: [RegExp, string][] = [
    [/\beval\s*\(/, 'eval('],
    [/\bnew\s+Function\b/, 'new Function'],
    [/\bFunction\s*\(\s*['"`]/, 'Function("…")'],
    [/['"]node:vm['"]|['"]vm['"]/, 'vm module'],
    [/['"](node:)?child_process['"]/, 'child_process'],
    [/\bimport\s*\(\s*(?!['"])/, 'import() of a computed specifier'],
    [/\brequire\s*\(/, 'require('],
    [/\bsetTimeout\s*\(\s*['"`]/, 'setTimeout with a string'],
  ];
  const hits: string[] = [];
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
      for (const [re, what] of rules) if (re.test(code)) hits.push(`${f.slice(ROOT.length + 1)}:${i + 1}: ${what}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, []);
  // The scanner itself must be able to fail: it sees a planted sample.
  const probe = ['const x = eval("1")', 'await import(cfg.plugin)', "import('./cli/x.js')"].map((l) => rules.some(([re]) => re.test(l)));
  assert.deepEqual(probe, [true, true, false]);
});
