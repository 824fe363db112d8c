/**
 * shared-cache.ts — the verdict cache shared by every midstream instance, on Redis or
 * Valkey, with fallback: when the shared store is down, slow or answers garbage, a
 * lookup is a miss (the local cache and clamd answer instead), so the SMTP reply never
 * depends on it.
 *
 * Input: keys from result-cache.ts (already namespaced, hashed) and final ScanResults.
 * Output: ScanResult | undefined from get(); set() is fire-and-forget.
 * Wire value: `1|clean` or `1|infected|NAME` (NAME printable ASCII, ≤ 200 chars); anything
 * else is garbage. Entries carry the TTL (PX), so Redis expires them itself.
 * Fallback state: 'up' or 'down'. Any error, timeout (timeoutMs per command) or garbage
 * value turns it down; while down, no command is sent for retryMs (a slow Redis must not
 * add its timeout to every message); the first command after that probes, and a success
 * turns it up. onState is called once per transition (the caller logs it and sets a
 * metric). Errors: none escape; get() never rejects, set() never throws.
 * Trust: the store is trusted like clamd itself — a writer to it can mark any content
 * clean. Put it on a private network and use a password (and TLS across hosts).
 * Limits: one command per lookup and per store; nothing is buffered while down.
 */
import type { ScanResult } from '../types.js';

/** The subset of a Redis client used here (ioredis fits; tests may pass their own). */
export interface RedisLike {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode: 'PX', ms: number): Promise<unknown>;
  /** Close the connection (best effort). */
  quit(): Promise<unknown>;
}

export type SharedState = 'up' | 'down';

export interface SharedCacheOptions {
  ttlMs: number;
  /** Deadline per command; over it counts as a failure. */
  timeoutMs: number;
  /** After a failure, skip the store this long before probing it again. */
  retryMs: number;
  onState?: (state: SharedState, reason: string) => void;
}

export interface SharedCacheStats {
  hits: number;
  misses: number;
  /** Lookups not sent because the store was down. */
  skipped: number;
  errors: number;
  garbage: number;
}

const NAME_RE = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/;

export function encodeVerdict(r: ScanResult): string | null {
  if (r.kind === 'clean') return '1|clean';
  if (r.kind === 'infected' && NAME_RE.test(r.name)) return `1|infected|${r.name}`;
  return null;
}

/** Strict: anything but the two forms above is garbage (undefined). */
export function decodeVerdict(v: string): ScanResult | undefined {
  if (v === '1|clean') return { kind: 'clean' };
  if (v.startsWith('1|infected|')) {
    const name = v.slice('1|infected|'.length);
    if (NAME_RE.test(name)) return { kind: 'infected', name };
  }
  return undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

export class SharedVerdictCache {
  private state: SharedState = 'up';
  private retryAt = 0;
  readonly stats: SharedCacheStats = { hits: 0, misses: 0, skipped: 0, errors: 0, garbage: 0 };

  constructor(
    private readonly client: RedisLike,
    private readonly opts: SharedCacheOptions,
  ) {}

  get currentState(): SharedState {
    return this.state;
  }

  /** A cached final verdict, or undefined (miss, store down, slow or garbage). */
  async get(key: string): Promise<ScanResult | undefined> {
    if (!this.usable()) {
      this.stats.skipped++;
      return undefined;
    }
    let raw: string | null;
    try {
      raw = await withTimeout(this.client.get(key), this.opts.timeoutMs);
    } catch (e) {
      this.failed(e);
      return undefined;
    }
    if (raw === null) {
      this.ok();
      this.stats.misses++;
      return undefined;
    }
    const r = typeof raw === 'string' ? decodeVerdict(raw) : undefined;
    if (!r) {
      this.stats.garbage++;
      this.failed(new Error(`garbage value (${JSON.stringify(String(raw).slice(0, 40))})`));
      return undefined;
    }
    this.ok();
    this.stats.hits++;
    return r;
  }

  /** Store a final verdict; errors only change the state. */
  set(key: string, r: ScanResult): void {
    const v = encodeVerdict(r);
    if (v === null || !this.usable()) return;
    withTimeout(this.client.set(key, v, 'PX', this.opts.ttlMs), this.opts.timeoutMs).then(
      () => this.ok(),
      (e: unknown) => this.failed(e),
    );
  }

  close(): Promise<void> {
    return this.client.quit().then(
      () => undefined,
      () => undefined,
    );
  }

  private usable(): boolean {
    return this.state === 'up' || Date.now() >= this.retryAt;
  }

  private ok(): void {
    if (this.state === 'up') return;
    this.state = 'up';
    this.opts.onState?.('up', 'answering again');
  }

  private failed(e: unknown): void {
    this.stats.errors++;
    this.retryAt = Date.now() + this.opts.retryMs;
    if (this.state === 'down') return;
    this.state = 'down';
    const why = e instanceof Error ? e.message : String(e);
    this.opts.onState?.('down', why.slice(0, 200));
  }
}
