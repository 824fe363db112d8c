/**
 * milter-mta.ts — send one whole message through a milter the way an MTA does, with
 * our MilterClient: OPTNEG (everything offered), CONNECT, MAIL, RCPT…, DATA, one HEADER
 * packet per header field (value without the leading space, folded lines joined with
 * a bare LF, as Sendmail and Postfix pass them), EOH, BODY chunks of at most 64 KiB
 * (MILTER_CHUNK_SIZE), EOB. Macros (`i`, `{auth_authen}`, …) go in at the stage given.
 * Stops at the first reply that is not CONTINUE (an early reject) and returns it.
 * LF-only input is split on bare LF like CRLF (the MTA converts line ends itself).
 */
import { Buffer } from 'node:buffer';
import { SMFIC, SMFIR } from '../../milter/milter-codes.js';
import type { Packet } from '../../milter/milter-wire.js';
import { MilterClient, replyCodeText } from './milter-client.js';

export interface MtaMessage {
  from: string;
  to: string[];
  message: Buffer;
  clientAddress?: string;
  clientName?: string;
  /** HELO name (default client.example), sent when the milter did not ask for NOHELO. */
  helo?: string;
  /** Macros by stage command: e.g. { M: ['{auth_authen}', 'alice'], T: ['i', 'QID1'] }. */
  macros?: Partial<Record<'C' | 'H' | 'M' | 'R' | 'T' | 'N' | 'E', string[]>>;
  bodyChunk?: number;
}

export interface MtaResult {
  /** 'continue' | 'accept' | 'reject' | 'tempfail' | 'replycode' | other command letters. */
  final: Packet;
  /** For REPLYCODE, its text ("550 5.7.1 …"); else the SMFIR letter. */
  text: string;
  /** The command the final reply answered: 'header' | 'eoh' | 'body' | 'eob'. */
  at: string;
}

/** Split a raw message into header fields (name, MTA-style value) and the body. */
export function splitMessage(raw: Buffer): { headers: [string, string][]; body: Buffer } {
  const s = raw.toString('latin1');
  const m = /\r?\n\r?\n/.exec(s);
  const headText = m ? s.slice(0, m.index) : s;
  const body = m ? raw.subarray(m.index + m[0].length) : Buffer.alloc(0);
  const headers: [string, string][] = [];
  for (const line of headText.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length > 0) headers[headers.length - 1]![1] += '\n' + line;
    else {
      const c = line.indexOf(':');
      if (c > 0) headers.push([line.slice(0, c), line.slice(c + 1).replace(/^ /, '')]);
    }
  }
  return { headers, body };
}

function done(p: Packet, at: string): MtaResult {
  return { final: p, text: p.cmd === SMFIR.REPLYCODE ? replyCodeText(p) : p.cmd, at };
}

export async function sendViaMilter(address: string, o: MtaMessage): Promise<MtaResult> {
  const c = await MilterClient.connect(address);
  try {
    await c.negotiate();
    const mac = (stage: keyof NonNullable<MtaMessage['macros']>) => {
      const pairs = o.macros?.[stage];
      if (pairs) c.macro(stage, ...pairs);
    };
    const step = async (at: string, r: Promise<{ final: Packet } | null>): Promise<MtaResult | null> => {
      const rep = await r;
      if (rep && rep.final.cmd !== SMFIR.CONTINUE) return done(rep.final, at);
      return null;
    };
    let r: MtaResult | null;
    mac('C');
    if ((r = await step('connect', c.connectInfo(o.clientName ?? 'client.test', o.clientAddress ?? '127.0.0.1')))) return r;
    mac('H');
    if (c.want('H') && (r = await step('helo', c.command(SMFIC.HELO, Buffer.from(`${o.helo ?? 'client.example'}\0`))))) return r;
    mac('M');
    if ((r = await step('mail', c.mail(`<${o.from}>`)))) return r;
    for (const t of o.to) {
      mac('R');
      if ((r = await step('rcpt', c.rcpt(`<${t}>`)))) return r;
    }
    mac('T');
    if ((r = await step('data', c.command(SMFIC.DATA)))) return r;
    const { headers, body } = splitMessage(o.message);
    for (const [n, v] of headers) if ((r = await step('header', c.header(n, v)))) return r;
    mac('N');
    if ((r = await step('eoh', c.eoh()))) return r;
    const chunk = o.bodyChunk ?? 65535;
    for (let off = 0; off < body.length; off += chunk) {
      if ((r = await step('body', c.body(body.subarray(off, off + chunk))))) {
        // The MTA still ends the message; the milter repeats its verdict.
        return r;
      }
    }
    mac('E');
    const eob = await c.eob(30_000);
    return done(eob.final, 'eob');
  } finally {
    c.quit();
    c.close();
  }
}
