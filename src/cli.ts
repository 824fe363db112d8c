#!/usr/bin/env node
/**
 * cli.ts — `midstream <command>`: scan, proxy, milter, pop3, check-config (see cli/args.ts for
 * each command's flags; `midstream COMMAND --help` lists them with their defaults).
 *
 * Exit codes: scan 0/1/2 (clean/rejected/error); check-config 0/1/2 (valid / a --probe
 * target did not answer / invalid); 2 for usage and config errors, which name the file,
 * key and reason; servers run until SIGTERM/SIGINT and exit 0.
 */
import { COMMANDS, helpFor, parseCommon, usage, UsageError } from './cli/args.js';
import { runScan } from './cli/scan-command.js';
import { buildSettings, ConfigError } from './cli/settings.js';
import { createEngine, MidstreamError } from './core/index.js';
import { VERSION } from './version.js';

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`midstream ${VERSION}\n`);
    return 0;
  }
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    const topic = cmd === 'help' ? rest[0] : undefined;
    process.stdout.write((topic && COMMANDS[topic] ? helpFor(topic) : usage()) + '\n');
    return cmd ? 0 : 2;
  }
  if (!COMMANDS[cmd]) throw new UsageError(`unknown command: ${cmd}`);
  const flags = parseCommon(rest, cmd);
  if (flags.help) {
    process.stdout.write(helpFor(cmd) + '\n');
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`midstream ${VERSION}\n`);
    return 0;
  }
  switch (cmd) {
    case 'scan': {
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
      const help = err.command ? `midstream ${err.command} --help lists its options.` : usage();
      process.stderr.write(`midstream: ${err.message}\n${help}\n`);
    } else if (err instanceof ConfigError) {
      process.stderr.write(`midstream: ${err.message}\n`);
    } else if (err instanceof MidstreamError) {
      process.stderr.write(`midstream: ${err.code}: ${err.message}\n`);
    } else {
      const e = err as Error & { code?: string };
      process.stderr.write(`midstream: ${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}\n`);
    }
    process.exitCode = 2;
  },
);
