/**
 * address.ts — the one socket-address grammar, for every place an address is written:
 * proxy listen/forward, milter listen, POP3 listen/upstream, clamd endpoints, metrics.
 *
 *   HOST:PORT            127.0.0.1:10025  [::1]:10025  clamd.local:3310
 *   tcp:HOST:PORT        tcp:127.0.0.1:3310  tcp:[::1]:3310            (clamd's usual notation)
 *   inet:HOST:PORT       inet:127.0.0.1:10025                          (Postfix's notation)
 *   inet:PORT@HOST       inet:7357@127.0.0.1  inet:7357 (= 127.0.0.1)  (Sendmail/milter notation)
 *   inet6:PORT@HOST      inet6:7357@::1  inet6:7357 (= ::1)
 *   unix:/path           unix:/run/midstream/milter.sock  (local:/path is Sendmail's synonym;
 *                        a bare /path is accepted for clamd, as clamd.conf writes it)
 *   :PORT, PORT          loopback, metrics only
 *
 * Every form means the same thing wherever it is accepted; each use accepts the forms
 * its peers write (see USES). One exception: the milter listens in Sendmail's notation,
 * and Postfix's `inet:127.0.0.1:7357` (what goes into smtpd_milters) is refused there
 * with a message that shows the Sendmail form, because the two are easy to confuse.
 *
 * Input: a string and its use. Output: a SocketAddress; formatAddress() prints one back
 * (`hostport`, `sendmail` or `clamd` style). Errors: AddressError (ADDRESS_INVALID) with
 * the input and the reason. Limits: unix paths ≤ 107 bytes (sun_path), absolute only
 * (a relative path would depend on our working directory); ports 1-65535 (0 allowed
 * where we listen: "pick a free port", used by tests).
 * Gaps: no service names ("smtp"), no Postfix queue-directory-relative unix paths.
 */
import { ERROR_CODES, MidstreamError } from './errors.js';

export type SocketAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/** Where an address is used; decides which forms are accepted and whether port 0 is. */
export type AddressUse = 'listen' | 'connect' | 'milter' | 'clamd' | 'metrics';

type Form = 'hostport' | 'tcp' | 'inet-postfix' | 'inet-sendmail' | 'unix' | 'bare-path' | 'port-only';

const USES: Readonly<Record<AddressUse, { forms: readonly Form[]; zeroPort: boolean; hint: string }>> = {
  listen: { forms: ['hostport', 'tcp', 'inet-postfix', 'inet-sendmail', 'unix'], zeroPort: true, hint: 'HOST:PORT or unix:/path' },
  connect: { forms: ['hostport', 'tcp', 'inet-postfix', 'inet-sendmail', 'unix'], zeroPort: false, hint: 'HOST:PORT or unix:/path' },
  milter: { forms: ['inet-sendmail', 'unix'], zeroPort: true, hint: 'inet:PORT@HOST, inet6:PORT@HOST or unix:/path' },
  clamd: { forms: ['tcp', 'hostport', 'unix', 'bare-path'], zeroPort: false, hint: 'tcp:HOST:PORT or unix:/path' },
  metrics: { forms: ['hostport', 'port-only'], zeroPort: true, hint: 'HOST:PORT or :PORT' },
};

export const MAX_UNIX_PATH = 107;

export class AddressError extends MidstreamError {
  constructor(readonly input: string, readonly reason: string) {
    super(ERROR_CODES.addressInvalid, `bad address ${JSON.stringify(clip(input))}: ${reason}`);
    this.name = 'AddressError';
  }
}

function clip(s: string): string {
  const p = String(s).replace(/[^\x20-\x7e]/g, '?');
  return p.length > 80 ? p.slice(0, 80) + '...' : p;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** A DNS hostname (letters, digits, hyphens, dots; underscores as container names use them). */
export function isHostname(s: string): boolean {
  return HOSTNAME.test(s) && !/^[0-9.]+$/.test(s);
}

/** Dotted-quad IPv4, each octet 0-255, no leading zeros beyond "0". */
export function isIPv4(s: string): boolean {
  const p = s.split('.');
  return p.length === 4 && p.every((o) => /^(0|[1-9][0-9]{0,2})$/.test(o) && Number(o) <= 255);
}

/** RFC 4291 text form (with optional embedded IPv4 and zone id). */
export function isIPv6(s: string): boolean {
  const zone = s.indexOf('%');
  const a = zone >= 0 ? s.slice(0, zone) : s;
  if (zone >= 0 && !/^%[A-Za-z0-9_.-]+$/.test(s.slice(zone))) return false;
  if (!/^[0-9A-Fa-f:.]+$/.test(a) || !a.includes(':')) return false;
  const dbl = a.split('::');
  if (dbl.length > 2) return false;
  const groups = (t: string) => (t === '' ? [] : t.split(':'));
  const head = groups(dbl[0]!);
  const tail = dbl.length === 2 ? groups(dbl[1]!) : [];
  const all = [...head, ...tail];
  let n = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (i === all.length - 1 && g.includes('.')) {
      if (!isIPv4(g)) return false;
      n += 2;
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) n += 1;
    else return false;
  }
  return dbl.length === 2 ? n < 8 : n === 8;
}

function fail(input: string, reason: string): never {
  throw new AddressError(input, reason);
}

function port(input: string, text: string, zero: boolean): number {
  if (!/^[0-9]{1,5}$/.test(text)) fail(input, `port must be a number, not ${JSON.stringify(clip(text))}`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !zero)) fail(input, `port must be ${zero ? 0 : 1}..65535`);
  return n;
}

function host(input: string, h: string, bracketed: boolean): string {
  if (h === '') fail(input, 'empty host');
  if (bracketed || h.includes(':')) {
    if (!bracketed) fail(input, 'IPv6 addresses must be written in brackets, e.g. [::1]:10025');
    if (!isIPv6(h)) fail(input, 'not an IPv6 address inside [ ]');
    return h;
  }
  if (/^[0-9.]+$/.test(h)) {
    if (!isIPv4(h)) fail(input, 'not an IPv4 address');
    return h;
  }
  if (!isHostname(h)) fail(input, 'not a hostname or IP address');
  return h;
}

/** "HOST:PORT" / "[V6]:PORT" → tcp address. */
function hostPort(input: string, s: string, zero: boolean): SocketAddress {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) fail(input, 'unterminated [ in IPv6 address');
    if (s[close + 1] !== ':') fail(input, 'expected [IPv6]:PORT');
    return { kind: 'tcp', host: host(input, s.slice(1, close), true), port: port(input, s.slice(close + 2), zero) };
  }
  const c = s.lastIndexOf(':');
  if (c < 0) fail(input, 'expected HOST:PORT');
  return { kind: 'tcp', host: host(input, s.slice(0, c), false), port: port(input, s.slice(c + 1), zero) };
}

function unixPath(input: string, path: string): SocketAddress {
  if (path === '') fail(input, 'empty socket path');
  if (!path.startsWith('/')) fail(input, 'unix socket path must be absolute');
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) fail(input, `unix socket path longer than ${MAX_UNIX_PATH} bytes`);
  return { kind: 'unix', path };
}

/** Which lexical form a string is in (no validation yet). */
function formOf(s: string): Form {
  if (s.startsWith('unix:') || s.startsWith('local:')) return 'unix';
  if (s.startsWith('/')) return 'bare-path';
  if (s.startsWith('tcp:')) return 'tcp';
  if (s.startsWith('inet:') || s.startsWith('inet6:')) {
    const rest = s.slice(s.indexOf(':') + 1);
    return rest.includes('@') || /^[0-9]*$/.test(rest) || s.startsWith('inet6:') ? 'inet-sendmail' : 'inet-postfix';
  }
  if (/^:?[0-9]+$/.test(s)) return 'port-only';
  return 'hostport';
}

/** Parse `input` for `use`. Throws AddressError naming the input and the reason. */
export function parseAddress(input: string, use: AddressUse): SocketAddress {
  if (typeof input !== 'string') fail(String(input), 'not a string');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(input)) fail(input, 'contains a control character');
  const s = input.trim();
  if (s === '') fail(input, 'empty');
  const u = USES[use];
  const form = formOf(s);
  if (!u.forms.includes(form)) {
    if (use === 'milter' && (form === 'inet-postfix' || form === 'hostport' || form === 'tcp')) {
      // The classic mix-up: Postfix's smtpd_milters value pasted into the milter's listen.
      const a = form === 'inet-postfix' ? hostPort(input, s.slice(5), true) : form === 'tcp' ? hostPort(input, s.slice(4), true) : hostPort(input, s, true);
      const v6 = a.kind === 'tcp' && a.host.includes(':');
      const suggestion = a.kind === 'tcp' ? `${v6 ? 'inet6' : 'inet'}:${a.port}@${a.host}` : '';
      fail(input, `the milter listens in Sendmail's notation: write "${suggestion}" (Postfix's smtpd_milters = inet:HOST:PORT then connects to it)`);
    }
    fail(input, `expected ${u.hint}`);
  }
  switch (form) {
    case 'unix':
      return unixPath(input, s.slice(s.indexOf(':') + 1));
    case 'bare-path':
      return unixPath(input, s);
    case 'tcp':
      return hostPort(input, s.slice(4), u.zeroPort);
    case 'inet-postfix':
      return hostPort(input, s.slice(5), u.zeroPort);
    case 'inet-sendmail': {
      const v6 = s.startsWith('inet6:');
      const rest = s.slice(v6 ? 6 : 5);
      const at = rest.indexOf('@');
      const p = port(input, at < 0 ? rest : rest.slice(0, at), u.zeroPort);
      let h = at < 0 ? (v6 ? '::1' : '127.0.0.1') : rest.slice(at + 1);
      if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
      if (v6) {
        if (!isIPv6(h)) fail(input, 'inet6: needs an IPv6 address after @');
      } else if (!isIPv4(h) && !isHostname(h)) fail(input, 'not a hostname or IPv4 address after @');
      return { kind: 'tcp', host: h, port: p };
    }
    case 'port-only':
      return { kind: 'tcp', host: '127.0.0.1', port: port(input, s.replace(':', ''), u.zeroPort) };
    case 'hostport':
      return hostPort(input, s, u.zeroPort);
  }
}

/**
 * Print an address: `hostport` → "127.0.0.1:10025" / "[::1]:25" / "unix:/p";
 * `sendmail` → "inet:7357@127.0.0.1" / "inet6:7357@::1"; `clamd` → "tcp:127.0.0.1:3310".
 */
export function formatAddress(a: SocketAddress, style: 'hostport' | 'sendmail' | 'clamd' = 'hostport'): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  const v6 = a.host.includes(':');
  if (style === 'sendmail') return `${v6 ? 'inet6' : 'inet'}:${a.port}@${a.host}`;
  const hp = v6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  return style === 'clamd' ? `tcp:${hp}` : hp;
}
