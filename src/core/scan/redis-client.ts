/**
 * redis-client.ts — make the Redis/Valkey connection for the shared verdict cache.
 *
 * ioredis, because it has the fail-fast knobs the fallback needs built in: a per-command
 * timeout, no offline queue (a command while disconnected fails at once instead of
 * waiting), zero retries per request, and endless background reconnects; unix sockets,
 * TLS (rediss://) and passwords are plain options.
 * Loaded only when a shared cache is configured (engine.ts imports it dynamically):
 * ioredis costs ~20–28 MB of RSS and ~0.4 s at import.
 * Input: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), or `unix:/path`
 * (also `unix:///path`); an optional password overrides the URL's.
 * Commands wait for the first connection (bounded by the caller's deadline); after that a
 * command while disconnected fails at once.
 * Host names are resolved through hostLookup (host-lookup.ts) by a connector of our own
 * (ioredis's `Connector` option; its own connector passes no `lookup`): ioredis reconnects
 * every ≤ 2 s while Redis is away, and where its name stops resolving each getaddrinfo can
 * hang 10–20 s — uncoalesced, those took libuv's DNS threads and stalled every other
 * connect of the process (clamd, the downstream MTA).
 * Output: a RedisLike (shared-cache.ts). Errors: a malformed URL throws RangeError (a
 * config error); connection trouble never throws — it shows up as failed commands, and
 * ioredis's 'error' events are swallowed here (the cache logs its own transitions).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { AbstractConnector, Redis, type RedisOptions } from 'ioredis';
import type { RedisLike } from './shared-cache.js';
import { parseRedisUrl } from './redis-url.js';
import { hostLookup } from '../host-lookup.js';

export { parseRedisUrl } from './redis-url.js';

export interface RedisConnectOptions {
  url: string;
  password?: string;
  /** Per-command deadline (ms). */
  timeoutMs: number;
  connectTimeoutMs?: number;
}

/** ioredis's TCP/TLS connect (StandaloneConnector) with the host resolved through hostLookup. */
class CoalescedLookupConnector extends AbstractConnector {
  private readonly o: { host: string; port: number; tls?: ConnectionOptions; disconnectTimeout?: number };

  /** ioredis passes its whole options object: connectRedis's own, with host, port and `tls` an object or absent. */
  constructor(options: unknown) {
    const o = options as CoalescedLookupConnector['o'];
    super(o.disconnectTimeout ?? 2000);
    this.o = o;
  }

  connect(): Promise<Socket | TLSSocket> {
    this.connecting = true;
    return new Promise((resolve, reject) => {
      // A tick later, as ioredis's own connector does: a disconnect() may come in between.
      process.nextTick(() => {
        if (!this.connecting) return reject(new Error('Connection is closed.'));
        const base = { host: this.o.host, port: this.o.port, lookup: hostLookup };
        const s = this.o.tls ? tlsConnect({ ...base, ...this.o.tls }) : netConnect(base);
        this.stream = s;
        s.once('error', (err) => {
          this.firstError = err;
        });
        resolve(s);
      });
    });
  }
}

export function connectRedis(o: RedisConnectOptions): RedisLike {
  const a = parseRedisUrl(o.url);
  const common: RedisOptions = {
    commandTimeout: o.timeoutMs,
    connectTimeout: o.connectTimeoutMs ?? 2000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect forever, at most every 2 s: the cache comes back by itself.
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
    lazyConnect: false,
  };
  const options: RedisOptions =
    a.kind === 'unix'
      ? { ...common, path: a.path }
      : {
          ...common,
          Connector: CoalescedLookupConnector,
          host: a.host,
          port: a.port,
          db: a.db,
          ...(a.username ? { username: a.username } : {}),
          ...(a.password ? { password: a.password } : {}),
          ...(a.tls ? { tls: {} } : {}),
        };
  if (o.password) options.password = o.password;
  const client = new Redis(options);
  client.on('error', () => {
    /* shown through failed commands; see shared-cache.ts */
  });
  // Without an offline queue a command sent before the very first connect fails at once;
  // until then, wait for it (the cache's own deadline still bounds the wait).
  let everReady = false;
  const firstReady = new Promise<void>((r) => client.once('ready', () => r())).then(() => {
    everReady = true;
  });
  const whenReady = () => (everReady ? Promise.resolve() : firstReady);
  return {
    get: (k) => whenReady().then(() => client.get(k)),
    set: (k, v, mode, ms) => whenReady().then(() => client.set(k, v, mode, ms)),
    quit: async () => {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
