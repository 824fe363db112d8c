/**
 * `midstream pop3` (the compiled CLI) in front of a REAL Dovecot POP3 server, with real
 * clients — Python's poplib and fetchmail — and oracle parsers that are not ours
 * (Python's email and zipfile packages, test/helpers/pop3-oracle.py):
 *   - clean mail arrives byte-identical to what Dovecot sends directly (poplib and fetchmail);
 *   - EICAR alone, zipped, after a 2 MB clean part, in a single-part body, and a banned
 *     .exe arrive defanged: a notice, every multipart closed, no parser finds the payload;
 *   - LIST, UIDL, STAT, TOP and pipelined commands answer as Dovecot does;
 *   - a client that dies mid-RETR: the server never gets QUIT (its DELE is not committed);
 *   - a server that dies mid-RETR: the client never gets a terminator; the relay serves on;
 *   - STLS: removed from CAPA by default; with tls = "stls"/"pop3s" we terminate TLS;
 *   - one log line per retrieval and the pop3 metrics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import { startDovecot, type RealDovecot } from '../helpers/dovecot.js';
import { startCli, metric, type CliServer } from '../helpers/cli-server.js';
import { EICAR, multipartMessage, plainMessage, pseudoRandom, zip } from '../helpers/mail-build.js';

const ORACLE = join(ROOT, 'test', 'helpers', 'pop3-oracle.py');

function exe(n: number, seed: number): Buffer {
  const b = Buffer.from(pseudoRandom(n, seed));
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

const dotty = 'first line\r\n.starts with a dot\r\n..two dots\r\n.\r\n. space\r\nlast';
/** The mailbox of user "u"; the index is the POP3 message number - 1. */
const MAIL: { msg: Buffer; infected: boolean; subject: string }[] = [
  { subject: 'clean multipart', infected: false, msg: multipartMessage([{ filename: 'notes.txt', contentType: 'text/plain', content: dotty, encoding: '7bit' }, { filename: 'data.bin', content: pseudoRandom(300_000, 1) }], { subject: 'clean multipart' }) },
  { subject: 'clean plain', infected: false, msg: plainMessage(dotty + '\r\n' + 'x'.repeat(2000), 'clean plain') },
  { subject: 'eicar alone', infected: true, msg: multipartMessage([{ filename: 'eicar.txt', contentType: 'text/plain', content: EICAR }], { subject: 'eicar alone' }) },
  { subject: 'eicar zipped', infected: true, msg: multipartMessage([{ filename: 'docs.zip', contentType: 'application/zip', content: zip({ 'readme.txt': 'hello', 'eicar.txt': EICAR }) }], { subject: 'eicar zipped' }) },
  { subject: 'banned exe', infected: true, msg: multipartMessage([{ filename: 'setup.exe', content: exe(40_000, 2) }], { subject: 'banned exe' }) },
  { subject: 'eicar after 2 MB', infected: true, msg: multipartMessage([{ filename: 'big.bin', content: pseudoRandom(2_000_000, 3) }, { filename: 'e.txt', contentType: 'text/plain', content: Buffer.concat([Buffer.from(pseudoRandom(3000, 4)), Buffer.from(EICAR)]) }, { filename: 'after.txt', contentType: 'text/plain', content: 'not delivered' }], { subject: 'eicar after 2 MB' }) },
  { subject: 'clean 3 MB', infected: false, msg: multipartMessage([{ filename: 'photo.jpg', contentType: 'image/jpeg', content: pseudoRandom(3_000_000, 5) }], { subject: 'clean 3 MB' }) },
  { subject: 'eicar single part', infected: true, msg: plainMessage(`see\r\n${EICAR}\r\nbye`, 'eicar single part') },
];
const BIG = multipartMessage([{ filename: 'huge.bin', content: pseudoRandom(20_000_000, 6) }], { subject: 'huge' });

let dir: string;
let dovecot: RealDovecot;
let cli: CliServer;

before(async () => {
  mkdirSync(TMP_BASE, { recursive: true });
  dir = mkdtempSync(join(TMP_BASE, 'pop3-'));
  dovecot = await startDovecot({
    users: { u: 'p', d: 'p' },
    mail: { u: MAIL.map((m) => m.msg), d: [BIG, plainMessage('one', 'd1'), plainMessage('two', 'd2')] },
  });
  cli = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${dovecot.port}"\n[metrics]\nlisten = "127.0.0.1:0"\n`, dir);
});

after(async () => {
  await cli?.stop();
  await dovecot?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function oracle(...args: string[]): string {
  return execFileSync('python3', [ORACLE, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

interface Inspected {
  file: string;
  subject: string;
  multipart: boolean;
  status: string | null;
  parts: { type: string; filename: string | null; size: number; eicar: boolean; notice: boolean; zip?: Record<string, boolean | string> | string }[];
  defects: string[];
  eicarRaw: boolean;
}

function inspect(files: string[]): Inspected[] {
  return oracle('inspect', ...files).trim().split('\n').map((l) => JSON.parse(l) as Inspected);
}

const STRUCTURE_DEFECTS = ['StartBoundaryNotFoundDefect', 'CloseBoundaryNotFoundDefect', 'MultipartInvariantViolationDefect', 'MissingHeaderBodySeparatorDefect'];

test('poplib: clean mail is byte-identical to Dovecot direct; infected mail arrives defanged and no parser extracts the payload', () => {
  const direct = join(dir, 'direct');
  const via = join(dir, 'via');
  oracle('fetch', '127.0.0.1', String(dovecot.port), 'u', 'p', direct);
  oracle('fetch', '127.0.0.1', String(cli.port), 'u', 'p', via);
  const dm = JSON.parse(readFileSync(join(direct, 'meta.json'), 'utf8'));
  const vm = JSON.parse(readFileSync(join(via, 'meta.json'), 'utf8'));
  // the commands around RETR answer exactly as Dovecot does
  for (const k of ['stat', 'list', 'uidl', 'top', 'retr']) assert.deepEqual(vm[k], dm[k], k);
  assert.equal(dm.stat[0], MAIL.length);
  const defanged: string[] = [];
  MAIL.forEach((m, i) => {
    const a = readFileSync(join(direct, `${i + 1}.eml`));
    const b = readFileSync(join(via, `${i + 1}.eml`));
    if (!m.infected) assert.ok(a.equals(b), `${m.subject}: not byte-identical (${a.length} vs ${b.length})`);
    else {
      assert.ok(!a.equals(b), `${m.subject}: delivered unchanged`);
      defanged.push(join(via, `${i + 1}.eml`));
    }
  });
  // the oracle sees the infection in what Dovecot sends, and none of it in what we deliver
  const before = inspect(MAIL.map((m, i) => (m.infected ? join(direct, `${i + 1}.eml`) : '')).filter(Boolean));
  assert.ok(before.every((r) => r.eicarRaw || r.parts.some((p) => p.eicar || (typeof p.zip === 'object' && Object.values(p.zip).includes(true)) || p.filename === 'setup.exe')), 'the oracle finds the payloads in the originals');
  for (const r of inspect(defanged)) {
    assert.equal(r.eicarRaw, false, `${r.subject}: EICAR in the raw message`);
    assert.deepEqual(r.parts.filter((p) => p.eicar), [], `${r.subject}: EICAR in a part`);
    for (const p of r.parts) {
      if (p.zip !== undefined && typeof p.zip === 'object') assert.ok(!Object.values(p.zip).includes(true), `${r.subject}: zipfile extracts EICAR`);
    }
    const exeParts = r.parts.filter((p) => p.filename === 'setup.exe');
    assert.ok(exeParts.every((p) => p.size === 0), `${r.subject}: .exe content delivered`);
    assert.ok(r.parts.some((p) => p.notice), `${r.subject}: no notice`);
    assert.deepEqual(r.defects.filter((d) => STRUCTURE_DEFECTS.includes(d)), [], `${r.subject}: structure not closed: ${r.defects}`);
  }
  // the part before the infected one was delivered whole, the part after it not at all
  const after2mb = readFileSync(join(via, '6.eml'), 'latin1');
  assert.ok(after2mb.includes(Buffer.from(pseudoRandom(2_000_000, 3)).toString('base64').slice(-8)));
  assert.ok(!after2mb.includes('not delivered'));
  const r6 = inspect([join(via, '6.eml')])[0]!;
  assert.ok(r6.parts.some((p) => p.filename === 'big.bin' && p.size === 2_000_000), 'the clean 2 MB part is intact');
});

test('fetchmail: the same messages through midstream, clean ones identical to a direct fetch', () => {
  const run = (port: number, out: string) => {
    mkdirSync(out, { recursive: true });
    const rc = join(out, 'rc');
    writeFileSync(
      rc,
      `set no syslog\npoll 127.0.0.1 protocol pop3 port ${port}\n  user "u" there with password "p" is "root" here\n  sslproto ''\n  keep fetchall\n` +
        `  mda "/bin/sh -c 'cat > $(mktemp ${out}/m.XXXXXX)'"\n`,
    );
    chmodSync(rc, 0o600);
    // Our own lock file: as root fetchmail locks /var/run/fetchmail.pid, shared by every
    // run on the machine ("another foreground fetchmail is running").
    const r = spawnSync('fetchmail', ['-f', rc, '--nodetach', '--nosyslog', '--pidfile', join(out, 'fetchmail.pid')], { encoding: 'utf8', env: { ...process.env, HOME: out }, timeout: 60_000 });
    assert.ok(r.status === 0, `fetchmail exit ${r.status}: ${r.stderr}`);
    // fetchmail prepends its own Received: header (time stamps differ): compare from the first line after it
    const byId = new Map<string, string>();
    for (const f of readdirSync(out).filter((n) => n.startsWith('m.'))) {
      const t = readFileSync(join(out, f), 'latin1');
      const body = t.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/, '');
      const id = /^Message-ID: (.*)$/im.exec(body)?.[1] ?? /^Subject: (.*)$/im.exec(body)![1]!;
      byId.set(id, body);
    }
    return byId;
  };
  const direct = run(dovecot.port, join(dir, 'fm-direct'));
  const via = run(cli.port, join(dir, 'fm-via'));
  assert.equal(direct.size, MAIL.length);
  assert.equal(via.size, MAIL.length);
  let same = 0;
  for (const [id, body] of direct) {
    const m = MAIL.find((x) => body.includes(`Subject: ${x.subject}`))!;
    const got = via.get(id);
    assert.ok(got !== undefined, `${m.subject} missing via midstream`);
    if (!m.infected) {
      assert.equal(got, body, `${m.subject}: differs`);
      same++;
    } else {
      assert.ok(got.includes('midstream removed the rest of this message'), `${m.subject}: no notice`);
      assert.ok(!got.includes(EICAR), `${m.subject}: EICAR delivered`);
    }
  }
  assert.equal(same, MAIL.filter((m) => !m.infected).length);
});

/** A raw POP3 client: send, and read until `done(text)` says so or the connection closes. */
function rawSession(port: number): { sock: Socket; data: () => Buffer; closed: Promise<void>; until: (pred: (s: string) => boolean, ms?: number) => Promise<void> } {
  const sock = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let total = 0;
  let waiters: (() => void)[] = [];
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    total += d.length;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.on('close', () => {
    for (const f of waiters) f();
    r();
  }));
  const data = () => Buffer.concat(chunks, total);
  const until = async (pred: (s: string) => boolean, ms = 20_000) => {
    const t0 = Date.now();
    while (!pred(data().toString('latin1'))) {
      if (sock.destroyed || Date.now() - t0 > ms) throw new Error(`timed out; got: ${data().toString('latin1').slice(-200)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { sock, data, closed, until };
}

test('pipelined commands are answered in order, as Dovecot answers them', async () => {
  const script = 'USER u\r\nPASS p\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 2 1\r\nRETR 2\r\nBOGUS\r\nRETR 3\r\nNOOP\r\nQUIT\r\n';
  const run = async (port: number) => {
    const s = rawSession(port);
    await s.until((t) => t.includes('\r\n'));
    s.sock.write(script);
    await s.closed;
    return s.data().toString('latin1');
  };
  const direct = await run(dovecot.port);
  const via = await run(cli.port);
  // Same responses, except ours for the unknown command and the defanged RETR 3.
  const cut = (t: string) => t.slice(0, t.indexOf('-ERR'));
  assert.equal(cut(via), cut(direct));
  assert.ok(via.includes('-ERR Unknown command\r\n'));
  const afterErr = via.slice(via.indexOf('-ERR Unknown command\r\n') + 22);
  assert.ok(afterErr.startsWith('+OK'), 'RETR 3 answered right after');
  assert.ok(afterErr.includes('midstream removed the rest of this message'));
  assert.ok(afterErr.trimEnd().endsWith('+OK Logging out.'), afterErr.slice(-60));
  assert.equal((via.match(/\r\n\.\r\n/g) ?? []).length, (direct.match(/\r\n\.\r\n/g) ?? []).length, 'every multi-line response terminated');
});

test('SASL AUTH passes through line for line: a continuation, an initial response, a failure', async () => {
  const plain = Buffer.from('\0u\0p').toString('base64');
  const wrong = Buffer.from('\0u\0nope').toString('base64');
  const s = rawSession(cli.port);
  await s.until((t) => t.startsWith('+OK'));
  s.sock.write('AUTH PLAIN\r\n');
  await s.until((t) => /\r\n\+ ?\r\n$/.test(t));
  s.sock.write(`${wrong}\r\n`);
  await s.until((t) => /-ERR \[AUTH\][^\n]*\n$/.test(t));
  s.sock.write(`AUTH PLAIN ${plain}\r\nSTAT\r\nQUIT\r\n`);
  await s.closed;
  const t = s.data().toString('latin1');
  assert.match(t, /\+OK Logged in\.\r\n\+OK 8 \d+\r\n\+OK Logging out\.\r\n$/, t);
});

test('a client that dies mid-RETR: the scan is aborted, the server never enters UPDATE (DELE not committed)', async () => {
  const from = cli.logs().length;
  const s = rawSession(cli.port);
  await s.until((t) => t.startsWith('+OK'));
  s.sock.write('USER d\r\nPASS p\r\nDELE 2\r\nRETR 1\r\n');
  await s.until((t) => t.length > 2_000_000);
  s.sock.destroy();
  const line = await cli.waitForLog((l) => l.event === 'message' && l.command === 'RETR 1', 20_000, from);
  assert.equal(line.verdict, 'aborted');
  assert.equal(line.action, 'none');
  // Dovecot still has message 2: the DELE was never committed (no QUIT reached it)
  const d = rawSession(dovecot.port);
  await d.until((t) => t.startsWith('+OK'));
  d.sock.write('USER d\r\nPASS p\r\nSTAT\r\nQUIT\r\n');
  await d.closed;
  assert.match(d.data().toString('latin1'), /\+OK 3 \d+\r\n/);
});

test('a server that dies mid-RETR: the client gets no terminator, the relay serves the next client', async () => {
  const from = cli.logs().length;
  const s = rawSession(cli.port);
  await s.until((t) => t.startsWith('+OK'));
  s.sock.write('USER d\r\nPASS p\r\nRETR 1\r\n');
  await s.until((t) => t.length > 1_000_000);
  s.sock.pause(); // let backpressure reach the server: it cannot have sent everything
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(dovecot.killSessions() >= 1, 'a dovecot pop3 process was serving us');
  s.sock.resume();
  await s.closed;
  const got = s.data().toString('latin1');
  assert.ok(got.length < BIG.length, 'the whole message cannot have arrived');
  assert.ok(!got.endsWith('\r\n.\r\n'), 'no terminator after a truncated message');
  const line = await cli.waitForLog((l) => l.event === 'message' && l.command === 'RETR 1' && l.verdict === 'aborted', 20_000, from);
  assert.match(String(line.detail), /upstream/);
  // and the relay still works
  const n = rawSession(cli.port);
  await n.until((t) => t.startsWith('+OK'));
  n.sock.write('USER d\r\nPASS p\r\nRETR 3\r\nQUIT\r\n');
  await n.closed;
  assert.match(n.data().toString('latin1'), /two\r\n\.\r\n\+OK Logging out/);
});

test('STLS: removed from CAPA by default; with tls = "stls" and "pop3s" midstream terminates TLS itself', async () => {
  const certDir = join(dir, 'tls');
  mkdirSync(certDir);
  const cert = join(certDir, 'cert.pem');
  const key = join(certDir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const tlsDovecot = await startDovecot({ users: { u: 'p' }, mail: { u: [MAIL[0]!.msg, MAIL[2]!.msg] }, tls: { cert, key } });
  const servers: CliServer[] = [];
  try {
    const plain = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${tlsDovecot.port}"\n`, mkdtempSync(join(dir, 'p-')));
    servers.push(plain);
    const capa = (port: number) => {
      const out = join(dir, `capa-${port}`);
      oracle('fetch', '127.0.0.1', String(port), 'u', 'p', out);
      return JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')).capa as string[];
    };
    assert.ok(capa(tlsDovecot.port).includes('STLS'), 'Dovecot offers STLS');
    assert.ok(!capa(plain.port).includes('STLS'), 'midstream removes it');
    for (const mode of ['stls', 'ssl'] as const) {
      const tls = mode === 'stls' ? 'stls' : 'pop3s';
      const srv = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${tlsDovecot.port}"\ntls = "${tls}"\ntls_cert = "${cert}"\ntls_key = "${key}"\n`, mkdtempSync(join(dir, 't-')));
      servers.push(srv);
      const out = join(dir, `tls-${mode}`);
      oracle('fetch', '127.0.0.1', String(srv.port), 'u', 'p', out, mode);
      const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'));
      if (mode === 'stls') assert.ok(meta.capa.includes('STLS'), 'we offer our own STLS');
      const direct = join(dir, 'tls-direct');
      oracle('fetch', '127.0.0.1', String(tlsDovecot.port), 'u', 'p', direct);
      assert.ok(readFileSync(join(out, '1.eml')).equals(readFileSync(join(direct, '1.eml'))), `${mode}: clean mail identical through TLS`);
      assert.ok(readFileSync(join(out, '2.eml'), 'latin1').includes('midstream removed the rest of this message'), `${mode}: scanned inside TLS`);
    }
  } finally {
    for (const s of servers) await s.stop();
    await tlsDovecot.stop();
  }
});

test('SIGTERM: an idle session is told and closed, a retrieval in progress runs to its end', async () => {
  const srv = await startCli('pop3', `[pop3]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:${dovecot.port}"\nshutdown_grace = "60s"\n`, mkdtempSync(join(dir, 'g-')));
  try {
    const idle = rawSession(srv.port);
    await idle.until((t) => t.startsWith('+OK'));
    idle.sock.write('USER u\r\nPASS p\r\n');
    await idle.until((t) => (t.match(/\+OK/g) ?? []).length === 3);
    const busy = rawSession(srv.port);
    await busy.until((t) => t.startsWith('+OK'));
    busy.sock.write('USER d\r\nPASS p\r\nRETR 1\r\n');
    await busy.until((t) => t.length > 1_000_000);
    busy.sock.pause();
    // SIGTERM now; the drain runs the retrieval to its end (shutdown_grace 60 s).
    const exited = srv.stop(60_000);
    await idle.closed;
    assert.ok(idle.data().toString('latin1').endsWith('-ERR [SYS/TEMP] Server shutting down\r\n'), idle.data().toString('latin1').slice(-80));
    busy.sock.resume();
    await busy.closed;
    const got = busy.data().toString('latin1');
    assert.ok(got.includes(Buffer.from(pseudoRandom(20_000_000, 6)).toString('base64').slice(-8) + '\r\n--'), 'the whole message arrived');
    assert.ok(got.endsWith('\r\n.\r\n-ERR [SYS/TEMP] Server shutting down\r\n'), got.slice(-80));
    assert.equal(await exited, 0);
  } finally {
    await srv.stop();
  }
});

test('one log line per retrieval, and the pop3 metrics', async () => {
  const lines = cli.logs().filter((l) => l.event === 'message' && l.front === 'pop3');
  const infected = lines.filter((l) => l.verdict === 'infected');
  assert.ok(infected.length >= 3);
  const eicarZip = lines.find((l) => l.where === '2/docs.zip!eicar.txt')!;
  assert.equal(eicarZip.action, 'reject');
  assert.equal(eicarZip.user, 'u');
  assert.ok(typeof eicarZip.cutAt === 'number' && typeof eicarZip.heldMax === 'number');
  assert.ok(lines.some((l) => l.verdict === 'banned' && String(l.name).includes('.exe')));
  assert.ok(!cli.rawLog().includes(EICAR) && !cli.rawLog().includes('.starts with a dot'), 'no body content in the log');
  const m = await cli.metrics();
  assert.ok((metric(m, 'midstream_messages_total', { front: 'pop3', verdict: 'infected' }) ?? 0) >= infected.length);
  assert.ok((metric(m, 'midstream_messages_total', { front: 'pop3', verdict: 'clean' }) ?? 0) >= 3);
});
