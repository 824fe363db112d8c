/**
 * milter-codes.ts — milter protocol v6 constants (Sendmail mfdef.h / mfapi.h values).
 *
 * Commands and replies are single ASCII characters on the wire; we keep them as
 * one-character strings so logs and tests read naturally. Every table has a
 * reverse-name map for logs (`SMFIC_NAME['B'] === 'BODY'`).
 * See PROTOCOL.md next to this file for what each one means to us.
 */

/** MTA → milter commands. */
export const SMFIC = {
  ABORT: 'A',
  BODY: 'B',
  CONNECT: 'C',
  MACRO: 'D',
  BODYEOB: 'E',
  HELO: 'H',
  QUIT_NC: 'K',
  HEADER: 'L',
  MAIL: 'M',
  EOH: 'N',
  OPTNEG: 'O',
  QUIT: 'Q',
  RCPT: 'R',
  DATA: 'T',
  UNKNOWN: 'U',
} as const;
export type SmficCode = (typeof SMFIC)[keyof typeof SMFIC];

/** Milter → MTA replies. Modification replies are legal only in answer to BODYEOB. */
export const SMFIR = {
  ADDRCPT: '+',
  DELRCPT: '-',
  ADDRCPT_PAR: '2',
  SHUTDOWN: '4',
  ACCEPT: 'a',
  REPLBODY: 'b',
  CONTINUE: 'c',
  DISCARD: 'd',
  CHGFROM: 'e',
  CONN_FAIL: 'f',
  ADDHEADER: 'h',
  INSHEADER: 'i',
  SETSYMLIST: 'l',
  CHGHEADER: 'm',
  PROGRESS: 'p',
  QUARANTINE: 'q',
  REJECT: 'r',
  SKIP: 's',
  TEMPFAIL: 't',
  REPLYCODE: 'y',
} as const;
export type SmfirCode = (typeof SMFIR)[keyof typeof SMFIR];

/** Action bits (what the milter may change at end of message), negotiated in OPTNEG. */
export const SMFIF = {
  ADDHDRS: 0x01,
  CHGBODY: 0x02,
  ADDRCPT: 0x04,
  DELRCPT: 0x08,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
} as const;

/** Protocol bits: NO* = "don't send me this", NR_* = "I never reply to this", plus capabilities. */
export const SMFIP = {
  NOCONNECT: 0x01,
  NOHELO: 0x02,
  NOMAIL: 0x04,
  NORCPT: 0x08,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;

/** Macro stages for SETSYMLIST records (note EOM=5 comes before EOH=6). */
export const SMFIM = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;

/** Highest protocol version we speak. */
export const MILTER_VERSION = 6;
/** Largest BODY chunk an MTA sends without MDS negotiation (and the most we may send). */
export const MILTER_CHUNK_SIZE = 65535;
/** Largest packet (length field: command byte + data) we read: 1 MiB of data + the command byte. */
export const MILTER_MAX_PACKET = 1024 * 1024 + 1;

function reverse<T extends Record<string, string | number>>(o: T): Readonly<Record<string, string>> {
  const r: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) r[String(v)] = k;
  return Object.freeze(r);
}

export const SMFIC_NAME = reverse(SMFIC);
export const SMFIR_NAME = reverse(SMFIR);
export const SMFIF_NAME = reverse(SMFIF);
export const SMFIP_NAME = reverse(SMFIP);

/** Name of a command byte for logs, e.g. 'BODY' or 'unknown(0x5a)'. */
export function commandName(cmd: string): string {
  return SMFIC_NAME[cmd] ?? `unknown(0x${cmd.charCodeAt(0).toString(16).padStart(2, '0')})`;
}

/** Names of the bits set in a mask, for logs: flagNames(0x3, SMFIP_NAME) → ['NOCONNECT','NOHELO']. */
export function flagNames(mask: number, names: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  // Division instead of `&` so bit 31 (negative in JS bitwise ops) still works.
  for (let i = 0, bit = 1; i < 32; i++, bit *= 2) {
    if (Math.floor(mask / bit) % 2 === 1) out.push(names[String(bit)] ?? `0x${bit.toString(16)}`);
  }
  return out;
}
