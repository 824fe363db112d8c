/**
 * clamd-address.ts — parse a clamd endpoint string into a socket address.
 *
 * Accepted forms:
 *   tcp:HOST:PORT      tcp:127.0.0.1:3310, tcp:[::1]:3310, tcp:clamd.local:3310
 *   HOST:PORT          same as tcp: (IPv6 literals must be bracketed)
 *   unix:/path         a UNIX socket (absolute path)
 *   /path              shorthand for unix:/path
 * Output: ClamdAddress, with `text` the canonical form used in logs and endpoint status.
 * Errors: ClamdAddressError (code 'ERR_CLAMD_ADDRESS') naming the input and the reason;
 * a bad endpoint is a config error, fatal at startup.
 * Limits: UNIX paths up to 107 bytes (sun_path); ports 1–65535.
 */

export type ClamdAddress =
  | { kind: 'tcp'; host: string; port: number; text: string }
  | { kind: 'unix'; path: string; text: string };

export class ClamdAddressError extends Error {
  readonly code = 'ERR_CLAMD_ADDRESS';
  constructor(readonly input: string, readonly reason: string) {
    super(`bad clamd address ${JSON.stringify(input)}: ${reason}`);
    this.name = 'ClamdAddressError';
  }
}

const MAX_UNIX_PATH = 107;

export function parseClamdAddress(input: string): ClamdAddress {
  if (typeof input !== 'string') throw new ClamdAddressError(String(input), 'not a string');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(input)) throw new ClamdAddressError(input, 'contains a control character');
  const s = input.trim();
  if (s === '') throw new ClamdAddressError(input, 'empty');
  if (s.startsWith('unix:')) return unixAddress(input, s.slice(5));
  if (s.startsWith('/')) return unixAddress(input, s);
  const rest = s.startsWith('tcp:') ? s.slice(4) : s;
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new ClamdAddressError(input, 'unterminated [ in IPv6 host');
    host = rest.slice(1, close);
    if (rest[close + 1] !== ':') throw new ClamdAddressError(input, 'expected :PORT after ]');
    portText = rest.slice(close + 2);
    if (!host.includes(':')) throw new ClamdAddressError(input, 'brackets are only for IPv6 literals');
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw new ClamdAddressError(input, 'expected tcp:HOST:PORT, HOST:PORT or unix:/path');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) throw new ClamdAddressError(input, 'IPv6 hosts must be bracketed: tcp:[::1]:3310');
  }
  if (host === '') throw new ClamdAddressError(input, 'empty host');
  if (!/^[A-Za-z0-9.\-_:%]+$/.test(host)) throw new ClamdAddressError(input, 'invalid character in host');
  if (!/^\d{1,5}$/.test(portText)) throw new ClamdAddressError(input, 'port must be a number 1-65535');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new ClamdAddressError(input, 'port must be a number 1-65535');
  const text = host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
  return { kind: 'tcp', host, port, text };
}

function unixAddress(input: string, path: string): ClamdAddress {
  if (path === '') throw new ClamdAddressError(input, 'empty socket path');
  if (!path.startsWith('/')) throw new ClamdAddressError(input, 'socket path must be absolute');
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) throw new ClamdAddressError(input, `socket path longer than ${MAX_UNIX_PATH} bytes`);
  return { kind: 'unix', path, text: `unix:${path}` };
}
