/**
 * pop3-commands.ts — the commands the relay passes on, and what each response looks like.
 *
 * Input: one client command line. Output: a Command: forward it upstream expecting a
 * single-line or multi-line response (and whether the body is a message to scan, the
 * CAPA list to filter, or a SASL exchange), or answer it ourselves.
 * Only commands whose response shape we know are forwarded (RFC 1939, RFC 2449 CAPA,
 * RFC 5034 AUTH, RFC 6856 UTF8): an unknown command could answer with a multi-line
 * response we would misread, or hand out message content we do not scan, so it gets a
 * local -ERR. STLS is ours (we terminate TLS or refuse it: the proxy cannot scan inside
 * TLS it does not terminate).
 * Gaps: LANG (RFC 6856) and other extensions are refused.
 */
import type { Expect } from './response-reader.js';

export type Command =
  | { kind: 'forward'; verb: string; expect: Expect; scan?: 'RETR' | 'TOP'; msg?: string; capa?: boolean; sasl?: boolean; login?: 'user' | 'pass' | 'apop' | 'auth' }
  | { kind: 'stls' }
  | { kind: 'local'; reply: string };

export const LOCAL_REPLIES = {
  unknown: '-ERR Unknown command\r\n',
  tooLong: '-ERR Line too long\r\n',
  noStls: '-ERR STLS not available\r\n',
  stlsLate: '-ERR STLS only before login\r\n',
  syntax: '-ERR Syntax error\r\n',
  tooMany: '-ERR Too many errors\r\n',
  upstreamDown: '-ERR [SYS/TEMP] Mail server unavailable, try again later\r\n',
  upstreamLost: '-ERR [SYS/TEMP] Connection to the mail server lost\r\n',
  internal: '-ERR [SYS/TEMP] Internal error, try again later\r\n',
  shutdown: '-ERR [SYS/TEMP] Server shutting down\r\n',
  tooManyConnections: '-ERR [SYS/TEMP] Too many connections\r\n',
} as const;

const SINGLE = new Set(['USER', 'PASS', 'APOP', 'STAT', 'DELE', 'NOOP', 'RSET', 'QUIT', 'UTF8']);

/** A message number as RFC 1939 writes it (we only check it is digits, the server decides the rest). */
const NUMBER = /^[0-9]{1,10}$/;

export function parseCommand(line: string): Command {
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const args = sp < 0 ? [] : line.slice(sp + 1).split(' ').filter((a) => a !== '');
  switch (verb) {
    case 'RETR':
      if (args.length !== 1 || !NUMBER.test(args[0]!)) return { kind: 'local', reply: LOCAL_REPLIES.syntax };
      return { kind: 'forward', verb, expect: 'multi', scan: 'RETR', msg: args[0]! };
    case 'TOP':
      if (args.length !== 2 || !NUMBER.test(args[0]!) || !NUMBER.test(args[1]!)) return { kind: 'local', reply: LOCAL_REPLIES.syntax };
      return { kind: 'forward', verb, expect: 'multi', scan: 'TOP', msg: `${args[0]} ${args[1]}` };
    case 'LIST':
    case 'UIDL':
      return { kind: 'forward', verb, expect: args.length === 0 ? 'multi' : 'single' };
    case 'CAPA':
      return { kind: 'forward', verb, expect: 'multi', capa: true };
    case 'AUTH':
      // Without a mechanism the server lists its mechanisms (multi-line, RFC 1734 style).
      if (args.length === 0) return { kind: 'forward', verb, expect: 'multi' };
      return { kind: 'forward', verb, expect: 'sasl', sasl: true, login: 'auth' };
    case 'STLS':
      return { kind: 'stls' };
    case 'USER':
      return { kind: 'forward', verb, expect: 'single', login: 'user' };
    case 'PASS':
      return { kind: 'forward', verb, expect: 'single', login: 'pass' };
    case 'APOP':
      return { kind: 'forward', verb, expect: 'single', login: 'apop' };
    default:
      if (SINGLE.has(verb)) return { kind: 'forward', verb, expect: 'single' };
      return { kind: 'local', reply: LOCAL_REPLIES.unknown };
  }
}

/**
 * Filter one CAPA line (without its line ending): the server's STLS goes (we cannot scan
 * inside TLS we do not terminate; when we terminate it ourselves the session adds its own
 * STLS line); everything else passes. Returns the line to send, or null.
 */
export function filterCapaLine(line: string): string | null {
  const word = line.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
  return word === 'STLS' ? null : line;
}
