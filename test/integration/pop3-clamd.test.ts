/**
 * The POP3 relay with an engine that answers only at the end of a file: a REAL clamd
 * (per-file, the built-in engine off). Each file is then held whole until clamd's answer
 * (the release gate's `reach` is the whole file): an infected part is never delivered in
 * any part, the clean part before it is; a file larger than hold_bytes gets the
 * configured action; clean mail still arrives byte for byte. In process (the relay and
 * the core), with the response framing of the real reader; the socket side is covered by
 * the Dovecot tests — except one timing case made deterministic with a scripted upstream:
 * a server that answers a pipelined burst and closes at once, while clamd is still scanning.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { nullLogger } from '../../src/log/logger.js';
import { startPop3 } from '../../src/pop3/pop3-server.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import type { RelayOptions } from '../../src/pop3/retr-relay.js';
import { relayResponse } from '../helpers/pop3-relay.js';
import { startClamd, type RealClamd } from '../helpers/clamd.js';
import { EICAR, multipartMessage, pseudoRandom } from '../helpers/mail-build.js';

let clamd: RealClamd;
let engine: Engine;

before(async () => {
  clamd = await startClamd();
  engine = await createEngine({ builtin: false, clamd: { endpoints: [clamd.tcp], mode: 'per-file' } });
});

after(async () => {
  await engine?.close();
  await clamd?.stop();
});

const relay = (msg: Buffer, o: Partial<RelayOptions> = {}) =>
  relayResponse(engine, Buffer.concat([Buffer.from('+OK\r\n'), msg, Buffer.from('.\r\n')]), [16_384], o);

const eicarB64 = Buffer.from(EICAR, 'latin1').toString('base64').slice(0, 24);

test('clamd answers at the end of each file: the infected file is held whole and cut, the clean one before it delivered', async () => {
  // the EICAR sits at the very start of its file: a streaming engine would know at once,
  // clamd only after the file's end — the whole file must have been held
  const infected = Buffer.concat([Buffer.from(EICAR, 'latin1'), Buffer.from(pseudoRandom(600_000, 2))]);
  const msg = multipartMessage([
    { filename: 'first.bin', content: pseudoRandom(500_000, 1) },
    { filename: 'second.bin', content: infected },
  ]);
  const { out, outcome } = await relay(msg);
  assert.equal(outcome.verdict.kind, 'infected');
  assert.equal(outcome.verdict.kind === 'infected' && outcome.verdict.engine, 'clamd');
  assert.equal(outcome.action, 'defanged');
  const text = out.toString('latin1');
  assert.ok(!text.includes(eicarB64), 'nothing of the infected file');
  assert.ok(text.includes('midstream removed the rest of this message: virus found: Eicar-Test-Signature.UNOFFICIAL'));
  // The cut is where a part whose verdict was still pending begins: the infected one's, or
  // the clean one's when clamd (several connections at once) had not answered for it yet.
  // (its header block, or its body when the headers had been released with the part before).
  const partAt = (name: string) => msg.lastIndexOf('--midstream-test-boundary\r\n', msg.indexOf(`name="${name}"`)) + 27;
  const bodyAt = (name: string) => msg.indexOf('\r\n\r\n', msg.indexOf(`name="${name}"`)) + 4;
  const allowed = ['first.bin', 'second.bin'].flatMap((n) => [partAt(n), bodyAt(n)]);
  assert.ok(allowed.includes(outcome.cutAt!), `cut at ${outcome.cutAt}: one of ${allowed}`);
  assert.ok(outcome.heldMax > 600_000, `the infected file was held whole (${outcome.heldMax})`);
  if (outcome.cutAt! >= partAt('second.bin')) assert.ok(text.includes(Buffer.from(pseudoRandom(500_000, 1)).toString('base64').slice(-10)), 'the clean file before it went out');
});

test('clean mail through clamd arrives byte for byte; a file over hold_bytes gets hold_exceeded', async () => {
  const msg = multipartMessage([{ filename: 'a.bin', content: pseudoRandom(300_000, 3) }]);
  const clean = await relay(msg);
  assert.equal(clean.outcome.action, 'delivered');
  assert.ok(clean.out.equals(Buffer.concat([msg, Buffer.from('.\r\n')])));
  assert.ok(clean.outcome.heldMax >= 300_000 * 1.3, 'held whole until clamd answered');
  const replaced = await relay(msg, { holdBytes: 128 * 1024 });
  assert.equal(replaced.outcome.action, 'defanged');
  assert.equal(replaced.outcome.cutReason, 'hold-bytes');
  assert.equal(replaced.outcome.verdict.kind, 'clean');
  const streamed = await relay(msg, { holdBytes: 128 * 1024, holdExceeded: 'stream' });
  assert.equal(streamed.outcome.action, 'delivered');
  assert.ok(streamed.out.equals(Buffer.concat([msg, Buffer.from('.\r\n')])));
  assert.ok(streamed.outcome.heldMax <= 128 * 1024 + 16_384);
});

test('clamd raw_message: "always" holds the whole message; "anomaly" stops the gate at the first anomaly or warning', async () => {
  const big = (dupHeader: boolean) => {
    const m = multipartMessage([
      { filename: 'one.bin', content: pseudoRandom(400_000, 4) },
      { filename: 'two.bin', content: pseudoRandom(400_000, 5) },
    ]).toString('latin1');
    // a duplicate Content-Type in part 3 ("two.bin"): a warning, clients may read it differently
    return Buffer.from(dupHeader ? m.replace('Content-Type: application/octet-stream; name="two.bin"', 'Content-Type: application/octet-stream; name="two.bin"\r\nContent-Type: text/plain') : m, 'latin1');
  };
  const pushAllButEnd = async (e: Engine, msg: Buffer, always = false) => {
    const s = e.begin({});
    const stop = msg.length - 1000;
    for (let i = 0; i < stop; i += 8192) await s.push(msg.subarray(i, Math.min(stop, i + 8192)));
    // clamd answers for each file some time after its end: wait for the answers that can come
    let mid = s.gate.releasable;
    for (let t = 0; t < 100 && mid === 0 && !always; t++) {
      await new Promise((r) => setTimeout(r, 50));
      mid = s.gate.releasable;
    }
    for (let t = 0; t < 40; t++) {
      await new Promise((r) => setTimeout(r, 50));
      mid = s.gate.releasable;
    }
    await s.push(msg.subarray(stop));
    await s.end();
    return { mid, end: s.gate.releasable };
  };
  const always = await createEngine({ clamd: { endpoints: [clamd.tcp], mode: 'per-file', rawMessage: 'always' } });
  const anomaly = await createEngine({ clamd: { endpoints: [clamd.tcp], mode: 'per-file', rawMessage: 'anomaly' } });
  try {
    const plain = big(false);
    const a = await pushAllButEnd(always, plain, true);
    assert.equal(a.mid, 0, '"always": the whole message is evidence until the raw scan answers');
    assert.equal(a.end, plain.length);
    const b = await pushAllButEnd(anomaly, plain);
    assert.ok(b.mid > 400_000, `"anomaly", unambiguous: streams (${b.mid})`);
    const dup = big(true);
    const part3 = dup.lastIndexOf('--midstream-test-boundary\r\n', dup.indexOf('name="two.bin"'));
    const c = await pushAllButEnd(anomaly, dup);
    assert.ok(c.mid > 0 && c.mid <= part3 + 30, `"anomaly", a warning in part 3: stops there (${c.mid}, part 3 at ${part3})`);
    assert.equal(c.end, c.mid, 'and stays: the verdict decides what follows');
  } finally {
    await always.close();
    await anomaly.close();
  }
});

test('a server that closes right after a pipelined burst, while clamd still scans: every response reaches the client', async () => {
  const clean = multipartMessage([{ filename: 'a.txt', contentType: 'text/plain', content: 'fine' }]);
  const bad = multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: EICAR }]);
  // Everything at once, then FIN (what Dovecot does with RETR … QUIT pipelined): the close
  // arrives while the relay waits for clamd's answer on the first message.
  const upstream = createServer((s) => {
    s.write('+OK scripted\r\n');
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('QUIT\r\n')) s.end(`+OK\r\n+OK\r\n+OK\r\n${clean.toString('latin1')}.\r\n+OK\r\n${bad.toString('latin1')}.\r\n+OK bye\r\n`);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const relay = await startPop3({ engine, logger: nullLogger, listen: '127.0.0.1:0', upstream: `127.0.0.1:${(upstream.address() as { port: number }).port}` });
  try {
    for (let round = 0; round < 3; round++) {
      const got = await new Promise<string>((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port: Number(relay.address.split(':')[1]) });
        let t = '';
        c.on('data', (d: Buffer) => {
          if (t === '') c.write('USER u\r\nPASS p\r\nRETR 1\r\nRETR 2\r\nQUIT\r\n');
          t += d.toString('latin1');
        });
        c.on('error', reject);
        c.on('close', () => resolve(t));
      });
      assert.ok(got.includes(`+OK\r\n${clean.toString('latin1')}.\r\n`), `round ${round}: the clean message, whole: ${JSON.stringify(got.slice(0, 300))}`);
      assert.ok(got.includes('midstream removed the rest of this message: virus found: Eicar-Test-Signature.UNOFFICIAL'), `round ${round}: the defanged one`);
      assert.ok(got.endsWith('+OK bye\r\n'), `round ${round}: the QUIT answer last: ${JSON.stringify(got.slice(-60))}`);
    }
  } finally {
    await relay.close();
    upstream.close();
  }
});
