/**
 * `[clamd] raw_message`: the raw message streamed to clamd beside the per-file streams.
 * Real clamd for what clamd finds and for slot behaviour; the fake clamd beside it only to
 * see on the wire whether a raw stream was finished (terminator) or abandoned.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type EngineOptions, type Verdict } from '../../src/core/index.js';
import { ClamdClient } from '../../src/core/scan/clamd-client.js';
import { startClamd, type RealClamd } from '../helpers/clamd.js';
import { startFakeClamd, FAKE, type FakeBehaviour, type FakeClamd } from '../helpers/fake-clamd.js';
import { EICAR, b64lines, multipartMessage } from '../helpers/mail-build.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { startSink } from '../helpers/sink.js';
import { TestSmtpClient, dotStuff } from '../helpers/smtp-client.js';
import { startCli, metric } from '../helpers/cli-server.js';

let clamd: RealClamd;
before(async () => {
  clamd = await startClamd();
});
after(async () => {
  await clamd?.stop();
});

const CLEAN = multipartMessage([{ filename: 'a.txt', contentType: 'text/plain', content: 'hello there\r\n' }]);
/**
 * Anomalous (two Content-Type fields: midstream reads both ways and records the anomaly),
 * and EICAR where no MIME reading puts a file: in a header field. clamd scans the raw bytes.
 */
const HIDDEN = Buffer.from(
  'From: a@example.com\r\nTo: b@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\nX-Note: ' + EICAR + '\r\nContent-Type: text/plain\r\n' +
    'Content-Type: multipart/mixed; boundary="bb"\r\n\r\n--bb\r\nContent-Type: text/plain\r\n\r\nhi\r\n--bb\r\n' +
    'Content-Type: application/octet-stream; name="n.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    b64lines(Buffer.from('harmless', 'latin1')) + '\r\n--bb--\r\n',
  'latin1',
);

/** Over the 32 KiB the session holds before it opens a raw stream. */
const filler = 'The quick brown fox jumps over the lazy dog.\r\n'.repeat(1200);
const BIG_CLEAN = multipartMessage([{ filename: 'a.txt', contentType: 'text/plain', content: filler }]);
const BIG_HIDDEN = Buffer.concat([HIDDEN.subarray(0, HIDDEN.indexOf('--bb\r\n')), Buffer.from(`--bb\r\nContent-Type: text/plain\r\n\r\n${filler}\r\n`, 'latin1'), HIDDEN.subarray(HIDDEN.indexOf('--bb\r\n'))]);

async function scan(opts: EngineOptions, msg: Buffer): Promise<Verdict> {
  return scanWith(opts, msg);
}

async function scanWith(opts: EngineOptions, msg: Buffer): Promise<Verdict> {
  const e = await createEngine(opts);
  try {
    const s = e.begin();
    for (let i = 0; i < msg.length; i += 100) await s.push(msg.subarray(i, i + 100));
    return await s.end();
  } finally {
    await e.close();
  }
}

test('the premise: clamd finds EICAR in the raw message; midstream alone does not (no reading scans header fields)', async () => {
  const c = new ClamdClient({ endpoints: [clamd.unix] });
  try {
    const s = c.openStream();
    s.write(HIDDEN);
    const r = await s.end();
    assert.equal(r.kind, 'infected');
  } finally {
    c.close();
  }
  assert.deepEqual(await scan({}, HIDDEN), { kind: 'clean' });
});

test('raw_message "anomaly" (the default): the anomalous message is scanned raw and rejected; "off" lets it through', async () => {
  const v = await scan({ clamd: { endpoints: [clamd.unix] } }, HIDDEN);
  assert.equal(v.kind, 'infected');
  assert.equal(v.kind === 'infected' && v.engine, 'clamd');
  assert.equal(v.kind === 'infected' && v.where, '(message)');
  assert.deepEqual(await scan({ clamd: { endpoints: [clamd.unix], rawMessage: 'off' } }, HIDDEN), { kind: 'clean' });
  const always = await scan({ clamd: { endpoints: [clamd.tcp], rawMessage: 'always' } }, HIDDEN);
  assert.equal(always.kind, 'infected');
  assert.deepEqual(await scan({ clamd: { endpoints: [clamd.unix] } }, CLEAN), { kind: 'clean' });
});

test('no raw slot free: a long anomalous message tempfails (never accepted unscanned), a normal one passes without waiting', async () => {
  const e = await createEngine({ clamd: { endpoints: [clamd.unix], maxRawStreams: 1 } });
  try {
    assert.equal((await scan({ clamd: { endpoints: [clamd.unix] } }, BIG_HIDDEN)).kind, 'infected', 'the long variant is caught with a slot free');
    const holder = e.begin();
    await holder.push(BIG_CLEAN.subarray(0, 40_000));
    assert.equal(e.clamd!.rawInFlight, 1, 'past 32 KiB the speculative raw stream holds the one raw slot');
    const a = e.begin();
    await a.push(BIG_HIDDEN);
    const va = await a.end();
    assert.equal(va.kind, 'error');
    assert.equal(va.kind === 'error' && va.errorKind, 'scanner-unavailable');
    const b = e.begin();
    await b.push(BIG_CLEAN);
    assert.deepEqual(await b.end(), { kind: 'clean' });
    // A short anomalous message is all in hand at end(): it waits for the slot instead.
    const c = e.begin();
    await c.push(HIDDEN);
    let cDone = false;
    const pc = c.end().then((v) => ((cDone = true), v));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(cDone, false, 'the short anomalous message waits for the raw slot');
    await holder.push(BIG_CLEAN.subarray(40_000));
    assert.deepEqual(await holder.end(), { kind: 'clean' });
    assert.equal((await pc).kind, 'infected');
    assert.equal(e.clamd!.rawInFlight, 0, 'every raw slot released');
  } finally {
    await e.close();
  }
});

test('raw_message "always" with one raw slot: the second message waits for the slot before parsing, then finishes (no deadlock)', async () => {
  const e = await createEngine({ clamd: { endpoints: [clamd.unix], rawMessage: 'always', maxRawStreams: 1 } });
  try {
    const first = e.begin();
    await first.push(CLEAN.subarray(0, 80));
    const second = e.begin();
    let pushed = false;
    const p = second.push(HIDDEN).then(() => (pushed = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(pushed, false, 'the second message waits for the raw slot');
    assert.equal(second.stats.bytes, 0, 'and has parsed nothing meanwhile');
    await first.push(CLEAN.subarray(80));
    assert.deepEqual(await first.end(), { kind: 'clean' });
    await p;
    const v = await second.end();
    assert.equal(v.kind, 'infected');
    assert.equal(e.clamd!.rawInFlight, 0);
  } finally {
    await e.close();
  }
});

test('on the wire (fake clamd): "anomaly" opens nothing for a short normal message, abandons a long one unterminated, finishes an anomalous one', async () => {
  const fake: FakeClamd = await startFakeClamd(FAKE.ok as FakeBehaviour);
  try {
    const opts: EngineOptions = { builtin: false, clamd: { endpoints: [fake.address] } };
    const isRaw = (payload: Buffer, msg: Buffer) => payload.length > 0 && msg.subarray(0, payload.length).equals(payload);
    // Scan connections only: each engine's start-up health check (PING, VERSION) is a session too.
    const streams = () => fake.sessions.filter((s) => s.command !== 'zPING' && s.command !== 'zVERSION');
    const scan = async (o: EngineOptions, msg: Buffer) => {
      const v = await scanWith(o, msg);
      // Let the engine's last health check finish (its session's command is recorded on arrival).
      for (let n = 0; fake.open > 0 && n < 500; n++) await new Promise((r) => setTimeout(r, 10));
      return v;
    };
    assert.deepEqual(await scan(opts, CLEAN), { kind: 'clean' });
    assert.equal(streams().length, 3, 'per-file scans only (preamble, text, attachment): no raw connection');
    assert.ok(streams().every((s) => s.terminated));
    fake.sessions.length = 0;
    assert.deepEqual(await scan(opts, BIG_CLEAN), { kind: 'clean' });
    assert.equal(streams().length, 4, 'a long message: per-file scans plus one speculative raw stream');
    assert.equal(fake.sessions.filter((s) => s.terminated).length, 3, 'the raw stream was never terminated: clamd scans nothing');
    assert.equal(fake.sessions.filter((s) => s.terminated && isRaw(s.payload, BIG_CLEAN)).length, 0);
    fake.sessions.length = 0;
    assert.deepEqual(await scan(opts, HIDDEN), { kind: 'clean' }); // the fake says OK to everything
    assert.equal(fake.sessions.filter((s) => s.terminated && s.payload.equals(HIDDEN)).length, 1, 'the short anomalous message went to clamd whole');
    fake.sessions.length = 0;
    assert.deepEqual(await scan(opts, BIG_HIDDEN), { kind: 'clean' });
    assert.equal(fake.sessions.filter((s) => s.terminated && s.payload.equals(BIG_HIDDEN)).length, 1, 'the long anomalous message went to clamd whole');
    fake.sessions.length = 0;
    assert.deepEqual(await scan({ ...opts, clamd: { endpoints: [fake.address], rawMessage: 'always' } }, CLEAN), { kind: 'clean' });
    assert.equal(fake.sessions.filter((s) => s.terminated && s.payload.equals(CLEAN)).length, 1, '"always" scans a normal message raw too');
    fake.sessions.length = 0;
    assert.deepEqual(await scan({ ...opts, clamd: { endpoints: [fake.address], rawMessage: 'off' } }, BIG_HIDDEN), { kind: 'clean' });
    assert.equal(fake.sessions.filter((s) => isRaw(s.payload, BIG_HIDDEN)).length, 0, '"off": no raw stream at all');
  } finally {
    await fake.close();
  }
});

test('a speculative raw stream never sends its terminator early at the byte cap: abandoned, clamd scans nothing; finished, it is a scan-bytes limit', async () => {
  const fake: FakeClamd = await startFakeClamd(FAKE.ok as FakeBehaviour);
  const c = new ClamdClient({ endpoints: [fake.address], maxStreamBytes: 1024 });
  try {
    const a = c.openRawStream(undefined, { wait: false })!;
    await a.ready();
    a.write(Buffer.alloc(5000, 0x41));
    // Let the capped bytes reach the fake (a stream that sent its terminator at the cap, as a
    // per-file stream does, would have sent it with them), then abandon the stream.
    const sent = () => fake.sessions[0]?.frames.reduce((x, y) => x + y, 0) ?? 0;
    for (let i = 0; i < 500 && sent() < 1024; i++) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    assert.equal(fake.sessions.length, 1);
    assert.equal(sent(), 1024, 'the capped bytes arrived');
    assert.deepEqual([fake.sessions[0]!.terminated, fake.sessions[0]!.frames.includes(0)], [false, false], 'no terminator at the cap');
    a.abort();
    const b = c.openRawStream(undefined, { wait: false })!;
    b.write(Buffer.alloc(5000, 0x42));
    const r = await b.end();
    assert.equal(r.kind, 'error');
    assert.equal(r.kind === 'error' && r.errorKind, 'scanner-size-limit');
    assert.equal(c.rawInFlight, 0);
    assert.equal(fake.sessions.filter((s) => s.terminated).length, 1, 'only the finished stream was terminated');
    assert.ok(fake.sessions.every((s) => s.frames.reduce((x, y) => x + y, 0) <= 1024), 'never more than the cap on the wire');
  } finally {
    c.close();
    await fake.close();
  }
});

test('stats.rawScan says how a raw scan that was asked for ended: infected, clean (always), no-slot; absent when none was asked for or it was abandoned', async () => {
  const run = async (opts: EngineOptions, msg: Buffer) => {
    const e = await createEngine(opts);
    try {
      const s = e.begin();
      for (let i = 0; i < msg.length; i += 100) await s.push(msg.subarray(i, i + 100));
      const v = await s.end();
      return { v: v.kind, raw: s.stats.rawScan };
    } finally {
      await e.close();
    }
  };
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.unix] } }, HIDDEN), { v: 'infected', raw: 'infected' });
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.unix] } }, BIG_HIDDEN), { v: 'infected', raw: 'infected' }, 'speculative stream, finished');
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.unix] } }, CLEAN), { v: 'clean', raw: undefined }, 'a normal short message: no raw scan');
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.unix] } }, BIG_CLEAN), { v: 'clean', raw: undefined }, 'abandoned: clamd scanned nothing');
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.tcp], rawMessage: 'always' } }, CLEAN), { v: 'clean', raw: 'clean' });
  assert.deepEqual(await run({ clamd: { endpoints: [clamd.unix], rawMessage: 'off' } }, HIDDEN), { v: 'clean', raw: undefined });
  // No raw slot free for a long anomalous message.
  const e = await createEngine({ clamd: { endpoints: [clamd.unix], maxRawStreams: 1 } });
  try {
    const holder = e.begin();
    await holder.push(BIG_CLEAN.subarray(0, 40_000));
    const a = e.begin();
    await a.push(BIG_HIDDEN);
    assert.equal((await a.end()).kind, 'error');
    assert.equal(a.stats.rawScan, 'no-slot');
    await holder.push(BIG_CLEAN.subarray(40_000));
    await holder.end();
    assert.equal(holder.stats.rawScan, undefined);
  } finally {
    await e.close();
  }
});

test('proxy CLI: the message line carries rawScan and midstream_clamd_raw_scans_total{result} counts it', async () => {
  const dir = mkdtempSync(join(TMP_BASE, 'raw-cli-'));
  const sink = await startSink();
  const srv = await startCli(
    'proxy',
    `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[clamd]\nendpoints = ["${clamd.unix}"]\ncache_entries = 0\n[metrics]\nlisten = "127.0.0.1:0"\n`,
    dir,
  );
  try {
    const send = async (msg: Buffer) => {
      const cl = await TestSmtpClient.connect(srv.port);
      try {
        await cl.read();
        await cl.cmd('EHLO mx.example');
        await cl.cmd('MAIL FROM:<s@example.org>');
        await cl.cmd('RCPT TO:<r@example.net>');
        assert.equal((await cl.cmd('DATA')).code, 354);
        cl.write(dotStuff(msg));
        return (await cl.read(30_000)).code;
      } finally {
        await cl.quit();
      }
    };
    const zero = await srv.metrics();
    for (const r of ['clean', 'infected', 'limit', 'error', 'no-slot']) assert.equal(metric(zero, 'midstream_clamd_raw_scans_total', { result: r }), 0, `${r} starts at 0`);
    assert.equal(await send(CLEAN), 250);
    assert.equal(await send(HIDDEN), 550);
    const infected = await srv.waitForLog((l) => l.event === 'message' && l.verdict === 'infected');
    assert.equal(infected.rawScan, 'infected');
    assert.equal(infected.where, '(message)');
    const clean = srv.logs().find((l) => l.event === 'message' && l.verdict === 'clean')!;
    assert.ok(clean && !('rawScan' in clean), 'no raw scan for a normal message: no field');
    const text = await srv.metrics();
    assert.equal(metric(text, 'midstream_clamd_raw_scans_total', { result: 'infected' }), 1);
    assert.equal(metric(text, 'midstream_clamd_raw_scans_total', { result: 'clean' }), 0);
  } finally {
    await srv.stop();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
