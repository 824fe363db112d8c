/**
 * check-config-command.ts — `midstream check-config [FILE]` (or --config FILE):
 * validate, print the effective config as TOML, list fail-open choices. Exit 0 when
 * valid, 2 with "FILE: KEY: reason" when not. Signature files are loaded too, so a
 * broken signature database is caught before a reload.
 */
import { failOpenWarnings, loadConfig, renderConfig } from '../config/load-config.js';
import { createEngine } from '../core/index.js';
import type { CommonFlags } from './args.js';
import { engineOptions, overridesFrom } from './settings.js';

export async function runCheckConfig(flags: CommonFlags): Promise<number> {
  const file = flags.config ?? flags.positionals[0];
  const config = loadConfig(file, overridesFrom(flags));
  // clamd is not contacted here: check-config must work while clamd is down.
  const { clamd: _notContacted, ...opts } = engineOptions(config);
  const engine = await createEngine(opts);
  await engine.close();
  process.stdout.write(renderConfig(config));
  for (const w of failOpenWarnings(config)) process.stderr.write(`midstream: warning: ${w.key}: ${w.reason}\n`);
  process.stderr.write(`midstream: config ok (${file ?? 'defaults'}; ${engine.signatureCount} signatures)\n`);
  return 0;
}
