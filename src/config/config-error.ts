/**
 * config-error.ts — the one error type for a bad configuration.
 *
 * Carries the file (or "<command line>" for flags, "<defaults>" when no file), the
 * dotted TOML key (e.g. "clamd.connect_timeout", "rules[2].match.client[0]") and a
 * human reason. Stable `code` 'CONFIG_INVALID'; the CLI prints `message` and exits
 * with `exitCode` (2). Never carries the offending value beyond a short, sanitised echo.
 * One of the MidstreamError family (src/core/errors.ts).
 */
import { ERROR_CODES, MidstreamError } from '../core/errors.js';
export class ConfigError extends MidstreamError {
  declare readonly code: 'CONFIG_INVALID';
  readonly exitCode = 2 as const;
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(ERROR_CODES.configInvalid, `${file}: ${key === '' ? '' : key + ': '}${reason}`);
    this.name = 'ConfigError';
  }
}

/** A short, printable echo of a bad value for error reasons (no control chars, capped). */
export function echo(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : v instanceof Date ? v.toISOString() : JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  s = s.replace(/[^\x20-\x7e]/g, '?');
  return s.length > 60 ? s.slice(0, 60) + '...' : s;
}
