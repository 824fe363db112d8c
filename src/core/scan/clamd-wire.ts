/**
 * clamd-wire.ts — the clamd protocol pieces every other clamd module shares: the typed
 * error, the strict reply parser, a connect with a deadline, and one z-command on a
 * fresh connection (PING / VERSION for health checks).
 *
 * Protocol note (clamd.8): `zCMD\0` framing; replies end with NUL. Inside IDSESSION every
 * reply carries the command's number: `N: stream: OK`. Only `stream: OK` (with or
 * without that prefix) is clean; see parseClamdReply.
 * Input: addresses in the one grammar of core/address.ts (parseClamdAddress). Output: connected sockets (Nagle off), reply
 * strings, ScanResults. Limits: replies over MAX_REPLY_BYTES are a protocol error;
 * every connect and command has a deadline. Errors: ClamdError with an ErrorKind.
 */
import { connect, type Socket } from 'node:net';
import type { ErrorKind, ScanResult } from '../types.js';
import { formatAddress, parseAddress, type SocketAddress } from '../address.js';
import { ERROR_CODES, MidstreamError, osErrno, type ErrorCode } from '../errors.js';
import { hostLookup } from '../host-lookup.js';

/** A parsed clamd endpoint plus its canonical text ("tcp:HOST:PORT" / "unix:/path") for logs and status. */
export type ClamdAddress = SocketAddress & { text: string };

/** One address grammar (core/address.ts), in its clamd form. */
export function parseClamdAddress(input: string): ClamdAddress {
  const a = parseAddress(input, 'clamd');
  return { ...a, text: formatAddress(a, 'clamd') };
}

export const MAX_REPLY_BYTES = 4096;
/**
 * One read buffer for every clamd connection's `onread`: the callback copies the bytes it
 * gets before returning, so connections can share it (per connection it would be 8 KiB
 * held for every open or idle connection).
 */
const READ_BUFFER = Buffer.alloc(8192);
const MAX_DETAIL = 200;

const CLAMD_CODES: Partial<Record<ErrorKind, ErrorCode>> = {
  'scanner-unavailable': ERROR_CODES.clamdUnavailable,
  'scanner-timeout': ERROR_CODES.clamdTimeout,
  'scanner-protocol': ERROR_CODES.clamdProtocol,
};

/** A failed PING/VERSION or connect, typed like a ScanResult error (code CLAMD_*). */
export class ClamdError extends MidstreamError {
  constructor(readonly errorKind: ErrorKind, message: string, endpoint?: string, errno?: string) {
    super(CLAMD_CODES[errorKind] ?? ERROR_CODES.clamdProtocol, endpoint ? `${endpoint}: ${message}` : message, {
      ...(endpoint ? { endpoint } : {}),
      ...(errno ? { errno } : {}),
    });
    this.name = 'ClamdError';
  }
}

/** Printable, length-capped text of a peer string (replies go into logs). */
export function clip(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return t.length > MAX_DETAIL ? t.slice(0, MAX_DETAIL) + '…' : t;
}

export function errText(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return e instanceof Error ? e.message : String(e);
}

const CLEAN_RE = /^(?:\d+: )?stream: OK$/;
const FOUND_RE = /^(?:\d+: )?stream: (\S(?:.*\S)?) FOUND$/;

/**
 * Strict reply parser: `raw` is one reply with its NUL/newline terminator possibly still
 * attached. Only `stream: OK` is clean; `stream: NAME FOUND` is infected; everything else
 * is an error whose kind says what went wrong.
 */
export function parseClamdReply(raw: string): ScanResult {
  const text = raw.replace(/[\0\r\n]+$/, '');
  if (CLEAN_RE.test(text)) return { kind: 'clean' };
  const found = FOUND_RE.exec(text);
  // eslint-disable-next-line no-control-regex
  if (found && !/[\x00-\x1f\x7f]/.test(found[1]!)) return { kind: 'infected', name: found[1]! };
  if (text === '') return { kind: 'error', errorKind: 'scanner-protocol', detail: 'empty reply' };
  if (/size limit exceeded/i.test(text)) return { kind: 'error', errorKind: 'scanner-size-limit', detail: clip(text) };
  if (/^(?:\d+: )?COMMAND READ TIMED OUT$/.test(text)) return { kind: 'error', errorKind: 'scanner-timeout', detail: clip(text) };
  if (/ ERROR$/.test(text)) return { kind: 'error', errorKind: 'scanner-error', detail: clip(text) };
  return { kind: 'error', errorKind: 'scanner-protocol', detail: 'unexpected reply: ' + clip(text) };
}

/**
 * Connect to one address with a deadline; resolves a connected socket with Nagle off.
 * With `onData`, bytes are delivered through net's `onread` callback, synchronously from
 * libuv's read, instead of 'data' events: when clamd replies early and closes, the very
 * next write of ours can fail (EPIPE) and Node destroys the socket; a reply that sat in
 * the Readable's buffer (or a deferred 'data' emit) would then be lost. onread sees it first.
 */
export function connectOnce(address: ClamdAddress, timeoutMs: number, signal?: AbortSignal, onData?: (chunk: Buffer) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onread = onData
      ? {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            onData(Buffer.from(buf.subarray(0, n)));
            return true;
          },
        }
      : undefined;
    const sock =
      address.kind === 'tcp'
        ? connect({ host: address.host, port: address.port, lookup: hostLookup, ...(onread ? { onread } : {}) })
        : connect({ path: address.path, ...(onread ? { onread } : {}) });
    const finish = (err?: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.removeListener('error', onError);
      sock.removeListener('connect', onConnect);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    const onConnect = () => {
      sock.setNoDelay(true);
      finish();
    };
    const onError = (e: Error) => finish(new ClamdError('scanner-unavailable', `connect failed (${errText(e)})`, address.text, osErrno(e)));
    const onAbort = () => finish(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
    const timer = setTimeout(() => finish(new ClamdError('scanner-unavailable', `connect timeout after ${timeoutMs} ms`, address.text, 'ETIMEDOUT')), timeoutMs);
    sock.once('connect', onConnect);
    sock.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One z-command on a fresh connection, with one deadline for connect + reply. */
export function commandOnce(address: ClamdAddress, cmd: string, timeoutMs: number, connectTimeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const ac = new AbortController();
    let sock: Socket | null = null;
    let settled = false;
    const done = (err: Error | null, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ac.abort();
      sock?.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => done(new ClamdError('scanner-timeout', `${cmd} timed out after ${timeoutMs} ms`, address.text)), timeoutMs);
    connectOnce(address, Math.min(timeoutMs, connectTimeoutMs), ac.signal).then(
      (s) => {
        if (settled) return void s.destroy();
        sock = s;
        const parts: Buffer[] = [];
        let size = 0;
        const finishReply = (eof: boolean) => {
          const buf = Buffer.concat(parts);
          const end = buf.findIndex((b) => b === 0 || b === 0x0a);
          if (end < 0 && !eof) return;
          if (end < 0) {
            return done(new ClamdError(buf.length ? 'scanner-protocol' : 'scanner-unavailable', buf.length ? 'unterminated reply' : 'connection closed without a reply', address.text));
          }
          done(null, buf.subarray(0, end).toString('latin1').replace(/\r$/, ''));
        };
        s.on('data', (d: Buffer) => {
          parts.push(d);
          size += d.length;
          if (size > MAX_REPLY_BYTES) return done(new ClamdError('scanner-protocol', 'reply too long', address.text));
          finishReply(false);
        });
        s.on('end', () => finishReply(true));
        s.on('close', () => finishReply(true));
        s.on('error', (e) => done(new ClamdError('scanner-unavailable', `connection lost (${errText(e)})`, address.text, osErrno(e))));
        s.write(`z${cmd}\0`);
      },
      (e: unknown) => done(e instanceof Error ? e : new Error(String(e))),
    );
  });
}
