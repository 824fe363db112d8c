/**
 * engine.ts — builds the scanning engine once (signatures loaded, clamd client up)
 * and starts one MessageSession per message.
 *
 * An Engine is an immutable snapshot: reload builds a new one beside it and the
 * fronts swap it for new messages only, so messages in flight finish on theirs; close()
 * waits for the last of them before the clamd client stops.
 *
 * Hooks are explicit options, never patched onto a session: `policyFor(envelope)` picks
 * a message's policy at begin() (the [[rules]] live in the config layer and come in
 * through it), `onVerdict(event)` hears every message's verdict once (metrics, logs),
 * and begin(envelope, {policy, rule, onVerdict}) does the same for one message.
 */
import type { Envelope, Verdict } from './types.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { DEFAULT_ACTIONS, type Action, type Actions, type ReplyTemplates } from './policy-table.js';
import { DEFAULT_BANNED_EXTENSIONS, DEFAULT_BANNED_MIME_TYPES, DEFAULT_BANNED_TYPES } from './banned.js';
import { GlobList } from './name-glob.js';
import { MessageSession, type MessagePolicy, type SessionStats, type VerdictEvent } from './session.js';
import { ERROR_CODES, MidstreamError } from './errors.js';
import type { RawMessageSource, Scanner } from './scan/scanner.js';
import { SignatureDb } from './scan/sigs/signature-db.js';
import { BuiltinScanner } from './scan/builtin-scanner.js';
import { ClamdClient, type ClamdClientOptions, type ClamdEvents } from './scan/clamd-client.js';
import { ClamdScanner } from './scan/clamd-scanner.js';
import { CachingScanner, type CacheLookup } from './scan/result-cache.js';
import { SharedVerdictCache, type RedisLike, type SharedState } from './scan/shared-cache.js';
import type { ReleaseGate } from './release-gate.js';

export type { SessionStats, MessagePolicy, VerdictEvent };

/** clamd client options ('tcp:HOST:PORT' / 'unix:/path' endpoints; several = a balanced pool) plus the feeding mode. */
/** cacheEntries: in-process verdict cache size (content hash + clamd signature version → verdict); 0/undefined = off. */
/**
 * rawMessage (per-file mode): also stream the raw message to clamd, finished only for messages
 * that showed an anomaly ('anomaly', the default), for every message ('always'), or never ('off').
 */
export type ClamdOptions = ClamdClientOptions & { mode?: 'per-file' | 'whole-message'; cacheEntries?: number; rawMessage?: 'anomaly' | 'always' | 'off' };

/** The verdict cache's TTL and its shared tier (Redis/Valkey); used only with clamd and cacheEntries > 0. */
export interface CacheOptions {
  /** Entry lifetime in both tiers (default 1 h). */
  ttlMs?: number;
  /** Namespace mixed into every key. */
  prefix?: string;
  /** `redis://HOST:PORT`, `rediss://…`, `unix:/path`; absent/"" = in-process cache only. */
  url?: string;
  password?: string;
  /** Deadline per Redis command (default 100 ms). */
  timeoutMs?: number;
  /** After a Redis failure, skip it this long (default 5 s). */
  retryMs?: number;
  /** A ready client instead of url (tests). */
  client?: RedisLike;
}

/** What the engine reports while it works (metrics, logs). Listeners must not throw. */
export interface EngineEvents extends ClamdEvents {
  cacheLookup?(result: CacheLookup): void;
  /** The shared cache went down (lookups fall back to the local cache and clamd) or came back. */
  cacheShared?(state: SharedState, reason: string): void;
}

/** A per-message policy choice: what to change from the engine's policy, and which rule(s) chose it. */
export interface PolicyChoice {
  policy: Partial<MessagePolicy>;
  /** For logs, e.g. the [[rules]] names joined by ",". */
  rule?: string;
}

export interface EngineOptions {
  /** Built-in engine signature files/dirs (.ndb .hdb .hsb .fp .sfp .cvd .cld); EICAR is always built in. */
  signatures?: string[];
  /** Run the built-in engine (default true). */
  builtin?: boolean;
  clamd?: ClamdOptions;
  cache?: CacheOptions;
  events?: EngineEvents;
  limits?: Partial<Limits>;
  actions?: Partial<Actions>;
  bannedExtensions?: readonly string[];
  bannedTypes?: readonly string[];
  checkBannedInArchives?: boolean;
  encrypted?: Action;
  /** Banned file-name globs beside the extensions (default none). */
  bannedNames?: readonly string[];
  /** Banned declared MIME types, globs (default DEFAULT_BANNED_MIME_TYPES). */
  bannedMimeTypes?: readonly string[];
  /** Reply templates per verdict kind (src/core/policy-table.ts parseReplyTemplate). */
  replies?: ReplyTemplates;
  /** Called once per structural anomaly seen (for a metric); must not throw. */
  onAnomaly?: (code: string) => void;
  /**
   * The policy hook: called at every begin() with the envelope; what it returns is laid
   * over the engine's policy for that message (e.g. [[rules]] by client, AUTH, recipient).
   */
  policyFor?: (envelope: Envelope) => PolicyChoice | undefined;
  /** The verdict hook: once per message with a verdict (metrics). See VerdictEvent. */
  onVerdict?: (e: VerdictEvent) => void;
}

/** Per-message options of begin(); they win over the engine's hooks. */
export interface BeginOptions {
  /** Policy for this message, laid over the engine's (and over policyFor's choice). */
  policy?: Partial<MessagePolicy>;
  /** Rule name(s) for logs when `policy` came from a rule. */
  rule?: string;
  /** Called once with this message's verdict (after the engine's onVerdict). */
  onVerdict?: (e: VerdictEvent) => void;
}

export interface Session {
  /**
   * `chunk` is borrowed until push() returns (not until its promise settles): the core copies
   * what it keeps. Returns exactly `PUSHED` when nothing needs awaiting (no clamd stream
   * over its high-water mark), so a front can stay synchronous on that path.
   */
  push(chunk: Uint8Array): Promise<void>;
  /**
   * Bytes the next push() can carry without a scan stream going over its high-water mark
   * (Infinity: unbounded; 0: a stream waits for a drain). A front sizes its socket reads
   * by it, so a connection whose clamd stream waits for a slot holds little. Optional so
   * test doubles need not have it (absent = unbounded).
   */
  room?(): number;
  end(): Promise<Verdict>;
  abort(): void;
  onFinal(cb: (v: Verdict) => void): void;
  /** The latched final verdict, if one is already certain. */
  readonly verdict: Verdict | null;
  readonly stats: SessionStats;
  /** The policy this message is scanned under (hooks applied); its actions pick the reply. */
  readonly policy: Readonly<MessagePolicy>;
  /** The rule(s) that chose the policy, if any. */
  readonly rule?: string;
  /** For fronts that deliver the message while it is scanned (POP3): see release-gate.ts. */
  readonly gate: ReleaseGate;
}

export interface Engine {
  begin(envelope?: Envelope, options?: BeginOptions): Session;
  /** Engines in use, e.g. ['builtin'] or ['builtin','clamd']. */
  readonly engines: readonly string[];
  readonly signatureCount: number;
  readonly signatureVersion: string;
  /** Signatures the built-in engine skipped at load, by reason (unsupported syntax etc.). */
  readonly signaturesSkipped: Readonly<Record<string, number>>;
  readonly policy: Readonly<MessagePolicy>;
  readonly clamd: ClamdClient | null;
  /** The clamd verdict cache, if on (stats, shared tier state). */
  readonly cache?: CachingScanner | null;
  /** Sessions begun and not yet finished (verdict latched, end() settled or abort()). */
  readonly activeSessions: number;
  /**
   * Release scanners (clamd client timers). Safe while messages are in flight: it takes
   * effect when the last session begun on this engine finishes; new begin() calls still
   * work meanwhile. Resolves when released.
   */
  close(): Promise<void>;
}

/** Signatures the built-in engine could not use, by reason; whole files of a type it does not read count as "file-<type>". */
function skippedByReason(db: SignatureDb | null): Readonly<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(db?.skipped ?? {})) if (v) out[k] = v;
  for (const f of db?.skippedFiles ?? []) {
    if (f.reason !== 'unsupported-type') continue; // "superseded": a newer copy of the same database was loaded
    const ext = /\.([a-z0-9]+)$/i.exec(f.file)?.[1]?.toLowerCase() ?? 'unknown';
    out[`file-${ext}`] = (out[`file-${ext}`] ?? 0) + 1;
  }
  return Object.freeze(out);
}

export async function createEngine(opts: EngineOptions = {}): Promise<Engine> {
  const policy: MessagePolicy = Object.freeze({
    limits: Object.freeze({ ...DEFAULT_LIMITS, ...opts.limits }),
    actions: Object.freeze({ ...DEFAULT_ACTIONS, ...opts.actions }),
    bannedExtensions: new Set((opts.bannedExtensions ?? DEFAULT_BANNED_EXTENSIONS).map((e) => e.replace(/^\./, '').toLowerCase())),
    bannedTypes: new Set(opts.bannedTypes ?? DEFAULT_BANNED_TYPES),
    checkBannedInArchives: opts.checkBannedInArchives ?? true,
    skipBanned: false,
    encrypted: opts.encrypted ?? 'reject',
    bannedNames: new GlobList(opts.bannedNames ?? []),
    bannedMimeTypes: new GlobList(opts.bannedMimeTypes ?? DEFAULT_BANNED_MIME_TYPES),
    ...(opts.replies ? { replies: Object.freeze({ ...opts.replies }) } : {}),
  });
  const scanners: Scanner[] = [];
  let db: SignatureDb | null = null;
  if (opts.builtin !== false) {
    db = opts.signatures?.length ? await SignatureDb.load(opts.signatures) : SignatureDb.builtin();
    scanners.push(new BuiltinScanner(db));
  }
  let clamd: ClamdClient | null = null;
  let cached: CachingScanner | null = null;
  let raw: RawMessageSource | null = null;
  let shared: SharedVerdictCache | null = null;
  const ev = opts.events;
  if (opts.clamd && opts.clamd.endpoints.length > 0) {
    const { mode, cacheEntries, rawMessage, ...clientOptions } = opts.clamd;
    const client = (clamd = new ClamdClient({ ...clientOptions, ...(ev ? { events: ev } : {}) }));
    // Health checks and per-endpoint versions from now on; not awaited, so a clamd that is
    // down does not delay startup (the cache is bypassed until a version is known; a scan asks).
    void client.start();
    const scanner = new ClamdScanner({ client, mode: mode ?? 'per-file' });
    const rawMode = rawMessage ?? 'anomaly';
    if (rawMode !== 'anomaly' && rawMode !== 'always' && rawMode !== 'off') throw new RangeError(`clamd rawMessage must be 'anomaly', 'always' or 'off', got ${String(rawMode)}`);
    raw = scanner.rawSource(rawMode);
    if (cacheEntries) {
      const c = opts.cache ?? {};
      const ttlMs = c.ttlMs ?? 3_600_000;
      // ioredis is loaded only when a shared cache is configured (it costs ~20 MB of RSS).
      const redis = c.client ?? (c.url ? (await import('./scan/redis-client.js')).connectRedis({ url: c.url, timeoutMs: c.timeoutMs ?? 100, ...(c.password ? { password: c.password } : {}) }) : null);
      if (redis) {
        shared = new SharedVerdictCache(redis, {
          ttlMs,
          timeoutMs: c.timeoutMs ?? 100,
          retryMs: c.retryMs ?? 5000,
          ...(ev?.cacheShared ? { onState: (st: SharedState, why: string) => ev.cacheShared!(st, why) } : {}),
        });
        ev?.cacheShared?.('up', 'shared cache configured');
      }
      cached = new CachingScanner(scanner, {
        maxEntries: cacheEntries,
        ttlMs,
        ...(c.prefix ? { prefix: c.prefix } : {}),
        ...(shared ? { shared } : {}),
        ...(ev?.cacheLookup ? { onLookup: (l: CacheLookup) => ev.cacheLookup!(l) } : {}),
      });
    }
    scanners.push(cached ?? scanner);
  }
  if (scanners.length === 0) throw new MidstreamError(ERROR_CODES.noEngine, 'no scan engine configured (built-in disabled and no clamd endpoints)');
  const frozen = Object.freeze(scanners.slice());

  let active = 0;
  let closing: Promise<void> | null = null;
  let release: (() => void) | null = null;
  const releaseNow = () => {
    clamd?.close();
    void shared?.close();
  };
  const sessionDone = () => {
    active--;
    if (active === 0 && release) {
      release();
      release = null;
    }
  };
  return {
    engines: frozen.map((s) => s.name),
    signatureCount: db?.count ?? 0,
    signatureVersion: db?.version ?? '',
    signaturesSkipped: skippedByReason(db),
    policy,
    clamd,
    cache: cached,
    get activeSessions() {
      return active;
    },
    begin(envelope: Envelope = {}, o: BeginOptions = {}): Session {
      const choice = opts.policyFor?.(envelope);
      const p: MessagePolicy = choice || o.policy ? { ...policy, ...choice?.policy, ...o.policy } : policy;
      const rule = o.rule ?? choice?.rule;
      const verdictHooks = [opts.onVerdict, o.onVerdict].filter((h): h is (e: VerdictEvent) => void => h !== undefined);
      active++;
      return new MessageSession(p, frozen, envelope, { anomaly: opts.onAnomaly, verdict: verdictHooks, done: sessionDone }, rule, raw);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        release = () => {
          releaseNow();
          resolve();
        };
        if (active === 0) {
          release();
          release = null;
        }
      });
      return closing;
    },
  };
}
