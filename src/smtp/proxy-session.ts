/**
 * proxy-session.ts — one inbound connection of the before-queue proxy.
 *
 * Input: a connected socket (normally Postfix's before-filter smtpd) and an immutable
 * ProxyContext. Commands: EHLO/HELO, XFORWARD (trusted peers only), MAIL, RCPT, DATA,
 * RSET, NOOP, QUIT. Output: replies to the client; one downstream SMTP transaction per
 * MAIL; one `message` log line per DATA transaction.
 *
 * Flow: the downstream (after-filter smtpd) is opened at MAIL; EHLO, XFORWARD, MAIL and
 * RCPT go on with their parameters unchanged and every downstream reply is relayed
 * verbatim. DATA content is forwarded downstream as received (SmtpReader's `wire`: the
 * client's dot-stuffed bytes, no copy) and its unstuffed `view` is pushed into the core
 * session, synchronously, in the socket's 'data' handler: the inbound socket is paused
 * and a promise awaited only when a side really pushes back (session.push returned
 * something other than PUSHED: a clamd stream is over its high-water mark; or the
 * downstream socket's buffer is full) — at most one promise hop per socket read. Reads
 * are sized by what the core can take (src/net/sized-reads.ts, Session.room()), so a
 * connection whose clamd stream waits for a slot holds a few KiB, not a 64 KiB read and
 * its decoded output. The final "." is withheld until
 * the verdict: accept → send it and relay the downstream's final reply (queue id);
 * reject → destroy the downstream, answer from replyFor(); tempfail → 451 4.7.1. An
 * early verdict (onFinal) destroys the downstream at once; the rest of DATA is read and
 * discarded. If no verdict `replyBudgetMs` after the client's "." we answer 451 and the
 * dot is never sent afterwards (Postfix gives up at 100 s and the client would resend:
 * a late delivery would be a duplicate).
 * Errors: downstream failures → 451 4.4.x; a bug inside a command handler → logged as
 * such, 451 4.3.0, connection closed. Peer garbage → 5xx replies; after
 * MAX_ERRORS of them the connection is closed (421).
 * Gaps: one transaction's downstream per MAIL (no connection reuse); no SIZE limit of
 * our own (Postfix enforces message_size_limit before us); replies to pipelined commands
 * are written one by one, not batched.
 */
import type { BlockList, Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import type { Action, Engine, Session, SocketAddress, Verdict } from '../core/index.js';
import { PUSHED, errorFields, formatAddress, refuses, replyFor } from '../core/index.js';
import { DEFAULT_HEADER_SETTINGS, editsFor, noEdits, type HeaderSettings } from '../actions/message-edits.js';
import type { Notifier } from '../actions/notifier.js';
import { TICKET_HEADER, type TicketBook } from '../actions/verdict-tickets.js';
import { HeaderFilter } from './header-filter.js';
import type { Logger } from '../log/logger.js';
import { logMessage, verdictColumns, type VerdictColumns } from '../log/message-log.js';
import type { ConnInfo } from '../net/server.js';
import { MAX_READ, MIN_READ, sizedReads } from '../net/sized-reads.js';
import { DownstreamClient, DownstreamError } from './downstream-client.js';
import { SmtpReader, type ReaderEvent } from './smtp-reader.js';
import { formatReply, queueIdOf, reply, type SmtpReply } from './smtp-reply.js';

/** What the proxy needs of an engine: sessions (whose policy picks the reply), and engine names for the log. */
export type ProxyEngine = Pick<Engine, 'begin' | 'engines'>;

/** Per-connection snapshot of the proxy's configuration. */
export interface ProxyContext {
  readonly engine: ProxyEngine;
  readonly logger: Logger;
  readonly forward: SocketAddress;
  readonly hostname: string;
  readonly trusted: BlockList;
  /** Header block prepended downstream (X-Virus-Scanned, proxy.add_header), as it goes on the wire (CRLF lines, dot-stuffed), or null. */
  readonly addHeader: Buffer | null;
  /** Incoming fields the header filter drops / renames (forged X-Virus-*, our ticket). */
  readonly headerRemove: readonly string[];
  readonly headerRename: ReadonlyMap<string, string>;
  /** What verdict-dependent edits to ask for ([headers]). */
  readonly headers: HeaderSettings;
  /** The after-filter milter's ticket book, when it is configured (tag, quarantine, X-Virus-Status need it). */
  readonly tickets: TicketBook | null;
  /** Notices, if configured. */
  readonly notifier: Notifier | null;
  /** Filed edits the after-filter milter never claimed (a metric). */
  readonly onUnclaimed?: () => void;
  readonly replyBudgetMs: number;
  readonly idleTimeoutMs: number;
  readonly maxLineBytes: number;
}

/** Our own replies (everything not relayed from downstream or taken from replyFor). */
export const REPLIES = {
  ok: reply(250, '2.0.0', 'Ok'),
  bye: reply(221, '2.0.0', 'Bye'),
  startData: '354 End data with <CR><LF>.<CR><LF>\r\n',
  needHelo: reply(503, '5.5.1', 'Error: send HELO/EHLO first'),
  nestedMail: reply(503, '5.5.1', 'Error: nested MAIL command'),
  needMail: reply(503, '5.5.1', 'Error: need MAIL command'),
  noValidRcpt: reply(554, '5.5.1', 'Error: no valid recipients'),
  xforwardInTx: reply(503, '5.5.1', 'Error: MAIL transaction in progress'),
  xforwardDenied: reply(550, '5.7.0', 'Error: insufficient authorization'),
  xforwardSyntax: reply(501, '5.5.4', 'Syntax: XFORWARD attribute=value...'),
  heloSyntax: reply(501, '5.5.4', 'Syntax: EHLO hostname'),
  mailSyntax: reply(501, '5.5.4', 'Syntax: MAIL FROM:<address>'),
  rcptSyntax: reply(501, '5.5.4', 'Syntax: RCPT TO:<address>'),
  badChars: reply(500, '5.5.2', 'Error: bad characters in command'),
  tooLong: reply(500, '5.5.0', 'Error: line too long'),
  unknown: reply(500, '5.5.2', 'Error: command not recognized'),
  notImplemented: reply(502, '5.5.1', 'Error: command not implemented'),
  tooManyErrors: reply(421, '4.7.0', 'Error: too many errors'),
  timeout: reply(421, '4.4.2', 'Error: timeout exceeded'),
  downstream: reply(451, '4.4.0', 'Error: temporary failure, try again later'),
  scanTimeout: reply(451, '4.7.1', 'Message could not be scanned in time, try again later'),
  internal: reply(451, '4.3.0', 'Error: internal error, try again later'),
  /** Our own 250 for a discarded message: nothing was queued, so no queue id. */
  discarded: reply(250, '2.0.0', 'Ok'),
  cannotEdit: reply(451, '4.7.1', 'Message could not be processed, try again later'),
  shutdown: reply(421, '4.3.0', 'Error: service shutting down'),
  draining: reply(421, '4.3.2', 'Service shutting down'),
} as const;

const MAX_ERRORS = 20;
/** A chunk's view in more pieces than this is pushed as one copy (joinView). */
const MAX_VIEW_PIECES = 4;
/**
 * One scratch buffer for joinView, shared by every connection: session.push() borrows a
 * chunk only until it returns (src/core/chunk-ownership.ts), so it is free again at once.
 */
let viewScratch = Buffer.allocUnsafe(65536);

function joinView(pieces: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of pieces) n += p.length;
  if (n > viewScratch.length) viewScratch = Buffer.allocUnsafe(Math.max(n, viewScratch.length * 2));
  let o = 0;
  for (const p of pieces) {
    viewScratch.set(p, o);
    o += p.length;
  }
  return viewScratch.subarray(0, n);
}
/** Header bytes kept per message for notices (only when notices are configured). */
const NOTICE_HEADER_BYTES = 16 * 1024;
const XFORWARD_ATTRS = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE'] as const;
/** XFORWARD_README: a command stays under 512 bytes. */
const XFORWARD_MAX_LINE = 500;

interface Transaction {
  readonly started: number;
  sender: string;
  readonly recipients: string[];
  downstream: DownstreamClient | null;
  session: Session | null;
  /** A non-accept verdict that arrived before the end of DATA (from onFinal). */
  early: Verdict | null;
  /** Set when we stop forwarding content (early verdict, downstream gone, internal error). */
  stopped: boolean;
  internalError: string | null;
  dotAt: number;
  /** The only place message bytes change: the top-level header block. */
  filter: HeaderFilter | null;
  /** This message's ticket for the after-filter milter, if it runs. */
  ticket: string | null;
}

/** Decode an xtext value (RFC 3461 "+HH"); invalid escapes are kept as-is. */
export function xtextDecode(s: string): string {
  return s.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Path argument of MAIL FROM:/RCPT TO: lines: the address inside <> (may be empty). */
export function parsePath(rest: string): { address: string; params: string } | null {
  let s = rest.replace(/^\s+/, '');
  if (!s.startsWith('<')) {
    // Postfix tolerates a bare address; so do we (it is passed on unchanged anyway).
    const sp = s.search(/\s/);
    const addr = sp < 0 ? s : s.slice(0, sp);
    if (addr === '') return null;
    return { address: addr, params: sp < 0 ? '' : s.slice(sp + 1).trim() };
  }
  let inQuote = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && inQuote) i++;
    else if (c === '"') inQuote = !inQuote;
    else if (c === '>' && !inQuote) {
      const params = s.slice(i + 1);
      if (params !== '' && !/^\s/.test(params)) return null;
      s = s.slice(1, i);
      // Source route "@a,@b:user@c" → user@c.
      const colon = s.startsWith('@') ? s.indexOf(':') : -1;
      return { address: colon >= 0 ? s.slice(colon + 1) : s, params: params.trim() };
    }
  }
  return null;
}

function hasBadChars(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

export class ProxySession {
  readonly id: string;
  private readonly reader: SmtpReader;
  private readonly peer: string;
  private readonly peerPort: number | undefined;
  private readonly trustedPeer: boolean;
  private helo: string | null = null;
  private xforward = new Map<string, string>();
  private tx: Transaction | null = null;
  private errors = 0;
  private closed = false;
  private pumping = false;
  /** Graceful shutdown asked: finish the transaction in progress, then 421 and close. */
  private draining = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ProxyContext,
    info: ConnInfo,
  ) {
    this.id = info.id;
    this.reader = new SmtpReader({ maxLineBytes: ctx.maxLineBytes });
    this.peer = info.peer;
    this.peerPort = info.peerPort;
    this.trustedPeer = info.peer === 'unix' /* unix socket: local by definition */ ||
      ctx.trusted.check(info.peer, isIPv4(info.peer) ? 'ipv4' : 'ipv6');
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Serve the connection; resolves when it is closed. */
  run(): Promise<void> {
    const s = this.socket;
    s.setNoDelay(true);
    s.setTimeout(this.ctx.idleTimeoutMs);
    s.on('timeout', () => {
      this.ctx.logger.warn('timeout', { front: 'proxy', conn: this.id, client: this.peer, inData: this.reader.inData });
      this.shutdown(REPLIES.timeout);
    });
    const onChunk = (chunk: Buffer) => {
      this.reader.push(chunk);
      this.pump();
    };
    if (!sizedReads(s, onChunk, () => this.nextReadSize())) s.on('data', onChunk);
    s.on('end', () => this.onClientGone('client closed the connection'));
    s.on('error', (e) => this.onClientGone(`client socket error: ${e.message}`));
    s.on('close', () => {
      this.onClientGone('connection closed');
      this.resolveDone();
    });
    this.write(`220 ${this.ctx.hostname} ESMTP midstream\r\n`);
    return this.done;
  }

  /**
   * How much the next socket read may take (src/net/sized-reads.ts): in DATA, what the
   * core can take without a scan stream going over its high-water mark (Session.room());
   * while we wait on a promise, a small read (by the time reading resumes the state
   * is another); otherwise a full read.
   */
  private nextReadSize(): number {
    if (this.pumping) return MIN_READ;
    const tx = this.tx;
    return tx?.session?.room && !tx.stopped && this.reader.inData ? tx.session.room() : MAX_READ;
  }

  /**
   * Graceful shutdown: a transaction in progress (MAIL … final reply) runs to its end;
   * then, or at once when idle between transactions, 421 4.3.2 and close.
   */
  drain(): void {
    this.draining = true;
    if (!this.pumping && this.tx === null) this.shutdown(REPLIES.draining);
  }

  /** Close with a final reply (server shutdown, timeout). */
  shutdown(finalReply: string = REPLIES.shutdown): void {
    if (this.closed) return;
    // Mid-DATA we cannot reply in-band; just drop (the client sees a lost connection = retry).
    if (!this.reader.inData) this.write(finalReply);
    this.closeNow('shutdown');
  }

  private closeNow(why: string): void {
    if (this.closed) return;
    this.abortTx(why);
    this.closed = true;
    this.socket.end();
    // If the client does not close its side, do not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private write(text: string): void {
    if (this.socket.writable) this.socket.write(text, 'latin1');
  }

  /**
   * Handle every event of the chunk in hand. Synchronous as long as no handler returns a
   * promise; the first one that does pauses the socket, and the pump goes on when it
   * settles (commands wait for the downstream; DATA only for real backpressure).
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    let waiting = false;
    try {
      for (;;) {
        if (this.closed) return;
        const ev = this.reader.next();
        if (ev === null) break;
        const p = this.handle(ev);
        if (p !== undefined) {
          waiting = true;
          this.socket.pause();
          p.then(
            () => {
              this.pumping = false;
              if (this.draining && this.tx === null && !this.closed) return this.shutdown(REPLIES.draining);
              this.pump();
            },
            (e) => {
              this.pumping = false;
              this.onBug(e);
            },
          );
          return;
        }
        if (this.draining && this.tx === null) return this.shutdown(REPLIES.draining);
      }
      if (!this.closed && this.socket.isPaused()) this.socket.resume();
    } catch (e) {
      this.onBug(e);
    } finally {
      if (!waiting) this.pumping = false;
    }
  }

  /** A broken invariant in our own code: fail this connection only. */
  private onBug(e: unknown): void {
    this.ctx.logger.error('bug', { front: 'proxy', conn: this.id, ...errorFields(e), stack: String((e as Error)?.stack ?? '') });
    this.shutdown(REPLIES.internal);
  }

  private onClientGone(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.abortTx(why);
    this.socket.destroy();
  }

  /** Abandon the transaction: nothing is delivered. */
  private abortTx(why: string): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = null;
    if (tx.ticket) this.ctx.tickets?.close(tx.ticket);
    if (tx.downstream) tx.downstream.destroy(why);
    if (tx.session) {
      tx.session.abort();
      this.logMessage(tx, { verdict: 'aborted', detail: why }, 'none');
    }
  }

  private error(r: string): void {
    this.write(r);
    if (++this.errors >= MAX_ERRORS) this.shutdown(REPLIES.tooManyErrors);
  }

  /** Returns a promise only when the pump must wait for it. */
  private handle(ev: ReaderEvent): Promise<void> | undefined {
    switch (ev.type) {
      case 'data':
        return this.onData(ev.view, ev.wire);
      case 'data-end':
        return this.onDataEnd();
      case 'command-too-long':
        this.error(REPLIES.tooLong);
        return undefined;
      case 'command':
        return this.onCommand(ev.line);
    }
  }

  private async onCommand(line: Buffer): Promise<void> {
    if (hasBadChars(line)) return this.error(REPLIES.badChars);
    // Latin1 keeps every byte (SMTPUTF8 addresses) so lines go downstream unchanged.
    const text = line.toString('latin1');
    const sp = text.indexOf(' ');
    const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : text.slice(sp + 1).trim();
    switch (verb) {
      case 'EHLO':
      case 'HELO':
        return this.onHelo(verb, arg);
      case 'XFORWARD':
        return this.onXforward(arg);
      case 'MAIL':
        return this.onMail(line, text);
      case 'RCPT':
        return this.onRcpt(line, text);
      case 'DATA':
        return this.onDataCmd();
      case 'RSET':
        this.abortTx('RSET');
        this.xforward.clear();
        return this.write(REPLIES.ok);
      case 'NOOP':
        return this.write(REPLIES.ok);
      case 'QUIT':
        this.write(REPLIES.bye);
        return this.closeNow('QUIT');
      case 'VRFY':
      case 'EXPN':
      case 'ETRN':
      case 'BDAT':
      case 'AUTH':
      case 'STARTTLS':
      case 'XCLIENT':
      case 'TURN':
        return this.error(REPLIES.notImplemented);
      default:
        return this.error(REPLIES.unknown);
    }
  }

  private onHelo(verb: string, arg: string): void {
    if (arg === '' || /\s/.test(arg)) return this.error(REPLIES.heloSyntax);
    this.abortTx('new EHLO');
    this.helo = arg;
    const h = this.ctx.hostname;
    if (verb === 'HELO') return this.write(`250 ${h}\r\n`);
    const ext = ['PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES'];
    if (this.trustedPeer) ext.push('XFORWARD ' + XFORWARD_ATTRS.join(' '));
    this.write([h, ...ext].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}`).join('\r\n') + '\r\n');
  }

  private onXforward(arg: string): void {
    if (!this.trustedPeer) return this.error(REPLIES.xforwardDenied);
    if (this.tx) return this.error(REPLIES.xforwardInTx);
    const attrs = arg.split(/\s+/).filter((a) => a !== '');
    if (attrs.length === 0) return this.error(REPLIES.xforwardSyntax);
    const parsed: [string, string][] = [];
    for (const a of attrs) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq).toUpperCase() : '';
      const value = a.slice(eq + 1);
      if (!(XFORWARD_ATTRS as readonly string[]).includes(name) || value.length > 255) {
        return this.error(REPLIES.xforwardSyntax);
      }
      parsed.push([name, value]);
    }
    for (const [k, v] of parsed) this.xforward.set(k, v);
    this.write(REPLIES.ok);
  }

  private clientAddress(): string {
    const a = this.xforward.get('ADDR');
    if (a === undefined || a === '[UNAVAILABLE]') return this.peer;
    const d = xtextDecode(a);
    return d.toUpperCase().startsWith('IPV6:') ? d.slice(5) : d;
  }

  private async onMail(line: Buffer, text: string): Promise<void> {
    if (this.helo === null) return this.error(REPLIES.needHelo);
    if (this.tx) return this.error(REPLIES.nestedMail);
    const m = /^MAIL FROM:/i.exec(text);
    const path = m ? parsePath(text.slice(m[0].length)) : null;
    if (!path) return this.error(REPLIES.mailSyntax);
    const tx: Transaction = {
      started: Date.now(),
      sender: path.address,
      recipients: [],
      downstream: null,
      session: null,
      early: null,
      stopped: false,
      internalError: null,
      dotAt: 0,
      filter: null,
      ticket: null,
    };
    this.tx = tx;
    let ds: DownstreamClient;
    try {
      ds = await DownstreamClient.connect(this.ctx.forward, { timeoutMs: this.ctx.replyBudgetMs });
    } catch (e) {
      return this.downstreamFailed(tx, e, 'connect');
    }
    if (this.tx !== tx) return ds.destroy('client gone');
    tx.downstream = ds;
    try {
      const ehlo = await ds.command(`EHLO ${this.helo}`);
      if (ehlo.code !== 250) throw new DownstreamError('EPROTO', `EHLO refused: ${ehlo.lines[0]}`);
      await this.sendXforward(ds, ehlo);
      const r = await ds.command(line);
      if (this.tx !== tx) return;
      this.write(formatReply(r));
      if (r.code >= 300) {
        // MAIL refused downstream: no transaction here either.
        this.tx = null;
        ds.quit();
      }
    } catch (e) {
      return this.downstreamFailed(tx, e, 'MAIL');
    }
  }

  /** Pass our client's XFORWARD attributes on, limited to what the downstream names. */
  private async sendXforward(ds: DownstreamClient, ehlo: SmtpReply): Promise<void> {
    if (this.xforward.size === 0) return;
    const kw = ehlo.lines.map((l) => l.slice(4).trim().split(/\s+/)).find((w) => w[0]?.toUpperCase() === 'XFORWARD');
    if (!kw) {
      this.ctx.logger.warn('xforward-unsupported', { front: 'proxy', conn: this.id, forward: ds.endpoint });
      return;
    }
    const offered = new Set(kw.slice(1).map((w) => w.toUpperCase()));
    const cmds: string[] = [];
    let cur = 'XFORWARD';
    for (const [k, v] of this.xforward) {
      if (!offered.has(k)) continue;
      const item = ` ${k}=${v}`;
      if (cur.length + item.length > XFORWARD_MAX_LINE && cur !== 'XFORWARD') {
        cmds.push(cur);
        cur = 'XFORWARD';
      }
      cur += item;
    }
    if (cur !== 'XFORWARD') cmds.push(cur);
    for (const c of cmds) {
      const r = await ds.command(c);
      // Client information is informational; losing it is logged, not fatal.
      if (r.code !== 250) this.ctx.logger.warn('xforward-refused', { front: 'proxy', conn: this.id, reply: r.lines[0] });
    }
  }

  private downstreamFailed(tx: Transaction, e: unknown, stage: string): void {
    this.ctx.logger.warn('downstream', { front: 'proxy', conn: this.id, stage, forward: formatAddress(this.ctx.forward), ...errorFields(e) });
    if (this.tx !== tx) return;
    this.tx = null;
    tx.downstream?.destroy();
    this.write(REPLIES.downstream);
  }

  private async onRcpt(line: Buffer, text: string): Promise<void> {
    const tx = this.tx;
    if (!tx || !tx.downstream) return this.error(REPLIES.needMail);
    const m = /^RCPT TO:/i.exec(text);
    const path = m ? parsePath(text.slice(m[0].length)) : null;
    if (!path) return this.error(REPLIES.rcptSyntax);
    try {
      const r = await tx.downstream.command(line);
      if (this.tx !== tx) return;
      if (r.code >= 200 && r.code < 300) tx.recipients.push(path.address);
      this.write(formatReply(r));
    } catch (e) {
      return this.downstreamFailed(tx, e, 'RCPT');
    }
  }

  private async onDataCmd(): Promise<void> {
    const tx = this.tx;
    if (!tx || !tx.downstream) return this.error(REPLIES.needMail);
    if (tx.recipients.length === 0) return this.error(REPLIES.noValidRcpt);
    const ds = tx.downstream;
    let r: SmtpReply;
    try {
      r = await ds.data();
    } catch (e) {
      return this.downstreamFailed(tx, e, 'DATA');
    }
    if (this.tx !== tx) return;
    if (r.code < 300 || r.code >= 400) {
      this.write(formatReply(r));
      this.tx = null;
      ds.quit();
      return;
    }
    const session = this.ctx.engine.begin({
      sender: tx.sender,
      recipients: tx.recipients,
      clientAddress: this.clientAddress(),
      clientName: this.xforward.has('NAME') ? xtextDecode(this.xforward.get('NAME') as string) : undefined,
      helo: this.xforward.has('HELO') ? xtextDecode(this.xforward.get('HELO') as string) : this.helo ?? undefined,
      queueId: this.xforward.has('IDENT') ? xtextDecode(this.xforward.get('IDENT') as string) : undefined,
      ...(this.socket.localPort ? { localPort: this.socket.localPort } : {}),
    });
    tx.session = session;
    session.onFinal((v) => {
      if (!refuses(replyFor(v, session.policy.actions).action) || tx.early) return;
      // Stop forwarding at once: the after-filter smtpd discards the open transaction.
      tx.early = v;
      tx.stopped = true;
      ds.destroy('early verdict');
    });
    ds.onClose(() => {
      if (!tx.early) tx.stopped = true;
    });
    this.reader.startData();
    let prelude = this.ctx.addHeader;
    if (this.ctx.tickets) {
      const [id, evicted] = this.ctx.tickets.open();
      if (evicted) this.ctx.logger.error('bug', { front: 'proxy', conn: this.id, stage: 'ticket', note: `ticket book full: evicted ${evicted}` });
      tx.ticket = id;
      const line = Buffer.from(`${TICKET_HEADER}: ${id}\r\n`, 'latin1');
      prelude = prelude ? Buffer.concat([prelude, line]) : line;
    }
    tx.filter = new HeaderFilter({
      prelude,
      remove: this.ctx.headerRemove,
      rename: this.ctx.headerRename,
      captureBytes: this.ctx.notifier?.active ? NOTICE_HEADER_BYTES : 0,
    });
    ds.writeData(tx.filter.prelude());
    this.write(REPLIES.startData);
  }

  /**
   * One socket chunk of DATA: forward `wire` as received, scan `view`. Synchronous unless
   * the core or the downstream pushes back; the returned promise settles when both have.
   */
  private onData(view: readonly Uint8Array[], wire: readonly Uint8Array[]): Promise<void> | undefined {
    const tx = this.tx;
    if (!tx || tx.stopped || !tx.session) return undefined; // discard: verdict latched or transaction dead
    const ds = tx.downstream as DownstreamClient;
    const session = tx.session;
    // The header filter hands back views of the wire (the same array once past the header block).
    const full = !ds.writeData(tx.filter ? tx.filter.push(wire) : wire);
    let waits: Promise<void>[] | null = null;
    try {
      if (view.length <= MAX_VIEW_PIECES) {
        for (let k = 0; k < view.length && !tx.stopped; k++) {
          const p = session.push(view[k]!);
          if (p !== PUSHED) (waits ??= []).push(p);
        }
      } else {
        // Many stuffing dots (one piece per line): one copy beats hundreds of pushes.
        const p = session.push(joinView(view));
        if (p !== PUSHED) waits = [p];
      }
    } catch (e) {
      this.pushFailed(tx, e);
      return undefined;
    }
    if (full && !tx.stopped) (waits ??= []).push(ds.drain(this.ctx.replyBudgetMs));
    if (waits === null) return undefined;
    // Both sides take the chunk before we read the next one: end-to-end backpressure.
    return (waits.length === 1 ? waits[0]! : Promise.all(waits)).then(
      () => undefined,
      (e: unknown) => this.pushFailed(tx, e),
    );
  }

  private pushFailed(tx: Transaction, e: unknown): void {
    tx.internalError = String((e as Error)?.message ?? e);
    this.ctx.logger.error('bug', { front: 'proxy', conn: this.id, stage: 'push', ...errorFields(e) });
    tx.stopped = true;
    tx.downstream?.destroy('internal error');
  }

  private async onDataEnd(): Promise<void> {
    const tx = this.tx;
    if (!tx || !tx.session) return; // client already gone: nothing to answer
    tx.dotAt = Date.now();
    const session = tx.session;
    const ds = tx.downstream as DownstreamClient;
    let verdict: Verdict | null = tx.early;
    let out: string;
    let queueId: string | undefined;
    /** Set when the outcome is ours, not the core's: no verdict, or the downstream failed after it. */
    let ours: VerdictColumns | null = null;
    let action: Action = 'tempfail';
    if (!verdict && !tx.internalError && ds.alive) {
      verdict = await this.verdictWithin(session, this.ctx.replyBudgetMs);
      if (this.tx !== tx) return; // client left while we waited
    }
    if (tx.internalError) {
      ds.destroy('internal error');
      session.abort();
      out = REPLIES.internal;
      ours = { verdict: 'error', name: 'internal', detail: tx.internalError };
    } else if (!verdict) {
      if (!ds.alive && !tx.early) {
        session.abort();
        out = REPLIES.downstream;
        ours = { verdict: 'error', name: 'downstream', ...(ds.error ? { detail: ds.error.message } : {}) };
      } else {
        // Budget exhausted: answer now and make sure the dot can never follow.
        ds.destroy('reply budget exhausted');
        session.abort();
        out = REPLIES.scanTimeout;
        ours = { verdict: 'error', name: 'reply-budget', detail: `no verdict ${this.ctx.replyBudgetMs} ms after the final dot` };
      }
    } else {
      const r = replyFor(verdict, session.policy.actions, session.policy.replies);
      action = r.action;
      // What the after-filter milter must do once the dot is sent (tag, quarantine, X-Virus-Status).
      const edits = refuses(r.action) ? null : editsFor(verdict, r.action, this.ctx.headers, false);
      if (refuses(r.action)) {
        ds.destroy('verdict ' + verdict.kind);
        out = reply(r.code, r.enhanced, r.text);
      } else if (edits!.discard) {
        // Nothing is delivered: the downstream transaction dies unfinished; the client hears 250 from us.
        ds.destroy('discard');
        out = REPLIES.discarded;
      } else if (!noEdits(edits!) && !tx.ticket) {
        // Startup refuses this configuration; should it happen, never deliver unmarked or unheld.
        this.ctx.logger.error('after-filter-milter-missing', { front: 'proxy', conn: this.id, action: r.action, note: 'tempfail: proxy.after_filter_milter is needed for this action' });
        ds.destroy('edits impossible');
        out = REPLIES.cannotEdit;
        action = 'tempfail';
      } else if (!ds.alive) {
        out = REPLIES.downstream;
        action = 'tempfail';
        ours = { verdict: 'error', name: 'downstream', ...(ds.error ? { detail: ds.error.message } : {}) };
      } else {
        const left = Math.max(1, this.ctx.replyBudgetMs - (Date.now() - tx.dotAt));
        // File the edits before the dot: the after-filter's milter asks for them right after it.
        if (tx.ticket) this.ctx.tickets?.settle(tx.ticket, edits!);
        try {
          const fin = await ds.endData(left);
          out = formatReply(fin);
          queueId = fin.code >= 200 && fin.code < 300 ? queueIdOf(fin) : undefined;
          // The after-filter's own answer decides (e.g. a 5xx from its checks).
          if (fin.code >= 300) action = fin.code < 500 ? 'tempfail' : 'reject';
          ds.quit();
          if (tx.ticket && !this.ctx.tickets!.close(tx.ticket) && fin.code < 300) {
            // Queued without our milter having seen it: the after-filter smtpd lacks smtpd_milters.
            this.ctx.onUnclaimed?.();
            this.ctx.logger.error('ticket-unclaimed', {
              front: 'proxy', conn: this.id, action, ...(queueId ? { queueId } : {}),
              note: 'the after-filter smtpd did not run the after-filter milter: verdict edits (tag, quarantine, X-Virus-Status) were not applied',
            });
          }
          tx.ticket = null;
        } catch (e) {
          // The downstream may have queued the mail already; we cannot know. Log loudly.
          this.ctx.logger.warn('downstream', { front: 'proxy', conn: this.id, stage: 'end-of-data', ...errorFields(e) });
          out = REPLIES.downstream;
          action = 'tempfail';
          ours = { verdict: 'error', name: 'downstream-after-dot', detail: String((e as Error)?.message ?? e) };
        }
      }
    }
    if (this.tx !== tx) return;
    this.tx = null;
    if (tx.ticket) this.ctx.tickets?.close(tx.ticket);
    this.write(out);
    this.logMessage(tx, ours ?? verdictColumns(verdict!), action, out, queueId);
    if (!ours && verdict) this.notify(tx, verdict, action, out, queueId);
    this.xforward.clear(); // XFORWARD attributes last one transaction (XFORWARD_README)
  }

  /** Notices for this message, if configured (after the reply: they never delay it). */
  private notify(tx: Transaction, verdict: Verdict, action: Action, out: string, queueId: string | undefined): void {
    const n = this.ctx.notifier;
    if (!n || !n.wants(verdict.kind, action)) return;
    const ident = this.xforward.get('IDENT');
    const helo = this.xforward.get('HELO');
    const qid = queueId ?? (ident !== undefined && ident !== '[UNAVAILABLE]' ? xtextDecode(ident) : undefined);
    n.notify({
      front: 'proxy',
      conn: this.id,
      verdict,
      action,
      ...(refuses(action) ? { reply: out.replace(/\r\n$/, '').replace(/\r\n/g, ' / ') } : {}),
      ...(qid ? { queueId: qid } : {}),
      sender: tx.sender,
      recipients: tx.recipients,
      client: this.clientAddress(),
      ...(helo !== undefined && helo !== '[UNAVAILABLE]' ? { helo: xtextDecode(helo) } : this.helo !== null ? { helo: this.helo } : {}),
      headers: tx.filter?.captured() ?? { text: '', truncated: false },
    });
  }

  /** session.end() or null when `budgetMs` passes first. */
  private verdictWithin(session: Session, budgetMs: number): Promise<Verdict | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), budgetMs);
      session.end().then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e) => {
          clearTimeout(timer);
          this.ctx.logger.error('bug', { front: 'proxy', conn: this.id, stage: 'end', ...errorFields(e) });
          resolve({ kind: 'error', errorKind: 'internal', where: '', detail: 'session.end() threw' });
        },
      );
    });
  }

  /** The one message line (src/log/message-log.ts), shared schema with the other fronts. */
  private logMessage(tx: Transaction, v: VerdictColumns, action: Action | 'none', out?: string, queueId?: string): void {
    const xPort = this.xforward.get('PORT');
    const port = xPort !== undefined && /^[0-9]{1,5}$/.test(xPort) ? Number(xPort) : this.xforward.has('ADDR') ? undefined : this.peerPort;
    const ident = this.xforward.get('IDENT');
    const helo = this.xforward.get('HELO');
    const session = tx.session;
    logMessage(this.ctx.logger, {
      front: 'proxy',
      conn: this.id,
      client: this.clientAddress(),
      ...(port !== undefined ? { clientPort: port } : {}),
      ...(helo !== undefined && helo !== '[UNAVAILABLE]' ? { helo: xtextDecode(helo) } : this.helo !== null ? { helo: this.helo } : {}),
      sender: tx.sender,
      rcpts: tx.recipients,
      // The after-filter's queue id on accept; on reject no queue file exists (Postfix logs NOQUEUE).
      ...(queueId ? { queueId } : ident !== undefined && ident !== '[UNAVAILABLE]' ? { queueId: xtextDecode(ident) } : {}),
      size: this.reader.data.bytes,
      ...v,
      ...(session?.rule ? { rule: session.rule } : {}),
      action,
      ...(out ? { reply: out.replace(/\r\n$/, '').replace(/\r\n/g, ' / ') } : {}),
      ms: Date.now() - tx.started,
      ...(tx.dotAt ? { eodMs: Date.now() - tx.dotAt } : {}),
      ...(tx.early ? { early: true } : {}),
      ...(action !== 'none' ? { at: 'DOT' } : {}),
      ...(session && session.stats.anomalies?.length ? { anomalies: session.stats.anomalies } : {}),
      ...(session?.stats.rawScan ? { rawScan: session.stats.rawScan } : {}),
    });
  }
}
