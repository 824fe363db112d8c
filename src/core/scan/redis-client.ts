/**
 * redis-client.ts — make the Redis/Valkey connection for the shared verdict cache.
 *
 * ioredis, because it has the fail-fast knobs the fallback needs built in: a per-command
 * timeout, no offline queue (a command while disconnected fails at once instead of
 * waiting), zero retries per request, and endless background reconnects; unix sockets,
 * TLS (rediss://) and passwords are plain options.
 * Input: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), or `unix:/path`
 * (also `unix:///path`); an optional password overrides the URL's.
 * Commands wait for the first connection (bounded by the caller's deadline); after that a
 * command while disconnected fails at once.
 * Output: a RedisLike (shared-cache.ts). Errors: a malformed URL throws RangeError (a
 * config error); connection trouble never throws — it shows up as failed commands, and
 * ioredis's 'error' events are swallowed here (the cache logs its own transitions).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisLike } from './shared-cache.js';

export interface RedisConnectOptions {
  url: string;
  password?: string;
  /** Per-command deadline (ms). */
  timeoutMs: number;
  connectTimeoutMs?: number;
}

/** Validate and split a cache URL (used by the config schema too). */
export function parseRedisUrl(url: string): { kind: 'tcp'; tls: boolean; host: string; port: number; db: number; username?: string; password?: string } | { kind: 'unix'; path: string } {
  if (url.startsWith('unix:')) {
    const path = url.replace(/^unix:(\/\/)?/, '');
    if (!path.startsWith('/')) throw new RangeError('unix: needs an absolute socket path');
    return { kind: 'unix', path };
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError('not a URL: use redis://HOST:PORT, rediss://HOST:PORT or unix:/path');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError('scheme must be redis:, rediss: or unix:');
  if (!u.hostname) throw new RangeError('missing host');
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,2}$/.test(dbText)) throw new RangeError('database must be a number (redis://HOST:PORT/0)');
  return {
    kind: 'tcp',
    tls: u.protocol === 'rediss:',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db: dbText === '' ? 0 : Number(dbText),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
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
