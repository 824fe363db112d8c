/**
 * clamd-pool.ts — which clamd endpoint takes the next stream: least outstanding work,
 * per-endpoint concurrency, active health checks.
 *
 * Selection: among endpoints the stream has not already failed on, the up ones with a
 * free slot; the lowest inFlight / maxConcurrent wins (ties: lower latency average,
 * then rotation). Down endpoints are tried only when no endpoint is up (so a pool that
 * is entirely down is still probed by real traffic, and fails closed if it is really
 * down). When every eligible endpoint is full the caller waits, FIFO; a slot freed on
 * any endpoint goes to the first waiter that may use it.
 * Health: start() runs a check round at once and then every intervalMs (unref'd
 * timer): PING then VERSION on a fresh connection per endpoint, results fed to the
 * endpoint's rise/fall hysteresis; VERSION also refreshes the endpoint's signature
 * version. A stream handed an endpoint whose version is still unknown (clamd was not up
 * when we started) asks it once (learnVersion), so its verdict can be cached at once
 * instead of after the next check round. A failed check keeps the last version (see
 * clamd-endpoint.ts). Before start() (a bare client in tests), checks run only while an
 * endpoint is down, to bring it back. Idle IDSESSION connections older than keepaliveMs are
 * closed by a second timer (every keepaliveMs / 2, only while some are idle).
 * Errors: acquire() rejects with the signal's reason when aborted while waiting, and
 * with ClamdError(scanner-unavailable) when every endpoint was excluded.
 * Limits: waiters are unbounded in number but each holds only a closure (the streams
 * bound their own buffered bytes while they wait).
 */
import { ClamdEndpoint, type EndpointHealth, type TransitionListener } from './clamd-endpoint.js';
import { ClamdError, clip, commandOnce } from './clamd-wire.js';
import type { ClamdAddress } from './clamd-wire.js';
import type { ClamdConn } from './clamd-conn.js';

export interface Lease {
  readonly endpoint: ClamdEndpoint;
  /** Give the slot back. Idempotent. */
  release(): void;
}

export interface PoolOptions extends EndpointHealth {
  maxConcurrent: number;
  healthIntervalMs: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  /** 0 = no connection reuse. */
  keepaliveMs: number;
}

interface Waiter {
  exclude: ReadonlySet<ClamdEndpoint>;
  grant(l: Lease): void;
  fail(e: unknown): void;
}

export class ClamdPool {
  readonly endpoints: readonly ClamdEndpoint[];
  private readonly waiters: Waiter[] = [];
  private rr = 0;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private round: Promise<void> | null = null;
  private reaper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(addresses: readonly ClamdAddress[], private readonly opts: PoolOptions, onTransition: TransitionListener) {
    this.endpoints = addresses.map((a) => new ClamdEndpoint(a, opts.maxConcurrent, opts, (e, up, why) => {
      if (!up) this.ensureTimer();
      onTransition(e, up, why);
      // A readmitted endpoint has free slots: hand them to waiters.
      if (up) this.grantWaiters();
    }));
  }

  get inFlight(): number {
    return this.endpoints.reduce((n, e) => n + e.inFlight, 0);
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** A scan stream opened now would get a slot at once (nobody waits, an up endpoint has room). */
  get slotFree(): boolean {
    return this.waiters.length === 0 && this.endpoints.some((e) => e.up && e.hasCapacity);
  }

  /** Active checks from now on (the engine calls this; bare clients only check down endpoints). */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.started = true;
    this.ensureTimer();
    return this.checkRound();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.reaper) clearInterval(this.reaper);
    this.timer = this.reaper = null;
    for (const e of this.endpoints) e.closeIdle();
    for (const w of this.waiters.splice(0)) w.fail(new ClamdError('scanner-unavailable', 'clamd client closed'));
  }

  /** One check round over every endpoint now (also before start()). */
  checkNow(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.checkRound(true);
  }

  /**
   * A slot on the best endpoint not in `exclude`; waits while all eligible ones are full.
   * `raw`: a raw-message stream (it holds a slot of its own pool, not a scan slot): the
   * best eligible endpoint at once, whatever its scan load, counted in rawInFlight.
   */
  acquire(signal: AbortSignal, exclude: ReadonlySet<ClamdEndpoint> = new Set(), raw = false): Promise<Lease> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(new ClamdError('scanner-unavailable', 'clamd client closed'));
    if (this.endpoints.every((e) => exclude.has(e))) {
      return Promise.reject(new ClamdError('scanner-unavailable', 'no clamd endpoint left to try'));
    }
    if (raw) {
      const e = this.pick(exclude, true)!;
      e.rawInFlight++;
      let done = false;
      return Promise.resolve({
        endpoint: e,
        release: () => {
          if (!done) e.rawInFlight--;
          done = true;
        },
      });
    }
    const now = this.pick(exclude);
    if (now) return Promise.resolve(this.lease(now));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        exclude,
        grant: (l) => {
          signal.removeEventListener('abort', onAbort);
          resolve(l);
        },
        fail: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  /**
   * The signature version for cache keys without asking which endpoint scans: the one
   * every up endpoint agrees on; with none up, the one every endpoint last reported (clamd
   * down has not changed its database: a verdict cached under it still stands, the same
   * answer whenever the health checks notice the outage). null when they differ or one
   * is unknown (then the endpoint a stream gets decides, see clamd-stream.ts).
   */
  uniformVersion(): string | null {
    const up = this.endpoints.filter((e) => e.up);
    let v: string | null = null;
    for (const e of up.length > 0 ? up : this.endpoints) {
      if (e.version === null || (v !== null && v !== e.version)) return null;
      v = e.version;
    }
    return v;
  }

  private readonly asking = new Map<ClamdEndpoint, Promise<string | null>>();

  /**
   * `e`'s version, asking VERSION once when it has none yet (one question per endpoint at
   * a time; a failure leaves it unknown and says nothing about health: the scan itself
   * does). Never rejects.
   */
  learnVersion(e: ClamdEndpoint): Promise<string | null> {
    if (e.version !== null || this.closed) return Promise.resolve(e.version);
    let q = this.asking.get(e);
    if (!q) {
      const { commandTimeoutMs: t, connectTimeoutMs: c } = this.opts;
      q = commandOnce(e.address, 'VERSION', t, c)
        .then(
          (v) => {
            if (/^ClamAV \S/.test(v)) e.versionSeen(v);
            return e.version;
          },
          () => e.version,
        )
        .finally(() => this.asking.delete(e));
      this.asking.set(e, q);
    }
    return q;
  }

  private pick(exclude: ReadonlySet<ClamdEndpoint>, anyLoad = false): ClamdEndpoint | null {
    const eligible = this.endpoints.filter((e) => !exclude.has(e));
    const anyUp = eligible.some((e) => e.up);
    let best: ClamdEndpoint | null = null;
    const n = this.endpoints.length;
    const start = this.rr++ % n;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(start + i) % n]!;
      if (exclude.has(e) || (!anyLoad && !e.hasCapacity) || (anyUp && !e.up)) continue;
      if (!best || e.load < best.load || (e.load === best.load && e.latencyMs < best.latencyMs)) best = e;
    }
    return best;
  }

  private lease(e: ClamdEndpoint): Lease {
    e.inFlight++;
    let done = false;
    return {
      endpoint: e,
      release: () => {
        if (done) return;
        done = true;
        e.inFlight--;
        this.grantWaiters();
      },
    };
  }

  private grantWaiters(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      if (this.endpoints.every((e) => w.exclude.has(e))) {
        this.waiters.splice(i, 1);
        w.fail(new ClamdError('scanner-unavailable', 'no clamd endpoint left to try'));
        continue;
      }
      const e = this.pick(w.exclude);
      if (!e) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      w.grant(this.lease(e));
    }
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(), this.opts.healthIntervalMs);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    if (!this.started && this.endpoints.every((e) => e.up)) {
      // A bare client checks only to bring endpoints back: nothing left to do.
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      return Promise.resolve();
    }
    return this.checkRound();
  }

  /** Return a connection whose INSTREAM completed cleanly to its endpoint's idle list. */
  giveIdle(e: ClamdEndpoint, c: ClamdConn): void {
    e.giveIdle(c);
    if (this.reaper || this.closed || e.idleCount === 0) return;
    // Close connections idle longer than keepaliveMs; runs only while some are idle.
    this.reaper = setInterval(() => {
      for (const x of this.endpoints) x.reapIdle(this.opts.keepaliveMs);
      if (this.endpoints.every((x) => x.idleCount === 0) && this.reaper) {
        clearInterval(this.reaper);
        this.reaper = null;
      }
    }, Math.max(50, this.opts.keepaliveMs / 2));
    this.reaper.unref();
  }

  /** One check per endpoint; a call while a round runs joins that round. */
  private checkRound(all = this.started): Promise<void> {
    this.round ??= Promise.all(this.endpoints.filter((e) => all || !e.up).map((e) => this.check(e))).then(() => {
      this.round = null;
    });
    return this.round;
  }

  private async check(e: ClamdEndpoint): Promise<void> {
    e.checking = true;
    const { commandTimeoutMs: t, connectTimeoutMs: c } = this.opts;
    try {
      const pong = await commandOnce(e.address, 'PING', t, c);
      if (pong !== 'PONG') throw new ClamdError('scanner-protocol', 'unexpected PING reply: ' + clip(pong), e.text);
      const version = await commandOnce(e.address, 'VERSION', t, c);
      if (!/^ClamAV \S/.test(version)) throw new ClamdError('scanner-protocol', 'unexpected VERSION reply: ' + clip(version), e.text);
      e.checkOk(version);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      // Unreachable is unambiguous: eject now, as a refused connect during a scan does.
      if (err instanceof ClamdError && err.errorKind === 'scanner-unavailable') e.connectFailed(why);
      else e.checkFailed(why);
    } finally {
      e.checking = false;
    }
  }
}
