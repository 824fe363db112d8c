/**
 * address.ts — parse the proxy's listen/forward endpoints.
 *
 * Input: `HOST:PORT`, `inet:HOST:PORT`, `[IPv6]:PORT`, `unix:/path` (Postfix's
 * smtpd_proxy_filter syntax, minus its queue-directory-relative paths).
 * Output: a tagged Endpoint, plus `formatEndpoint` for logs and `listen`/`connect` option objects.
 * Errors: AddressError (code 'EADDRESS') with the offending string; callers treat it as a
 * fatal config error. Gaps: no service names (`smtp`), no relative unix paths.
 */
export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export class AddressError extends Error {
  readonly code = 'EADDRESS';
  constructor(readonly input: string, reason: string) {
    super(`bad address ${JSON.stringify(input)}: ${reason}`);
  }
}

export function parseEndpoint(input: string): Endpoint {
  let s = input.trim();
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    // A relative path would depend on our cwd, unlike Postfix (queue directory): refuse it.
    if (!path.startsWith('/')) throw new AddressError(input, 'unix socket path must be absolute');
    return { kind: 'unix', path };
  }
  if (s.startsWith('inet:')) s = s.slice(5);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw new AddressError(input, 'expected [IPv6]:PORT');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon <= 0) throw new AddressError(input, 'expected HOST:PORT or unix:/path');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) throw new AddressError(input, 'IPv6 hosts need brackets: [::1]:PORT');
  }
  if (!/^\d{1,5}$/.test(portText)) throw new AddressError(input, 'port must be a number');
  const port = Number(portText);
  if (port > 65535) throw new AddressError(input, 'port out of range');
  if (host === '') throw new AddressError(input, 'empty host');
  return { kind: 'tcp', host, port };
}

export function formatEndpoint(e: Endpoint): string {
  if (e.kind === 'unix') return `unix:${e.path}`;
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
