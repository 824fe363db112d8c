/**
 * config-error.ts — the one error type for a bad configuration.
 *
 * Carries the file (or "<command line>" for flags, "<defaults>" when no file), the
 * dotted TOML key (e.g. "clamd.connect_timeout", "rules[2].match.client[0]") and a
 * human reason. Stable `code` 'CONFIG_INVALID'; the CLI prints `message` and exits
 * with `exitCode` (2). Never carries the offending value beyond a short, sanitised echo.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' as const;
  readonly exitCode = 2 as const;
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${file}: ${key === '' ? '' : key + ': '}${reason}`);
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
