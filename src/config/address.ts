/**
 * address.ts — listen/connect address syntaxes used by the config, parsed once.
 *
 *   host:port          "127.0.0.1:10025", "[::1]:10025", "clamd:3310" (hostname)
 *   proxy address      host:port, or "unix:/path" (Postfix smtpd_proxy_filter accepts both)
 *   milter socket      "inet:7357@127.0.0.1", "inet6:7357@::1", "unix:/run/midstream/milter.sock"
 *                      ("local:" is a synonym of "unix:", as in Sendmail)
 *   clamd endpoint     "tcp:127.0.0.1:3310", "tcp:clamd:3310", "unix:/run/clamav/clamd.ctl"
 *   metrics listen     "127.0.0.1:9357"; a bare ":9357" or "9357" binds loopback only
 *
 * Every parser throws RangeError with a reason on bad input; the schema wraps it.
 */
import { parseIp } from './cidr.js';

export interface HostPort {
  host: string;
  port: number;
}

export type MilterSocket =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'unix'; path: string };

export type ClamdEndpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** A DNS hostname (letters, digits, hyphens, dots) or an IP literal. */
export function isHostname(s: string): boolean {
  return HOSTNAME.test(s);
}

function parsePort(p: string, allowZero: boolean): number {
  if (!/^[0-9]{1,5}$/.test(p)) throw new RangeError('port must be a number');
  const n = Number(p);
  if (n > 65535 || (!allowZero && n === 0)) throw new RangeError(`port must be ${allowZero ? 0 : 1}..65535`);
  return n;
}

function parseHost(h: string): string {
  if (h.startsWith('[')) {
    if (!h.endsWith(']')) throw new RangeError('unterminated [ in IPv6 address');
    const inner = h.slice(1, -1);
    if (parseIp(inner)?.length !== 16) throw new RangeError('not an IPv6 address inside [ ]');
    return inner;
  }
  if (/^[0-9.]+$/.test(h)) {
    if (!parseIp(h)) throw new RangeError('not an IPv4 address');
    return h;
  }
  if (h.includes(':')) throw new RangeError('IPv6 addresses must be written in brackets, e.g. "[::1]:10025"');
  if (!isHostname(h)) throw new RangeError('not a hostname or IP address');
  return h;
}

/** "127.0.0.1:10025" / "[::1]:25" / "name:3310". `allowZero` admits port 0 (listen on any free port). */
export function parseHostPort(s: string, allowZero = false): HostPort {
  if (typeof s !== 'string') throw new RangeError('must be a "host:port" string');
  const c = s.lastIndexOf(':');
  if (c <= 0) throw new RangeError('must be "host:port", e.g. "127.0.0.1:10025"');
  return { host: parseHost(s.slice(0, c)), port: parsePort(s.slice(c + 1), allowZero) };
}

/** Proxy listen/forward: "host:port" or "unix:/absolute/path". */
export function parseProxyAddress(s: string, allowZero = false): HostPort | { path: string } {
  if (typeof s === 'string' && s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path.startsWith('/')) throw new RangeError('unix socket path must be absolute');
    if (path.length > 100) throw new RangeError('unix socket path is too long (max 100 bytes)');
    return { path };
  }
  return parseHostPort(s, allowZero);
}

/** Metrics listen: "" → null (off); "9357" or ":9357" → loopback; else an explicit host:port. */
export function parseMetricsListen(s: string): HostPort | null {
  if (s === '') return null;
  if (/^:?[0-9]+$/.test(s)) return { host: '127.0.0.1', port: parsePort(s.replace(':', ''), true) };
  return parseHostPort(s, true);
}

/** Sendmail-style milter socket spec. */
export function parseMilterSocket(s: string): MilterSocket {
  if (typeof s !== 'string') throw new RangeError('must be a socket spec string');
  const m = /^(inet6?|unix|local):(.*)$/.exec(s);
  if (!m) throw new RangeError('must be "inet:PORT@HOST", "inet6:PORT@HOST" or "unix:/path"');
  if (m[1] === 'unix' || m[1] === 'local') {
    const path = m[2]!;
    if (!path.startsWith('/')) throw new RangeError('unix socket path must be absolute');
    if (path.length > 100) throw new RangeError('unix socket path is too long (max 100 bytes)');
    return { kind: 'unix', path };
  }
  const at = m[2]!.indexOf('@');
  const port = parsePort(at >= 0 ? m[2]!.slice(0, at) : m[2]!, true);
  const hostText = at >= 0 ? m[2]!.slice(at + 1) : m[1] === 'inet6' ? '::1' : '127.0.0.1';
  const ip = parseIp(hostText);
  if (m[1] === 'inet6') {
    if (ip?.length !== 16) throw new RangeError('inet6: needs an IPv6 address after @');
  } else if (!ip && !isHostname(hostText)) {
    throw new RangeError('not a hostname or IPv4 address after @');
  }
  return { kind: 'inet', host: hostText.replace(/^\[|\]$/g, ''), port };
}

/** clamd endpoint as in EngineOptions.clamd: "tcp:host:port" or "unix:/path". */
export function parseClamdEndpoint(s: string): ClamdEndpoint {
  if (typeof s !== 'string') throw new RangeError('must be an endpoint string');
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path.startsWith('/')) throw new RangeError('unix socket path must be absolute');
    return { kind: 'unix', path };
  }
  if (s.startsWith('tcp:')) {
    const hp = parseHostPort(s.slice(4));
    return { kind: 'tcp', host: hp.host, port: hp.port };
  }
  throw new RangeError('must be "tcp:HOST:PORT" or "unix:/path"');
}
