/**
 * pop3-session.ts — one client connection of the POP3 relay.
 *
 * Input: a connected client socket (plain, or TLS we terminate) and an immutable
 * Pop3Context. We connect to the upstream server, pass its greeting through (APOP
 * timestamp included) and relay the session: every command the client sends goes
 * upstream unchanged (USER/PASS/APOP/AUTH untouched, SASL exchanges line for line),
 * every response comes back unchanged — except
 *   - RETR and TOP bodies, which stream through the core with cushioned forwarding
 *     (retr-relay.ts): clean mail arrives byte for byte, infected mail cut short with a
 *     notice, a tempfail drops the connection before the terminator;
 *   - CAPA, which loses the server's STLS (and gains ours when we terminate TLS);
 *   - STLS, which is ours: we terminate TLS with the configured certificate, or refuse;
 *   - unknown commands, answered -ERR locally (pop3-commands.ts).
 * Pipelining (RFC 2449): commands go upstream as they come, up to maxPipeline
 * outstanding; responses, ours and the server's, go back in command order.
 * Output: one `message` log line per RETR/TOP (never content), warnings for protocol
 * trouble.
 * Failure handling: client gone → the upstream is destroyed without QUIT, so the server
 * never enters its UPDATE state (messages marked with DELE stay, RFC 1939 §6) and the
 * scan is aborted; upstream gone or silent → the client is dropped (mid-response no
 * terminator is sent, so no client takes a truncated message for a whole one); a bug in
 * a handler → logged, -ERR, closed.
 * Limits: command lines 8 KiB (SASL lines 64 KiB); maxPipeline outstanding commands
 * (then we stop reading the client); status lines 8 KiB; idle timeouts on both sides;
 * per-message holding as in retr-relay.ts.
 * Gaps: the upstream hop is plain TCP (run it on loopback); LANG and other extensions
 * are refused; the "+OK N octets" of a defanged message still states the original size.
 */
import { connect, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Actions, Engine, SocketAddress } from '../core/index.js';
import { DEFAULT_ACTIONS, errorFields, hostLookup } from '../core/index.js';
import type { Logger } from '../log/logger.js';
import { logMessage, verdictColumns, type VerdictColumns } from '../log/message-log.js';
import type { ConnInfo } from '../net/server.js';
import { CommandReader } from './command-reader.js';
import { LOCAL_REPLIES, filterCapaLine, parseCommand, type Command } from './pop3-commands.js';
import { ResponseReader, type Piece, type ResponseEvent } from './response-reader.js';
import { RetrRelay, type Outcome } from './retr-relay.js';

/** What the relay needs of an engine. `policy` may be absent in test engines. */
export type Pop3Engine = Pick<Engine, 'begin' | 'engines'> & { readonly policy?: Pick<Engine['policy'], 'actions'> };

export interface Pop3Context {
  readonly engine: Pop3Engine;
  readonly logger: Logger;
  readonly upstream: SocketAddress;
  readonly holdBytes: number;
  readonly holdExceeded: 'replace' | 'stream';
  readonly xVirusStatus: boolean;
  /** Client inactivity between commands (ms). */
  readonly idleTimeoutMs: number;
  /** Upstream: connect, and silence while a response is due (ms). */
  readonly upstreamTimeoutMs: number;
  /** 'stls': we offer STLS with `tlsContext`; 'pop3s': the listener is TLS already; 'none'. */
  readonly tls: 'none' | 'stls' | 'pop3s';
  readonly tlsContext: SecureContext | null;
  readonly maxPipeline: number;
}

const MAX_LINE = 8192;
const MAX_SASL_LINE = 64 * 1024;
const MAX_CAPA_BYTES = 64 * 1024;
const MAX_ERRORS = 20;
/** Pause the client socket when this much unread input waits. */
const CLIENT_BUFFER = 32 * 1024;

type Item =
  | { kind: 'local'; text: string }
  | {
      kind: 'upstream';
      cmd: Extract<Command, { kind: 'forward' }>;
      /** For USER: the name, logged once PASS succeeds. */
      arg?: string;
    };

interface RetrState {
  relay: RetrRelay;
  started: number;
  /** The command line as the log shows it, e.g. "RETR 3". */
  command: string;
  /** When the upstream's terminator arrived (ms), for eodMs. */
  endAt: number | null;
  abort(): void;
}

export class Pop3Session {
  readonly id: string;
  private client: Socket;
  private readonly peer: string;
  /** Set once connected: commands may go. */
  private upstream: Socket | null = null;
  private upstreamSock: Socket | null = null;
  /** The upstream socket closed; responses it sent before may still be in the reader. */
  private upstreamClosed = false;
  private readonly cmds = new CommandReader(MAX_LINE);
  private readonly resp = new ResponseReader();
  private readonly queue: Item[] = [];
  private retr: RetrState | null = null;
  private capa: { lines: Buffer[]; bytes: number } | null = null;
  private saslCredits = 0;
  private user: string | null = null;
  private pendingUser: string | null = null;
  private loggedIn = false;
  private tlsActive: boolean;
  private errors = 0;
  private closed = false;
  private clientEnded = false;
  private quitting = false;
  private draining = false;
  private clientPumping = false;
  private corked = false;
  private upstreamPumping = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    socket: Socket,
    private readonly ctx: Pop3Context,
    private readonly info: ConnInfo,
  ) {
    this.id = info.id;
    this.client = socket;
    this.peer = info.peer;
    this.tlsActive = ctx.tls === 'pop3s';
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Serve the connection; resolves when both sides are closed. */
  run(): Promise<void> {
    this.attachClient(this.client);
    this.client.pause();
    this.connectUpstream();
    return this.done;
  }

  /** Graceful shutdown: finish the response in progress, then close (-ERR when idle). */
  drain(): void {
    this.draining = true;
    if (this.queue.length === 0 && !this.retr) this.closeAll(LOCAL_REPLIES.shutdown, 'shutdown');
  }

  /** Close now (shutdown deadline). */
  shutdown(): void {
    this.closeAll(this.retr ? null : LOCAL_REPLIES.shutdown, 'shutdown');
  }

  // ---- client side ----------------------------------------------------------------------

  private attachClient(s: Socket): void {
    s.setNoDelay(true);
    s.setTimeout(this.ctx.idleTimeoutMs);
    s.on('timeout', () => {
      // A client waiting for a response in progress is not idle.
      if (this.queue.length > 0) return;
      this.ctx.logger.warn('timeout', { front: 'pop3', conn: this.id, client: this.peer, side: 'client' });
      this.closeAll(null, 'client idle');
    });
    s.on('data', (chunk: Buffer) => {
      this.cmds.push(chunk);
      if (this.cmds.buffered > CLIENT_BUFFER) s.pause();
      void this.pumpClient();
    });
    s.on('end', () => {
      this.clientEnded = true;
      // Half-closed after pipelined commands: answer them, then close.
      if (this.queue.length === 0 && !this.clientPumping) this.closeAll(null, 'client closed');
    });
    s.on('error', (e) => this.clientGone(`client socket error: ${e.message}`));
    s.on('close', () => this.clientGone('client connection closed'));
  }

  private writeClient(b: Uint8Array | string): boolean {
    const c = this.client;
    if (this.closed || c.destroyed || !c.writable) return true;
    // Writes of one turn (status line, pieces, dots, terminator) leave in one writev.
    if (!this.corked) {
      this.corked = true;
      c.cork();
      process.nextTick(() => {
        this.corked = false;
        c.uncork();
      });
    }
    return typeof b === 'string' ? c.write(b, 'latin1') : c.write(b);
  }

  private clientDrain(): Promise<void> {
    const c = this.client;
    if (this.closed || c.destroyed || !c.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        c.off('drain', done);
        c.off('close', done);
        resolve();
      };
      c.on('drain', done);
      c.on('close', done);
    });
  }

  private async pumpClient(): Promise<void> {
    if (this.clientPumping || this.closed) return;
    this.clientPumping = true;
    try {
      for (;;) {
        if (this.closed || this.quitting) return;
        // During an AUTH exchange client lines are SASL responses, one per continuation
        // of the server: read none until the AUTH is at the head and the server asked.
        const head = this.queue[0];
        const inSasl = head?.kind === 'upstream' && head.cmd.sasl === true;
        if (inSasl && this.saslCredits === 0) break;
        if (!inSasl && this.queue.some((i) => i.kind === 'upstream' && i.cmd.sasl === true)) break;
        if (!inSasl && this.queue.length >= this.ctx.maxPipeline) break;
        if (!this.upstream) break; // still connecting
        this.cmds.maxLine = inSasl ? MAX_SASL_LINE : MAX_LINE;
        const ev = this.cmds.next();
        if (ev === null) break;
        if (ev.type === 'too-long') {
          this.local(LOCAL_REPLIES.tooLong);
          if (++this.errors >= MAX_ERRORS) return this.closeAll(LOCAL_REPLIES.tooMany, 'too many errors');
          continue;
        }
        if (inSasl) {
          this.saslCredits--;
          this.sendUpstream(Buffer.concat([ev.line, CRLF]));
          continue;
        }
        await this.onCommand(ev.line);
      }
      if (this.clientEnded && this.queue.length === 0) return this.closeAll(null, 'client closed');
      if (!this.closed && this.cmds.buffered <= CLIENT_BUFFER) this.client.resume();
    } catch (e) {
      this.bug(e, 'client');
    } finally {
      this.clientPumping = false;
    }
  }

  private async onCommand(line: Buffer): Promise<void> {
    const text = line.toString('latin1');
    const cmd = parseCommand(text);
    if (cmd.kind === 'local') {
      this.local(cmd.reply);
      if (++this.errors >= MAX_ERRORS) this.closeAll(LOCAL_REPLIES.tooMany, 'too many errors');
      return;
    }
    if (cmd.kind === 'stls') return this.onStls();
    const item: Item = { kind: 'upstream', cmd };
    if (cmd.login === 'user') item.arg = text.slice(5).trim();
    if (cmd.login === 'apop') item.arg = text.slice(5).trim().split(' ')[0] ?? '';
    if (cmd.login === 'auth') item.arg = '';
    if (cmd.verb === 'QUIT') this.quitting = true;
    this.queue.push(item);
    this.resp.expect(cmd.expect);
    this.sendUpstream(Buffer.concat([line, CRLF]));
  }

  /** A reply of ours, in command order. */
  private local(text: string): void {
    if (this.queue.length === 0) this.writeClient(text);
    else this.queue.push({ kind: 'local', text });
  }

  private async onStls(): Promise<void> {
    if (this.ctx.tls !== 'stls' || this.tlsActive || !this.ctx.tlsContext) return this.local(LOCAL_REPLIES.noStls);
    if (this.loggedIn) return this.local(LOCAL_REPLIES.stlsLate);
    // Wait for earlier responses: the switch happens between two responses.
    while (this.queue.length > 0 && !this.closed) await new Promise((r) => setTimeout(r, 5));
    if (this.closed) return;
    // Anything pipelined after STLS was sent in the clear: discard it (RFC 2595 §3.1,
    // the STARTTLS command-injection problem).
    this.cmds.reset();
    this.writeClient('+OK Begin TLS negotiation\r\n');
    const raw = this.client;
    // The +OK must be on the wire in the clear before TLS takes the socket over.
    raw.uncork();
    raw.removeAllListeners('data');
    raw.removeAllListeners('end');
    raw.removeAllListeners('timeout');
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.ctx.tlsContext });
    this.client = tls;
    this.tlsActive = true;
    this.attachClient(tls);
  }

  private clientGone(why: string): void {
    if (this.closed) return;
    if (this.retr) {
      this.retr.abort();
      this.logAborted(this.retr, why);
      this.retr = null;
    }
    // No QUIT: the server must not enter UPDATE for a session that did not end with one.
    this.closeAll(null, why);
  }

  // ---- upstream side --------------------------------------------------------------------

  private connectUpstream(): void {
    const u = this.ctx.upstream;
    const sock = u.kind === 'unix' ? connect({ path: u.path }) : connect({ host: u.host, port: u.port, lookup: hostLookup });
    sock.setNoDelay(true);
    sock.setTimeout(this.ctx.upstreamTimeoutMs);
    this.resp.expect('single'); // the greeting
    this.queue.push({ kind: 'upstream', cmd: { kind: 'forward', verb: '(greeting)', expect: 'single' } });
    let connected = false;
    sock.once('connect', () => {
      connected = true;
      this.upstream = sock;
    });
    sock.on('timeout', () => {
      if (this.queue.length === 0 && connected) return; // idle between commands is fine
      this.ctx.logger.warn('upstream', { front: 'pop3', conn: this.id, error: connected ? 'no response in time' : 'connect timeout' });
      if (!connected) return this.closeAll(LOCAL_REPLIES.upstreamDown, 'connect timeout');
      this.upstreamGone('upstream silent');
    });
    sock.on('data', (chunk: Buffer) => {
      sock.pause();
      this.resp.push(chunk);
      void this.pumpUpstream();
    });
    sock.on('error', (e) => {
      this.ctx.logger.warn('upstream', { front: 'pop3', conn: this.id, connected, ...errorFields(e) });
      if (!connected) return this.closeAll(LOCAL_REPLIES.upstreamDown, 'connect failed');
      this.upstreamGone(`upstream error: ${e.message}`);
    });
    // The server may close right after its last response (QUIT pipelined behind RETRs):
    // what it sent before is still being relayed, so finish that first.
    sock.on('close', () => {
      this.upstreamClosed = true;
      if (!this.upstreamPumping) this.upstreamGone('upstream closed');
    });
    this.upstreamSock = sock;
  }

  private sendUpstream(b: Buffer): void {
    const u = this.upstream;
    if (u && !u.destroyed) u.write(b);
  }

  private async pumpUpstream(): Promise<void> {
    if (this.upstreamPumping) return;
    this.upstreamPumping = true;
    try {
      for (;;) {
        if (this.closed) return;
        const ev = this.resp.next();
        if (ev === null) break;
        await this.onResponse(ev);
        if (this.client.writableNeedDrain) await this.clientDrain();
      }
      if (!this.closed) this.upstreamSock?.resume();
    } catch (e) {
      this.bug(e, 'upstream');
    } finally {
      this.upstreamPumping = false;
    }
    if (this.upstreamClosed) this.upstreamGone('upstream closed');
  }

  private async onResponse(ev: ResponseEvent): Promise<void> {
    if (ev.type === 'status-too-long' || ev.type === 'unsolicited') {
      this.ctx.logger.warn('upstream-protocol', { front: 'pop3', conn: this.id, problem: ev.type });
      return this.closeAll(this.retr ? null : LOCAL_REPLIES.upstreamLost, 'upstream protocol error');
    }
    const head = this.queue[0];
    if (!head || head.kind !== 'upstream') {
      // Cannot happen: locals are flushed as soon as they reach the head.
      throw new Error('response with no upstream command at the head of the queue');
    }
    switch (ev.type) {
      case 'status':
        return this.onStatus(head, ev);
      case 'data':
        if (this.retr) return this.retr.relay.data(ev.pieces);
        if (this.capa) return this.collectCapa(ev.pieces);
        for (const p of ev.pieces) this.writePiece(p);
        return;
      case 'end':
        if (this.retr) return this.endRetr(ev.line);
        if (this.capa) this.flushCapa();
        this.writeClient(ev.line);
        return this.complete();
    }
  }

  private onStatus(head: Extract<Item, { kind: 'upstream' }>, ev: Extract<ResponseEvent, { type: 'status' }>): void {
    const cmd = head.cmd;
    if (cmd.sasl && ev.continuation) {
      this.writeClient(ev.line);
      this.saslCredits++;
      void this.pumpClient();
      return;
    }
    this.writeClient(ev.line);
    this.noteLogin(head, ev.ok);
    if (!ev.multi) {
      if (cmd.sasl) this.saslCredits = 0;
      return this.complete();
    }
    if (cmd.capa) this.capa = { lines: [], bytes: 0 };
    else if (cmd.scan) this.startRetr(cmd.scan, cmd.msg ?? '', ev.line);
  }

  private noteLogin(head: Extract<Item, { kind: 'upstream' }>, ok: boolean): void {
    switch (head.cmd.login) {
      case 'user':
        this.pendingUser = ok ? (head.arg ?? '') : null;
        return;
      case 'pass':
        if (ok) {
          this.loggedIn = true;
          this.user = this.pendingUser;
        }
        return;
      case 'apop':
        if (ok) {
          this.loggedIn = true;
          this.user = head.arg ?? null;
        }
        return;
      case 'auth':
        if (ok) this.loggedIn = true;
        return;
    }
  }

  private startRetr(cmd: 'RETR' | 'TOP', msg: string, status: Buffer): void {
    const engine = this.ctx.engine;
    // Rules match POP3 sessions by client address only: `authenticated` means SMTP AUTH
    // (a sender's privilege) and must not carry over to downloads.
    const session = engine.begin({ clientAddress: this.peer });
    const actions: Actions = session.policy?.actions ?? engine.policy?.actions ?? DEFAULT_ACTIONS;
    const relay = new RetrRelay({
      session,
      actions,
      write: (b) => this.writeClient(b),
      drain: () => this.clientDrain(),
      holdBytes: this.ctx.holdBytes,
      holdExceeded: this.ctx.holdExceeded,
      xVirusStatus: this.ctx.xVirusStatus,
      top: cmd === 'TOP',
    });
    this.retr = { relay, started: Date.now(), command: `${cmd} ${msg}`, endAt: null, abort: () => session.abort() };
    void status;
  }

  private async endRetr(terminator: Buffer): Promise<void> {
    const r = this.retr!;
    r.endAt = performance.now();
    const outcome = await r.relay.end(terminator);
    if (this.retr !== r) return; // the client left while the verdict was pending
    this.retr = null;
    this.logRetr(r, outcome);
    if (outcome.action === 'drop') {
      // tempfail: no terminator — the client keeps the message on the server and retries.
      return this.closeAll(null, 'tempfail');
    }
    this.complete();
  }

  private collectCapa(pieces: Piece[]): void {
    const c = this.capa!;
    for (const p of pieces) {
      c.bytes += p.bytes.length;
      if (c.bytes > MAX_CAPA_BYTES) continue; // a real server's list is tiny: drop the excess
      c.lines.push(Buffer.from(p.bytes));
    }
  }

  private flushCapa(): void {
    const text = Buffer.concat(this.capa!.lines).toString('latin1');
    this.capa = null;
    const out: string[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\r$/, '');
      if (line === '' && raw === '') continue;
      const kept = filterCapaLine(line);
      if (kept !== null) out.push(kept);
    }
    if (this.ctx.tls === 'stls' && !this.tlsActive && !this.loggedIn) out.push('STLS');
    // Capability lines never start with "." — stuff anyway, for form's sake.
    this.writeClient(out.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join(''));
  }

  private writePiece(p: Piece): void {
    if (p.dot) this.writeClient(DOT);
    if (p.bytes.length > 0) this.writeClient(p.bytes);
  }

  /** The response at the head is complete: pop it, flush our own replies behind it. */
  private complete(): void {
    const head = this.queue.shift();
    while (this.queue[0]?.kind === 'local') this.writeClient((this.queue.shift() as { text: string }).text);
    if (head?.kind === 'upstream' && head.cmd.verb === 'QUIT') return this.closeAll(null, 'QUIT');
    if (this.draining && this.queue.length === 0) return this.closeAll(LOCAL_REPLIES.shutdown, 'shutdown');
    if (this.clientEnded && this.queue.length === 0 && !this.clientPumping) return this.closeAll(null, 'client closed');
    void this.pumpClient();
  }

  private upstreamGone(why: string): void {
    if (this.closed) return;
    if (this.quitting && this.queue.length === 0) return this.closeAll(null, why);
    if (this.retr) {
      this.retr.abort();
      this.logAborted(this.retr, why);
      this.retr = null;
      // Mid-response: no terminator, so the client cannot take a truncated message for whole.
      return this.closeAll(null, why);
    }
    const midResponse = this.resp.inBody;
    this.closeAll(midResponse ? null : LOCAL_REPLIES.upstreamLost, why);
  }

  // ---- closing and logging ---------------------------------------------------------------

  private closeAll(finalReply: string | null, why: string): void {
    if (this.closed) return;
    if (finalReply) this.writeClient(finalReply);
    this.closed = true;
    if (this.retr) {
      this.retr.abort();
      this.logAborted(this.retr, why);
      this.retr = null;
    }
    // Destroy, never QUIT: only the client's own QUIT may commit its DELEs (and it has
    // already been relayed when that is why we close).
    this.upstreamSock?.destroy();
    const c = this.client;
    c.end();
    // If the client does not close its side, do not keep the socket forever.
    const t = setTimeout(() => c.destroy(), 2000);
    t.unref();
    c.once('close', () => {
      clearTimeout(t);
      this.resolveDone();
    });
    if (c.destroyed) this.resolveDone();
  }

  private bug(e: unknown, where: string): void {
    this.ctx.logger.error('bug', { front: 'pop3', conn: this.id, stage: where, error: String((e as Error)?.stack ?? e) });
    this.closeAll(this.retr ? null : LOCAL_REPLIES.internal, 'internal error');
  }

  private logRetr(r: RetrState, o: Outcome): void {
    const action = o.action === 'delivered' ? 'accept' : o.action === 'defanged' ? 'reject' : 'tempfail';
    this.log(r, verdictColumns(o.verdict), action, o);
  }

  private logAborted(r: RetrState, why: string): void {
    this.log(r, { verdict: 'aborted', detail: why }, 'none', null);
  }

  private log(r: RetrState, v: VerdictColumns, action: 'accept' | 'reject' | 'tempfail' | 'none', o: Outcome | null): void {
    logMessage(this.ctx.logger, {
      front: 'pop3',
      conn: this.id,
      client: this.peer,
      ...(this.info.peerPort ? { clientPort: this.info.peerPort } : {}),
      rcpts: [],
      size: o?.bytes ?? r.relay.received,
      ...v,
      action,
      ms: Date.now() - r.started,
      ...(r.endAt !== null && o ? { eodMs: performance.now() - r.endAt } : {}),
      ...(o?.early ? { early: true } : {}),
      ...(o && o.anomalies.length ? { anomalies: o.anomalies } : {}),
      ...(o?.rawScan ? { rawScan: o.rawScan } : {}),
      ...(this.user ? { user: this.user } : {}),
      command: r.command,
      ...(o?.cutAt !== undefined ? { cutAt: o.cutAt } : {}),
      ...(o?.cutReason ? { cutReason: o.cutReason } : {}),
      ...(o ? { heldMax: o.heldMax } : {}),
    });
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
const DOT = Buffer.from('.', 'latin1');
