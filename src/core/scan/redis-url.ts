/**
 * redis-url.ts — validate and split a shared-cache URL, without loading a Redis client
 * (the config schema checks [cache] url with it at startup).
 * Input: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), `unix:/path` or
 * `unix:///path`. Output: the parts. Errors: RangeError naming what is wrong.
 */

export type RedisAddress =
  | { kind: 'tcp'; tls: boolean; host: string; port: number; db: number; username?: string; password?: string }
  | { kind: 'unix'; path: string };

/** Validate and split a cache URL (used by the config schema too). */
export function parseRedisUrl(url: string): RedisAddress {
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

