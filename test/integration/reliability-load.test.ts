/**
 * reliability-load.test.ts — issue 7 item 3, the short version of bench/load.ts:
 * 50 concurrent SMTP sessions, 300 messages (clean / EICAR / banned / clients leaving
 * mid-DATA) through a real Postfix 3.7 + `midstream proxy` (compiled CLI) + real clamd.
 * Asserts: every message accounted for (accounting.ts); the filter's RSS flat (late vs
 * early median), descriptors back to baseline when idle, clamd connections bounded by
 * max_concurrent and none left open when idle (no scanner connection leaks).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setupLoad, runLoad, summarize, type LoadEnv } from '../helpers/load-run.js';

let env: LoadEnv;
const CONCURRENCY = 50;
const MAX_CLAMD = 6;

before(async () => {
  env = await setupLoad({ concurrency: CONCURRENCY, clamdMaxConcurrent: MAX_CLAMD });
});

after(async () => {
  await env?.teardown();
});

test(`${CONCURRENCY} concurrent sessions, 300 messages: accounting holds, RSS and fds flat, no clamd socket leak`, { timeout: 150_000 }, async (t) => {
  const r = await runLoad(env, { prefix: `load${process.pid.toString(36)}`, total: 300, concurrency: CONCURRENCY, sampleMs: 250 });
  const s = summarize(r);
  t.diagnostic(JSON.stringify(s));
  assert.deepEqual(r.audit.violations, [], env.proxy.stderr().slice(-3000));
  assert.equal(r.entries.filter((e) => e.outcome === 'tempfailed').length, 0, 'no tempfails under load');
  assert.equal(r.entries.filter((e) => e.outcome === 'accepted').length, 300 - 12 * 2 - 12 * 2 - 12, 'every full clean transaction accepted');
  assert.ok(s.samples >= 8, `enough samples (${s.samples})`);
  assert.ok(s.rssLateMb - s.rssEarlyMb < 40, `RSS flat: early ${s.rssEarlyMb} MB, late ${s.rssLateMb} MB`);
  assert.ok(s.fdsMax >= s.fdsBase + CONCURRENCY / 2, `the load really reached the filter (fds up to ${s.fdsMax})`);
  assert.ok(s.fdsIdle <= s.fdsBase + 4, `descriptors back to baseline: base ${s.fdsBase}, idle ${s.fdsIdle}`);
  assert.ok(s.clamdSocketsMax >= 1, 'clamd was used');
  assert.ok(s.clamdSocketsMax <= MAX_CLAMD, `clamd connections bounded by max_concurrent: ${s.clamdSocketsMax}`);
  assert.equal(s.clamdSocketsIdle, 0, 'no clamd connection left open when idle');
  assert.match(await env.pf.queue(), /Mail queue is empty/);
});
