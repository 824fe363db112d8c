#!/usr/bin/env node
/**
 * cli.ts — `midstream <command>`: scan, proxy, milter, pop3, check-config.
 *
 * Exit codes: scan 0/1/2 (clean/rejected/error); 2 for usage and config errors,
 * which name the file, key and reason; servers run until SIGTERM/SIGINT.
 */
import { parseCommon, UsageError } from './cli/args.js';
import { runScan } from './cli/scan-command.js';
import { buildSettings, ConfigError } from './cli/settings.js';
import { createEngine } from './core/index.js';

const USAGE = `usage:
  midstream scan [--config FILE] [--signatures PATH]... [--clamd ADDR] [--json] FILE...
  midstream proxy [--config FILE] [--listen HOST:PORT|unix:PATH] [--forward HOST:PORT|unix:PATH]
                  [--signatures PATH]... [--clamd ADDR]
  midstream milter [--config FILE] [--listen inet:PORT@HOST|unix:PATH] [--signatures PATH]... [--clamd ADDR]
  midstream pop3 [--config FILE] [--listen HOST:PORT|unix:PATH] [--upstream HOST:PORT|unix:PATH]
                 [--signatures PATH]... [--clamd ADDR]
  midstream check-config [FILE]
ADDR: tcp:HOST:PORT or unix:/path (repeat --clamd for failover). "-" as FILE reads stdin.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return cmd ? 0 : 2;
  }
  const flags = parseCommon(rest);
  if (flags.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  switch (cmd) {
    case 'scan': {
      if (flags.positionals.length === 0) throw new UsageError('scan needs at least one FILE (or - for stdin)');
      const settings = buildSettings(flags);
      const engine = await createEngine(settings.engine);
      try {
        return await runScan(engine, flags.positionals, flags.json, (s) => process.stdout.write(s + '\n'));
      } finally {
        await engine.close();
      }
    }
    case 'proxy': {
      const { runProxyCommand } = await import('./cli/proxy-command.js');
      return runProxyCommand(flags);
    }
    case 'pop3': {
      const { runPop3Command } = await import('./cli/pop3-command.js');
      return runPop3Command(flags);
    }
    case 'milter': {
      const { runMilterCommand } = await import('./cli/milter-command.js');
      return runMilterCommand(flags);
    }
    case 'check-config': {
      const { runCheckConfig } = await import('./cli/check-config-command.js');
      return runCheckConfig(flags);
    }
    default:
      throw new UsageError(`unknown command: ${cmd}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`midstream: ${err.message}\n${USAGE}\n`);
    } else if (err instanceof ConfigError) {
      process.stderr.write(`midstream: ${err.message}\n`);
    } else {
      const e = err as Error & { code?: string };
      process.stderr.write(`midstream: ${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}\n`);
    }
    process.exitCode = 2;
  },
);
