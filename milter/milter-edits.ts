/**
 * milter-edits.ts — MessageEdits (src/actions/message-edits.ts) as milter replies, and the
 * ledger of header fields those replies need to refer to.
 *
 * HeaderLedger.seen(name, value) is told every HEADER the MTA sends, in order. It keeps,
 * bounded: each occurrence of the incoming X-Virus-* fields (for deletion by index, and
 * their values for "rename"), occurrences of the ticket field (after-filter milter), the
 * first Subject (for the tag prefix), and optionally a copy of the header block for notices.
 * editPackets() turns edits into the end-of-message replies, in this order:
 *   CHGHEADER "" deleting incoming X-Virus-* (highest index first, so lower indexes stay
 *   valid whichever way the MTA counts), their renamed copies at the top, CHGHEADER ""
 *   deleting the ticket, INSHEADER 0 of ours (at the top, in order; ADDHEADER before milter
 *   v6), CHGHEADER Subject (or ADDHEADER when there was none), QUARANTINE reason; the caller
 *   appends the final CONTINUE or DISCARD.
 * Protocol notes (milter v6, PROTOCOL.md): CHGHEADER is uint32 index (1-based among fields
 * of that name) + name\0 value\0, an empty value deletes; ADDHEADER appends name\0value\0;
 * INSHEADER is uint32 index + name\0 value\0 (index 0: the top); QUARANTINE carries
 * reason\0. Without HDR_LEADSPC the MTA adds the space after the colon.
 * Limits: at most MAX_TRACKED occurrences per name (more are deleted by index without
 * their values); values kept up to MAX_VALUE bytes; the header copy up to captureBytes.
 * Errors: editPackets returns { missing } naming the SMFIF action bits the MTA did not
 * grant; the caller fails the message closed instead of delivering it unedited.
 */
import { Buffer } from 'node:buffer';
import { INCOMING_HEADERS, prefixSubject, renamedHeader, type IncomingPolicy, type MessageEdits } from '../src/actions/message-edits.js';
import { SMFIF, SMFIR } from './milter-codes.js';
import { cstrings, type Packet } from './milter-wire.js';

const MAX_TRACKED = 100;
const MAX_VALUE = 2000;

export class HeaderLedger {
  /** lower-case incoming name → values of its occurrences, in order. */
  private readonly incoming = new Map<string, { name: string; values: string[]; count: number }>();
  private tickets: { count: number; id: string | null } = { count: 0, id: null };
  private subject: string | null = null;
  private copy: string[] | null;
  private copyBytes = 0;
  private copyCut = false;

  constructor(
    private readonly opts: { ticketHeader?: string; captureBytes?: number } = {},
  ) {
    this.copy = opts.captureBytes ? [] : null;
  }

  /** One HEADER as the MTA sent it (value without the leading space, folds joined by LF). */
  seen(name: string, value: string): void {
    const lower = name.toLowerCase();
    if (INCOMING_HEADERS.some((h) => h.toLowerCase() === lower)) {
      let e = this.incoming.get(lower);
      if (!e) this.incoming.set(lower, (e = { name, values: [], count: 0 }));
      e.count++;
      if (e.values.length < MAX_TRACKED) e.values.push(value.slice(0, MAX_VALUE));
    } else if (this.opts.ticketHeader && lower === this.opts.ticketHeader.toLowerCase()) {
      this.tickets.count++;
      if (this.tickets.id === null) this.tickets.id = value.trim();
    } else if (lower === 'subject' && this.subject === null) this.subject = value.slice(0, MAX_VALUE);
    if (this.copy && !this.copyCut) {
      const line = `${name}: ${value.replace(/\r?\n/g, '\r\n')}\r\n`;
      if (this.copyBytes + line.length > (this.opts.captureBytes ?? 0)) this.copyCut = true;
      else {
        this.copy.push(line);
        this.copyBytes += line.length;
      }
    }
  }

  /** The first ticket field's value (after-filter milter), or null. */
  get ticket(): string | null {
    return this.tickets.id;
  }

  /** Incoming X-Virus-* occurrences seen. */
  get incomingCount(): number {
    let n = 0;
    for (const e of this.incoming.values()) n += e.count;
    return n;
  }

  /** The header block as received, up to captureBytes (for notices). */
  captured(): { text: string; truncated: boolean } {
    return { text: this.copy ? this.copy.join('') : '', truncated: this.copyCut };
  }

  /**
   * Replies deleting (and for "rename", re-adding under a new name) the incoming X-Virus-*
   * fields. `top`: add at the top (SMFIR_INSHEADER 0, milter v6) rather than at the end.
   */
  incomingPackets(policy: IncomingPolicy, lead: string, top = true): Packet[] {
    const out: Packet[] = [];
    const renamed: [string, string][] = [];
    for (const e of this.incoming.values()) {
      for (let i = e.count; i >= 1; i--) out.push(chg(i, e.name, ''));
      if (policy === 'rename') for (const v of e.values) renamed.push([renamedHeader(e.name), lead + v]);
    }
    return [...out, ...addHeaders(renamed, top)];
  }

  /** Replies deleting the ticket field(s). */
  ticketPackets(): Packet[] {
    const out: Packet[] = [];
    for (let i = this.tickets.count; i >= 1; i--) out.push(chg(i, this.opts.ticketHeader!, ''));
    return out;
  }

  /**
   * Replies for the edits themselves (headers, subject, quarantine). `top`: our headers go at
   * the top of the header block (SMFIR_INSHEADER 0, as the proxy prepends them and as a trace
   * field of this hop belongs), in their order; else appended (SMFIR_ADDHEADER, before v6).
   */
  editPackets(e: MessageEdits, lead: string, top = true): Packet[] {
    const out: Packet[] = addHeaders(e.add.map(([n, v]) => [n, lead + v] as [string, string]), top);
    if (e.subjectPrefix) {
      if (this.subject !== null) out.push(chg(1, 'Subject', lead + prefixSubject(this.subject, e.subjectPrefix)));
      else out.push({ cmd: SMFIR.ADDHEADER, data: cstrings('Subject', lead + e.subjectPrefix.trim()) });
    }
    if (e.quarantine) out.push({ cmd: SMFIR.QUARANTINE, data: cstrings(e.quarantine) });
    return out;
  }
}

/** Headers in order, at the top (each INSHEADER 0 lands above the previous: sent in reverse) or appended. */
function addHeaders(list: readonly [string, string][], top: boolean): Packet[] {
  if (!top) return list.map(([n, v]) => ({ cmd: SMFIR.ADDHEADER, data: cstrings(n, v) }));
  const zero = Buffer.alloc(4);
  return [...list].reverse().map(([n, v]) => ({ cmd: SMFIR.INSHEADER, data: Buffer.concat([zero, cstrings(n, v)]) }));
}

function chg(index: number, name: string, value: string): Packet {
  const idx = Buffer.alloc(4);
  idx.writeUInt32BE(index, 0);
  return { cmd: SMFIR.CHGHEADER, data: Buffer.concat([idx, cstrings(name, value)]) };
}

/** The SMFIF action bits a set of replies needs. */
export function actionsNeeded(packets: readonly Packet[]): number {
  let bits = 0;
  for (const p of packets) {
    if (p.cmd === SMFIR.ADDHEADER || p.cmd === SMFIR.INSHEADER) bits |= SMFIF.ADDHDRS;
    else if (p.cmd === SMFIR.CHGHEADER) bits |= SMFIF.CHGHDRS;
    else if (p.cmd === SMFIR.QUARANTINE) bits |= SMFIF.QUARANTINE;
  }
  return bits;
}

/** The action bits we ask for in OPTNEG (masked by what the MTA offers). */
export const EDIT_ACTIONS = SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE;
