/**
 * bench/load.ts — issue 7 item 3: `midstream proxy` under load behind a real Postfix.
 *
 *   npx tsc -p . && node dist/bench/load.js [--concurrency 500] [--messages 3000] [--out bench/out/load.json]
 *
 * Keeps N SMTP sessions busy (default 500) until M messages (default 3000; mix 80 % clean,
 * 8 % EICAR, 8 % banned, 4 % clients leaving mid-DATA) went through: client → front
 * smtpd (smtpd_proxy_filter) → midstream proxy (compiled CLI, real clamd over TCP) →
 * after-filter smtpd → queue → relay → recording sink. Samples the filter's RSS, open
 * descriptors and clamd sockets every second; audits every message (accepted ⇒ delivered
 * once unaltered, rejected / tempfailed / abandoned ⇒ never). Prints a summary and
 * writes the raw samples as JSON. Exit 1 if the accounting fails or a leak is seen
 * (descriptors not back to baseline when idle, clamd sockets left open).
 * The short version runs in the test suite: test/integration/reliability-load.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setupLoad, runLoad, summarize } from '../test/helpers/load-run.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '500' },
    messages: { type: 'string', default: '3000' },
    'clamd-max': { type: 'string', default: '8' },
    out: { type: 'string', default: 'bench/out/load.json' },
  },
});
const concurrency = Number(values.concurrency);
const total = Number(values.messages);
const clamdMax = Number(values['clamd-max']);

const log = (s: string) => process.stderr.write(`load: ${s}\n`);
log(`setting up (concurrency ${concurrency}, ${total} messages)`);
const env = await setupLoad({ concurrency, clamdMaxConcurrent: clamdMax });
let code = 0;
try {
  log(`postfix front 127.0.0.1:${env.frontPort}, filter pid ${env.proxy.pid}`);
  const r = await runLoad(env, { prefix: `bench${process.pid.toString(36)}`, total, concurrency, sampleMs: 1000, log });
  const s = summarize(r);
  const tempfails = r.entries.filter((e) => e.outcome === 'tempfailed');
  console.log(JSON.stringify({ concurrency, ...s, tempfails: tempfails.length }, null, 2));
  for (const v of r.audit.violations.slice(0, 20)) log(`VIOLATION ${v}`);
  for (const e of tempfails.slice(0, 10)) log(`tempfail ${e.id}: ${e.reply}`);
  writeFileSync(values.out!, JSON.stringify({ concurrency, summary: s, samples: r.samples, idle: r.idle, baseline: r.baseline }, null, 1));
  log(`samples written to ${values.out}`);
  if (s.violations > 0) code = 1;
  if (s.fdsIdle > s.fdsBase + 4) (code = 1), log(`descriptor leak: base ${s.fdsBase}, idle ${s.fdsIdle}`);
  if (s.clamdSocketsIdle > 0) (code = 1), log(`clamd sockets left open: ${s.clamdSocketsIdle}`);
} finally {
  await env.teardown();
}
process.exit(code);
