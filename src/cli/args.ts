/**
 * args.ts — the command line: which flags each subcommand takes, its help text with the
 * defaults, and parsing. The words and flags named in the issues are a contract: keep
 * them stable, add freely. A new subcommand (e.g. `pop3`) is one COMMANDS entry.
 *
 * Input: argv after the subcommand. Output: CommonFlags. Errors: UsageError (USAGE,
 * exit 2) for an unknown flag, a flag that does not apply to the subcommand, a missing
 * value, a bad --clamd-mode, or positionals where none are taken.
 * Defaults shown in help come from the config schema (the one place they live).
 */
import { parseArgs } from 'node:util';
import { ERROR_CODES, MidstreamError } from '../core/errors.js';
import { CLAMD, MILTER, POP3, PROXY } from '../config/schema.js';

/** A bad command line: exit 2 with the usage of the subcommand. */
export class UsageError extends MidstreamError {
  constructor(message: string, readonly command?: string) {
    super(ERROR_CODES.usage, message);
    this.name = 'UsageError';
  }
}

export interface CommonFlags {
  config?: string;
  signatures: string[];
  clamd: string[];
  clamdMode?: 'per-file' | 'whole-message';
  json: boolean;
  listen?: string;
  forward?: string;
  upstream?: string;
  quiet: boolean;
  probe: boolean;
  help: boolean;
  version: boolean;
  positionals: string[];
}

interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder in help, e.g. FILE. */
  arg?: string;
  help: string;
}

export const FLAGS: Readonly<Record<string, FlagSpec>> = {
  config: { type: 'string', short: 'c', arg: 'FILE', help: 'TOML config file (default: none, built-in defaults)' },
  signatures: { type: 'string', short: 's', multiple: true, arg: 'PATH', help: 'signature file or directory for the built-in engine, repeatable (EICAR is always built in)' },
  clamd: { type: 'string', multiple: true, arg: 'ADDR', help: 'clamd endpoint tcp:HOST:PORT or unix:/path, repeat for failover (default: none, built-in engine only)' },
  'clamd-mode': { type: 'string', arg: 'MODE', help: `per-file or whole-message (default ${CLAMD.mode.def})` },
  json: { type: 'boolean', help: 'one JSON object per file' },
  listen: { type: 'string', short: 'l', arg: 'ADDR', help: 'listen address' },
  forward: { type: 'string', short: 'f', arg: 'ADDR', help: `after-filter smtpd HOST:PORT or unix:/path (default ${PROXY.forward.def})` },
  upstream: { type: 'string', short: 'u', arg: 'ADDR', help: `the POP3 server relayed to, HOST:PORT or unix:/path (default ${POP3.upstream.def})` },
  quiet: { type: 'boolean', short: 'q', help: 'print nothing when the config is valid (warnings still go to stderr)' },
  probe: { type: 'boolean', help: 'also connect to every clamd endpoint and the proxy forward target, and report each' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
  version: { type: 'boolean', short: 'V', help: "print midstream's version" },
};

export interface CommandSpec {
  summary: string;
  usage: string;
  flags: readonly (keyof typeof FLAGS)[];
  positionals: 'none' | 'files' | 'optional-file';
  /** Per-command help for a flag, overriding FLAGS (e.g. the listen default). */
  flagHelp?: Partial<Record<keyof typeof FLAGS, string>>;
  notes?: string;
}

const ENGINE_FLAGS = ['config', 'signatures', 'clamd', 'clamd-mode'] as const;

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  scan: {
    summary: 'scan message files (or stdin with -) and print one verdict line each',
    usage: 'midstream scan [OPTIONS] FILE...',
    flags: [...ENGINE_FLAGS, 'json', 'help', 'version'],
    positionals: 'files',
    notes: 'Exit status: 0 all clean, 1 any rejected, 2 any error.',
  },
  proxy: {
    summary: 'run the Postfix before-queue filter (smtpd_proxy_filter)',
    usage: 'midstream proxy [OPTIONS]',
    flags: [...ENGINE_FLAGS, 'listen', 'forward', 'help', 'version'],
    positionals: 'none',
    flagHelp: { listen: `where Postfix connects: HOST:PORT or unix:/path (default ${PROXY.listen.def})` },
    notes: 'Signals: HUP reloads the config, USR1 reopens the log file, TERM stops gracefully.',
  },
  milter: {
    summary: 'run the milter for Sendmail or Postfix (smtpd_milters)',
    usage: 'midstream milter [OPTIONS]',
    flags: [...ENGINE_FLAGS, 'listen', 'help', 'version'],
    positionals: 'none',
    flagHelp: { listen: `Sendmail notation: inet:PORT@HOST, inet6:PORT@HOST or unix:/path (default ${MILTER.listen.def})` },
    notes: 'Signals: HUP reloads the config, USR1 reopens the log file, TERM stops gracefully.',
  },
  pop3: {
    summary: 'run the POP3 relay that scans every message a client retrieves',
    usage: 'midstream pop3 [OPTIONS]',
    flags: [...ENGINE_FLAGS, 'listen', 'upstream', 'help', 'version'],
    positionals: 'none',
    flagHelp: { listen: `where POP3 clients connect: HOST:PORT or unix:/path (default ${POP3.listen.def})` },
    notes: 'Signals: HUP reloads the config, USR1 reopens the log file, TERM stops gracefully.',
  },
  'check-config': {
    summary: 'validate a config file, load its signatures, print the effective config',
    usage: 'midstream check-config [OPTIONS] [FILE]',
    flags: ['config', 'signatures', 'clamd', 'clamd-mode', 'quiet', 'probe', 'help', 'version'],
    positionals: 'optional-file',
    notes: 'Exit status: 0 valid, 1 a --probe target did not answer, 2 invalid.',
  },
};

/** Top-level usage: the subcommands and how to get their help. */
export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: midstream COMMAND [OPTIONS]',
    '',
    ...Object.entries(COMMANDS).map(([c, s]) => `  ${c.padEnd(w)}  ${s.summary}`),
    '',
    'midstream COMMAND --help shows its options and defaults; midstream --version prints the version.',
  ].join('\n');
}

/** One subcommand's help: usage, every flag it takes with its default, notes. */
export function helpFor(command: string): string {
  const spec = COMMANDS[command];
  if (!spec) return usage();
  const rows = spec.flags.map((f) => {
    const d = FLAGS[f]!;
    const left = `${d.short ? `-${d.short}, ` : '    '}--${f}${d.arg ? ` ${d.arg}` : ''}`;
    return [left, spec.flagHelp?.[f] ?? d.help] as const;
  });
  const w = Math.max(...rows.map(([l]) => l.length));
  return [
    `usage: ${spec.usage}`,
    '',
    spec.summary[0]!.toUpperCase() + spec.summary.slice(1) + '.',
    '',
    'Options:',
    ...rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`),
    ...(spec.notes ? ['', spec.notes] : []),
    'Flags override the config file. Every config key, its default and whether it needs a restart: midstream.toml.',
  ].join('\n');
}

/** Parse argv for `command`; throws UsageError for anything the command does not take. */
export function parseCommon(argv: string[], command = 'scan'): CommonFlags {
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command: ${command}`);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const f of spec.flags) {
    const d = FLAGS[f]!;
    options[f] = { type: d.type, ...(d.short ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (err) {
    // Name a known flag that does not apply here differently from a typo.
    const m = /'(--?[\w-]+)'/.exec((err as Error).message);
    const name = m?.[1]?.replace(/^--?/, '');
    const known = name !== undefined && (FLAGS[name] !== undefined || Object.values(FLAGS).some((f) => f.short === name));
    throw new UsageError(known ? `${m![1]} does not apply to "midstream ${command}"` : (err as Error).message, command);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const mode = v['clamd-mode'] as string | undefined;
  if (mode !== undefined && mode !== 'per-file' && mode !== 'whole-message') {
    throw new UsageError(`--clamd-mode must be per-file or whole-message, not ${mode}`, command);
  }
  const help = v.help === true;
  const version = v.version === true;
  if (!help && !version) {
    if (spec.positionals === 'none' && parsed.positionals.length > 0) {
      throw new UsageError(`"midstream ${command}" takes no arguments (got ${JSON.stringify(parsed.positionals[0])})`, command);
    }
    if (spec.positionals === 'files' && parsed.positionals.length === 0) {
      throw new UsageError(`"midstream ${command}" needs at least one FILE (or - for stdin)`, command);
    }
    if (spec.positionals === 'optional-file' && (parsed.positionals.length > 1 || (parsed.positionals.length === 1 && v.config !== undefined))) {
      throw new UsageError(`"midstream ${command}" takes one FILE, as an argument or with --config`, command);
    }
  }
  return {
    ...(v.config !== undefined ? { config: v.config as string } : {}),
    signatures: (v.signatures as string[] | undefined) ?? [],
    clamd: (v.clamd as string[] | undefined) ?? [],
    ...(mode ? { clamdMode: mode as 'per-file' | 'whole-message' } : {}),
    json: v.json === true,
    ...(v.listen !== undefined ? { listen: v.listen as string } : {}),
    ...(v.forward !== undefined ? { forward: v.forward as string } : {}),
    ...(v.upstream !== undefined ? { upstream: v.upstream as string } : {}),
    quiet: v.quiet === true,
    probe: v.probe === true,
    help,
    version,
    positionals: parsed.positionals,
  };
}
