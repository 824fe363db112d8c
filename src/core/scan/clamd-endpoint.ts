/**
 * clamd-endpoint.ts — one clamd endpoint's state: its concurrency slots, health with
 * hysteresis, signature version, counters, and its idle IDSESSION connections.
 *
 * Health (haproxy-style rise/fall): an endpoint is ejected (up → down) at once when a
 * connect fails (it cannot take work), or after `fall` consecutive failed scans or
 * health checks (timeouts, garbage, connection lost, clamd ERROR replies); it is
 * readmitted only after `rise` consecutive good health checks (PING → PONG and VERSION
 * → `ClamAV …`), so a flapping clamd does not take traffic on its first good answer.
 * A size-limit reply or our own abort says nothing about clamd's health.
 *
 * Version: the last VERSION reply (e.g. `ClamAV 1.4.6/27000/Mon Jan  1 …`); null only
 * until the first one. A failed check or scan keeps it: a clamd that stops answering has
 * not told us of another database, and only a VERSION reply can (the verdict cache keys
 * on it, so a pool whose endpoints run different databases never mixes their verdicts,
 * and verdicts cached under the last database stay valid while clamd is down).
 * Limits: at most maxConcurrent streams in flight and at most maxConcurrent idle
 * connections. Errors: none thrown; transitions are reported through onTransition.
 */
import type { ClamdAddress } from './clamd-wire.js';
import type { ClamdConn } from './clamd-conn.js';

export interface EndpointStatus {
  endpoint: string;
  up: boolean;
  lastError?: string;
  /** Streams holding one of this endpoint's slots now. */
  inFlight: number;
  maxConcurrent: number;
  /** Last VERSION reply (kept when clamd stops answering); null = none yet. */
  version: string | null;
  /** Scans answered (clean or infected) / failed, since start. */
  scans: number;
  errors: number;
  /** Moving average of end-of-stream → reply, ms (0 before the first scan). */
  latencyMs: number;
  /** New connections made / INSTREAMs sent over a reused IDSESSION connection. */
  connects: number;
  reused: number;
  idleConnections: number;
}

export interface EndpointHealth {
  /** Consecutive failures that eject an up endpoint. */
  fall: number;
  /** Consecutive good health checks that readmit a down endpoint. */
  rise: number;
}

export type TransitionListener = (endpoint: string, up: boolean, reason: string) => void;

export class ClamdEndpoint {
  up = true;
  lastError: string | undefined;
  inFlight = 0;
  /** Raw-message streams open on it (their own pool; they hold no scan slot). */
  rawInFlight = 0;
  version: string | null = null;
  checking = false;
  scans = 0;
  errors = 0;
  latencyMs = 0;
  connects = 0;
  reused = 0;
  private failures = 0;
  private successes = 0;
  private readonly idle: ClamdConn[] = [];

  constructor(
    readonly address: ClamdAddress,
    readonly maxConcurrent: number,
    private readonly health: EndpointHealth,
    private readonly onTransition: TransitionListener,
  ) {}

  get text(): string {
    return this.address.text;
  }

  get hasCapacity(): boolean {
    return this.inFlight < this.maxConcurrent;
  }

  /** Outstanding work relative to capacity (selection key). */
  get load(): number {
    return this.inFlight / this.maxConcurrent;
  }

  status(): EndpointStatus {
    return {
      endpoint: this.text,
      up: this.up,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      inFlight: this.inFlight,
      maxConcurrent: this.maxConcurrent,
      version: this.version,
      scans: this.scans,
      errors: this.errors,
      latencyMs: Math.round(this.latencyMs * 10) / 10,
      connects: this.connects,
      reused: this.reused,
      idleConnections: this.idle.length,
    };
  }

  /** A scan answered by clamd (clean or infected). */
  scanOk(latencyMs: number): void {
    this.scans++;
    this.latencyMs = this.latencyMs === 0 ? latencyMs : this.latencyMs * 0.8 + latencyMs * 0.2;
    this.failures = 0;
  }

  /** A scan failed for a reason that may be clamd's (not size limit, not our abort). */
  scanFailed(why: string): void {
    this.errors++;
    this.softFailure(why);
  }

  /** The endpoint could not be reached: eject now. */
  connectFailed(why: string): void {
    this.errors++;
    this.lastError = why;
    this.failures = this.health.fall;
    this.successes = 0;
    this.closeIdle();
    this.setUp(false, why);
  }

  checkOk(version: string): void {
    this.version = version;
    this.failures = 0;
    if (this.up) {
      this.lastError = undefined;
      return;
    }
    if (++this.successes >= this.health.rise) {
      this.lastError = undefined;
      this.setUp(true, `${this.successes} good health checks`);
    }
  }

  /** A failed health check (timeout, garbage). The version stays: see the file header. */
  checkFailed(why: string): void {
    this.softFailure(why);
  }

  /** A VERSION reply outside the health checks (learnVersion): the version only, no health. */
  versionSeen(version: string): void {
    this.version = version;
  }

  // ---- idle IDSESSION connections ---------------------------------------------------

  get idleCount(): number {
    return this.idle.length;
  }

  /** Most recently used idle connection that is still open, or null. */
  takeIdle(): ClamdConn | null {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (!c.closed) {
        this.reused++;
        return c;
      }
    }
    return null;
  }

  giveIdle(c: ClamdConn): void {
    if (!this.up || this.idle.length >= this.maxConcurrent || c.closed) return c.close(true);
    c.release();
    c.onIdleClose = (x) => this.dropIdle(x);
    this.idle.push(c);
  }

  /** Close connections idle for longer than maxIdleMs (all with 0). */
  reapIdle(maxIdleMs: number, now = performance.now()): void {
    for (const c of this.idle.slice()) if (now - c.idleSince >= maxIdleMs) this.dropIdle(c, true);
  }

  closeIdle(): void {
    for (const c of this.idle.splice(0)) c.close(true);
  }

  private dropIdle(c: ClamdConn, polite = false): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    c.close(polite);
  }

  private softFailure(why: string): void {
    this.lastError = why;
    this.successes = 0;
    if (++this.failures >= this.health.fall && this.up) {
      this.closeIdle();
      this.setUp(false, `${this.failures} failures in a row, last: ${why}`);
    }
  }

  private setUp(up: boolean, reason: string): void {
    if (this.up === up) return;
    this.up = up;
    this.onTransition(this.text, up, reason);
  }
}
