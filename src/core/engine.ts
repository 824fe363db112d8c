/**
 * engine.ts — builds the scanning engine once (signatures loaded, clamd client up)
 * and starts one MessageSession per message.
 *
 * An Engine is an immutable snapshot: reload builds a new one beside it and the
 * fronts swap it for new messages only, so messages in flight finish on theirs.
 */
import type { Envelope, Verdict } from './types.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { DEFAULT_ACTIONS, type Action, type Actions } from './policy-table.js';
import { DEFAULT_BANNED_EXTENSIONS, DEFAULT_BANNED_TYPES } from './banned.js';
import { MessageSession, type MessagePolicy, type SessionStats } from './session.js';
import type { Scanner } from './scan/scanner.js';
import { SignatureDb } from './scan/sigs/signature-db.js';
import { BuiltinScanner } from './scan/builtin-scanner.js';
import { ClamdClient, type ClamdClientOptions } from './scan/clamd-client.js';
import { ClamdScanner } from './scan/clamd-scanner.js';
import { CachingScanner } from './scan/result-cache.js';

export type { SessionStats, MessagePolicy };

/** clamd client options ('tcp:HOST:PORT' / 'unix:/path' endpoints; several = failover) plus the feeding mode. */
/** cacheEntries: results cache size (content hash + clamd signature version → verdict); 0/undefined = off. */
export type ClamdOptions = ClamdClientOptions & { mode?: 'per-file' | 'whole-message'; cacheEntries?: number };

export interface EngineOptions {
  /** Built-in engine signature files/dirs (.ndb .hdb .hsb .fp .sfp .cvd .cld); EICAR is always built in. */
  signatures?: string[];
  /** Run the built-in engine (default true). */
  builtin?: boolean;
  clamd?: ClamdOptions;
  limits?: Partial<Limits>;
  actions?: Partial<Actions>;
  bannedExtensions?: readonly string[];
  bannedTypes?: readonly string[];
  checkBannedInArchives?: boolean;
  encrypted?: Action;
  /** Called once per structural anomaly seen (for a metric); must not throw. */
  onAnomaly?: (code: string) => void;
}

export interface Session {
  /** `chunk` is borrowed until push() returns (not until its promise settles): the core copies what it keeps. */
  push(chunk: Uint8Array): Promise<void>;
  end(): Promise<Verdict>;
  abort(): void;
  onFinal(cb: (v: Verdict) => void): void;
  /** The latched final verdict, if one is already certain. */
  readonly verdict: Verdict | null;
  readonly stats: SessionStats;
  /** The policy this message is scanned under ([[rules]] applied); its actions pick the reply. */
  readonly policy?: Readonly<MessagePolicy>;
}

export interface Engine {
  begin(envelope?: Envelope, override?: Partial<MessagePolicy>): Session;
  /** Engines in use, e.g. ['builtin'] or ['builtin','clamd']. */
  readonly engines: readonly string[];
  readonly signatureCount: number;
  readonly signatureVersion: string;
  readonly policy: Readonly<MessagePolicy>;
  readonly clamd: ClamdClient | null;
  close(): Promise<void>;
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
  });
  const scanners: Scanner[] = [];
  let db: SignatureDb | null = null;
  if (opts.builtin !== false) {
    db = opts.signatures?.length ? await SignatureDb.load(opts.signatures) : SignatureDb.builtin();
    scanners.push(new BuiltinScanner(db));
  }
  let clamd: ClamdClient | null = null;
  let cached: CachingScanner | null = null;
  if (opts.clamd && opts.clamd.endpoints.length > 0) {
    const { mode, cacheEntries, ...clientOptions } = opts.clamd;
    const client = (clamd = new ClamdClient(clientOptions));
    const scanner = new ClamdScanner({ client, mode: mode ?? 'per-file' });
    if (cacheEntries) {
      cached = new CachingScanner(scanner, { maxEntries: cacheEntries, versions: { version: () => client.version() }, refreshMs: client.options.healthIntervalMs });
    }
    scanners.push(cached ?? scanner);
  }
  if (scanners.length === 0) throw new Error('no scan engine configured (built-in disabled and no clamd endpoints)');
  const frozen = Object.freeze(scanners.slice());
  return {
    engines: frozen.map((s) => s.name),
    signatureCount: db?.count ?? 0,
    signatureVersion: db?.version ?? '',
    policy,
    clamd,
    begin(envelope?: Envelope, override?: Partial<MessagePolicy>): Session {
      const p = override ? { ...policy, ...override } : policy;
      return new MessageSession(p, frozen, envelope ?? {}, opts.onAnomaly);
    },
    async close() {
      cached?.close();
      clamd?.close();
    },
  };
}
