/**
 * errors.ts — the one error taxonomy: one base class, stable string codes.
 *
 * Every error midstream throws on purpose is a MidstreamError whose `code` is one of
 * ERROR_CODES (as undici's lib/core/errors.js): callers branch on `code`, never on the
 * message text, and the codes never change meaning. Convention: DOMAIN_REASON, upper
 * snake case. Subclasses exist where a caller needs extra typed fields (ConfigError:
 * file and key; SignatureFileError: file and line; ClamdError: errorKind and endpoint).
 *
 * Input: a code, a human message, optional fields (cause, errno, endpoint).
 * Output: `errorFields(e)` turns any thrown value into bounded log fields
 * ({code, error, errno?, syscall?, endpoint?}) so every log line names failures alike.
 * Errors: none thrown here. Gaps: parser-internal errors inside src/core/mime, decode
 * and unpack (InflateError, Bzip2Error) never leave the core (they become `unparseable`
 * verdicts) and keep their own classes.
 * Lives in src/core because the core throws some of them and may import nothing outside.
 */

export const ERROR_CODES = {
  /** A bad configuration value (file, key, reason). Fatal at start-up; a failed reload keeps the old config. */
  configInvalid: 'CONFIG_INVALID',
  /** A bad command line (unknown flag, flag that does not apply, missing argument). Exit 2. */
  usage: 'USAGE',
  /** A socket address that does not parse for its use (listen, forward, clamd, milter, metrics). */
  addressInvalid: 'ADDRESS_INVALID',
  /** A unix socket path is held by a live listener: another instance is running. */
  listenInUse: 'LISTEN_IN_USE',
  /** A unix socket path exists and is not a socket: never removed. */
  listenNotSocket: 'LISTEN_NOT_SOCKET',
  /** bind/listen failed (EADDRINUSE, EACCES, ...; errno kept). */
  listenFailed: 'LISTEN_FAILED',
  /** socket_owner / socket_group name no such user or group, or chown failed. */
  socketOwner: 'SOCKET_OWNER',
  /** clamd could not be reached (connect refused, timed out, no endpoint healthy). */
  clamdUnavailable: 'CLAMD_UNAVAILABLE',
  /** clamd did not answer in time. */
  clamdTimeout: 'CLAMD_TIMEOUT',
  /** clamd answered something we do not understand. */
  clamdProtocol: 'CLAMD_PROTOCOL',
  /** The after-filter smtpd (or any downstream server) could not be reached. */
  downstreamConnect: 'DOWNSTREAM_CONNECT',
  downstreamTimeout: 'DOWNSTREAM_TIMEOUT',
  downstreamClosed: 'DOWNSTREAM_CLOSED',
  downstreamProtocol: 'DOWNSTREAM_PROTOCOL',
  /** Signature files (SignatureFileError): see SIG_ERROR_CODES, kept under these names. */
  sigNotFound: 'SIG_NOT_FOUND',
  sigRead: 'SIG_READ',
  sigSyntax: 'SIG_SYNTAX',
  sigContainer: 'SIG_CONTAINER',
  sigChecksum: 'SIG_CHECKSUM',
  /** The log file cannot be opened or written. Reported, never fatal after start-up. */
  logWrite: 'LOG_WRITE',
  /** No scan engine (built-in off and no clamd). */
  noEngine: 'NO_ENGINE',
  /** An OS error Node raised that we did not wrap (errno says which). */
  system: 'SYSTEM',
  /** A broken invariant in our own code: a bug. */
  internal: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export interface MidstreamErrorOptions {
  cause?: unknown;
  /** The OS error code behind it, e.g. 'ECONNREFUSED', 'EACCES'. */
  errno?: string;
  /** The address or path involved, e.g. 'tcp:127.0.0.1:3310', 'unix:/run/x.sock'. */
  endpoint?: string;
}

export class MidstreamError extends Error {
  readonly errno?: string;
  readonly endpoint?: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: MidstreamErrorOptions = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'MidstreamError';
    const errno = opts.errno ?? osErrno(opts.cause);
    if (errno !== undefined) this.errno = errno;
    if (opts.endpoint !== undefined) this.endpoint = opts.endpoint;
  }
}

/** The OS error code of a Node system error (e.code like 'ECONNREFUSED'), if any. */
export function osErrno(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e) {
    const c = (e as { code: unknown }).code;
    if (typeof c === 'string' && /^E[A-Z0-9]+$/.test(c)) return c;
  }
  return undefined;
}

const MAX_MESSAGE = 300;

/** Bounded log fields for any thrown value: code (stable), error (message), errno, syscall, endpoint. */
export function errorFields(e: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (e instanceof MidstreamError) {
    out.code = e.code;
    if (e.errno) out.errno = e.errno;
    if (e.endpoint) out.endpoint = e.endpoint;
  } else {
    out.code = ERROR_CODES.internal;
    const errno = osErrno(e);
    if (errno) {
      // A system error from Node: not a bug, but not one of ours either.
      out.code = ERROR_CODES.system;
      out.errno = errno;
    }
  }
  const sys = e && typeof e === 'object' && 'syscall' in e ? (e as { syscall: unknown }).syscall : undefined;
  if (typeof sys === 'string') out.syscall = sys;
  const msg = e instanceof Error ? e.message : String(e);
  out.error = msg.length > MAX_MESSAGE ? msg.slice(0, MAX_MESSAGE) + '...' : msg;
  return out;
}
