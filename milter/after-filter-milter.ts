/**
 * after-filter-milter.ts — the small milter the after-filter smtpd of the before-queue
 * layout runs (`-o smtpd_milters=inet:127.0.0.1:10027`), served by `midstream proxy`
 * itself (`[proxy] after_filter_milter`). It applies the verdict-dependent edits the proxy
 * could not make in the stream: X-Virus-Status, the tag's subject prefix, quarantine
 * (Postfix: the hold queue). It scans nothing.
 *
 * Protocol (milter v6, see PROTOCOL.md): we ask for headers and end of message only
 * (NOCONNECT NOHELO NOMAIL NORCPT NOBODY NOEOH NOUNKNOWN, NR_HDR) and for the
 * actions ADDHDRS CHGHDRS QUARANTINE. DATA is taken and answered so that Postfix's smtpd
 * flushes the skipped events' macros itself instead of at the hand-over to cleanup, whose
 * first write would then wait in Nagle for our delayed ACK (see milter-session.ts). Each message: HEADER fields are noted (the
 * `X-Midstream-Ticket` the proxy wrote first, the Subject; X-Virus-* are left alone: the
 * proxy removed the incoming ones in the stream, what is left is its own); at BODYEOB:
 *   no ticket           CONTINUE: not a message from our proxy (left as it is);
 *   unknown ticket      TEMPFAIL (forged, stale after a restart, or not settled: never
 *                       deliver as if scanned);
 *   known ticket        CHGHEADER deleting the ticket, the edits, then CONTINUE (or
 *                       DISCARD); if the MTA did not grant an action the edits need,
 *                       TEMPFAIL and an error line (fail closed).
 * Tolerance as the main milter: commands before OPTNEG get replies, MACRO ignored,
 * ABORT/QUIT_NC reset the message, unknown commands are ignored.
 * Limits: packets up to MILTER_MAX_PACKET; header bookkeeping bounded (HeaderLedger).
 * Errors: a peer fault (bad packet) closes the connection; the MTA then applies
 * milter_default_action (keep it "tempfail").
 */
import type net from 'node:net';
import { parseAddress } from '../src/core/index.js';
import type { Logger } from '../src/log/logger.js';
import { serve, type FrontSpec } from '../src/net/server.js';
import { TICKET_HEADER, parseTicket, type TicketBook } from '../src/actions/verdict-tickets.js';
import { MILTER_MAX_PACKET, MILTER_VERSION, SMFIC, SMFIP, SMFIR, commandName } from './milter-codes.js';
import { MilterDecoder, encodeBatch, encodeOptneg, parseOptneg, splitNul, type Packet } from './milter-wire.js';
import { EDIT_ACTIONS, HeaderLedger, actionsNeeded } from './milter-edits.js';

const WANTED = SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOBODY | SMFIP.NOEOH | SMFIP.NOUNKNOWN | SMFIP.NR_HDR;
const EMPTY = Buffer.alloc(0);

export interface AfterFilterSettings {
  readonly tickets: TicketBook;
  readonly logger: Logger;
}

/** One MTA connection of the after-filter smtpd. Transport-free: write/close callbacks. */
export class AfterFilterSession {
  private readonly decoder = new MilterDecoder(MILTER_MAX_PACKET);
  private protocol = 0;
  private actions = 0;
  private version = MILTER_VERSION;
  private ledger = this.fresh();
  private closed = false;

  constructor(
    private readonly s: AfterFilterSettings,
    private readonly io: { write(b: Buffer): void; close(): void; connId: string },
  ) {}

  private fresh(): HeaderLedger {
    return new HeaderLedger({ ticketHeader: TICKET_HEADER });
  }

  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    const { packets, error } = this.decoder.push(chunk);
    const out: Packet[] = [];
    for (const p of packets) this.handle(p, out);
    if (out.length) this.io.write(encodeBatch(out));
    if (error) {
      this.s.logger.warn('peer-fault', { front: 'after-filter-milter', conn: this.io.connId, code: error.code, length: error.length });
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.io.close();
  }

  private replyUnlessNr(cmd: string, out: Packet[]): void {
    const nr: Record<string, number> = { [SMFIC.HEADER]: SMFIP.NR_HDR };
    const bit = nr[cmd];
    if (bit !== undefined && (this.protocol & bit) !== 0) return;
    out.push({ cmd: SMFIR.CONTINUE, data: EMPTY });
  }

  private handle(p: Packet, out: Packet[]): void {
    switch (p.cmd) {
      case SMFIC.OPTNEG: {
        const o = parseOptneg(p.data);
        if (!o) return this.close();
        this.actions = o.actions & EDIT_ACTIONS;
        this.protocol = o.protocol & WANTED;
        this.version = Math.min(o.version, MILTER_VERSION);
        out.push({ cmd: SMFIC.OPTNEG, data: encodeOptneg(this.version, this.actions, this.protocol) });
        return;
      }
      case SMFIC.MACRO:
        return;
      case SMFIC.HEADER: {
        const [name = EMPTY, value = EMPTY] = splitNul(p.data);
        this.ledger.seen(name.toString('latin1'), value.toString('latin1'));
        return this.replyUnlessNr(p.cmd, out);
      }
      case SMFIC.BODYEOB:
        out.push(...this.endOfMessage());
        this.ledger = this.fresh();
        return;
      case SMFIC.ABORT:
        this.ledger = this.fresh();
        return;
      case SMFIC.QUIT:
        return this.close();
      case SMFIC.QUIT_NC:
        this.ledger = this.fresh();
        return;
      case SMFIC.CONNECT:
      case SMFIC.HELO:
      case SMFIC.MAIL:
      case SMFIC.RCPT:
      case SMFIC.DATA:
      case SMFIC.EOH:
      case SMFIC.BODY:
      case SMFIC.UNKNOWN:
        // Only when the MTA did not take our NO* bits: answer and move on.
        if (p.cmd === SMFIC.MAIL) this.ledger = this.fresh();
        out.push({ cmd: SMFIR.CONTINUE, data: EMPTY });
        return;
      default:
        this.s.logger.warn('unknown-command', { front: 'after-filter-milter', conn: this.io.connId, cmd: commandName(p.cmd) });
    }
  }

  private endOfMessage(): Packet[] {
    const raw = this.ledger.ticket;
    if (raw === null) return [{ cmd: SMFIR.CONTINUE, data: EMPTY }];
    const id = parseTicket(raw);
    const edits = id ? this.s.tickets.claim(id) : null;
    if (!edits) {
      this.s.logger.error('ticket-unknown', { front: 'after-filter-milter', conn: this.io.connId, ticket: raw.slice(0, 40), note: 'tempfail: no verdict filed for this ticket (forged, stale or the proxy restarted)' });
      return [{ cmd: SMFIR.TEMPFAIL, data: EMPTY }];
    }
    const lead = (this.protocol & SMFIP.HDR_LEADSPC) !== 0 ? ' ' : '';
    // Incoming X-Virus-* were removed by the proxy in the stream; the X-Virus-Scanned here is its own.
    const packets = [...this.ledger.ticketPackets(), ...this.ledger.editPackets(edits, lead, this.version >= 6)];
    const missing = actionsNeeded(packets) & ~this.actions;
    if (missing !== 0) {
      this.s.logger.error('milter-actions-missing', { front: 'after-filter-milter', conn: this.io.connId, missing, note: 'tempfail: the MTA did not grant the actions the verdict needs' });
      return [{ cmd: SMFIR.TEMPFAIL, data: EMPTY }];
    }
    packets.push({ cmd: edits.discard ? SMFIR.DISCARD : SMFIR.CONTINUE, data: EMPTY });
    return packets;
  }
}

export const AFTER_FILTER_FRONT: FrontSpec<AfterFilterSettings> = {
  front: 'after-filter-milter',
  addressStyle: 'sendmail',
  connect(sock: net.Socket, s, info) {
    const session = new AfterFilterSession(s, {
      connId: info.id,
      write: (b) => {
        if (!sock.destroyed) sock.write(b);
      },
      close: () => sock.end(),
    });
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.on('data', (c: Buffer) => session.receive(c));
    sock.on('error', () => undefined);
    return { closed, drain: () => undefined, destroy: () => sock.destroy() };
  },
};

export interface AfterFilterMilter {
  readonly address: string;
  close(): Promise<void>;
}

/** Listen for the after-filter smtpd (Sendmail notation: inet:PORT@HOST or unix:/path). */
export async function startAfterFilterMilter(opts: { listen: string; tickets: TicketBook; logger: Logger; socketMode?: number; socketOwner?: string; socketGroup?: string; shutdownGraceMs?: number }): Promise<AfterFilterMilter> {
  const srv = await serve(AFTER_FILTER_FRONT, Object.freeze({ tickets: opts.tickets, logger: opts.logger }), {
    listen: parseAddress(opts.listen, 'milter'),
    socket: { mode: opts.socketMode ?? 0o660, ...(opts.socketOwner ? { owner: opts.socketOwner } : {}), ...(opts.socketGroup ? { group: opts.socketGroup } : {}) },
    shutdownGraceMs: opts.shutdownGraceMs ?? 5000,
    logger: opts.logger,
  });
  return { address: srv.address, close: () => srv.close() };
}
