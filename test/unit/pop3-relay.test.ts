/**
 * One RETR/TOP body through the relay and the real core, in process (no sockets): clean
 * mail comes out byte for byte whatever the chunking; a detection cuts it with a notice
 * and nothing of the signature; hold_bytes and its two actions; X-Virus-Status; a TOP of
 * a message whose archive it truncates is delivered; an internal error drops. The real
 * server, real clients and oracle parsers are in test/integration/pop3-dovecot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, DEFAULT_ACTIONS, type Engine } from '../../src/core/index.js';
import type { RelayOptions } from '../../src/pop3/retr-relay.js';
import { relayResponse } from '../helpers/pop3-relay.js';
import { EICAR, multipartMessage, pseudoRandom, zip } from '../helpers/mail-build.js';

function stuff(msg: Buffer): Buffer {
  let t = msg.toString('latin1').replace(/\r\n\./g, '\r\n..');
  if (t.startsWith('.')) t = '.' + t;
  if (!t.endsWith('\r\n')) t += '\r\n';
  return Buffer.from(t, 'latin1');
}

const relay = (engine: Engine, msg: Buffer, sizes: number[], o: Partial<RelayOptions> = {}) =>
  relayResponse(engine, Buffer.concat([Buffer.from('+OK message follows\r\n'), stuff(msg), Buffer.from('.\r\n')]), sizes, o);

const engineP = createEngine();
const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

test('clean mail passes byte for byte, dot-stuffing included, whatever the chunking', async () => {
  const e = await engineP;
  const msg = multipartMessage([
    { filename: 'notes.txt', contentType: 'text/plain', content: '.leading dot\r\n..two dots\r\n.\r\nend', encoding: '7bit' },
    { filename: 'data.bin', content: pseudoRandom(200_000, 3) },
  ]);
  const want = Buffer.concat([stuff(msg), Buffer.from('.\r\n')]);
  for (const sizes of [[1 << 20], [1], [7, 1000], [65_536]]) {
    if (sizes[0] === 1 && msg.length > 50_000) {
      const { out } = await relay(e, msg.subarray(0, 30_000), sizes);
      assert.deepEqual(out, Buffer.concat([stuff(msg.subarray(0, 30_000)), Buffer.from('.\r\n')]));
      continue;
    }
    const { out, outcome } = await relay(e, msg, sizes);
    assert.ok(out.equals(want), `sizes ${sizes}`);
    assert.equal(outcome.action, 'delivered');
    assert.equal(outcome.verdict.kind, 'clean');
  }
});

test('a detection cuts the message: the notice replaces the rest, the signature never goes out', async () => {
  const e = await engineP;
  // a big clean part first, so that the cut comes while the message streams
  const msg = multipartMessage([
    { filename: 'big.bin', content: pseudoRandom(300_000, 4) },
    { filename: 'eicar.txt', contentType: 'text/plain', content: Buffer.concat([Buffer.from(pseudoRandom(5000, 5)), Buffer.from(EICAR, 'latin1')]) },
    { filename: 'after.txt', contentType: 'text/plain', content: 'never delivered' },
  ]);
  for (const sizes of [[4096], [65_536, 17], [1 << 20]]) {
    const { out, outcome } = await relay(e, msg, sizes);
    const text = out.toString('latin1');
    assert.equal(outcome.action, 'defanged');
    assert.equal(outcome.verdict.kind, 'infected');
    // at the latest where the infected part's body begins (its headers may have gone out)
    const bodyAt = msg.indexOf('\r\n\r\n', msg.indexOf('eicar.txt')) + 4;
    assert.ok(outcome.cutAt !== undefined && outcome.cutAt <= bodyAt, `cut at ${outcome.cutAt}, body at ${bodyAt}`);
    assert.ok(text.includes('midstream removed the rest of this message: virus found: Eicar-Test-Signature (in 3/eicar.txt)'));
    assert.ok(!text.includes('never delivered') && !text.includes(b64(EICAR).slice(0, 20)));
    assert.ok(text.endsWith('--midstream-test-boundary--\r\n.\r\n'), text.slice(-80));
    // the clean part before it was delivered whole
    assert.ok(text.includes(Buffer.from(pseudoRandom(300_000, 4)).toString('base64').slice(-10)));
  }
});

test('hold_bytes: beyond it, "replace" cuts with a notice that says why, "stream" delivers all but the last hold_bytes', async () => {
  const e = await engineP;
  // A plain file is held by its last 64 KiB (a zip could still show up at its end: ~90 KiB
  // of base64); a zip by its unpacker's lag (80 KiB of input: ~110 KiB of base64).
  const HOLD = 100 * 1024;
  const plain = multipartMessage([{ filename: 'a.bin', content: pseudoRandom(400_000, 6) }]);
  assert.equal((await relay(e, plain, [8192], { holdBytes: HOLD })).outcome.action, 'delivered');
  const z = zip({ 'a.bin': pseudoRandom(400_000, 6) }, 0);
  const msg = multipartMessage([{ filename: 'a.zip', content: z }]);
  const rep = await relay(e, msg, [8192], { holdBytes: HOLD, holdExceeded: 'replace' });
  assert.equal(rep.outcome.action, 'defanged');
  assert.equal(rep.outcome.cutReason, 'hold-bytes');
  assert.equal(rep.outcome.verdict.kind, 'clean', 'the scan went on to the end for the log');
  assert.ok(rep.out.toString('latin1').includes('could not be scanned before delivery within hold_bytes'));
  assert.ok(rep.outcome.heldMax <= HOLD + 8192);

  const str = await relay(e, msg, [8192], { holdBytes: HOLD, holdExceeded: 'stream' });
  assert.equal(str.outcome.action, 'delivered');
  assert.ok(str.out.equals(Buffer.concat([stuff(msg), Buffer.from('.\r\n')])));
  assert.ok(str.outcome.heldMax <= HOLD + 8192, `held ${str.outcome.heldMax}`);
  assert.ok(str.outcome.deliveredBeforeVerdict > 0);
  // with room enough nothing is cut
  const roomy = await relay(e, msg, [8192], { holdBytes: 1024 * 1024 });
  assert.equal(roomy.outcome.action, 'delivered');
  assert.ok(roomy.outcome.heldMax > HOLD);
});

test('X-Virus-Status goes first, with the verdict', async () => {
  const e = await engineP;
  const clean = multipartMessage([{ filename: 'a.txt', contentType: 'text/plain', content: 'fine' }]);
  const c = await relay(e, clean, [100], { xVirusStatus: true });
  assert.ok(c.out.equals(Buffer.concat([Buffer.from('X-Virus-Status: Clean\r\n'), stuff(clean), Buffer.from('.\r\n')])));
  const bad = multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: EICAR }]);
  const b = await relay(e, bad, [100], { xVirusStatus: true });
  const t = b.out.toString('latin1');
  assert.ok(t.startsWith('X-Virus-Status: Infected (Eicar-Test-Signature)\r\nFrom: '), t.slice(0, 80));
  assert.equal((t.match(/X-Virus-Status: Infected/g) ?? []).length, 2, 'on the message and on the notice part');
  // bigger than hold_bytes: the header cannot wait for the verdict
  const big = multipartMessage([{ filename: 'b.bin', content: pseudoRandom(300_000, 8) }]);
  const g = await relay(e, big, [8192], { xVirusStatus: true, holdBytes: 128 * 1024 });
  assert.ok(g.out.toString('latin1').startsWith('X-Virus-Status: Unknown (scanned while delivered)\r\n'));
  assert.equal(g.outcome.action, 'delivered');
});

test('TOP: an archive cut short by the request is delivered, a signature in what is shown is not', async () => {
  const e = await engineP;
  const z = zip({ 'a.bin': pseudoRandom(100_000, 9) }, 0);
  const full = multipartMessage([{ filename: 'a.zip', content: z }]);
  const cutShort = full.subarray(0, full.indexOf('\r\n', 2000) + 2); // what "TOP n 20" shows
  const t = await relay(e, cutShort, [4096], { top: true });
  assert.equal(t.outcome.verdict.kind, 'unparseable');
  assert.equal(t.outcome.action, 'delivered');
  const r = await relay(e, cutShort, [4096], { top: false });
  assert.equal(r.outcome.action, 'defanged', 'as RETR it would be cut');
  const bad = multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: EICAR }]);
  assert.equal((await relay(e, bad, [4096], { top: true })).outcome.action, 'defanged');
});

test('a tempfail verdict drops: nothing after the held bytes, no terminator', async () => {
  const e = await engineP;
  const msg = multipartMessage([{ filename: 'a.txt', contentType: 'text/plain', content: 'x' }]);
  const { out, outcome } = await relay(e, msg, [100], { actions: { ...DEFAULT_ACTIONS, infected: 'tempfail' } as typeof DEFAULT_ACTIONS });
  assert.equal(outcome.action, 'delivered'); // clean anyway
  assert.ok(out.toString('latin1').endsWith('\r\n.\r\n'));
  const bad = multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: EICAR }]);
  const engine = await createEngine({ actions: { infected: 'tempfail' } });
  const d = await relay(engine, bad, [100], { actions: engine.policy.actions });
  assert.equal(d.outcome.action, 'drop');
  assert.equal(d.outcome.verdict.kind, 'infected');
  assert.ok(!d.out.toString('latin1').includes('\r\n.\r\n'), 'no terminator');
  assert.ok(!d.out.toString('latin1').includes(b64(EICAR).slice(0, 20)));
});
