/**
 * clamd-client.ts — our own clamd client (see shared/reference/clamd-protocol.md for why
 * not clamdjs/clamscan): a pool of endpoints, INSTREAM scans, PING and VERSION.
 *
 *   const c = new ClamdClient({ endpoints: ['unix:/run/clamav/clamd.ctl', 'tcp:av2:3310'] });
 *   await c.start();                      // active health checks + versions (the engine does this)
 *   const s = c.openStream(signal);
 *   s.write(bytes); if (s.needsDrain) await s.drain(); …
 *   const r = await s.end();              // ScanResult: clean | infected(name) | error(errorKind)
 *
 * The pieces, one job each: clamd-wire.ts (reply parser, connect, one-shot commands),
 * clamd-conn.ts (a socket, reused through IDSESSION), clamd-endpoint.ts (slots, health
 * with rise/fall hysteresis, version, counters), clamd-pool.ts (least-outstanding-work
 * selection, waiting, health checks), clamd-stream.ts (one INSTREAM).
 * Limits: maxConcurrent streams in flight per endpoint; maxStreamBytes per stream (our
 * cap = clamd's StreamMaxLength); deadlines connect / idle / total / command. Connection
 * reuse: keepaliveMs > 0 keeps up to maxConcurrent idle IDSESSION connections per TCP
 * endpoint for that long (clamd counts them against MaxQueue); 0 = one connection per
 * scan (the default here; the config default turns reuse on). Measured (clamd 1.4.6, 2000
 * 4 KB scans, 4 at once): over TCP reuse cuts our CPU per scan by 60% (0.43 → 0.17 ms)
 * and costs clamd 4–14% more; over a unix socket clamd spent 2.3x the CPU inside
 * IDSESSION and throughput halved, so unix endpoints always connect per scan.
 * Raw-message streams (openRawStream, for `raw_message`): the raw message streamed beside
 * the per-file scans. They take a slot of their own pool (maxRawStreams), not one of an
 * endpoint's maxConcurrent scan slots: clamd reads an INSTREAM upload in its receiving
 * thread and uses a scan thread only after the terminator (measured: 90 open uploads with
 * MaxThreads 2 did not delay another scan), but every open connection counts against
 * clamd's MaxQueue (100 by default; ~100 open uploads stalled every new connection), so
 * maxConcurrent (+ idle keepalive connections) + maxRawStreams must stay below it. They go
 * to the least loaded endpoint, on a fresh connection (never a reused session). A
 * speculative raw stream sends its terminator only on end(), never early at the byte cap:
 * abort() before end() closes the connection without a terminator and clamd scans nothing.
 * Raw streams connect at once and hold ≤ rawHighWaterBytes.
 * Errors: streams never reject (errors are results); ping/version reject with ClamdError.
 * Known gaps: no FILDES, no TLS; a stream is not retried once bytes went out.
 */
import type { ErrorKind } from '../types.js';
import type { EndpointStatus } from './clamd-endpoint.js';
import { ClamdPool } from './clamd-pool.js';
import { InstreamScan, WAITING_PENDING_BYTES, type ClamdStream, type ScanOutcome } from './clamd-stream.js';
import { Semaphore } from './semaphore.js';
import { ClamdError, clip, commandOnce, parseClamdAddress } from './clamd-wire.js';

export { ClamdError, parseClamdReply, parseClamdAddress } from './clamd-wire.js';
export type { ClamdStream, ClamdStreamStats } from './clamd-stream.js';
export type { EndpointStatus } from './clamd-endpoint.js';

/** What the client reports as it works (metrics). Listeners must not throw. */
export interface ClamdEvents {
  /** One scan finished on an endpoint: seconds from our terminator to the reply; 'ok' = clean or infected. */
  scan?(endpoint: string, seconds: number, outcome: ScanOutcome): void;
}

export interface ClamdClientOptions {
  /** 'tcp:HOST:PORT', 'HOST:PORT', 'unix:/path' (at least one). */
  endpoints: string[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  totalTimeoutMs?: number;
  /** Streams in flight per endpoint. */
  maxConcurrent?: number;
  /** Our byte cap per stream; keep ≤ clamd's StreamMaxLength. */
  maxStreamBytes?: number;
  healthIntervalMs?: number;
  chunkBytes?: number;
  /** Buffered bytes above which needsDrain is true. */
  highWaterBytes?: number;
  /** Deadline for PING/VERSION (connect included). */
  commandTimeoutMs?: number;
  /** Consecutive failures that eject an endpoint / good checks that readmit it. */
  healthFall?: number;
  healthRise?: number;
  /** Keep idle IDSESSION connections this long for reuse; 0 = a new connection per scan. */
  keepaliveMs?: number;
  /** Raw-message streams open at once (their own pool; see openRawStream). */
  maxRawStreams?: number;
  /** Buffered bytes above which a raw-message stream needs a drain. */
  rawHighWaterBytes?: number;
  events?: ClamdEvents;
  /** Called on every endpoint ejection / readmission (not for the initial state). */
  onHealth?: (change: { endpoint: string; up: boolean; why: string }) => void;
}

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
  healthFall: 3,
  healthRise: 2,
  keepaliveMs: 0,
  maxRawStreams: 32,
  rawHighWaterBytes: 32 * 1024,
});

type ResolvedOptions = { -readonly [K in keyof typeof CLAMD_DEFAULTS]: number };

function positive(name: string, v: number, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || (v === 0 && !allowZero)) {
    throw new RangeError(`clamd option ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

export class ClamdClient {
  readonly options: Readonly<ResolvedOptions>;
  private readonly pool: ClamdPool;
  private readonly rawSem: Semaphore;
  private closed = false;

  constructor(opts: ClamdClientOptions) {
    if (!opts || !Array.isArray(opts.endpoints) || opts.endpoints.length === 0) {
      throw new RangeError('clamd option endpoints must list at least one address');
    }
    const o: ResolvedOptions = { ...CLAMD_DEFAULTS };
    for (const k of Object.keys(CLAMD_DEFAULTS) as (keyof ResolvedOptions)[]) {
      const v = opts[k];
      if (v !== undefined) o[k] = positive(k, v, k === 'keepaliveMs');
    }
    if (o.chunkBytes > 0x7fffffff) throw new RangeError('clamd option chunkBytes too large');
    this.options = Object.freeze(o);
    this.rawSem = new Semaphore(o.maxRawStreams);
    const events = opts.events;
    this.onScan = events?.scan;
    this.pool = new ClamdPool(
      opts.endpoints.map((e) => parseClamdAddress(e)),
      { maxConcurrent: o.maxConcurrent, healthIntervalMs: o.healthIntervalMs, commandTimeoutMs: o.commandTimeoutMs, connectTimeoutMs: o.connectTimeoutMs, keepaliveMs: o.keepaliveMs, fall: o.healthFall, rise: o.healthRise },
      (endpoint, up, why) => {
        try {
          opts.onHealth?.({ endpoint, up, why });
        } catch {
          // A hook's bug must not break scanning.
        }
      },
    );
  }

  private readonly onScan: ClamdEvents['scan'];

  /** Start active health checks (PING + VERSION every healthIntervalMs); resolves after the first round. */
  start(): Promise<void> {
    return this.pool.start();
  }

  /**
   * Check every endpoint now (PING + VERSION; joins a round already running) and return
   * each one's status: for the start-up check and `check-config --probe`. An endpoint that
   * cannot be reached is ejected at once (transitions reach onHealth).
   */
  async checkAll(): Promise<EndpointStatus[]> {
    await this.pool.checkNow();
    return this.endpointStatus();
  }

  /** Health, load and version of each endpoint, for logs, metrics and the CLI check. */
  endpointStatus(): EndpointStatus[] {
    return this.pool.endpoints.map((e) => e.status());
  }

  /** Streams holding a slot / waiting for one. */
  get inFlight(): number {
    return this.pool.inFlight;
  }
  get queued(): number {
    return this.pool.queued;
  }
  /** Raw-message streams holding a raw slot. */
  get rawInFlight(): number {
    return this.rawSem.inUse;
  }

  /**
   * The room (ClamdStream.room) a scan stream opened now starts with: the high-water mark
   * when a slot is free, the little a waiting stream may hold when every slot is taken.
   */
  get openRoom(): number {
    const hw = this.options.highWaterBytes;
    return this.pool.slotFree ? hw : Math.min(WAITING_PENDING_BYTES, hw);
  }

  /** One INSTREAM scan. `opts.totalTimeoutMs` overrides the client's (e.g. the MTA's remaining budget). */
  openStream(signal?: AbortSignal, opts: { totalTimeoutMs?: number } = {}): ClamdStream {
    const total = opts.totalTimeoutMs === undefined ? this.options.totalTimeoutMs : positive('totalTimeoutMs', opts.totalTimeoutMs);
    return new InstreamScan(this.pool, this.options, total, signal, this.onScan, { speculative: false, highWaterBytes: this.options.highWaterBytes });
  }

  /**
   * A raw-message stream (see the file header): connects at once, terminator only on end().
   * `wait: false` takes a raw slot only if one is free now and returns null otherwise (the
   * caller must never block on it); `wait: true` queues for one (bounded by the total deadline).
   */
  openRawStream(signal: AbortSignal | undefined, opts: { wait: boolean }): ClamdStream | null {
    const o = { speculative: true, highWaterBytes: this.options.rawHighWaterBytes };
    let s: InstreamScan;
    if (opts.wait) s = new InstreamScan(this.pool, this.options, this.options.totalTimeoutMs, signal, this.onScan, { ...o, acquireRaw: (sig) => this.rawSem.acquire(sig) });
    else {
      const release = this.rawSem.tryAcquire();
      if (!release) return null;
      s = new InstreamScan(this.pool, this.options, this.options.totalTimeoutMs, signal, this.onScan, { ...o, rawPreacquired: release });
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

  /** Stop health checks, close idle connections. In-flight streams finish; new ones fail as unavailable. */
  close(): void {
    this.closed = true;
    this.pool.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async command(cmd: 'PING' | 'VERSION', endpoint?: string): Promise<string> {
    const { commandTimeoutMs: t, connectTimeoutMs: c } = this.options;
    if (endpoint !== undefined) return commandOnce(parseClamdAddress(endpoint), cmd, t, c);
    if (this.closed) throw new ClamdError('scanner-unavailable', 'clamd client closed');
    const eps = this.pool.endpoints;
    const ranked = [...eps.filter((e) => e.up), ...eps.filter((e) => !e.up)];
    let last: unknown;
    for (const ep of ranked) {
      try {
        return await commandOnce(ep.address, cmd, t, c);
      } catch (e) {
        last = e;
        if (e instanceof ClamdError && e.errorKind === 'scanner-unavailable') ep.connectFailed(e.message);
      }
    }
    throw last;
  }
}

export type { ErrorKind };
