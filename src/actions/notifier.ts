/**
 * notifier.ts — notices about blocked, quarantined or tagged mail, to an admin address and
 * optionally to the recipients, sent with nodemailer through a configured relay.
 *
 * Input: one Notice per message from the fronts (after the reply is decided): verdict,
 * action, where, envelope, queue id, client, and the message's header block (bounded).
 * Output: plain-text notices. Never the payload: no body byte, no attachment, only the
 * header block (sanitised to printable ASCII, capped at HEADER_CAP).
 * Who gets one (when the message's verdict kind or action is listed in `on`):
 *   admin       every address in `admin`, one notice naming everything;
 *   recipients  each envelope recipient (first MAX_RECIPIENTS), one notice each naming only
 *               that recipient (other recipients may be Bcc), and only when the message was
 *               not delivered to them (reject, discard, quarantine);
 *   sender      the envelope sender, only if `sender` is set (off by default: a forged
 *               sender makes it backscatter), same condition, never for the null sender.
 * Notices go out with the null envelope sender (no bounce loops) unless `envelopeFrom` is
 * set, with `Auto-Submitted: auto-generated` (RFC 3834: no auto-replies).
 * Asynchronous and bounded: notify() only enqueues (never blocks, never throws); a queue of
 * at most `queueSize` notices (more are dropped), sent one at a time under a token bucket
 * of `maxPerMinute`. Every outcome is logged (`notice-sent`, `notice-failed`,
 * `notice-dropped`) and counted through `onResult`; nothing here affects an SMTP reply.
 * Errors: relay failures (connect, timeout, 4xx/5xx) are logged and counted per notice, not
 * retried (the queue would grow behind a dead relay).
 */
import { createTransport } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import { sanitize, type Action, type Verdict } from '../core/index.js';
import type { Logger } from '../log/logger.js';
import { describeVerdict } from './message-edits.js';

export interface NotifierSettings {
  /** The relay notices are sent through. */
  relay: { host: string; port: number };
  /** Header From of the notices. */
  from: string;
  /** Envelope sender; "" = the null sender <>. */
  envelopeFrom: string;
  /** Admin addresses; [] = no admin notices. */
  admin: readonly string[];
  /** Notify each envelope recipient of mail not delivered to them. */
  recipients: boolean;
  /** Notify the envelope sender (backscatter risk: off by default). */
  sender: boolean;
  /** Verdict kinds and/or actions that trigger notices, e.g. ["infected", "banned", "quarantine"]. */
  on: readonly string[];
  maxPerMinute: number;
  queueSize: number;
  timeoutMs: number;
  /** Our name in EHLO and in the notice text. */
  hostname: string;
}

export interface Notice {
  front: string;
  conn: string;
  verdict: Verdict;
  action: Action;
  /** The reply the client got, if ours. */
  reply?: string;
  queueId?: string;
  /** Envelope sender without <> ("" = null sender). */
  sender?: string;
  recipients: readonly string[];
  client?: string;
  helo?: string;
  /** The header block as received (bounded by the front), and whether it was cut. */
  headers: { text: string; truncated: boolean };
}

export type NoticeResult = 'sent' | 'failed' | 'dropped';
export type NoticeTarget = 'admin' | 'recipient' | 'sender';

interface Queued {
  target: NoticeTarget;
  to: string[];
  subject: string;
  text: string;
  conn: string;
}

const HEADER_CAP = 16 * 1024;
const MAX_RECIPIENTS = 50;
const PAST: Record<Action, string> = {
  reject: 'rejected',
  tempfail: 'deferred',
  quarantine: 'quarantined',
  tag: 'tagged and delivered',
  discard: 'discarded',
  accept: 'delivered',
};
const UNDELIVERED: readonly Action[] = ['reject', 'discard', 'quarantine'];

/** Printable ASCII lines (CR/LF/TAB kept as line structure), capped. */
function printable(s: string, max: number): string {
  let out = s.length > max ? s.slice(0, max) : s;
  out = out.replace(/\r\n?/g, '\n').replace(/[^\x20-\x7e\n\t]/g, '?');
  return out;
}

export class Notifier {
  private readonly queue: Queued[] = [];
  private tokens: number;
  private last = Date.now();
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly transport: Mail;
  private idle: (() => void) | null = null;

  constructor(
    private readonly s: Readonly<NotifierSettings>,
    private readonly log: Logger,
    private readonly onResult?: (r: NoticeResult, target: NoticeTarget) => void,
  ) {
    this.tokens = s.maxPerMinute;
    // One pooled connection: notices are few and sequential; reuse saves a handshake each.
    this.transport = createTransport({
      pool: true,
      maxConnections: 1,
      host: s.relay.host,
      port: s.relay.port,
      secure: false,
      name: s.hostname,
      connectionTimeout: s.timeoutMs,
      greetingTimeout: s.timeoutMs,
      socketTimeout: s.timeoutMs,
    });
  }

  /** Would a message with this verdict kind / action get any notice? (Fronts capture headers only then.) */
  wants(kind: string, action: Action): boolean {
    if (!this.s.on.includes(kind) && !this.s.on.includes(action)) return false;
    if (this.s.admin.length > 0) return true;
    return (this.s.recipients || this.s.sender) && UNDELIVERED.includes(action);
  }

  /** Could any message need its headers captured? */
  get active(): boolean {
    return this.s.admin.length > 0 || this.s.recipients || this.s.sender;
  }

  /** Queue the notices for one message. Never throws, never waits. */
  notify(n: Notice): void {
    try {
      if (this.closed || !this.wants(n.verdict.kind, n.action)) return;
      const undelivered = UNDELIVERED.includes(n.action);
      if (this.s.admin.length > 0) this.enqueue({ target: 'admin', to: [...this.s.admin], conn: n.conn, ...this.render(n, 'admin') });
      if (this.s.recipients && undelivered) {
        for (const r of n.recipients.slice(0, MAX_RECIPIENTS)) if (r) this.enqueue({ target: 'recipient', to: [r], conn: n.conn, ...this.render(n, 'recipient', r) });
      }
      if (this.s.sender && undelivered && n.sender) this.enqueue({ target: 'sender', to: [n.sender], conn: n.conn, ...this.render(n, 'sender', n.sender) });
    } catch (e) {
      this.log.error('bug', { stage: 'notify', error: String((e as Error)?.stack ?? e) });
    }
  }

  /** Stop: pending notices are dropped (logged), the one in flight may finish (bounded by timeoutMs). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const q of this.queue.splice(0)) this.result('dropped', q, 'shutting down');
    if (this.sending) await new Promise<void>((r) => (this.idle = r));
    this.transport.close();
  }

  private render(n: Notice, target: NoticeTarget, who?: string): { subject: string; text: string } {
    const v = n.verdict;
    const what = v.kind === 'infected' ? `virus ${sanitize(v.name, 80)}` : describeVerdict(v).split(' (')[0]!;
    const subject = `[midstream] message ${PAST[n.action]}: ${what}`.slice(0, 160);
    const lines: string[] = [];
    if (target === 'admin') lines.push(`midstream on ${this.s.hostname} (${n.front}) ${PAST[n.action]} a message.`, '');
    else if (target === 'recipient') lines.push(`A message addressed to you (${sanitize(who ?? '', 200)}) was ${PAST[n.action]} by the virus filter on ${this.s.hostname}.`, '');
    else lines.push(`A message you sent was ${PAST[n.action]} by the virus filter on ${this.s.hostname}.`, '');
    lines.push(`Verdict:    ${describeVerdict(v)}`);
    lines.push(`Action:     ${n.action}${n.reply ? ` (${sanitize(n.reply, 200)})` : ''}`);
    if (n.queueId) lines.push(`Queue ID:   ${sanitize(n.queueId, 40)}`);
    lines.push(`Sender:     <${sanitize(n.sender ?? '', 200)}>`);
    if (target === 'admin') {
      lines.push(`Recipients: ${n.recipients.slice(0, MAX_RECIPIENTS).map((r) => `<${sanitize(r, 200)}>`).join(', ')}${n.recipients.length > MAX_RECIPIENTS ? ` (+${n.recipients.length - MAX_RECIPIENTS} more)` : ''}`);
      if (n.client) lines.push(`Client:     ${sanitize(n.client, 60)}${n.helo ? ` (HELO ${sanitize(n.helo, 100)})` : ''}`);
      lines.push(`Connection: ${sanitize(n.conn, 40)}`);
    } else lines.push(`Recipient:  <${sanitize(who ?? '', 200)}>`);
    lines.push('', 'The message itself is not attached. Its header was:', '');
    // Defence in depth: whatever a front hands over, nothing past the header block goes out.
    const blank = n.headers.text.search(/\r?\n\r?\n/);
    const head = blank >= 0 ? n.headers.text.slice(0, blank + 1) : n.headers.text;
    lines.push(printable(head, HEADER_CAP) + (n.headers.truncated || head.length > HEADER_CAP ? '\n[... header cut]' : ''));
    return { subject, text: lines.join('\n') + '\n' };
  }

  private enqueue(q: Queued): void {
    if (this.queue.length >= this.s.queueSize) {
      this.result('dropped', q, 'queue full');
      return;
    }
    this.queue.push(q);
    this.pump();
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.s.maxPerMinute, this.tokens + ((now - this.last) * this.s.maxPerMinute) / 60_000);
    this.last = now;
  }

  private pump(): void {
    if (this.sending || this.closed || this.queue.length === 0) return;
    this.refill();
    if (this.tokens < 1) {
      if (!this.timer) {
        const wait = Math.ceil(((1 - this.tokens) * 60_000) / this.s.maxPerMinute);
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, wait);
        this.timer.unref();
      }
      return;
    }
    this.tokens -= 1;
    const q = this.queue.shift()!;
    this.sending = true;
    this.transport
      .sendMail({
        from: this.s.from,
        to: q.to,
        subject: q.subject,
        text: q.text,
        envelope: { from: this.s.envelopeFrom, to: q.to },
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Midstream-Notice': q.target },
      })
      .then(
        () => this.result('sent', q),
        (e: unknown) => this.result('failed', q, String((e as Error)?.message ?? e)),
      )
      .finally(() => {
        this.sending = false;
        if (this.idle) {
          this.idle();
          this.idle = null;
        }
        this.pump();
      });
  }

  private result(r: NoticeResult, q: Queued, why?: string): void {
    const fields = { conn: q.conn, target: q.target, to: q.to.slice(0, 10), ...(why ? { error: why } : {}) };
    if (r === 'sent') this.log.info('notice-sent', fields);
    else this.log.warn(r === 'failed' ? 'notice-failed' : 'notice-dropped', fields);
    try {
      this.onResult?.(r, q.target);
    } catch {
      // a metrics hook must not break the queue
    }
  }
}
