/**
 * logger.ts — JSON-lines logger: one object per line on stderr (or a file).
 *
 * Fields are caller-supplied; strings are sanitised and capped here so a peer
 * cannot inject newlines or flood the log. Never pass body content.
 * Every line: {time, level, event, ...fields}; `event` names what the line is
 * ("message" is the per-message line, src/log/message-log.ts; the rest are events).
 * Level and output can change at run time (SIGHUP reload, SIGUSR1 reopen).
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level?: Level;
  write?: (line: string) => void;
}

const MAX_FIELD = 512;

function clean(v: unknown): unknown {
  if (typeof v === 'string') {
    // JSON.stringify escapes control characters; the cap bounds the line.
    return v.length > MAX_FIELD ? v.slice(0, MAX_FIELD) + '...' : v;
  }
  if (Array.isArray(v)) return v.slice(0, 50).map(clean);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = clean(x);
    return o;
  }
  return v;
}

/** A logger whose level and output can change at run time (reload, log reopen). */
export interface ReconfigurableLogger extends Logger {
  setLevel(level: Level): void;
  setWrite(write: (line: string) => void): void;
}

export function createLogger(opts: LoggerOptions = {}): ReconfigurableLogger {
  let min = ORDER[opts.level ?? 'info'];
  let write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: Level, event: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const rec = { time: new Date().toISOString(), level, event, ...(clean(fields ?? {}) as object) };
    write(JSON.stringify(rec));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    setLevel(level) {
      min = ORDER[level];
    },
    setWrite(w) {
      write = w;
    },
  };
}

/** A logger that drops everything (tests, library use). */
export const nullLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
