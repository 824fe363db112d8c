/**
 * lab.test.ts — the docker-compose lab, for real: `scripts/lab.sh up` (what `npm run lab:up`
 * runs) installs what is missing, starts dockerd if none answers, builds the base images
 * locally when no registry answers and starts the lab under its own compose project on
 * free ports. Then, through each of the three entry points (Postfix before-queue → proxy,
 * Postfix → milter, Sendmail → milter): a clean mail, EICAR, EICAR in a zip and a banned
 * .exe. Checked: the replies (the ones docs/lab.md quotes), what the sink received (the
 * clean mails only, byte-identical to what was sent once the MTAs' and midstream's added
 * header fields are taken out), midstream's log line per message in each midstream
 * container; with clamd stopped, resent content is answered from the results cache (250)
 * and new content gets 451; the sink's web view in headless Chromium lists the clean mails;
 * `lab.sh down` leaves no container, network or volume, and a dockerd that `up` started
 * is stopped. POP3: the seeded mailbox read through midstream-pop3 and from Dovecot
 * directly: the clean mail identical, EICAR, EICAR in a zip and the .exe defanged.
 * Gaps: needs root (apt, dockerd) like the rest of the suite; the first run on a fresh
 * machine builds the images (minutes), later runs reuse them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpGet, labProject, labScript, run } from '../helpers/lab.js';
import { freePort } from '../helpers/postfix.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { b64lines, zip, EICAR } from '../helpers/mail-build.js';
import { connect } from 'node:net';
import { ResponseReader, type Expect } from '../../src/pop3/response-reader.js';

// One compose project per checkout: two checkouts running the suite at once must not
// drive (or tear down) each other's containers.
const PROJECT = labProject('labtest');
const RUN = `${process.pid}x${Date.now().toString(36)}`;

interface Entry {
  service: string;
  portVar: string;
  midstream: 'midstream-proxy' | 'midstream-milter';
  /** The 250 reply to the final dot; group 1 is the MTA's queue id. */
  accepted: RegExp;
  /** Header fields midstream adds to clean mail on this path. */
  verdictHeaders: string[];
  port?: number;
}

const ENTRIES: Entry[] = [
  {
    service: 'postfix-bq',
    portVar: 'LAB_PORT_POSTFIX_BQ',
    midstream: 'midstream-proxy',
    accepted: /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$/,
    verdictHeaders: ['X-Virus-Scanned: midstream (lab proxy)'],
  },
  {
    service: 'postfix-milter',
    portVar: 'LAB_PORT_POSTFIX_MILTER',
    midstream: 'midstream-milter',
    accepted: /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$/,
    verdictHeaders: ['X-Virus-Scanned: midstream (lab milter)', 'X-Virus-Status: Clean'],
  },
  {
    service: 'sendmail',
    portVar: 'LAB_PORT_SENDMAIL',
    midstream: 'midstream-milter',
    accepted: /^250 2\.0\.0 (\w+) Message accepted for delivery$/,
    verdictHeaders: ['X-Virus-Scanned: midstream (lab milter)', 'X-Virus-Status: Clean'],
  },
];

/** Header fields the MTAs and midstream add on the way; everything else must arrive as sent. */
const ADDED_FIELDS = new Set(['received', 'x-virus-scanned', 'x-virus-status']);

const VIRUS = '550 5.7.1 Message rejected: virus found: Eicar-Test-Signature';
const BANNED = '550 5.7.1 Message rejected: banned file name .exe';
const TEMPFAIL = '451 4.7.1 Message could not be scanned, try again later';

type Kind = 'clean' | 'eicar' | 'eicar-zip' | 'banned';
const KINDS: Kind[] = ['clean', 'eicar', 'eicar-zip', 'banned'];

const sender = (kind: string, e: Entry) => `${kind}.${e.service}.${RUN}@lab.example`;

/** A complete message (Date and Message-ID included, so no MTA needs to add them). */
function mail(kind: string, e: Entry, attachment: { name: string; type: string; content: Uint8Array | string }, text = 'Hello from the lab test.'): Buffer {
  const b = `lab-${RUN}`;
  const bytes = typeof attachment.content === 'string' ? Buffer.from(attachment.content, 'latin1') : attachment.content;
  return Buffer.from(
    `Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nFrom: ${sender(kind, e)}\r\nTo: rcpt@lab.example\r\n` +
      `Subject: lab ${kind} via ${e.service} ${RUN}\r\nMessage-ID: <${kind}.${e.service}.${RUN}@lab.example>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
      `--${b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${text}\r\n` +
      `--${b}\r\nContent-Type: ${attachment.type}; name="${attachment.name}"\r\n` +
      `Content-Disposition: attachment; filename="${attachment.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      `${b64lines(bytes)}\r\n--${b}--\r\n`,
    'latin1',
  );
}

function message(kind: Kind, e: Entry): Buffer {
  switch (kind) {
    case 'clean':
      return mail(kind, e, { name: 'notes.txt', type: 'text/plain', content: `meeting notes ${RUN}\r\n` });
    case 'eicar':
      return mail(kind, e, { name: 'eicar.txt', type: 'application/octet-stream', content: EICAR });
    case 'eicar-zip':
      return mail(kind, e, { name: 'docs.zip', type: 'application/zip', content: zip({ 'a/eicar.txt': EICAR }) });
    case 'banned':
      return mail(kind, e, { name: 'invoice.pdf.exe', type: 'application/octet-stream', content: 'not really a program' });
  }
}

let env: NodeJS.ProcessEnv;
let sinkPort = 0;
let pop3Port = 0;
let dovecotPort = 0;
let upOut = '';
let labIsUp = false;
const { lab, docker, containerId, jsonLines, leftovers } = labScript([], () => env);

/** The fields of midstream's message line this test reads (src/log/message-log.ts). */
interface LogLine {
  event: string;
  front?: string;
  sender?: string;
  verdict?: string;
  name?: string;
  where?: string;
  queueId?: string;
  action?: string;
  reply?: string;
}

/** midstream's JSON log lines about messages whose sender carries this run's tag. */
async function messageLines(service: string): Promise<LogLine[]> {
  return (await jsonLines<LogLine>(service)).filter((l) => l.event === 'message' && (l.sender ?? '').includes(RUN));
}

/** Poll the container's log until `n` lines of this run match `pred` (or 20 s pass). */
async function waitForLines(service: string, n: number, pred: (l: LogLine) => boolean = () => true): Promise<LogLine[]> {
  const until = Date.now() + 20_000;
  for (;;) {
    const lines = (await messageLines(service)).filter(pred);
    if (lines.length >= n || Date.now() > until) return lines;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface SinkSummary {
  id: number;
  from: string;
  helo: string;
  subject: string;
  verdict: { name: string; value: string }[];
}

/** The message with MTA/midstream-added fields removed: what the sender wrote, if nothing else changed. */
function withoutAddedFields(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'received message has a header/body separator');
  const fields: Buffer[] = [];
  let start = 0;
  const head = raw.subarray(0, end + 2);
  for (let i = 0; i < head.length; ) {
    const nl = head.indexOf('\r\n', i) + 2;
    const next = head[nl];
    if (nl >= head.length || (next !== 0x20 && next !== 0x09)) {
      fields.push(head.subarray(start, nl));
      start = nl;
    }
    i = nl;
  }
  const kept = fields.filter((f) => !ADDED_FIELDS.has(f.subarray(0, f.indexOf(':')).toString('latin1').toLowerCase()));
  return Buffer.concat([...kept, raw.subarray(end + 2)]);
}

const replies = new Map<string, string>();

before(async () => {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  pop3Port = ports[4]!;
  dovecotPort = ports[5]!;
  env = { ...process.env, LAB_PROJECT: PROJECT, LAB_PORT_SINK: String(ports[3]), LAB_PORT_POP3: String(pop3Port), LAB_PORT_DOVECOT: String(dovecotPort) };
  ENTRIES.forEach((e, i) => {
    e.port = ports[i]!;
    env[e.portVar] = String(e.port);
  });
  sinkPort = ports[3]!;
  const r = await lab(['up'], 15 * 60_000);
  upOut = r.stdout;
  if (r.code !== 0) throw new Error(`lab.sh up failed (${r.code}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  labIsUp = true;
});

after(async () => {
  if (!env) return;
  // Best effort when a test failed before the teardown test; always stop our own engine.
  if (labIsUp) await lab(['down', '--keep-engine'], 5 * 60_000);
  await lab(['engine-stop'], 2 * 60_000);
});

test('lab:up prints the three SMTP ports, the sink URL and the POP3 port', () => {
  for (const e of ENTRIES) assert.match(upOut, new RegExp(`^  SMTP 127\\.0\\.0\\.1:${e.port} `, 'm'), e.service);
  assert.match(upOut, new RegExp(`^  sink http://127\\.0\\.0\\.1:${sinkPort}/ `, 'm'));
  assert.match(upOut, new RegExp(`^  POP3 127\\.0\\.0\\.1:${pop3Port} `, 'm'));
});

/** The seeded mailbox (docker/dovecot/seed.mjs) over POP3: login lab/lab, RETR 1-4, QUIT. */
function retrieveAll(port: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const r = new ResponseReader();
    for (const e of ['single', 'single', 'single', 'multi', 'multi', 'multi', 'multi', 'single'] as Expect[]) r.expect(e);
    const bodies: Buffer[] = [];
    let cur: Buffer[] = [];
    let greeted = false;
    s.on('data', (d: Buffer) => {
      r.push(d);
      for (let ev = r.next(); ev; ev = r.next()) {
        if (ev.type === 'status') {
          if (!ev.ok) return reject(new Error(ev.line.toString('latin1')));
          if (!greeted) {
            greeted = true;
            s.write('USER lab\r\nPASS lab\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\nQUIT\r\n');
          }
        } else if (ev.type === 'data') for (const p of ev.pieces) cur.push(Buffer.from(p.bytes));
        else if (ev.type === 'end') {
          bodies.push(Buffer.concat(cur));
          cur = [];
        } else return reject(new Error(ev.type));
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(bodies));
  });
}

test('POP3 through midstream-pop3: the clean mail as Dovecot sends it; EICAR, EICAR in a zip and the .exe defanged', async () => {
  const direct = await retrieveAll(dovecotPort);
  const via = await retrieveAll(pop3Port);
  const diag = async () => {
    const r = await docker(['logs', '--tail', '30', await containerId('midstream-pop3')]);
    return `${r.stdout}\n${r.stderr}`;
  };
  assert.equal(direct.length, 4);
  assert.equal(via.length, 4, `midstream-pop3 delivered ${via.length} of 4; its log:\n${via.length === 4 ? '' : await diag()}`);
  assert.ok(via[0]!.equals(direct[0]!), 'clean mail byte-identical');
  const b64 = (t: string) => [...t.matchAll(/\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/g)].map((m) => Buffer.from(m[1]!, 'base64'));
  const eicar = Buffer.from(EICAR, 'latin1');
  for (const [i, name] of [[1, 'eicar.txt'], [2, 'docs.zip'], [3, 'invoice.pdf.exe']] as const) {
    const d = direct[i]!.toString('latin1');
    const v = via[i]!.toString('latin1');
    assert.ok(d.includes(name) && (i === 3 || b64(d).some((x) => x.includes(eicar))), `${name}: the original carries it`);
    assert.ok(v.includes('midstream removed the rest of this message'), `${name}: notice`);
    assert.ok(!v.includes(EICAR) && !b64(v).some((x) => x.includes(eicar)), `${name}: no EICAR in what arrives`);
    assert.ok(v.endsWith(`--lab-pop3-${i + 1}--\r\n`), `${name}: the multipart is closed`);
  }
  // one log line per retrieval in midstream-pop3's container
  const r = await docker(['logs', await containerId('midstream-pop3')]);
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine & { command?: string });
  const msgs = lines.filter((l) => l.event === 'message' && l.front === 'pop3').slice(-4);
  assert.deepEqual(msgs.map((l) => [l.command, l.verdict, l.action]), [
    ['RETR 1', 'clean', 'accept'],
    ['RETR 2', 'infected', 'reject'],
    ['RETR 3', 'infected', 'reject'],
    ['RETR 4', 'banned', 'reject'],
  ]);
});

test('each entry point: clean → 250, EICAR and EICAR in a zip → 550 virus, .exe → 550 banned', async () => {
  const want: Record<Kind, (e: Entry) => RegExp | string> = {
    clean: (e) => e.accepted,
    eicar: () => VIRUS,
    'eicar-zip': () => VIRUS,
    banned: () => BANNED,
  };
  for (const e of ENTRIES) {
    for (const kind of KINDS) {
      const r = await sendMessage(e.port!, { from: sender(kind, e), to: ['rcpt@lab.example'], message: message(kind, e) });
      const w = want[kind](e);
      if (typeof w === 'string') assert.equal(r.final.text, w, `${kind} via ${e.service}`);
      else assert.match(r.final.text, w, `${kind} via ${e.service}`);
      replies.set(`${kind}/${e.service}`, r.final.text);
    }
  }
});

test('the sink got the clean mails only, byte-identical below the added header fields', async () => {
  let list: SinkSummary[] = [];
  const until = Date.now() + 30_000;
  do {
    list = JSON.parse((await httpGet(sinkPort, '/api/messages')).body.toString()) as SinkSummary[];
    list = list.filter((m) => m.subject.includes(RUN));
    if (list.length >= ENTRIES.length) break;
    await new Promise((r) => setTimeout(r, 250));
  } while (Date.now() < until);
  assert.deepEqual(list.map((m) => m.from).sort(), ENTRIES.map((e) => sender('clean', e)).sort(), 'one clean mail per entry point, nothing else');
  for (const e of ENTRIES) {
    const m = list.find((x) => x.from === sender('clean', e))!;
    assert.ok(m.helo.startsWith(`${e.service}.`), `${e.service}: delivered by ${m.helo}`);
    assert.deepEqual(m.verdict.map((h) => `${h.name}: ${h.value}`), e.verdictHeaders, `${e.service}: verdict headers`);
    const raw = (await httpGet(sinkPort, `/api/messages/${m.id}/raw`)).body;
    assert.ok(withoutAddedFields(raw).equals(message('clean', e)), `${e.service}: received bytes differ from sent ones:\n${raw.toString('latin1')}`);
  }
});

test("midstream logs one line per message in each front's container", async () => {
  for (const svc of ['midstream-proxy', 'midstream-milter'] as const) {
    const mine = ENTRIES.filter((e) => e.midstream === svc);
    const lines = await waitForLines(svc, mine.length * KINDS.length);
    assert.equal(lines.length, mine.length * KINDS.length, `${svc}: ${JSON.stringify(lines)}`);
    for (const e of mine) {
      const by = (kind: Kind) => {
        const found = lines.filter((l) => l.sender === sender(kind, e));
        assert.equal(found.length, 1, `${svc}: one line for ${kind} via ${e.service}`);
        assert.equal(found[0]!.front, svc === 'midstream-proxy' ? 'proxy' : 'milter');
        return found[0]!;
      };
      const clean = by('clean');
      assert.deepEqual([clean.verdict, clean.action], ['clean', 'accept']);
      assert.equal(clean.queueId, e.accepted.exec(replies.get(`clean/${e.service}`)!)![1], `${e.service}: the log carries the MTA's queue id`);
      const cols = (l: LogLine) => [l.verdict, l.name, l.where, l.action, l.reply];
      assert.deepEqual(cols(by('eicar')), ['infected', 'Eicar-Test-Signature', '2/eicar.txt', 'reject', VIRUS]);
      assert.deepEqual(cols(by('eicar-zip')), ['infected', 'Eicar-Test-Signature', '2/docs.zip!a/eicar.txt', 'reject', VIRUS]);
      assert.deepEqual(cols(by('banned')), ['banned', 'banned file name .exe', '2/invoice.pdf.exe', 'reject', BANNED]);
    }
  }
});

test("the sink's web view in headless Chromium lists the clean mails with their verdict headers", async () => {
  const profile = mkdtempSync(join(tmpdir(), 'midstream-chromium-'));
  try {
    const r = await run(
      'chromium',
      [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', `http://127.0.0.1:${sinkPort}/`,
      ],
      env,
      120_000,
    );
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const rows = r.stdout.split('<tr id="m').slice(1);
    for (const e of ENTRIES) {
      const row = rows.find((x) => x.includes(`lab clean via ${e.service} ${RUN}`));
      assert.ok(row, `${e.service}: clean mail listed`);
      for (const h of e.verdictHeaders) assert.ok(row.includes(h), `${e.service}: shows ${h}`);
      assert.ok(row.includes(`${e.service}.midstream.lab`), `${e.service}: shows the MTA it came through`);
    }
    for (const kind of KINDS.filter((k) => k !== 'clean')) assert.ok(!r.stdout.includes(`lab ${kind} via`), `${kind} not listed`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});

test('clamd stopped: resent content is answered from the results cache, new content gets 451', async () => {
  const stop = await lab(['compose', 'stop', 'clamd']);
  assert.equal(stop.code, 0, stop.stderr);
  for (const e of ENTRIES) {
    const again = await sendMessage(e.port!, { from: sender('clean', e), to: ['rcpt@lab.example'], message: message('clean', e) });
    assert.match(again.final.text, e.accepted, `${e.service}: same content, cached verdict`);
    const fresh = mail('new', e, { name: 'fresh.txt', type: 'text/plain', content: `never seen before ${RUN} ${e.service}\r\n` });
    const r = await sendMessage(e.port!, { from: sender('new', e), to: ['rcpt@lab.example'], message: fresh });
    assert.equal(r.final.text, TEMPFAIL, `${e.service}: new content with clamd down`);
  }
  for (const svc of ['midstream-proxy', 'midstream-milter'] as const) {
    const n = ENTRIES.filter((e) => e.midstream === svc).length;
    const lines = await waitForLines(svc, n, (l) => l.sender!.startsWith('new.'));
    assert.equal(lines.length, n, svc);
    for (const l of lines) assert.deepEqual([l.verdict, l.name, l.action, l.reply], ['error', 'scanner-unavailable', 'tempfail', TEMPFAIL], svc);
  }
});

test('lab:down leaves no container, network or volume', async () => {
  const r = await lab(['down', '--keep-engine'], 5 * 60_000);
  assert.equal(r.code, 0, r.stderr);
  labIsUp = false;
  for (const { what, left } of await leftovers(PROJECT)) {
    assert.equal(left.code, 0, left.stderr);
    assert.equal(left.stdout.trim(), '', `${what}: nothing of ${PROJECT} left`);
  }
});
