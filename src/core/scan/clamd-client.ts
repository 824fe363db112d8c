/**
 * clamd-client.ts — our own clamd INSTREAM client (see shared/reference/clamd-protocol.md
 * for why not clamdjs/clamscan).
 *
 * Protocol note (clamd.8): connect, send `zINSTREAM\0`, then chunks of
 * `uint32-BE length ‖ bytes`, then a zero-length chunk. clamd buffers to a temp file,
 * scans only after the terminator, sends ONE NUL-terminated reply and closes:
 *   `stream: OK` · `stream: NAME FOUND` · `stream: … ERROR` ·
 *   `INSTREAM size limit exceeded. ERROR` (may arrive while we are still sending).
 * `zPING\0` → `PONG`, `zVERSION\0` → `ClamAV x/y/z`. One connection per stream, no IDSESSION.
 *
 *   const c = new ClamdClient({ endpoints: ['unix:/run/clamav/clamd.ctl'] });
 *   const s = c.openStream(signal);
 *   s.write(bytes); if (s.needsDrain) await s.drain(); …
 *   const r = await s.end();          // ScanResult: clean | infected(name) | error(errorKind)
 *
 * Results are strict: only a complete `stream: OK` after our terminator is clean; every
 * other reply, EOF, reset, timeout or abort is `{kind:'error'}` (never clean by accident).
 *
 * Limits: maxConcurrent streams in flight (semaphore; waiting for a slot is bounded by
 * totalTimeoutMs too); at most maxStreamBytes sent per stream (our cap = clamd's StreamMaxLength):
 * over it we stop sending, send the terminator and report infected if clamd found
 * something in the head, else `scanner-size-limit`. Frames ≤ chunkBytes, never empty
 * except the terminator. Replies longer than 4 KiB are a protocol error. Buffered bytes
 * per stream never exceed maxStreamBytes; needsDrain turns true above highWaterBytes once
 * connected, above 16 KiB while waiting for a slot.
 * Deadlines: connectTimeoutMs per connect attempt (then next endpoint); idleTimeoutMs
 * while we wait on clamd (socket not draining, or reply awaited); totalTimeoutMs from
 * end() to the reply — the upload itself runs at the SMTP client's pace (a slow client
 * sending a large attachment must not turn into a tempfail loop) and is bounded by the
 * idle deadline whenever clamd stops draining.
 * Failover: endpoints tried round-robin among healthy ones, then the ones marked down;
 * a failed connect marks an endpoint down and a background PING (unref'd timer every
 * healthIntervalMs, with commandTimeoutMs) brings it back.
 *
 * Node internals: on a stream socket we switch off auto-destroy (_writableState /
 * _readableState.autoDestroy) so a write error does not drop clamd's unread early reply;
 * replies are read through net's public `onread` option. Frames go out one per event-loop
 * turn so replies are read between writes. (Measured: without these, 9–18 of 40 early
 * size-limit replies over TCP were lost as EPIPE; with them, 0 of 40.)
 *
 * Raw-message streams (openRawStream, for `raw_message`): the raw message streamed beside the
 * per-file scans. They take a slot of their own pool (maxRawStreams), not one of the
 * maxConcurrent scan slots: clamd reads an INSTREAM upload in its receiving thread and uses a
 * scan thread only after the terminator (measured: 90 open uploads with MaxThreads 2 did
 * not delay another scan), but every open connection counts against clamd's MaxQueue (100
 * by default; ~100 open uploads stalled every new connection), so maxConcurrent +
 * maxRawStreams must stay below it. A speculative raw stream sends its terminator only on
 * end(), never early at the byte cap: abort() before end() closes the connection without a
 * terminator and clamd scans nothing. Raw streams connect at once and hold ≤ rawHighWaterBytes.
 *
 * Known gaps: no IDSESSION, no FILDES, no TLS; a stream is not retried on another
 * endpoint once bytes went out (we do not keep sent data).
 */
import { connect, type Socket } from 'node:net';
import type { ErrorKind, ScanResult } from '../types.js';
import { formatAddress, parseAddress, type SocketAddress } from '../address.js';

/** A parsed clamd endpoint plus its canonical text ("tcp:HOST:PORT" / "unix:/path") for logs and status. */
type ClamdAddress = SocketAddress & { text: string };

export function parseClamdAddress(input: string): ClamdAddress {
  const a = parseAddress(input, 'clamd');
  return { ...a, text: formatAddress(a, 'clamd') };
}
import { Semaphore } from './semaphore.js';
import { ERROR_CODES, MidstreamError, osErrno, type ErrorCode } from '../errors.js';

export interface ClamdClientOptions {
  /** 'tcp:HOST:PORT', 'HOST:PORT', 'unix:/path' (at least one). */
  endpoints: string[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  totalTimeoutMs?: number;
  maxConcurrent?: number;
  /** Our byte cap per stream; keep ≤ clamd's StreamMaxLength. */
  maxStreamBytes?: number;
  healthIntervalMs?: number;
  chunkBytes?: number;
  /** Buffered bytes above which needsDrain is true. */
  highWaterBytes?: number;
  /** Deadline for PING/VERSION (connect included). */
  commandTimeoutMs?: number;
  /** Called on every endpoint up/down transition (not for the initial state). */
  onHealth?: (change: { endpoint: string; up: boolean; why: string }) => void;
  /** Raw-message streams open at once (their own pool; see openRawStream). */
  maxRawStreams?: number;
  /** Buffered bytes above which a raw-message stream needs a drain. */
  rawHighWaterBytes?: number;
}

/** Bytes a stream may hold while it waits for a clamd slot (see needsDrain). */
const WAITING_PENDING_BYTES = 16 * 1024;

export const CLAMD_DEFAULTS = Object.freeze({
  connectTimeoutMs: 2000,
  idleTimeoutMs: 30_000,
  totalTimeoutMs: 60_000,
  maxConcurrent: 8,
  maxStreamBytes: 25 * 1024 * 1024,
  healthIntervalMs: 15_000,
  chunkBytes: 64 * 1024,
  highWaterBytes: 64 * 1024,
  commandTimeoutMs: 5000,
  maxRawStreams: 32,
  rawHighWaterBytes: 32 * 1024,
});

type ResolvedOptions = Required<Omit<ClamdClientOptions, 'endpoints' | 'onHealth'>>;

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

export interface EndpointStatus {
  endpoint: string;
  up: boolean;
  lastError?: string;
}

export interface ClamdStreamStats {
  endpoint?: string;
  /** Bytes taken into the stream (≤ maxStreamBytes). */
  bytesAccepted: number;
  /** Payload bytes written to the socket. */
  bytesSent: number;
  /** Bytes dropped: over the cap, or after the result was already final. */
  bytesDropped: number;
  /** ms spent waiting for a concurrency slot. */
  waitedMs: number;
}

export interface ClamdStream {
  /** Resolves once the stream holds its slot and is connected, or has settled. Never rejects. */
  ready(): Promise<void>;
  /** Never blocks, never throws for peer trouble; copies `chunk`. Throws only on write after end(). */
  write(chunk: Uint8Array): void;
  readonly needsDrain: boolean;
  /** Resolves when buffered bytes fall to the high-water mark or the stream is finished. Never rejects. */
  drain(): Promise<void>;
  /** No more bytes; resolves with the result (also when it was settled earlier). Never rejects. */
  end(): Promise<ScanResult>;
  /** Idempotent. Destroys the socket, frees the slot; end() gives `aborted` unless already final. */
  abort(): void;
  /** The final result once known (may be before end(), e.g. an early size-limit reply). */
  readonly result: ScanResult | null;
  readonly stats: ClamdStreamStats;
}

const MAX_REPLY_BYTES = 4096;
const READ_BUFFER_BYTES = 8192;
/** After a failed write, how long we keep reading for clamd's (early) reply. */
const WRITE_ERROR_GRACE_MS = 500;

/** Stream states of net.Socket (Node internals, stable since Node 14) — see attach(). */
interface NodeStreamStates {
  _writableState?: { autoDestroy: boolean };
  _readableState?: { autoDestroy: boolean };
}

const MAX_DETAIL = 200;
const INSTREAM = Buffer.from('zINSTREAM\0', 'latin1');
const TERMINATOR = Buffer.alloc(4);

const CLEAN_RE = /^(?:\d+: )?stream: OK$/;
const FOUND_RE = /^(?:\d+: )?stream: (\S(?:.*\S)?) FOUND$/;

function clip(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return t.length > MAX_DETAIL ? t.slice(0, MAX_DETAIL) + '…' : t;
}

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
  if (/^COMMAND READ TIMED OUT$/.test(text)) return { kind: 'error', errorKind: 'scanner-timeout', detail: clip(text) };
  if (/ ERROR$/.test(text)) return { kind: 'error', errorKind: 'scanner-error', detail: clip(text) };
  return { kind: 'error', errorKind: 'scanner-protocol', detail: 'unexpected reply: ' + clip(text) };
}

interface Endpoint {
  address: ClamdAddress;
  up: boolean;
  lastError?: string;
  checking: boolean;
}

function positive(name: string, v: number, integer = true): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new RangeError(`clamd option ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  }
  return v;
}

function errText(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * Connect to one address with a deadline; resolves a connected socket with Nagle off.
 * With `onData`, bytes are delivered through net's `onread` callback, synchronously from
 * libuv's read, instead of 'data' events: when clamd replies early and closes, the very
 * next write of ours can fail (EPIPE) and Node destroys the socket; a reply that sat in
 * the Readable's buffer (or a deferred 'data' emit) would then be lost. onread sees it first.
 */
function connectOnce(address: ClamdAddress, timeoutMs: number, signal?: AbortSignal, onData?: (chunk: Buffer) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onread = onData
      ? {
          buffer: Buffer.alloc(READ_BUFFER_BYTES),
          callback: (n: number, buf: Uint8Array) => {
            onData(Buffer.from(buf.subarray(0, n)));
            return true;
          },
        }
      : undefined;
    const sock =
      address.kind === 'tcp'
        ? connect({ host: address.host, port: address.port, ...(onread ? { onread } : {}) })
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

export class ClamdClient {
  readonly options: Readonly<ResolvedOptions>;
  private readonly endpoints: Endpoint[];
  private readonly sem: Semaphore;
  private readonly rawSem: Semaphore;
  private rr = 0;
  private healthTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onHealth: ClamdClientOptions['onHealth'];

  constructor(opts: ClamdClientOptions) {
    if (!opts || !Array.isArray(opts.endpoints) || opts.endpoints.length === 0) {
      throw new RangeError('clamd option endpoints must list at least one address');
    }
    const o: ResolvedOptions = { ...CLAMD_DEFAULTS };
    for (const k of Object.keys(CLAMD_DEFAULTS) as (keyof ResolvedOptions)[]) {
      const v = opts[k];
      if (v !== undefined) o[k] = positive(k, v);
    }
    if (o.chunkBytes > 0x7fffffff) throw new RangeError('clamd option chunkBytes too large');
    this.options = Object.freeze(o);
    this.endpoints = opts.endpoints.map((e) => ({ address: parseClamdAddress(e), up: true, checking: false }));
    this.onHealth = opts.onHealth;
    this.sem = new Semaphore(o.maxConcurrent);
    this.rawSem = new Semaphore(o.maxRawStreams);
  }

  /**
   * PING every endpoint now and record the result (transitions reach onHealth). For the
   * start-up check and `check-config --probe`; resolves with each endpoint's status.
   */
  async checkAll(): Promise<EndpointStatus[]> {
    await Promise.all(
      this.endpoints.map(async (ep) => {
        try {
          const r = await this.commandOn(ep.address, 'PING');
          if (r === 'PONG') this.markUp(ep);
          else this.markDown(ep, 'unexpected PING reply: ' + clip(r));
        } catch (e) {
          this.markDown(ep, e instanceof Error ? e.message : String(e));
        }
      }),
    );
    return this.endpointStatus();
  }

  /** Health of each endpoint, for logs and the CLI check. */
  endpointStatus(): EndpointStatus[] {
    return this.endpoints.map((e) => ({ endpoint: e.address.text, up: e.up, ...(e.lastError ? { lastError: e.lastError } : {}) }));
  }

  /** Streams holding a concurrency slot / waiting for one. */
  get inFlight(): number {
    return this.sem.inUse;
  }
  get queued(): number {
    return this.sem.waiting;
  }
  /** Raw-message streams holding a raw slot. */
  get rawInFlight(): number {
    return this.rawSem.inUse;
  }

  /** One INSTREAM scan. `opts.totalTimeoutMs` overrides the client's (e.g. the MTA's remaining budget). */
  openStream(signal?: AbortSignal, opts: { totalTimeoutMs?: number } = {}): ClamdStream {
    const total = opts.totalTimeoutMs === undefined ? this.options.totalTimeoutMs : positive('totalTimeoutMs', opts.totalTimeoutMs);
    return new InstreamScan(this, total, signal, { acquire: (sig) => this.sem.acquire(sig), speculative: false, highWaterBytes: this.options.highWaterBytes });
  }

  /**
   * A raw-message stream (see the file header): connects at once, terminator only on end().
   * `wait: false` takes a raw slot only if one is free now and returns null otherwise (the
   * caller must never block on it); `wait: true` queues for one (bounded by the total deadline).
   */
  openRawStream(signal: AbortSignal | undefined, opts: { wait: boolean }): ClamdStream | null {
    const o = { speculative: true, highWaterBytes: this.options.rawHighWaterBytes };
    let s: InstreamScan;
    if (opts.wait) s = new InstreamScan(this, this.options.totalTimeoutMs, signal, { ...o, acquire: (sig) => this.rawSem.acquire(sig) });
    else {
      const release = this.rawSem.tryAcquire();
      if (!release) return null;
      s = new InstreamScan(this, this.options.totalTimeoutMs, signal, { ...o, preacquired: release });
    }
    s.connectNow();
    return s;
  }

  /** Resolves on PONG; rejects with ClamdError (unavailable / timeout / protocol). */
  async ping(endpoint?: string): Promise<void> {
    const reply = await this.command('PING', endpoint);
    if (reply !== 'PONG') throw new ClamdError('scanner-protocol', 'unexpected PING reply: ' + clip(reply), endpoint);
  }

  /** e.g. 'ClamAV 1.4.6/27000/Mon Jan  1 00:00:00 2026'. Rejects with ClamdError. */
  async version(endpoint?: string): Promise<string> {
    const reply = await this.command('VERSION', endpoint);
    if (!/^ClamAV \S/.test(reply)) throw new ClamdError('scanner-protocol', 'unexpected VERSION reply: ' + clip(reply), endpoint);
    return reply;
  }

  /** Stop background health checks. In-flight streams finish normally; new ones fail as unavailable. */
  close(): void {
    this.closed = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- internals used by InstreamScan -------------------------------------------

  /** @internal Try endpoints (healthy ones round-robin, then the ones marked down). */
  async connectAny(signal: AbortSignal, onData: (chunk: Buffer) => void): Promise<{ socket: Socket; endpoint: string }> {
    if (this.closed) throw new ClamdError('scanner-unavailable', 'clamd client closed');
    const n = this.endpoints.length;
    const start = this.rr++ % n;
    const order: Endpoint[] = [];
    for (let i = 0; i < n; i++) order.push(this.endpoints[(start + i) % n]!);
    const ranked = [...order.filter((e) => e.up), ...order.filter((e) => !e.up)];
    const failures: string[] = [];
    for (const ep of ranked) {
      try {
        const socket = await connectOnce(ep.address, this.options.connectTimeoutMs, signal, onData);
        this.markUp(ep);
        return { socket, endpoint: ep.address.text };
      } catch (e) {
        if (signal.aborted) throw e;
        const msg = e instanceof ClamdError ? e.message : `${ep.address.text}: ${errText(e)}`;
        failures.push(msg);
        this.markDown(ep, msg);
      }
    }
    throw new ClamdError('scanner-unavailable', 'no clamd endpoint reachable: ' + failures.join('; '));
  }

  private markUp(ep: Endpoint): void {
    const was = ep.up;
    ep.up = true;
    delete ep.lastError;
    if (!was) this.notify(ep, true, 'PING answered');
  }

  private markDown(ep: Endpoint, why: string): void {
    const was = ep.up;
    ep.up = false;
    ep.lastError = why;
    if (was) this.notify(ep, false, why);
    if (!this.healthTimer && !this.closed) {
      this.healthTimer = setInterval(() => this.healthCheck(), this.options.healthIntervalMs);
      this.healthTimer.unref();
    }
  }

  /** Up/down transitions go to the onHealth hook (the runtime logs them at warn); it must not throw. */
  private notify(ep: Endpoint, up: boolean, why: string): void {
    try {
      this.onHealth?.({ endpoint: ep.address.text, up, why });
    } catch {
      // A hook's bug must not break scanning.
    }
  }

  private healthCheck(): void {
    const down = this.endpoints.filter((e) => !e.up);
    if (down.length === 0 || this.closed) {
      if (this.healthTimer) clearInterval(this.healthTimer);
      this.healthTimer = null;
      return;
    }
    for (const ep of down) {
      if (ep.checking) continue;
      ep.checking = true;
      this.commandOn(ep.address, 'PING')
        .then((r) => {
          if (r === 'PONG') this.markUp(ep);
          else ep.lastError = 'unexpected PING reply: ' + clip(r);
        })
        .catch((e: unknown) => {
          ep.lastError = e instanceof Error ? e.message : String(e);
        })
        .finally(() => {
          ep.checking = false;
        });
    }
  }

  private async command(cmd: 'PING' | 'VERSION', endpoint?: string): Promise<string> {
    if (endpoint !== undefined) return this.commandOn(parseClamdAddress(endpoint), cmd);
    if (this.closed) throw new ClamdError('scanner-unavailable', 'clamd client closed');
    const ranked = [...this.endpoints.filter((e) => e.up), ...this.endpoints.filter((e) => !e.up)];
    let last: unknown;
    for (const ep of ranked) {
      try {
        const r = await this.commandOn(ep.address, cmd);
        this.markUp(ep);
        return r;
      } catch (e) {
        last = e;
        if (e instanceof ClamdError && e.errorKind === 'scanner-unavailable') this.markDown(ep, e.message);
      }
    }
    throw last;
  }

  /** One z-command on a fresh connection, with one deadline for connect + reply. */
  private commandOn(address: ClamdAddress, cmd: string): Promise<string> {
    const timeoutMs = this.options.commandTimeoutMs;
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
      connectOnce(address, Math.min(timeoutMs, this.options.connectTimeoutMs), ac.signal).then(
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
}

type Phase = 'new' | 'starting' | 'connected' | 'done';

class InstreamScan implements ClamdStream {
  private phase: Phase = 'new';
  private readonly opts: Readonly<ResolvedOptions>;
  private readonly ac = new AbortController();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private overCap = false;
  private ended = false;
  private terminatorSent = false;
  private writeBlocked = false;
  private pumpScheduled = false;
  private socket: Socket | null = null;
  private release: (() => void) | null = null;
  private replyParts: Buffer[] = [];
  private replyBytes = 0;
  private totalTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** Set when a write failed: stop sending, keep reading until a reply, EOF or the grace timer. */
  private writeFailed: string | null = null;
  private drainWaiters: (() => void)[] = [];
  private readyWaiters: (() => void)[] = [];
  private settledResult: ScanResult | null = null;
  private resolveResult!: (r: ScanResult) => void;
  private readonly resultPromise: Promise<ScanResult>;
  private readonly onUserAbort = () => this.abort();
  readonly stats: ClamdStreamStats = { bytesAccepted: 0, bytesSent: 0, bytesDropped: 0, waitedMs: 0 };

  constructor(
    private readonly client: ClamdClient,
    private readonly totalTimeoutMs: number,
    private readonly userSignal: AbortSignal | undefined,
    private readonly slot: {
      /** How to get a concurrency slot; unused when `preacquired` is given. */
      acquire?: (signal: AbortSignal) => Promise<() => void>;
      preacquired?: () => void;
      /** Terminator only on end(), never early at the byte cap (raw-message streams). */
      speculative: boolean;
      highWaterBytes: number;
    },
  ) {
    this.opts = client.options;
    if (slot.preacquired) this.release = slot.preacquired;
    this.resultPromise = new Promise((r) => (this.resolveResult = r));
    if (userSignal?.aborted) this.abort();
    else userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
  }

  get result(): ScanResult | null {
    return this.settledResult;
  }

  ready(): Promise<void> {
    if (this.phase === 'connected' || this.settledResult) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** Start connecting before the first byte (raw-message streams). */
  connectNow(): void {
    this.start();
  }

  get needsDrain(): boolean {
    if (this.settledResult) return false;
    // Until clamd has a slot for us, hold little: hundreds of messages waiting for
    // maxConcurrent slots must not each buffer highWaterBytes (that memory would grow with
    // the number of connections); the SMTP client waits instead. Small files still pass
    // without waiting for the connect.
    const limit = this.phase === 'connected' ? this.slot.highWaterBytes : Math.min(WAITING_PENDING_BYTES, this.slot.highWaterBytes);
    return this.pendingBytes + (this.socket?.writableLength ?? 0) > limit;
  }

  drain(): Promise<void> {
    if (!this.needsDrain) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  write(chunk: Uint8Array): void {
    if (this.ended) throw new Error('clamd stream: write after end');
    const len = chunk.length;
    if (len === 0) return;
    if (this.settledResult) {
      this.stats.bytesDropped += len;
      return;
    }
    const room = this.opts.maxStreamBytes - this.stats.bytesAccepted;
    const take = Math.min(room, len);
    if (take < len) {
      this.overCap = true;
      this.stats.bytesDropped += len - take;
    }
    if (take > 0) {
      // Copy: the caller may reuse its buffer after write() returns.
      const copy = Buffer.from(chunk.subarray(0, take));
      this.pending.push(copy);
      this.pendingBytes += take;
      this.stats.bytesAccepted += take;
    }
    this.start();
    this.schedulePump();
  }

  end(): Promise<ScanResult> {
    if (!this.ended) {
      this.ended = true;
      this.armTotal();
      this.start();
      this.schedulePump();
    }
    return this.resultPromise;
  }

  abort(): void {
    this.settle({ kind: 'error', errorKind: 'aborted', detail: 'scan aborted' });
  }

  // ---- lifecycle ------------------------------------------------------------------

  private start(): void {
    if (this.phase !== 'new' || this.settledResult) return;
    this.phase = 'starting';
    void this.connect();
  }

  /** The total deadline runs from end() to the reply (see the file header). */
  private armTotal(): void {
    if (this.totalTimer || this.settledResult) return;
    const total = this.totalTimeoutMs;
    this.totalTimer = setTimeout(() => this.fail('scanner-timeout', `no result within the total deadline of ${total} ms`), total);
  }

  private async connect(): Promise<void> {
    const t0 = Date.now();
    // Waiting for a slot is bounded even before end(): a stream that cannot start would
    // otherwise hold its buffered bytes (and the SMTP client, via backpressure) forever.
    const total = this.totalTimeoutMs;
    const slotTimer = setTimeout(() => this.fail('scanner-timeout', `no clamd slot within ${total} ms`), total);
    try {
      if (!this.release) {
        const release = await this.slot.acquire!(this.ac.signal).finally(() => clearTimeout(slotTimer));
        this.stats.waitedMs = Date.now() - t0;
        if (this.settledResult) return release();
        this.release = release;
      } else clearTimeout(slotTimer);
      const { socket, endpoint } = await this.client.connectAny(this.ac.signal, (d) => this.onData(d));
      if (this.settledResult) return void socket.destroy();
      this.socket = socket;
      this.stats.endpoint = endpoint;
      this.attach(socket);
      this.phase = 'connected';
      socket.write(INSTREAM);
      this.wakeReady();
      this.pump();
    } catch (e) {
      if (this.settledResult) return;
      if (e instanceof ClamdError) this.fail(e.errorKind, e.message);
      else this.fail('scanner-unavailable', errText(e));
    }
  }

  private attach(s: Socket): void {
    // If clamd's early reply + RST land between our poll and our next write, that write
    // fails (EPIPE) with the reply still unread, and Node's auto-destroy would close the
    // socket and lose it. So: no auto-destroy; on a write error stop sending and keep
    // reading (onread, see connectOnce) for WRITE_ERROR_GRACE_MS. settle() destroys.
    const states = s as unknown as NodeStreamStates;
    for (const st of [states._writableState, states._readableState]) {
      if (st && typeof st.autoDestroy === 'boolean') st.autoDestroy = false;
    }
    s.on('drain', () => {
      this.writeBlocked = false;
      this.armIdle(true);
      this.pump();
    });
    s.on('end', () => this.onEof());
    s.on('close', () => this.onEof());
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (this.settledResult) return;
      const partial = this.replyBytes > 0 ? ' after a partial reply' : '';
      const why = `connection to ${this.stats.endpoint} lost (${errText(e)})${partial} after ${this.stats.bytesSent} bytes sent`;
      if (e.syscall === 'write' && !s.destroyed) {
        if (this.writeFailed) return;
        this.writeFailed = why;
        this.graceTimer = setTimeout(() => this.fail('scanner-unavailable', why), WRITE_ERROR_GRACE_MS);
        return;
      }
      this.fail('scanner-unavailable', why);
    });
  }

  private onData(d: Buffer): void {
    if (this.settledResult) return;
    this.replyParts.push(d);
    this.replyBytes += d.length;
    const buf = this.replyParts.length === 1 ? this.replyParts[0]! : Buffer.concat(this.replyParts);
    this.replyParts = [buf];
    const end = buf.findIndex((b) => b === 0 || b === 0x0a);
    if (end >= 0) return this.onReply(buf.subarray(0, end).toString('latin1'), true);
    if (this.replyBytes > MAX_REPLY_BYTES) return this.fail('scanner-protocol', `reply longer than ${MAX_REPLY_BYTES} bytes`);
    this.armIdle(true);
  }

  private onEof(): void {
    if (this.settledResult) return;
    if (this.replyBytes === 0) {
      return this.fail('scanner-unavailable', this.writeFailed ?? `${this.stats.endpoint ?? 'clamd'} closed the connection without a reply`);
    }
    this.onReply(Buffer.concat(this.replyParts).toString('latin1'), false);
  }

  /** A complete (terminated) or EOF-cut reply. Decide, never reading clean by accident. */
  private onReply(text: string, terminated: boolean): void {
    let r = parseClamdReply(text);
    if (r.kind === 'clean' && !terminated) {
      r = { kind: 'error', errorKind: 'scanner-protocol', detail: 'unterminated reply: ' + clip(text) };
    } else if (r.kind === 'clean' && !this.terminatorSent) {
      r = { kind: 'error', errorKind: 'scanner-protocol', detail: 'clean reply before the end of the stream' };
    } else if (r.kind === 'clean' && this.overCap) {
      r = {
        kind: 'error',
        errorKind: 'scanner-size-limit',
        detail: `only the first ${this.stats.bytesAccepted} bytes were scanned (maxStreamBytes); ${this.stats.bytesDropped} not sent`,
      };
    }
    this.settle(r);
  }

  private fail(errorKind: ErrorKind, detail: string): void {
    this.settle({ kind: 'error', errorKind, detail });
  }

  private settle(r: ScanResult): void {
    if (this.settledResult) return;
    this.settledResult = r;
    this.phase = 'done';
    if (this.totalTimer) clearTimeout(this.totalTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.totalTimer = this.idleTimer = this.graceTimer = null;
    this.userSignal?.removeEventListener('abort', this.onUserAbort);
    this.ac.abort();
    this.socket?.destroy();
    this.release?.();
    this.release = null;
    this.stats.bytesDropped += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.replyParts = [];
    this.wakeDrainers();
    this.wakeReady();
    this.resolveResult(r);
  }

  // ---- sending --------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled || this.phase !== 'connected') return;
    this.pumpScheduled = true;
    // Coalesce synchronous small writes into full frames.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const s = this.socket;
    if (this.phase !== 'connected' || !s || this.settledResult || this.writeFailed) return;
    const max = this.opts.chunkBytes;
    let progress = false;
    // One frame per event-loop turn: between our writes the poll phase reads whatever
    // clamd sent. On loopback a write into a connection clamd has closed (after its early
    // "size limit exceeded" reply) fails at once, and Node then destroys the socket with
    // the reply still unread; yielding between frames lets us read the reply first.
    if (!this.writeBlocked && this.pendingBytes > 0) {
      const n = Math.min(max, this.pendingBytes);
      // The pending buffers are our own copies (write() copies), so a frame of a few large
      // pieces goes out as header + pieces in one corked writev instead of being copied
      // again; many small pieces are packed into one buffer (cheaper than a long writev).
      const pieces: Buffer[] = [];
      let got = 0;
      while (got < n) {
        const head = this.pending[0]!;
        const want = n - got;
        if (head.length <= want) {
          pieces.push(head);
          got += head.length;
          this.pending.shift();
        } else {
          pieces.push(head.subarray(0, want));
          this.pending[0] = head.subarray(want);
          got += want;
        }
      }
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(n, 0);
      this.pendingBytes -= n;
      this.stats.bytesSent += n;
      progress = true;
      let ok: boolean;
      if (pieces.length > 8) ok = s.write(Buffer.concat([header, ...pieces], 4 + n));
      else {
        s.cork();
        s.write(header);
        ok = true;
        for (const p of pieces) ok = s.write(p);
        s.uncork();
      }
      if (!ok) this.writeBlocked = true;
    }
    if (this.pendingBytes === 0 && (this.ended || (this.overCap && !this.slot.speculative)) && !this.terminatorSent) {
      this.terminatorSent = true;
      progress = true;
      if (!s.write(TERMINATOR)) this.writeBlocked = true;
    }
    this.armIdle(progress);
    this.wakeDrainers();
    if (this.pendingBytes > 0 && !this.writeBlocked) this.schedulePump();
  }

  /**
   * The idle deadline runs only while we wait on clamd (a full socket or an awaited
   * reply) and restarts only on progress, so writes into a stuck socket do not extend it.
   */
  private armIdle(progress: boolean): void {
    const waiting = !this.settledResult && this.phase === 'connected' && (this.writeBlocked || this.terminatorSent);
    if (!waiting || progress) {
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (!waiting || this.idleTimer) return;
    const ms = this.opts.idleTimeoutMs;
    this.idleTimer = setTimeout(
      () => this.fail('scanner-timeout', this.terminatorSent && !this.writeBlocked ? `no reply from clamd within ${ms} ms` : `clamd read nothing for ${ms} ms`),
      ms,
    );
  }

  private wakeReady(): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of w) r();
  }

  private wakeDrainers(): void {
    if (this.drainWaiters.length === 0 || this.needsDrain) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const r of w) r();
  }
}
