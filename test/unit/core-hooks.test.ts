/**
 * core-hooks.test.ts — the core's explicit hooks: the engine's `policyFor` and
 * `onVerdict` options and begin(envelope, {policy, rule, onVerdict}); a verdict event
 * exactly once per message (early, at end, never for an aborted message without one);
 * and close(), which waits for the engine's last session (a reload must not break a
 * message in flight that opens its clamd stream after the swap).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type VerdictEvent } from '../../src/core/index.js';
import { multipartMessage, EICAR } from '../helpers/mail-build.js';
import { startFakeClamd, FAKE, type FakeBehaviour } from '../helpers/fake-clamd.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const exe = () => multipartMessage([{ filename: 'tool.exe', content: 'harmless bytes' }]);

test('policyFor picks each message\'s policy from its envelope; begin options win over it', async () => {
  const seen: string[] = [];
  const e = await createEngine({
    policyFor: (env) => {
      seen.push(env.clientAddress ?? '-');
      return env.clientAddress === '10.0.0.1' ? { policy: { skipBanned: true }, rule: 'trusted' } : undefined;
    },
  });
  const trusted = e.begin({ clientAddress: '10.0.0.1' });
  assert.equal(trusted.rule, 'trusted');
  assert.equal(trusted.policy.skipBanned, true);
  await trusted.push(exe());
  assert.equal((await trusted.end()).kind, 'clean');
  const other = e.begin({ clientAddress: '192.0.2.1' });
  assert.equal(other.rule, undefined);
  await other.push(exe());
  assert.equal((await other.end()).kind, 'banned');
  const overridden = e.begin({ clientAddress: '10.0.0.1' }, { policy: { skipBanned: false }, rule: 'explicit' });
  assert.equal(overridden.rule, 'explicit');
  await overridden.push(exe());
  assert.equal((await overridden.end()).kind, 'banned');
  assert.deepEqual(seen, ['10.0.0.1', '192.0.2.1', '10.0.0.1']);
  // The engine's own policy is untouched.
  assert.equal(e.policy.skipBanned, false);
});

test('onVerdict: once per message, with the reply, early flag and timings; not for aborted messages', async () => {
  const engineEvents: VerdictEvent[] = [];
  const e = await createEngine({ onVerdict: (ev) => engineEvents.push(ev), actions: { banned: 'tempfail' } });
  const mine: VerdictEvent[] = [];
  const s1 = e.begin({ sender: 'a@b' }, { onVerdict: (ev) => mine.push(ev) });
  await s1.push(Buffer.from(`Subject: x\r\n\r\n${EICAR}\r\n${'filler\r\n'.repeat(300)}`));
  assert.equal(engineEvents.length, 1, 'reported when the verdict latched, before end()');
  assert.equal(engineEvents[0]!.early, true);
  assert.equal(engineEvents[0]!.eodMs, 0);
  assert.equal((await s1.end()).kind, 'infected');
  assert.equal(engineEvents.length, 1, 'not again at end()');
  assert.equal(mine.length, 1, 'the begin() hook too');
  assert.equal(engineEvents[0]!.reply.action, 'reject');
  assert.match(engineEvents[0]!.reply.text, /virus found: Eicar-Test-Signature/);
  assert.equal(engineEvents[0]!.envelope.sender, 'a@b');

  const s2 = e.begin();
  const m2 = exe(); // its Message-ID is random: measure this one
  await s2.push(m2);
  const v2 = await s2.end();
  assert.equal(v2.kind, 'banned');
  assert.equal(engineEvents.length, 2);
  assert.equal(engineEvents[1]!.early, false, 'a tempfail verdict is decided at the end');
  assert.equal(engineEvents[1]!.reply.action, 'tempfail');
  assert.ok(engineEvents[1]!.eodMs >= 0 && engineEvents[1]!.scanMs >= engineEvents[1]!.eodMs);
  assert.equal(engineEvents[1]!.stats.bytes, m2.length);

  const s3 = e.begin();
  await s3.push(Buffer.from('Subject: half\r\n'));
  s3.abort();
  assert.equal(engineEvents.length, 2, 'an aborted message without a verdict reports nothing');

  // A throwing hook changes nothing.
  const e2 = await createEngine({ onVerdict: () => { throw new Error('hook bug'); } });
  const s4 = e2.begin();
  await s4.push(Buffer.from(`Subject: x\r\n\r\n${EICAR}\r\n${'filler\r\n'.repeat(300)}`));
  assert.equal((await s4.end()).kind, 'infected');
});

test('close() waits for the last session: a stream opened after close still reaches clamd', async () => {
  const fake = await startFakeClamd(FAKE.ok as FakeBehaviour);
  cleanups.push(() => fake.close());
  const e = await createEngine({ builtin: false, clamd: { endpoints: [fake.address] } });
  const s = e.begin();
  await s.push(Buffer.from('Subject: slow\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'));
  assert.equal(e.activeSessions, 1);
  let closed = false;
  const closing = e.close().then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(closed, false, 'not closed while a session is in flight');
  // The file's clamd stream opens only now, after close() was called (as after a reload's swap).
  await s.push(Buffer.from('x'.repeat(5000) + '\r\n--b--\r\n'));
  const v = await s.end();
  assert.deepEqual(v, { kind: 'clean' });
  await closing;
  assert.equal(closed, true);
  assert.equal(e.activeSessions, 0);
  assert.ok(fake.sessions.some((x) => x.command === 'zINSTREAM' && x.terminated), 'clamd got the stream');
  // A session whose verdict latched early finishes without end() (the fronts reject at once).
  const e3 = await createEngine();
  const s5 = e3.begin();
  await s5.push(Buffer.from(`Subject: x\r\n\r\n${EICAR}\r\n${'filler\r\n'.repeat(300)}`));
  assert.equal(e3.activeSessions, 0);
  await e3.close();
});
