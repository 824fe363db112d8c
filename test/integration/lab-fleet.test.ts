/**
 * lab-fleet.test.ts — the scale-out lab (docker-compose.fleet.yml), for real: `scripts/lab.sh
 * --fleet up` (what `npm run lab:fleet:up` runs) on the main lab's image — built only as far
 * as the build cache lacks it, so after lab.test.ts (or a warm cache) that costs seconds —
 * under this checkout's own compose project on free ports. Then the README's scale-out claims,
 * end to end through both MX (Postfix before-queue → its own midstream → the clamd pool):
 * - the same new attachment through mx1, then mx2: clamd scans it once (clamd's own log
 *   lines, `LogClean yes`, agree with midstream's per-endpoint scan counters); mx2 answers
 *   every part from the shared Redis cache (`midstream_cache_lookups_total{result="hit-shared"}`)
 *   and both copies reach the sink, each through its own MX;
 * - EICAR is rejected through both MX, and neither copy reaches the sink;
 * - clamd1 stopped: new content through both MX is still accepted (no 451), scanned by
 *   clamd2 (its log), and both midstreams show clamd1 ejected (`midstream_clamd_up` 0);
 * - Redis stopped: new content through both MX is still accepted and delivered, each
 *   midstream logs the fallback once (`cache-shared-down`) and shows
 *   `midstream_cache_shared_up` 0;
 * - `lab.sh --fleet down` leaves no container, network or volume of the project.
 * Gaps: needs root (apt, dockerd) like the rest of the suite; a cold image build (no lab
 * test before, empty cache) takes minutes; Prometheus and Grafana (registry images) are not
 * started.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { freePort } from '../helpers/postfix.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { b64lines, EICAR } from '../helpers/mail-build.js';
import { metric } from '../helpers/cli-server.js';
import { httpGet, labProject, labScript, pollFor } from '../helpers/lab.js';

const PROJECT = labProject('fleettest');
const RUN = `${process.pid}x${Date.now().toString(36)}`;
const MX = ['mx1', 'mx2'] as const;
type Mx = (typeof MX)[number];
const CLAMD = ['clamd1', 'clamd2'] as const;
type Clamd = (typeof CLAMD)[number];
const ENDPOINT = (c: Clamd) => `tcp:${c}:3310`;

const QUEUED = /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/;
const VIRUS = '550 5.7.1 Message rejected: virus found: Eicar-Test-Signature';

const ports = { mx1: 0, mx2: 0, sink: 0, mx1Metrics: 0, mx2Metrics: 0 };
let env: NodeJS.ProcessEnv;
let upOut = '';
let labIsUp = false;
const { lab, docker, logs, jsonLines, containerId, leftovers } = labScript(['--fleet'], () => env);

const smtpPort = (mx: Mx) => (mx === 'mx1' ? ports.mx1 : ports.mx2);
const metrics = async (mx: Mx) => (await httpGet(mx === 'mx1' ? ports.mx1Metrics : ports.mx2Metrics, '/metrics')).body.toString();
const lookups = (text: string, result: string) => metric(text, 'midstream_cache_lookups_total', { result }) ?? 0;
/** Scans this midstream finished on an endpoint, whatever their outcome. */
function scansOn(text: string, endpoint: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^midstream_clamd_scans_total\{(.*)\} (\S+)$/.exec(line);
    if (m && m[1]!.includes(`endpoint="${endpoint}"`)) n += Number(m[2]);
  }
  return n;
}
/** Scans clamd itself logged (`LogClean yes`: "instream(ADDR): OK" or "…: NAME FOUND"). */
async function clamdScans(c: Clamd): Promise<number> {
  return ((await logs(c)).match(/instream\([^)]*\): .*(OK|FOUND)\s*$/gm) ?? []).length;
}
async function allClamdScans(): Promise<Record<Clamd, number>> {
  return { clamd1: await clamdScans('clamd1'), clamd2: await clamdScans('clamd2') };
}

const sender = (kind: string, mx: Mx) => `${kind}.${mx}.${RUN}@fleet.example`;

/** A complete message with one attachment; `subject` is what the sink is searched by. */
function mail(kind: string, mx: Mx, subject: string, text: string, attachment: { name: string; type: string; content: Uint8Array | string }): Buffer {
  const b = `fleet-${RUN}`;
  const bytes = typeof attachment.content === 'string' ? Buffer.from(attachment.content, 'latin1') : attachment.content;
  return Buffer.from(
    `Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nFrom: ${sender(kind, mx)}\r\nTo: rcpt@fleet.example\r\n` +
      `Subject: ${subject}\r\nMessage-ID: <${kind}.${mx}.${Math.random().toString(36).slice(2)}.${RUN}@fleet.example>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
      `--${b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${text}\r\n` +
      `--${b}\r\nContent-Type: ${attachment.type}; name="${attachment.name}"\r\n` +
      `Content-Disposition: attachment; filename="${attachment.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      `${b64lines(bytes)}\r\n--${b}--\r\n`,
    'latin1',
  );
}

/** A message whose attachment no one has sent before: clamd (or the cache) must answer for it. */
function fresh(kind: string, mx: Mx, i: number): { subject: string; message: Buffer } {
  const subject = `fleet ${kind} ${i} via ${mx} ${RUN}`;
  const content = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(30_000)]);
  return { subject, message: mail(kind, mx, subject, `New report ${i} ${mx} ${RUN}.`, { name: `report-${i}.pdf`, type: 'application/pdf', content }) };
}

async function send(mx: Mx, kind: string, message: Buffer): Promise<string> {
  const r = await sendMessage(smtpPort(mx), { from: sender(kind, mx), to: ['rcpt@fleet.example'], message });
  return r.final.text;
}

interface SinkSummary {
  id: number;
  from: string;
  helo: string;
  subject: string;
  verdict: { name: string; value: string }[];
}
async function sinkHas(subjects: string[]): Promise<SinkSummary[]> {
  const all = async () => JSON.parse((await httpGet(ports.sink, '/api/messages')).body.toString()) as SinkSummary[];
  const list = await pollFor(all, (l) => subjects.every((s) => l.some((m) => m.subject === s)), 30_000);
  return list.filter((m) => subjects.includes(m.subject));
}

interface LogLine {
  event: string;
  sender?: string;
  verdict?: string;
  name?: string;
  action?: string;
  reply?: string;
}

before(async () => {
  const [mx1, mx2, sink, mx1Metrics, mx2Metrics] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  Object.assign(ports, { mx1: mx1!, mx2: mx2!, sink: sink!, mx1Metrics: mx1Metrics!, mx2Metrics: mx2Metrics! });
  env = {
    ...process.env,
    LAB_PROJECT: PROJECT,
    FLEET_PORT_MX1: String(ports.mx1),
    FLEET_PORT_MX2: String(ports.mx2),
    FLEET_PORT_SINK: String(ports.sink),
    FLEET_PORT_MX1_METRICS: String(ports.mx1Metrics),
    FLEET_PORT_MX2_METRICS: String(ports.mx2Metrics),
  };
  const r = await lab(['up'], 15 * 60_000);
  upOut = r.stdout;
  if (r.code !== 0) throw new Error(`lab.sh --fleet up failed (${r.code}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  labIsUp = true;
  // Both midstreams see both clamd endpoints up (their first health round has run).
  for (const mx of MX) {
    const ok = (t: string) => CLAMD.every((c) => metric(t, 'midstream_clamd_up', { endpoint: ENDPOINT(c) }) === 1);
    assert.ok(ok(await pollFor(() => metrics(mx), ok)), `${mx}: both clamd endpoints up`);
  }
});

after(async () => {
  if (!env) return;
  // Best effort when a test failed before the teardown test; the engine stops only if we started it.
  if (labIsUp) await lab(['down', '--keep-engine'], 5 * 60_000);
  await lab(['engine-stop'], 2 * 60_000);
});

test('lab:fleet:up prints both MX, their metrics and the sink', () => {
  assert.match(upOut, new RegExp(`^  SMTP 127\\.0\\.0\\.1:${ports.mx1}   mx1: `, 'm'));
  assert.match(upOut, new RegExp(`^  SMTP 127\\.0\\.0\\.1:${ports.mx2}   mx2: `, 'm'));
  assert.match(upOut, new RegExp(`http://127\\.0\\.0\\.1:${ports.mx1Metrics}/metrics \\(mx1\\)`));
  assert.match(upOut, new RegExp(`http://127\\.0\\.0\\.1:${ports.mx2Metrics}/metrics \\(mx2\\)`));
  assert.match(upOut, new RegExp(`^  sink http://127\\.0\\.0\\.1:${ports.sink}/ `, 'm'));
});

test('the same new attachment through mx1 then mx2: clamd scans it once, mx2 answers from the shared cache', async () => {
  const attachment = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(120_000)]);
  const text = `Please find the invoice attached. ${RUN}`;
  const copy = (mx: Mx) => mail('campaign', mx, `fleet campaign via ${mx} ${RUN}`, text, { name: 'invoice.pdf', type: 'application/pdf', content: attachment });
  const c0 = await allClamdScans();
  const [a1, a2] = [await metrics('mx1'), await metrics('mx2')];

  assert.match(await send('mx1', 'campaign', copy('mx1')), QUEUED, 'mx1 accepts the first copy');
  const b1 = await metrics('mx1');
  const mx1Scans = CLAMD.map((c) => scansOn(b1, ENDPOINT(c)) - scansOn(a1, ENDPOINT(c)));
  const misses = lookups(b1, 'miss') - lookups(a1, 'miss');
  assert.ok(misses > 0, 'mx1 had not seen the parts before');
  assert.equal(mx1Scans[0]! + mx1Scans[1]!, misses, 'mx1 sent every part it missed to clamd once');
  // clamd's own log agrees (it logs just after replying: poll), and Redis holds the verdicts.
  const c1 = await pollFor(allClamdScans, (c) => c.clamd1 - c0.clamd1 + c.clamd2 - c0.clamd2 >= misses);
  assert.deepEqual([c1.clamd1 - c0.clamd1, c1.clamd2 - c0.clamd2], mx1Scans, "clamd's log: the scans mx1 counted, on the endpoints it counted");
  const redisId = await containerId('redis');
  const keys = async () => Number((await docker(['exec', redisId, 'redis-cli', 'dbsize'])).stdout.trim());
  assert.ok((await pollFor(keys, (n) => n >= misses)) >= misses, 'the verdicts are in Redis');

  assert.match(await send('mx2', 'campaign', copy('mx2')), QUEUED, 'mx2 accepts the second copy');
  const b2 = await metrics('mx2');
  assert.equal(lookups(b2, 'hit-shared') - lookups(a2, 'hit-shared'), misses, 'every part mx1 scanned is a shared hit in mx2');
  assert.equal(lookups(b2, 'miss') - lookups(a2, 'miss'), 0, 'mx2 missed nothing');
  assert.equal(CLAMD.reduce((n, c) => n + scansOn(b2, ENDPOINT(c)) - scansOn(a2, ENDPOINT(c)), 0), 0, 'mx2 contacted no clamd');

  const got = await sinkHas(MX.map((mx) => `fleet campaign via ${mx} ${RUN}`));
  for (const mx of MX) {
    const m = got.filter((x) => x.subject === `fleet campaign via ${mx} ${RUN}`);
    assert.equal(m.length, 1, `the copy via ${mx} delivered once`);
    assert.equal(m[0]!.helo, `${mx}.midstream.lab`, `the copy via ${mx} came through ${mx}`);
    assert.deepEqual(m[0]!.verdict.map((h) => `${h.name}: ${h.value}`), ['X-Virus-Scanned: midstream (fleet)'], `${mx}: verdict header`);
  }
  // Read after both deliveries: any scan for mx2's copy would have been logged by now.
  assert.deepEqual(await allClamdScans(), c1, 'clamd scanned nothing for the second copy');
});

test('EICAR is rejected through both MX and reaches no mailbox', async () => {
  for (const mx of MX) {
    const msg = mail('eicar', mx, `fleet eicar via ${mx} ${RUN}`, 'See attached.', { name: 'eicar.txt', type: 'application/octet-stream', content: EICAR });
    assert.equal(await send(mx, 'eicar', msg), VIRUS, `EICAR via ${mx}`);
  }
  for (const mx of MX) {
    const lines = await pollFor(
      async () => (await jsonLines<LogLine>(`${mx}-midstream`)).filter((l) => l.event === 'message' && l.sender === sender('eicar', mx)),
      (l) => l.length >= 1,
    );
    assert.deepEqual(
      lines.map((l) => [l.verdict, l.name, l.action, l.reply]),
      [['infected', 'Eicar-Test-Signature', 'reject', VIRUS]],
      `${mx}-midstream logs the rejection once`,
    );
  }
  // Everything sent before this was delivered already; an EICAR copy would be in the list.
  const list = JSON.parse((await httpGet(ports.sink, '/api/messages')).body.toString()) as SinkSummary[];
  assert.deepEqual(list.filter((m) => m.subject.startsWith('fleet eicar')), [], 'no EICAR copy delivered');
});

test('clamd1 stopped: new content through both MX is scanned by clamd2, no 451', async () => {
  const stop = await lab(['compose', 'stop', 'clamd1']);
  assert.equal(stop.code, 0, stop.stderr);
  const c0 = await allClamdScans();
  const subjects: string[] = [];
  for (let i = 0; i < 3; i++) {
    for (const mx of MX) {
      const f = fresh('failover', mx, i);
      assert.match(await send(mx, 'failover', f.message), QUEUED, `${f.subject}: accepted with one clamd down`);
      subjects.push(f.subject);
    }
  }
  assert.equal((await sinkHas(subjects)).length, subjects.length, 'every message delivered once');
  const c1 = await pollFor(allClamdScans, (c) => c.clamd2 - c0.clamd2 >= subjects.length);
  assert.ok(c1.clamd2 - c0.clamd2 >= subjects.length, `clamd2 scanned each new attachment (${c1.clamd2 - c0.clamd2} scans)`);
  assert.equal(c1.clamd1, c0.clamd1, 'the stopped clamd1 scanned nothing');
  for (const mx of MX) {
    const t = await pollFor(() => metrics(mx), (x) => metric(x, 'midstream_clamd_up', { endpoint: ENDPOINT('clamd1') }) === 0);
    assert.equal(metric(t, 'midstream_clamd_up', { endpoint: ENDPOINT('clamd1') }), 0, `${mx}: clamd1 ejected`);
    assert.equal(metric(t, 'midstream_clamd_up', { endpoint: ENDPOINT('clamd2') }), 1, `${mx}: clamd2 up`);
    const down = (await jsonLines<LogLine & { endpoint?: string }>(`${mx}-midstream`)).filter((l) => l.event === 'clamd-down');
    assert.deepEqual(down.map((l) => l.endpoint), [ENDPOINT('clamd1')], `${mx}-midstream logs clamd1 down once, clamd2 never`);
  }
});

test('Redis stopped: mail still flows through both MX, each midstream logs the fallback once', async () => {
  const stop = await lab(['compose', 'stop', 'redis']);
  assert.equal(stop.code, 0, stop.stderr);
  const subjects: string[] = [];
  for (let i = 0; i < 2; i++) {
    for (const mx of MX) {
      const f = fresh('nocache', mx, i);
      assert.match(await send(mx, 'nocache', f.message), QUEUED, `${f.subject}: accepted with Redis down`);
      subjects.push(f.subject);
    }
  }
  assert.equal((await sinkHas(subjects)).length, subjects.length, 'every message delivered once');
  for (const mx of MX) {
    const down = (await jsonLines<LogLine & { fallback?: string }>(`${mx}-midstream`)).filter((l) => l.event === 'cache-shared-down');
    assert.equal(down.length, 1, `${mx}-midstream logs the fallback once: ${JSON.stringify(down)}`);
    assert.equal(down[0]!.fallback, 'local cache and clamd');
    assert.equal(metric(await metrics(mx), 'midstream_cache_shared_up'), 0, `${mx}: shared cache shown down`);
  }
});

test('lab:fleet:down leaves no container, network or volume', async () => {
  const r = await lab(['down', '--keep-engine'], 5 * 60_000);
  assert.equal(r.code, 0, r.stderr);
  labIsUp = false;
  for (const { what, left } of await leftovers(PROJECT)) {
    assert.equal(left.code, 0, left.stderr);
    assert.equal(left.stdout.trim(), '', `${what}: nothing of ${PROJECT} left`);
  }
});
