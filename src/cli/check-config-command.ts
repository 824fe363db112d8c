/**
 * check-config-command.ts — `midstream check-config [--quiet] [--probe] [FILE]` (or
 * --config FILE): validate, load the signatures, check that log.file can be opened for
 * appending, print the effective config as TOML (not with --quiet), and warn about
 * fail-open choices, signatures the built-in engine skips (by reason), [[rules]]
 * that match on `authenticated` (Postfix does not pass SMTP AUTH to a before-queue
 * proxy: they apply through the milter only), rules that can never match (or only through
 * one front), and actions the proxy cannot apply without its after-filter milter. After
 * the config (as `#` comment lines, so the output still parses) it explains how [[rules]],
 * the lovers' exemptions and the sender lists combine.
 *
 * --probe also connects to every clamd endpoint (PING, VERSION) and to proxy.forward
 * (the after-filter smtpd must greet with 220) and reports each on stdout:
 *   probe: clamd tcp:127.0.0.1:3310: ok (ClamAV 1.4.6/27000/...)
 *   probe: forward 127.0.0.1:10026: FAILED (DOWNSTREAM_CONNECT: ... ECONNREFUSED)
 * Exit 0 when valid (and every probe answered), 1 when a probe failed, 2 with
 * "FILE: KEY: reason" when invalid. Without --probe nothing is contacted, so it works
 * while clamd is down (the systemd units run it before every start and reload).
 */
import { clamdWarnings, configWarnings, explainRules, failOpenWarnings, loadConfig, renderConfig, ruleWarnings, type FrozenConfig } from '../config/load-config.js';
import { createEngine, errorFields, parseAddress } from '../core/index.js';
import { ClamdClient } from '../core/scan/clamd-client.js';
import { LogFile } from '../log/log-file.js';
import { DownstreamClient } from '../smtp/downstream-client.js';
import type { CommonFlags } from './args.js';
import { engineOptions, overridesFrom } from './settings.js';
import { afterFilterNeed } from './proxy-command.js';

const warn = (key: string, reason: string) => process.stderr.write(`midstream: warning: ${key}: ${reason}\n`);

async function probe(c: FrozenConfig, out: (s: string) => void): Promise<boolean> {
  let ok = true;
  for (const ep of c.clamd.endpoints) {
    const client = new ClamdClient({ endpoints: [ep], connectTimeoutMs: c.clamd.connectTimeoutMs, commandTimeoutMs: Math.max(c.clamd.connectTimeoutMs, 5000) });
    try {
      const v = await client.version(ep);
      out(`probe: clamd ${ep}: ok (${v})`);
    } catch (e) {
      ok = false;
      const f = errorFields(e);
      out(`probe: clamd ${ep}: FAILED (${f.code}: ${f.error})`);
    } finally {
      client.close();
    }
  }
  const fwd = parseAddress(c.proxy.forward, 'connect');
  try {
    const ds = await DownstreamClient.connect(fwd, { timeoutMs: Math.min(c.proxy.replyBudgetMs, 10_000) });
    out(`probe: forward ${c.proxy.forward}: ok (${ds.greeting?.lines[0] ?? ''})`);
    ds.quit();
  } catch (e) {
    ok = false;
    const f = errorFields(e);
    out(`probe: forward ${c.proxy.forward}: FAILED (${f.code}: ${f.error})`);
  }
  return ok;
}

export async function runCheckConfig(flags: CommonFlags): Promise<number> {
  const file = flags.config ?? flags.positionals[0];
  const config = loadConfig(file, overridesFrom(flags));
  // clamd is not contacted here (only with --probe): check-config must work while clamd is down.
  const { clamd: _notContacted, ...opts } = engineOptions(config);
  const engine = await createEngine(opts);
  await engine.close();
  // The same open the daemon does at start and on reload (append, created 0640).
  if (config.log.file) new LogFile(config.log.file).close();
  if (!flags.quiet) process.stdout.write(renderConfig(config) + explainRules(config).map((l) => `# ${l}\n`).join(''));
  for (const w of failOpenWarnings(config)) warn(w.key, w.reason);
  for (const w of configWarnings(config)) warn(w.key, w.reason);
  for (const w of clamdWarnings(config)) warn(w.key, w.reason);
  for (const w of ruleWarnings(config)) warn(w.key, w.reason);
  const need = afterFilterNeed(config);
  if (need && config.proxy.afterFilterMilter === '') warn('proxy.after_filter_milter', `${need}: \`midstream proxy\` refuses to start without it (the milter front does not need it)`);
  const skipped = Object.entries(engine.signaturesSkipped);
  if (skipped.length > 0) {
    const total = skipped.reduce((a, [, n]) => a + n, 0);
    warn('engine.signatures', `${total} signatures the built-in engine cannot use were skipped (${skipped.map(([r, n]) => `${r}: ${n}`).join(', ')}); clamd reads them all`);
  }
  let probesOk = true;
  if (flags.probe) probesOk = await probe(config, (s) => process.stdout.write(s + '\n'));
  if (!flags.quiet) process.stderr.write(`midstream: config ok (${file ?? 'defaults'}; ${engine.signatureCount} signatures)\n`);
  return probesOk ? 0 : 1;
}
