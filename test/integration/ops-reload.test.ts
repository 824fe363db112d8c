/**
 * ops-reload.test.ts — SIGHUP under load, through the real CLI proxy.
 *
 * Five clients send mail without pause (clean and EICAR, alternating) while the test
 * adds a new .ndb signature file and sends SIGHUP, ten times. After each "reloaded"
 * log line a message carrying the new signature's pattern must be rejected with the
 * new signature's name. Across all reloads no message may be tempfailed or passed
 * unscanned: every clean one 250 (and at the sink), every EICAR one 550.
 * Then a broken signature file: the reload fails with "reload-failed" and its reason,
 * and the old set (with every signature added so far) keeps working.
 * Delivery is checked by content: the sink holds exactly the clean messages that got 250
 * (by the SHA-256 of the body: the proxy adds its headers on the way), no more, no fewer.
 * The sink records a message before it answers the final dot, so there is nothing to
 * wait for: a message missing there was really lost.
 * A client error (connection lost, timeout) is a failure with its message and time, and
 * whatever fails, the clients stop before the test ends (nothing keeps sending into a
 * stopped proxy).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { startSink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';
import { plainMessage, EICAR } from '../helpers/mail-build.js';
import { startCli } from '../helpers/cli-server.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
mkdirSync(TMP_BASE, { recursive: true });

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const pattern = (i: number) => `MIDSTREAM-RELOAD-PATTERN-${i}-QX`;

test('10 reloads while 5 clients send: nothing tempfailed, nothing unscanned, new signatures active after each reload', async () => {
  const dir = mkdtempSync(join(TMP_BASE, 'ops-reload-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const sigs = join(dir, 'sigs');
  mkdirSync(sigs);
  writeFileSync(join(sigs, 'base.ndb'), `Reload.Base:0:*:${hex(pattern(0))}\n`);
  const sink = await startSink({ storeData: false });
  cleanups.push(() => sink.close());
  const srv = await startCli(
    'proxy',
    `[proxy]\nlisten = "127.0.0.1:0"\nforward = "127.0.0.1:${sink.port}"\n[engine]\nsignatures = [${JSON.stringify(sigs)}]\n`,
    dir,
  );
  cleanups.push(() => srv.stop());

  let stop = false;
  const tally = { clean: 0, cleanOk: 0, eicar: 0, eicarRejected: 0, bad: [] as string[] };
  /** SHA-256 of each clean message's body (unique per message) that got 250 → its name and the 250 text (the sink's queue id). */
  const accepted = new Map<string, string>();
  const worker = async (w: number) => {
    for (let n = 0; !stop; n++) {
      const infected = (n + w) % 2 === 1;
      const msg = plainMessage(infected ? `w${w} n${n} ${EICAR}` : `w${w} n${n} just text`, `w${w}-${n}`);
      let r;
      try {
        r = await sendMessage(srv.port, { from: `w${w}@example.org`, to: ['rcpt@example.net'], message: msg });
      } catch (e) {
        tally.bad.push(`${infected ? 'EICAR' : 'clean'} w${w} n${n}: ${String(e)} at ${new Date().toISOString()}`);
        if (tally.bad.length > 20) return; // the proxy is gone: the report says enough
        continue;
      }
      if (infected) {
        tally.eicar++;
        if (r.final.code === 550) tally.eicarRejected++;
        else tally.bad.push(`EICAR w${w} n${n}: ${r.final.text}`);
      } else {
        tally.clean++;
        if (r.final.code !== 250) tally.bad.push(`clean w${w} n${n}: ${r.final.text}`);
        else {
          tally.cleanOk++;
          accepted.set(createHash('sha256').update(msg.subarray(msg.indexOf('\r\n\r\n') + 4)).digest('hex'), `w${w}-${n} (${r.final.text})`);
        }
      }
    }
  };
  const workers = [0, 1, 2, 3, 4].map(worker);
  try {
    await reloadsAndProbes();
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  assert.deepEqual(tally.bad, [], 'no message tempfailed, lost its connection or passed unscanned');
  assert.ok(tally.clean >= 20 && tally.eicar >= 20, `mail flowed during the reloads (${tally.clean} clean, ${tally.eicar} EICAR)`);
  assert.equal(tally.cleanOk, tally.clean);
  assert.equal(tally.eicarRejected, tally.eicar);
  const delivered = new Set(sink.messages.map((m) => m.bodySha256));
  const lost = [...accepted].filter(([sha]) => !delivered.has(sha)).map(([, what]) => what);
  assert.deepEqual(lost, [], 'every clean message that got 250 is at the sink');
  assert.equal(sink.messages.length, tally.clean, 'exactly the clean messages were delivered (none twice, nothing else)');
  const msgs = srv.logs().filter((l) => l.event === 'message');
  assert.equal(msgs.filter((l) => l.verdict === 'error' || l.verdict === 'aborted').length, 0);
  assert.equal(msgs.filter((l) => l.verdict === 'infected' && l.name === 'Eicar-Test-Signature').length, tally.eicar);
  assert.equal(srv.logs().filter((l) => l.event === 'reloaded').length, 10);
  assert.equal(await srv.stop(), 0);

  async function reloadsAndProbes(): Promise<void> {
    for (let i = 1; i <= 10; i++) {
      writeFileSync(join(sigs, `new${i}.ndb`), `Reload.New${i}:0:*:${hex(pattern(i))}\n`);
      const before = srv.logs().length;
      srv.hup();
      const line = await srv.waitForLog((l) => l.event === 'reloaded' || l.event === 'reload-failed', 20_000, before);
      assert.equal(line.event, 'reloaded', JSON.stringify(line));
      assert.equal(line.signatures, 1 + i + 1, 'base + i new + built-in EICAR'); // checked against the count below
      const r = await sendMessage(srv.port, { from: 'probe@example.org', to: ['rcpt@example.net'], message: plainMessage(`probe ${pattern(i)} end`) });
      assert.equal(r.final.code, 550, `reload ${i}: ${r.final.text}`);
      const probe = await srv.waitForLog((l) => l.event === 'message' && l.sender === 'probe@example.org' && l.name === `Reload.New${i}`, 5000);
      assert.equal(probe.verdict, 'infected');
      // Let mail flow between reloads.
      await new Promise((res) => setTimeout(res, 100));
    }

    // A broken signature file: the reload fails, the old set stays.
    writeFileSync(join(sigs, 'broken.ndb'), 'this is not a signature line\n');
    const before = srv.logs().length;
    srv.hup();
    const failed = await srv.waitForLog((l) => l.event === 'reload-failed' || l.event === 'reloaded', 20_000, before);
    assert.equal(failed.event, 'reload-failed');
    assert.match(String(failed.reason), /broken\.ndb/);
    for (const i of [3, 10]) {
      const r = await sendMessage(srv.port, { from: 'after-fail@example.org', to: ['rcpt@example.net'], message: plainMessage(`again ${pattern(i)}`) });
      assert.equal(r.final.code, 550, `old set still has Reload.New${i}`);
    }
    unlinkSync(join(sigs, 'broken.ndb'));
  }
});
