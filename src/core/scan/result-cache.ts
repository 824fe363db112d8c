/**
 * result-cache.ts — remember clamd verdicts by content, so a repeated attachment (the
 * same mail to many recipients, an MTA retry) is not scanned by clamd again.
 *
 * Key: sha256(file bytes) ‖ size ‖ engine name ‖ clamd signature version (the full
 * `zVERSION` reply, "ClamAV 1.4.6/27000/<db date>", which changes when clamd loads new
 * signatures, so a DB update invalidates every entry at once). Value: clean or
 * infected(name) — errors (timeouts, size limits, clamd down) are never cached.
 *
 * CachingScanner wraps a per-file Scanner (clamd): bytes go to clamd as they arrive
 * (nothing is held back, so a miss costs no latency) and through a SHA-256 on the way.
 * At end() the key is complete: on a hit the clamd stream is aborted *before its
 * zero-length terminator* — clamd only scans after the terminator, so its scan work is
 * saved (it just drops the temp file) — and the cached result is returned; on a miss
 * the terminator goes out and a clean/infected answer is stored.
 *
 * The signature version is polled (VERSION on a fresh connection, unref'd timer every
 * `refreshMs`); until a version is known, or while polling fails, the cache is
 * bypassed (never a hit against an unknown DB).
 *
 * Limits: at most `maxEntries` entries (LRU; each ~200 bytes); the hash state is per
 * stream. Errors: none of its own — the wrapped stream's errors pass through.
 * Known gaps: the bytes still travel to clamd on a hit (we only learn the hash at the
 * end); several clamd endpoints with different DB versions share the first one's version.
 */
import { createHash } from 'node:crypto';
import type { FileInfo, ScanResult } from '../types.js';
import type { ScanStream, Scanner } from './scanner.js';

export interface ResultCacheStats {
  entries: number;
  hits: number;
  misses: number;
  /** Lookups skipped because no signature version was known. */
  bypassed: number;
}

/** A bounded LRU of scan results (Map insertion order = recency). */
export class ResultCache {
  private readonly map = new Map<string, ScanResult>();
  readonly stats: ResultCacheStats = { entries: 0, hits: 0, misses: 0, bypassed: 0 };

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`result cache size must be a positive integer, got ${maxEntries}`);
  }

  static key(sha256hex: string, size: number, engine: string, version: string): string {
    return `${engine}\0${version}\0${size}\0${sha256hex}`;
  }

  get(key: string): ScanResult | undefined {
    const r = this.map.get(key);
    if (r === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, r);
    this.stats.hits++;
    return r;
  }

  /** Stores clean and infected results only. */
  set(key: string, r: ScanResult): void {
    if (r.kind === 'error') return;
    this.map.delete(key);
    this.map.set(key, r.kind === 'clean' ? { kind: 'clean' } : { kind: 'infected', name: r.name });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
    this.stats.entries = this.map.size;
  }

  get size(): number {
    return this.map.size;
  }
}

/** Where the current signature version comes from (clamd: its VERSION reply). */
export interface VersionSource {
  version(): Promise<string>;
}

export interface CachingScannerOptions {
  maxEntries: number;
  /** Signature version provider, polled every refreshMs. */
  versions: VersionSource;
  /** Default 15000. */
  refreshMs?: number;
}

export class CachingScanner implements Scanner {
  readonly name: string;
  readonly mode: 'per-file' | 'whole-message';
  readonly cache: ResultCache;
  private current: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  /** Resolves after the first version poll finished (tests, benchmarks). */
  readonly ready: Promise<void>;

  constructor(
    private readonly inner: Scanner,
    private readonly opts: CachingScannerOptions,
  ) {
    this.name = inner.name;
    this.mode = inner.mode;
    this.cache = new ResultCache(opts.maxEntries);
    this.ready = this.refresh();
    this.timer = setInterval(() => void this.refresh(), opts.refreshMs ?? 15_000);
    this.timer.unref();
  }

  /** The signature version the cache keys use now; null = unknown (cache bypassed). */
  get version(): string | null {
    return this.current;
  }

  refresh(): Promise<void> {
    this.refreshing ??= this.opts.versions
      .version()
      .then(
        (v) => {
          this.current = v;
        },
        () => {
          this.current = null; // unknown DB: no hits until clamd answers again
        },
      )
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  open(file: FileInfo, signal?: AbortSignal): ScanStream {
    const inner = this.inner.open(file, signal);
    const version = this.current;
    if (version === null) {
      this.cache.stats.bypassed++;
      return inner;
    }
    const hash = createHash('sha256');
    let size = 0;
    const cache = this.cache;
    const engine = this.name;
    const self = this;
    return {
      write(chunk: Uint8Array): ScanResult | null {
        hash.update(chunk);
        size += chunk.length;
        return inner.write(chunk);
      },
      get needsDrain() {
        return inner.needsDrain;
      },
      drain: () => inner.drain(),
      abort: () => inner.abort(),
      async end(): Promise<ScanResult> {
        const key = ResultCache.key(hash.digest('hex'), size, engine, version);
        const hit = cache.get(key);
        if (hit) {
          // Before the terminator: clamd never scans these bytes.
          inner.abort();
          return hit;
        }
        const r = await inner.end();
        if (self.current === version) cache.set(key, r);
        return r;
      },
    };
  }
}
