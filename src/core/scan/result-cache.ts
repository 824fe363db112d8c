/**
 * result-cache.ts — remember clamd verdicts by content, so a repeated attachment (one
 * campaign to many recipients, an MTA retry) is not scanned by clamd again: an
 * in-process LRU in front of an optional shared store (shared-cache.ts, Redis/Valkey).
 *
 * Key: sha256(prefix ‖ engine ‖ signature version ‖ size ‖ sha256(file bytes)), hex.
 * The signature version is the VERSION reply of the clamd endpoint that scans (or would
 * scan) the file — `ClamAV 1.4.6/27000/<db date>` — so a database update, or a pool whose
 * endpoints run different databases, never serves a verdict made by another database.
 * `prefix` is the operator's namespace (bump it to drop everything, e.g. after adding
 * third-party signatures, which VERSION does not show).
 * Value: clean or infected(name) only — errors (timeouts, size limits, clamd down) are
 * never cached, and nothing that depends on our configuration is (limits, banned names
 * and policy are decided outside the scanner).
 *
 * CachingScanner wraps a per-file Scanner (clamd): bytes go to clamd as they arrive
 * (a miss costs no latency) and through a SHA-256 on the way. At end() the key is
 * complete: local hit, else — if the same key is already being looked up or scanned in
 * this process — that result, else shared hit, else a miss. On a hit the clamd stream is
 * aborted *before its zero-length terminator* (clamd only scans after it, so its scan
 * work is saved); on a miss the terminator goes out and a clean/infected answer is
 * stored in both tiers, unless the endpoint's version changed meanwhile.
 * While the version is unknown (clamd never answered VERSION since this engine started)
 * the cache is bypassed: never a hit against an unknown database.
 * clamd down: the version is the last one clamd reported (clamd-endpoint.ts), so content
 * cached under it is still answered from the cache — a final verdict for these bytes from
 * that database, valid until the TTL or a VERSION reply that differs (rspamd's antivirus
 * cache likewise answers before any scanner is asked, keyed on content alone) — and
 * everything else gets the scanner's error (fail closed). The answer does not depend on
 * whether a health check has noticed the outage yet.
 * Limits: maxEntries local entries (LRU, each ~250 bytes) for at most ttlMs each.
 * Errors: none of its own; the wrapped stream's errors pass through; the shared store
 * never makes a lookup fail (see shared-cache.ts).
 * Files up to 16 KiB are held until their end (a hit then never contacts clamd); larger
 * ones stream to clamd as they arrive.
 * Known gaps: a larger file's bytes still travel to clamd on a hit (we only learn the hash
 * at the end: clamd receives them into a temp file and drops it unscanned); two instances
 * scanning the same file at the same moment both pay clamd. The version is as fresh as
 * the last VERSION reply (health checks every few seconds): a clamd that reloaded a new
 * database, or came back with one, has its answers stored under the previous version
 * until the next check (the entries then stop matching).
 */
import { createHash } from 'node:crypto';
import type { FileInfo, ScanResult } from '../types.js';
import type { ScanStream, Scanner } from './scanner.js';
import type { SharedVerdictCache } from './shared-cache.js';

export interface ResultCacheStats {
  entries: number;
  hits: number;
  misses: number;
  /** Lookups skipped because no signature version was known. */
  bypassed: number;
}

/** A bounded LRU of scan results with a TTL (Map insertion order = recency). */
export class ResultCache {
  private readonly map = new Map<string, { r: ScanResult; until: number }>();
  readonly stats: ResultCacheStats = { entries: 0, hits: 0, misses: 0, bypassed: 0 };

  constructor(
    readonly maxEntries: number,
    readonly ttlMs = 3_600_000,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`result cache size must be a positive integer, got ${maxEntries}`);
    if (!(ttlMs > 0)) throw new RangeError(`result cache TTL must be positive, got ${ttlMs}`);
  }

  static key(sha256hex: string, size: number, engine: string, version: string, prefix = ''): string {
    return createHash('sha256').update(`${prefix}\0${engine}\0${version}\0${size}\0${sha256hex}`).digest('hex');
  }

  get(key: string, now = Date.now()): ScanResult | undefined {
    const e = this.map.get(key);
    if (e === undefined || e.until <= now) {
      if (e) this.map.delete(key);
      this.stats.entries = this.map.size;
      this.stats.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    this.stats.hits++;
    return e.r;
  }

  /** Stores clean and infected results only. */
  set(key: string, r: ScanResult, now = Date.now()): void {
    if (r.kind === 'error') return;
    this.map.delete(key);
    this.map.set(key, { r: r.kind === 'clean' ? { kind: 'clean' } : { kind: 'infected', name: r.name }, until: now + this.ttlMs });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
    this.stats.entries = this.map.size;
  }

  get size(): number {
    return this.map.size;
  }
}

/** Files up to this size are held until their end, so a cache hit never contacts clamd (the bound a clamd stream waiting for a slot holds anyway). */
const HOLD_BYTES = 16 * 1024;

export type CacheLookup = 'hit-local' | 'hit-shared' | 'hit-inflight' | 'miss' | 'bypass';

export interface CachingScannerOptions {
  maxEntries: number;
  ttlMs?: number;
  /** Namespace mixed into every key. */
  prefix?: string;
  shared?: SharedVerdictCache;
  /** One call per lookup (metrics). Must not throw. */
  onLookup?: (result: CacheLookup) => void;
}

export class CachingScanner implements Scanner {
  readonly name: string;
  readonly mode: 'per-file' | 'whole-message';
  readonly cache: ResultCache;
  /** Scans of a key running now in this process (a burst of one campaign waits for the first). */
  private readonly inflight = new Map<string, Promise<ScanResult>>();
  readonly lookups: Record<CacheLookup, number> = { 'hit-local': 0, 'hit-shared': 0, 'hit-inflight': 0, miss: 0, bypass: 0 };

  constructor(
    private readonly inner: Scanner,
    private readonly opts: CachingScannerOptions,
  ) {
    this.name = inner.name;
    this.mode = inner.mode;
    this.cache = new ResultCache(opts.maxEntries, opts.ttlMs);
  }

  get openRoom(): number | undefined {
    return this.inner.openRoom;
  }

  get shared(): SharedVerdictCache | undefined {
    return this.opts.shared;
  }

  private counted(l: CacheLookup): void {
    this.lookups[l]++;
    this.opts.onLookup?.(l);
  }

  open(file: FileInfo, signal?: AbortSignal): ScanStream {
    const inner = this.inner.open(file, signal);
    const versionOf = inner.signatureVersion?.bind(inner);
    if (!versionOf) {
      this.cache.stats.bypassed++;
      this.counted('bypass');
      return inner;
    }
    const hash = createHash('sha256');
    let size = 0;
    const self = this;
    // A small file is held back (copied) until its end: a hit then costs clamd nothing at
    // all — no connection, no upload. Past HOLD_BYTES everything streams to clamd as it comes.
    let held: Buffer[] | null = [];
    let heldBytes = 0;
    const flush = () => {
      if (!held) return;
      const h = held;
      held = null;
      for (const b of h) inner.write(b);
    };
    return {
      write(chunk: Uint8Array): ScanResult | null {
        hash.update(chunk);
        size += chunk.length;
        if (held) {
          if (heldBytes + chunk.length <= HOLD_BYTES) {
            held.push(Buffer.from(chunk));
            heldBytes += chunk.length;
            return null;
          }
          flush();
        }
        return inner.write(chunk);
      },
      get needsDrain() {
        return inner.needsDrain;
      },
      // Held bytes go to the inner stream later: they count against its room now.
      get room() {
        const r = inner.room;
        return r === undefined ? Infinity : Math.max(0, r - (held ? heldBytes : 0));
      },
      drain: () => inner.drain(),
      abort: () => inner.abort(),
      signatureVersion: versionOf,
      end: () => self.finish(inner, versionOf, hash.digest('hex'), size, flush),
    };
  }

  private async finish(inner: ScanStream, versionOf: () => Promise<string | null>, digest: string, size: number, flush: () => void): Promise<ScanResult> {
    const version = await versionOf();
    if (version === null) {
      this.cache.stats.bypassed++;
      this.counted('bypass');
      flush();
      return inner.end();
    }
    const key = ResultCache.key(digest, size, this.name, version, this.opts.prefix ?? '');
    const local = this.cache.get(key);
    if (local) return this.hit(inner, local, 'hit-local');
    const running = this.inflight.get(key);
    if (running) {
      const r = await running;
      if (r.kind !== 'error') return this.hit(inner, r, 'hit-inflight');
    }
    // From here until a result, copies of this file in this process wait for this lookup
    // (the shared one included) instead of asking Redis and clamd themselves.
    let settle!: (r: ScanResult) => void;
    const mine = this.inflight.has(key) ? null : new Promise<ScanResult>((r) => (settle = r));
    if (mine) this.inflight.set(key, mine);
    let result: ScanResult = { kind: 'error', errorKind: 'aborted' };
    try {
      const shared = this.opts.shared ? await this.opts.shared.get(key) : undefined;
      if (shared) {
        this.cache.set(key, shared);
        result = shared;
        return this.hit(inner, shared, 'hit-shared');
      }
      this.counted('miss');
      flush();
      result = await inner.end();
      if (result.kind !== 'error' && (await versionOf()) === version) {
        this.cache.set(key, result);
        this.opts.shared?.set(key, result);
      }
      return result;
    } finally {
      if (mine) {
        if (this.inflight.get(key) === mine) this.inflight.delete(key);
        settle(result);
      }
    }
  }

  private hit(inner: ScanStream, r: ScanResult, how: CacheLookup): ScanResult {
    // Before the terminator: clamd never scans these bytes.
    inner.abort();
    this.counted(how);
    return r;
  }
}
