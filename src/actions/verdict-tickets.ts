/**
 * verdict-tickets.ts — how the proxy's verdict reaches its after-filter milter.
 *
 * The proxy streams the header block downstream before the verdict is known, so edits that
 * depend on it (X-Virus-Status, the tag's subject prefix, quarantine) cannot be made in the
 * stream. Instead each message gets a ticket: a random id the proxy writes as the first
 * header (`X-Midstream-Ticket: ID`), and, once the verdict is known and before the final
 * dot, the edits filed under that id. The after-filter smtpd runs our small milter
 * (milter/after-filter-milter.ts), which reads the ticket header after the dot, takes the
 * edits, removes the ticket header and applies them (SMFIR_ADDHEADER/CHGHEADER/QUARANTINE).
 * One TicketBook per process, shared by the proxy sessions and that milter.
 *
 * Lifecycle of an id: open() at DATA → settle(id, edits) just before the final dot →
 * claim(id) by the milter at end of message → close(id) when the after-filter answered the
 * dot (or the transaction died). close() reports whether the milter claimed it: an
 * unclaimed settled ticket means the after-filter smtpd does not run the milter (the edits
 * were lost; the proxy logs it as an error).
 * Limits: at most `max` open tickets (one per proxy connection in DATA; more is a bug or a
 * leak: the oldest is evicted and logged by the caller through the returned value).
 * Errors: claim() of an unknown or unsettled id returns null (the milter tempfails: a
 * forged or stale ticket never passes unedited mail as if it had been scanned).
 */
import { randomBytes } from 'node:crypto';
import type { MessageEdits } from './message-edits.js';

export const TICKET_HEADER = 'X-Midstream-Ticket';

interface Entry {
  edits: MessageEdits | null;
  claimed: boolean;
}

export class TicketBook {
  private readonly open_ = new Map<string, Entry>();

  constructor(private readonly max = 100_000) {}

  /** A new ticket id (32 hex digits). Returns [id, evicted id or null]. */
  open(): [string, string | null] {
    const id = randomBytes(16).toString('hex');
    let evicted: string | null = null;
    if (this.open_.size >= this.max) {
      evicted = this.open_.keys().next().value ?? null;
      if (evicted !== null) this.open_.delete(evicted);
    }
    this.open_.set(id, { edits: null, claimed: false });
    return [id, evicted];
  }

  /** File the edits for `id` (before the final dot is sent). */
  settle(id: string, edits: MessageEdits): void {
    const e = this.open_.get(id);
    if (e) e.edits = edits;
  }

  /** The milter takes the edits of `id`; null if unknown or not settled yet. */
  claim(id: string): MessageEdits | null {
    const e = this.open_.get(id);
    if (!e || !e.edits) return null;
    e.claimed = true;
    return e.edits;
  }

  /** Forget `id`; returns whether the milter had claimed it (false also for unknown ids). */
  close(id: string): boolean {
    const e = this.open_.get(id);
    this.open_.delete(id);
    return e?.claimed ?? false;
  }

  get size(): number {
    return this.open_.size;
  }
}

/** A ticket id as the milter reads it from the header value. */
export function parseTicket(value: string): string | null {
  const v = value.trim();
  return /^[0-9a-f]{32}$/.test(v) ? v : null;
}
