/**
 * args.ts — the CLI's flags, shared by every subcommand. The words and flags named
 * in the issues are a contract: keep them stable, add freely.
 */
import { parseArgs } from 'node:util';
import { ERROR_CODES, MidstreamError } from '../core/errors.js';

/** A bad command line: exit 2 with the usage of the subcommand. */
export class UsageError extends MidstreamError {
  constructor(message: string) {
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
  help: boolean;
  positionals: string[];
}

export function parseCommon(argv: string[]): CommonFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        signatures: { type: 'string', short: 's', multiple: true },
        clamd: { type: 'string', multiple: true },
        'clamd-mode': { type: 'string' },
        json: { type: 'boolean' },
        listen: { type: 'string', short: 'l' },
        forward: { type: 'string', short: 'f' },
        upstream: { type: 'string', short: 'u' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const mode = v['clamd-mode'];
  if (mode !== undefined && mode !== 'per-file' && mode !== 'whole-message') {
    throw new UsageError(`--clamd-mode must be per-file or whole-message, not ${mode}`);
  }
  return {
    ...(v.config !== undefined ? { config: v.config } : {}),
    signatures: v.signatures ?? [],
    clamd: v.clamd ?? [],
    ...(mode ? { clamdMode: mode } : {}),
    json: v.json ?? false,
    ...(v.listen !== undefined ? { listen: v.listen } : {}),
    ...(v.forward !== undefined ? { forward: v.forward } : {}),
    ...(v.upstream !== undefined ? { upstream: v.upstream } : {}),
    help: v.help ?? false,
    positionals: parsed.positionals,
  };
}
