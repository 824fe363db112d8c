/**
 * milter-session.ts — one MTA connection's milter state machine (protocol v6).
 *
 * Input: raw socket bytes via `receive(chunk)` (decoded by milter-wire.ts, handled
 * strictly in order, one command at a time, synchronously unless the core pushes back or
 * the end-of-message verdict is pending: `receive` then returns the one promise to wait
 * for, else undefined). Output: the replies of one read in one `write` call, and
 * `close()` on QUIT or a peer fault.
 * Each message becomes one core session: headers are rebuilt as `Name: value\r\n`
 * (MTAs strip one leading space and join folded lines with bare LF; we add ": "
 * and turn bare LF into CRLF), then `\r\n`, then the body chunks as they arrive —
 * so the core sees the same bytes as behind the SMTP front.
 *
 * Verdicts: as soon as the core latches a non-accept verdict, the next command
 * that may be answered (HEADER/EOH unless NR_*, BODY, EOB) gets SMFIR_REPLYCODE
 * ("550 5.7.1 …" / "451 4.7.1 …") and the rest of the message is ignored (later
 * BODY packets get SKIP when negotiated, else CONTINUE; EOB repeats the reply).
 * Otherwise EOB waits for `end()` (sending PROGRESS every ~5 s so Sendmail's
 * per-read timeout does not fire) and answers CONTINUE, or REPLYCODE. PROGRESS is
 * sent only while EOB is pending: Sendmail treats it as a bogus reply to anything else.
 *
 * Tolerance (like libmilter): commands before OPTNEG (we then answer everything),
 * MACRO at any time for any stage, double ABORT, QUIT_NC + new CONNECT, several
 * messages per connection, MAIL during/after a message = implicit reset, BODY
 * without EOH, unknown commands ignored (we cannot know whether a reply is due).
 * A core failure (push/end throwing) is a bug: that message gets 451 and an error log.
 * Known gaps: no SETSYMLIST, no MDS negotiation (we read up to 1 MiB anyway),
 * no QUARANTINE/CHGHEADER; out-of-order HEADER after BODY is ignored (logged);
 * a core push() that blocks longer than the MTA's per-read timeout (Sendmail T=R,
 * default 10 s) fails that message, since PROGRESS cannot be sent for BODY.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_ACTIONS, PUSHED, refuses, replyFor, sanitize, type Action, type Actions, type Engine, type Envelope, type Session, type Verdict } from '../src/core/index.js';
import { DEFAULT_HEADER_SETTINGS, editsFor, type HeaderSettings } from '../src/actions/message-edits.js';
import type { Notifier } from '../src/actions/notifier.js';
import type { Logger } from '../src/log/logger.js';
import { bareAddress, logMessage, verdictColumns, type VerdictColumns } from '../src/log/message-log.js';
import { MILTER_MAX_PACKET, MILTER_VERSION, SMFIC, SMFIP, SMFIR, commandName, flagNames, SMFIP_NAME, SMFIF_NAME } from './milter-codes.js';
import { EDIT_ACTIONS, HeaderLedger, actionsNeeded } from './milter-edits.js';
import {
  MilterDecoder,
  cstrings,
  encodeBatch,
  encodeOptneg,
  parseConnect,
  parseOptneg,
  splitNul,
  splitNulStrings,
  type ConnectInfo,
  type Packet,
  type WireError,
} from './milter-wire.js';

export interface MilterSessionOptions {
  engine: Engine;
  logger: Logger;
  /** Headers we add, remove or rename, and the tag's subject prefix (src/actions/message-edits.ts). */
  headers?: HeaderSettings;
  /** Notices about blocked/quarantined/tagged mail, if configured. */
  notifier?: Notifier | null;
  /** Sends one reply batch. */
  write(buf: Buffer): void;
  /** Ends the connection (QUIT or a fatal peer fault). */
  close(): void;
  /** Connection id for logs. */
  connId?: string;
  /** PROGRESS interval while a reply is pending (ms); default 5000. */
  progressIntervalMs?: number;
  maxPacket?: number;
}

/**
 * Protocol bits we ask for, if offered: skip steps we don't use, promise no replies where
 * we have nothing to say. HELO is wanted (with NR_HELO: no reply) for the log's `helo`
 * field: neither MTA has a HELO macro in its default lists.
 * DATA is wanted and answered (no NODATA, no NR_DATA) although we have nothing to say:
 * Postfix's smtpd buffers the unanswered envelope packets and writes them when it hands the
 * milter socket to cleanup, whose first content write then sits in the MTA's Nagle queue
 * until our delayed ACK (~40 ms per message on Linux). Reading our DATA reply makes smtpd
 * write that batch itself and get it acknowledged with the reply: one round trip instead.
 */
export const WANTED_PROTOCOL =
  SMFIP.NOUNKNOWN |
  SMFIP.SKIP |
  SMFIP.NR_CONN |
  SMFIP.NR_HELO |
  SMFIP.NR_MAIL |
  SMFIP.NR_RCPT |
  SMFIP.NR_UNKN |
  SMFIP.NR_HDR |
  SMFIP.NR_EOH;

/** Which NR_* bit silences the reply to which command. BODYEOB always gets a reply. */
const NO_REPLY_BIT: Readonly<Record<string, number>> = {
  [SMFIC.CONNECT]: SMFIP.NR_CONN,
  [SMFIC.HELO]: SMFIP.NR_HELO,
  [SMFIC.MAIL]: SMFIP.NR_MAIL,
  [SMFIC.RCPT]: SMFIP.NR_RCPT,
  [SMFIC.DATA]: SMFIP.NR_DATA,
  [SMFIC.UNKNOWN]: SMFIP.NR_UNKN,
  [SMFIC.HEADER]: SMFIP.NR_HDR,
  [SMFIC.EOH]: SMFIP.NR_EOH,
  [SMFIC.BODY]: SMFIP.NR_BODY,
};

/** Macro stages in order; a command of stage k clears the macros of stages > k. */
const STAGES = [SMFIC.CONNECT, SMFIC.HELO, SMFIC.MAIL, SMFIC.RCPT, SMFIC.DATA, SMFIC.EOH, SMFIC.BODYEOB] as const;
/** Pseudo-stage for MACRO packets of other commands (Postfix sends them before L, B…); cleared after the next command. */
const TEMP_STAGE = '*';

/**
 * Named message phases:
 *  idle      no message (after CONNECT/HELO/EOB/ABORT)
 *  envelope  MAIL/RCPT/DATA seen, no content yet
 *  headers   core session begun, header lines being pushed
 *  body      header/body separator pushed, body chunks being pushed
 *  decided   an early verdict was sent to the MTA; content is ignored until EOB/ABORT/MAIL
 */
export type Phase = 'idle' | 'envelope' | 'headers' | 'body' | 'decided';

interface Message {
  sender?: string;
  recipients: string[];
  core: Session | null;
  verdict: Verdict | null;
  /** Resolves the race in pushContent() when the core latches a verdict mid-push. */
  finalWaiter: (() => void) | null;
  started: number;
  /** The reply already given early (repeated at EOB). */
  earlyReply: Packet | null;
  /** The summary line was written (at the early reply, at EOB, or when aborted). */
  logged: boolean;
  /** When EOB arrived (for eodMs). */
  eomAt: number;
  /** Header fields the end-of-message edits refer to (incoming X-Virus-*, Subject), bounded. */
  ledger: HeaderLedger;
}

const CRLF = Buffer.from('\r\n');
/** Header bytes kept per message for notices (only when notices are configured). */
const NOTICE_HEADER_BYTES = 16 * 1024;
const COLON_SP = Buffer.from(': ');

export class MilterSession {
  private readonly decoder: MilterDecoder;
  private readonly log: Logger;
  private readonly connId: string;
  private readonly progressMs: number;
  /** The receive() in progress, if it had to wait; later chunks queue behind it. */
  private busy: Promise<void> | null = null;
  /** Replies of the current read, written in one piece (fewer syscalls, no Nagle stalls). */
  private outbox: Packet[] = [];
  private closed = false;

  /** Negotiated protocol/actions; before OPTNEG we behave as if nothing was negotiated (reply to all). */
  private version = MILTER_VERSION;
  private actions = 0;
  private protocol = 0;

  private conn: ConnectInfo | null = null;
  private helo: string | undefined;
  private readonly macros = new Map<string, Map<string, string>>();
  private msg: Message | null = null;
  private phaseNow: Phase = 'idle';
  private messages = 0;

  constructor(private readonly opts: MilterSessionOptions) {
    this.decoder = new MilterDecoder(opts.maxPacket ?? MILTER_MAX_PACKET);
    this.log = opts.logger;
    this.connId = opts.connId ?? '-';
    this.progressMs = opts.progressIntervalMs ?? 5000;
  }

  get phase(): Phase {
    return this.phaseNow;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The one policy table, with the engine's configured per-kind actions and reply templates. */
  private replyFor(v: Verdict, m: Message | null) {
    // The message's own policy first: [[rules]] may change the action per message.
    const policy = m?.core?.policy ?? this.opts.engine.policy;
    const actions: Actions = policy?.actions ?? DEFAULT_ACTIONS;
    return replyFor(v, actions, policy?.replies);
  }

  /** Macro lookup: the temporary stage, then the latest stage back to CONNECT. */
  macro(name: string): string | undefined {
    const t = this.macros.get(TEMP_STAGE)?.get(name);
    if (t !== undefined) return t;
    for (let i = STAGES.length - 1; i >= 0; i--) {
      const v = this.macros.get(STAGES[i]!)?.get(name);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /**
   * Feed socket bytes. Handled at once when nothing waits: returns undefined. Otherwise
   * returns a promise that resolves when these bytes are handled (later calls queue behind
   * it: the caller should stop reading meanwhile).
   */
  receive(chunk: Uint8Array): Promise<void> | undefined {
    if (this.busy) return this.queue(this.busy.then(() => this.process(chunk)));
    const w = this.process(chunk);
    return w === undefined ? undefined : this.queue(w);
  }

  private queue(w: Promise<void>): Promise<void> {
    const p: Promise<void> = w.finally(() => {
      if (this.busy === p) this.busy = null;
    });
    this.busy = p;
    return p;
  }

  /** The peer went away (socket closed/errored): cancel whatever is in flight. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbox = [];
    this.abortMessage('disconnect');
  }

  private process(chunk: Uint8Array): Promise<void> | undefined {
    if (this.closed) return undefined;
    const { packets, error } = this.decoder.push(chunk);
    return this.run(packets, 0, error);
  }

  /** Handle packets[from…]; synchronous until a handler has to wait. */
  private run(packets: readonly Packet[], from: number, error: WireError | undefined): Promise<void> | undefined {
    for (let k = from; k < packets.length; k++) {
      if (this.closed) return undefined;
      const p = packets[k]!;
      let w: Promise<void> | undefined;
      try {
        w = this.handle(p);
      } catch (e) {
        this.failed(p, e);
        return undefined;
      }
      if (w !== undefined) {
        // Whatever is answered so far goes out before we wait (the MTA may be waiting for it).
        this.flush();
        return w.then(
          () => this.run(packets, k + 1, error),
          (e: unknown) => this.failed(p, e),
        );
      }
    }
    if (error && !this.closed) {
      this.log.warn('peer-fault', { front: 'milter', conn: this.connId, code: error.code, length: error.length });
      this.shutdown();
    }
    this.flush();
    return undefined;
  }

  /** A broken invariant in our own code: fail this connection, not the process. */
  private failed(p: Packet, e: unknown): void {
    this.macros.delete(TEMP_STAGE);
    this.log.error('bug', { front: 'milter', conn: this.connId, cmd: commandName(p.cmd), error: String((e as Error)?.stack ?? e) });
    this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.abortMessage('close');
    this.opts.close();
  }

  private send(...packets: Packet[]): void {
    if (this.closed || packets.length === 0) return;
    for (const p of packets) this.outbox.push(p);
  }

  private flush(): void {
    if (this.closed || this.outbox.length === 0) return;
    const out = this.outbox;
    this.outbox = [];
    this.opts.write(encodeBatch(out));
  }

  /** Reply to `cmd` unless we promised (NR_*) never to. */
  private reply(cmd: string, p: Packet): undefined {
    const bit = NO_REPLY_BIT[cmd];
    if (bit === undefined || (this.protocol & bit) === 0) this.send(p);
    return undefined;
  }

  private mayReply(cmd: string): boolean {
    const bit = NO_REPLY_BIT[cmd];
    return bit === undefined || (this.protocol & bit) === 0;
  }

  private clearStagesAbove(stage: string): void {
    const k = STAGES.indexOf(stage as (typeof STAGES)[number]);
    for (let i = k + 1; i < STAGES.length; i++) this.macros.delete(STAGES[i]!);
  }

  private handle(p: Packet): Promise<void> | undefined {
    const { cmd, data } = p;
    this.log.debug('milter-cmd', { front: 'milter', conn: this.connId, cmd: commandName(cmd), len: data.length });
    if (cmd === SMFIC.MACRO) {
      this.storeMacros(data);
      return undefined;
    }
    const w = this.dispatch(cmd, data);
    // Macros for L/B/U/A… belong to that one command only.
    if (w === undefined) {
      this.macros.delete(TEMP_STAGE);
      return undefined;
    }
    return w.then(() => {
      this.macros.delete(TEMP_STAGE);
    });
  }

  private storeMacros(data: Buffer): void {
    if (data.length === 0) return;
    const stageCmd = String.fromCharCode(data[0]!);
    const stage = (STAGES as readonly string[]).includes(stageCmd) ? stageCmd : TEMP_STAGE;
    const fields = splitNulStrings(data.subarray(1));
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!, fields[i + 1]!);
    // A new MACRO packet for a stage replaces that stage (libmilter st_macros).
    this.macros.set(stage, m);
  }

  /** Returns a promise only when the command must wait (core backpressure, end of message). */
  private dispatch(cmd: string, data: Buffer): Promise<void> | undefined {
    switch (cmd) {
      case SMFIC.OPTNEG:
        this.onOptneg(data);
        return undefined;
      case SMFIC.CONNECT: {
        this.abortMessage('connect');
        this.clearStagesAbove(SMFIC.CONNECT);
        this.conn = parseConnect(data);
        this.helo = undefined;
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      }
      case SMFIC.HELO: {
        this.clearStagesAbove(SMFIC.HELO);
        this.helo = splitNulStrings(data)[0] ?? '';
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      }
      case SMFIC.MAIL: {
        // A new MAIL during or after a message is an implicit reset (Sendmail sends no ABORT after EOB).
        this.abortMessage('implicit-reset');
        this.clearStagesAbove(SMFIC.MAIL);
        this.msg = this.newMessage();
        this.msg.sender = splitNulStrings(data)[0] ?? '';
        this.phaseNow = 'envelope';
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      }
      case SMFIC.RCPT: {
        this.clearStagesAbove(SMFIC.RCPT);
        const m = this.ensureMessage();
        const r = splitNulStrings(data)[0];
        if (r !== undefined && m.recipients.length < 1000) m.recipients.push(r);
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      }
      case SMFIC.DATA:
        this.clearStagesAbove(SMFIC.DATA);
        this.ensureMessage();
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      case SMFIC.HEADER:
        return this.onHeader(data);
      case SMFIC.EOH:
        return this.onEoh();
      case SMFIC.BODY:
        return this.onBody(data);
      case SMFIC.BODYEOB:
        return this.onEob(data);
      case SMFIC.ABORT:
        // Idempotent: Postfix may send two in a row, even after EOB.
        this.abortMessage('abort');
        this.clearStagesAbove(SMFIC.HELO);
        return;
      case SMFIC.QUIT:
        this.shutdown();
        return;
      case SMFIC.QUIT_NC:
        // End of this SMTP session; a new CONNECT follows on this socket without OPTNEG.
        this.abortMessage('quit-nc');
        this.macros.clear();
        this.conn = null;
        this.helo = undefined;
        return;
      case SMFIC.UNKNOWN:
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
        return;
      default:
        // We cannot know whether the MTA waits for a reply; a stray reply would desync the stream.
        this.log.warn('unknown-command', { front: 'milter', conn: this.connId, cmd: commandName(cmd) });
        return;
    }
  }

  private onOptneg(data: Buffer): void {
    const o = parseOptneg(data);
    if (!o) {
      this.log.warn('peer-fault', { front: 'milter', conn: this.connId, code: 'milter-bad-optneg', length: data.length });
      this.shutdown();
      return;
    }
    this.version = Math.min(o.version, MILTER_VERSION);
    // Only bits the MTA offered: Postfix refuses unoffered action bits. We always ask for the
    // header and quarantine actions: forged X-Virus-* are removed from every message.
    this.actions = o.actions & EDIT_ACTIONS;
    this.protocol = o.protocol & WANTED_PROTOCOL;
    this.log.debug('milter-optneg', {
      front: 'milter',
      conn: this.connId,
      offered: { version: o.version, actions: flagNames(o.actions, SMFIF_NAME), protocol: flagNames(o.protocol, SMFIP_NAME) },
      chosen: { version: this.version, actions: flagNames(this.actions, SMFIF_NAME), protocol: flagNames(this.protocol, SMFIP_NAME) },
    });
    this.send({ cmd: SMFIC.OPTNEG, data: encodeOptneg(this.version, this.actions, this.protocol) });
  }

  // ---- message content --------------------------------------------------------

  private newMessage(): Message {
    this.messages++;
    const captureBytes = this.opts.notifier?.active ? NOTICE_HEADER_BYTES : 0;
    return { recipients: [], core: null, verdict: null, finalWaiter: null, started: Date.now(), earlyReply: null, logged: false, eomAt: 0, ledger: new HeaderLedger({ captureBytes }) };
  }

  private ensureMessage(): Message {
    if (!this.msg) {
      this.msg = this.newMessage();
      this.phaseNow = 'envelope';
    }
    return this.msg;
  }

  /** The core session for the current message, begun on the first content event. */
  private ensureCore(): Message {
    const m = this.ensureMessage();
    if (!m.core) {
      const env: Envelope = {
        sender: m.sender,
        recipients: m.recipients,
        clientAddress: this.clientAddress(),
        clientName: this.conn?.hostname,
        helo: this.helo,
        authenticated: this.macro('{auth_authen}'),
        queueId: this.macro('i'),
        daemonName: this.macro('{daemon_name}'),
        // Sendmail's {if_addr} (unset for loopback); Postfix calls it {daemon_addr}.
        localAddress: this.macro('{if_addr}') ?? this.macro('{daemon_addr}'),
      };
      const core = this.opts.engine.begin(env);
      m.core = core;
      core.onFinal((v) => {
        if (this.msg !== m || m.verdict) return;
        m.verdict = v;
        m.finalWaiter?.();
      });
      this.phaseNow = 'headers';
    }
    return m;
  }

  /**
   * Push bytes into the core. Undefined when done at once (the usual case: the core
   * returned PUSHED, or a verdict latched during the push); else a promise that settles
   * when the bytes are accepted or a verdict latched, whichever is first.
   */
  private pushContent(m: Message, bytes: Uint8Array): Promise<void> | undefined {
    const core = m.core!;
    if (m.verdict || bytes.length === 0) return undefined;
    let pushed: Promise<void>;
    try {
      pushed = core.push(bytes);
    } catch (e) {
      this.coreFailed(m, 'push', e);
      return undefined;
    }
    if (pushed === PUSHED) return undefined;
    const settled = pushed.then(
      () => true,
      (e: unknown) => {
        this.coreFailed(m, 'push', e);
        return false;
      },
    );
    // The core may have latched synchronously inside push(); a rejecting verdict needs no wait.
    if (m.verdict && refuses(this.replyFor(m.verdict, m).action)) return undefined;
    const final = new Promise<boolean>((res) => {
      m.finalWaiter = () => res(true);
    });
    // No PROGRESS here: Sendmail 8.17 takes 'p' in reply to BODY as a bogus response
    // (tempfail); it accepts PROGRESS only while waiting for the end-of-message reply.
    return Promise.race([settled, final]).then(async () => {
      // If the latched verdict lets the message through, the core must not get a second
      // push while this one is still running.
      if (m.verdict && !refuses(this.replyFor(m.verdict, m).action)) await settled;
      m.finalWaiter = null;
    });
  }

  private coreFailed(m: Message, where: string, e: unknown): void {
    this.log.error('bug', { front: 'milter', conn: this.connId, stage: where, error: String((e as Error)?.stack ?? e) });
    if (!m.verdict) m.verdict = { kind: 'error', errorKind: 'internal', where: '', detail: where };
    m.finalWaiter?.();
  }

  /** If a non-accept verdict is latched and `cmd` may be answered, answer it now. Returns true if done. */
  private answerEarly(m: Message, cmd: string): boolean {
    if (!m.verdict) return false;
    const r = this.replyFor(m.verdict, m);
    // Only refusals are answered early; every other action is applied at end of message.
    if (!refuses(r.action)) return false;
    if (!this.mayReply(cmd)) return false; // promised silence (NR_*): wait for the next step
    const p: Packet = { cmd: SMFIR.REPLYCODE, data: cstrings(replyText(r.code, r.enhanced, r.text)) };
    m.earlyReply = p;
    this.phaseNow = 'decided';
    // Stop scanning the rest; the verdict is ours to keep.
    m.core?.abort();
    this.send(p);
    // The MTA rejects now and may never send EOB (it ABORTs): the summary line is due now.
    this.logMessage(m, m.verdict, true, commandName(cmd));
    return true;
  }

  /** Run `next` after `w` (if any): the synchronous path stays synchronous. */
  private then(w: Promise<void> | undefined, next: () => Promise<void> | undefined | void): Promise<void> | undefined {
    if (w === undefined) return next() ?? undefined;
    return w.then(() => next() ?? undefined);
  }

  private onHeader(data: Buffer): Promise<void> | undefined {
    const cmd = SMFIC.HEADER;
    const cont: Packet = { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) };
    if (this.phaseNow === 'decided') return this.reply(cmd, cont);
    const m = this.ensureCore();
    if (this.phaseNow === 'body') {
      this.log.warn('out-of-order', { front: 'milter', conn: this.connId, cmd: 'HEADER', phase: 'body' });
      return this.reply(cmd, cont);
    }
    const [name = Buffer.alloc(0), value = Buffer.alloc(0)] = splitNul(data);
    m.ledger.seen(name.toString('latin1'), value.toString('latin1'));
    return this.then(this.pushContent(m, Buffer.concat([name, COLON_SP, lfToCrlf(value), CRLF])), () => {
      if (this.answerEarly(m, cmd)) return;
      this.reply(cmd, cont);
    });
  }

  private onEoh(): Promise<void> | undefined {
    const cmd = SMFIC.EOH;
    const cont: Packet = { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) };
    if (this.phaseNow === 'decided') return this.reply(cmd, cont);
    const m = this.ensureCore();
    return this.then(this.toBody(m), () => {
      if (this.answerEarly(m, cmd)) return;
      this.reply(cmd, cont);
    });
  }

  /** Push the header/body separator once (EOH may be missing: NOEOH, or BODY straight after RCPT). */
  private toBody(m: Message): Promise<void> | undefined {
    if (this.phaseNow !== 'headers') return undefined;
    this.phaseNow = 'body';
    return this.pushContent(m, CRLF);
  }

  private onBody(data: Buffer): Promise<void> | undefined {
    const cmd = SMFIC.BODY;
    if (this.phaseNow === 'decided') {
      const skip = (this.protocol & SMFIP.SKIP) !== 0;
      return this.reply(cmd, { cmd: skip ? SMFIR.SKIP : SMFIR.CONTINUE, data: Buffer.alloc(0) });
    }
    const m = this.ensureCore();
    return this.then(this.toBody(m), () =>
      this.then(this.pushContent(m, data), () => {
        if (this.answerEarly(m, cmd)) return;
        this.reply(cmd, { cmd: SMFIR.CONTINUE, data: Buffer.alloc(0) });
      }),
    );
  }

  private async onEob(data: Buffer): Promise<void> {
    const m = this.ensureCore();
    m.eomAt = Date.now();
    const out: Packet[] = [];
    let verdict: Verdict;
    let early = false;
    if (this.phaseNow === 'decided' && m.earlyReply) {
      verdict = m.verdict!;
      out.push(m.earlyReply);
      early = true;
    } else {
      await this.toBody(m);
      // Old MTAs may carry a last body chunk in EOB.
      if (data.length > 0) await this.pushContent(m, data);
      // The verdict is due now: everything said before goes out first.
      this.flush();
      if (m.verdict) {
        verdict = m.verdict;
        m.core!.abort();
      } else {
        try {
          verdict = await this.withProgress(m.core!.end());
        } catch (e) {
          this.coreFailed(m, 'end', e);
          verdict = m.verdict!;
        }
      }
      const d = this.decideEob(verdict, m);
      out.push(...d.packets);
      this.writeOutcome(m, verdict, d.action, d.reply, false);
    }
    this.logMessage(m, verdict, early);
    this.msg = null;
    this.phaseNow = 'idle';
    this.send(...out);
    this.flush();
  }

  /** The message line for a refusal given early (before EOB), or repeated at EOB. */
  private logMessage(m: Message, verdict: Verdict, early: boolean, at = 'EOB'): void {
    if (m.logged) return;
    const r = this.replyFor(verdict, m);
    const reply = refuses(r.action) ? replyText(r.code, r.enhanced, r.text).replace(/%%/g, '%') : undefined;
    this.writeOutcome(m, verdict, r.action, reply, early, at);
  }

  /** The message line, then the notices (if configured) for the outcome. */
  private writeOutcome(m: Message, verdict: Verdict, action: Action, reply: string | undefined, early: boolean, at = 'EOB'): void {
    if (m.logged) return;
    this.writeLine(m, verdictColumns(verdict), action, reply, early, at);
    const n = this.opts.notifier;
    if (n && n.wants(verdict.kind, action)) {
      const queueId = this.macro('i');
      const client = this.clientAddress();
      n.notify({
        front: 'milter',
        conn: this.connId,
        verdict,
        action,
        ...(reply ? { reply } : {}),
        ...(queueId ? { queueId } : {}),
        ...(m.sender !== undefined ? { sender: bareAddress(m.sender)! } : {}),
        recipients: m.recipients.map((r) => bareAddress(r)!),
        ...(client ? { client } : {}),
        ...(this.helo !== undefined ? { helo: this.helo } : {}),
        headers: m.ledger.captured(),
      });
    }
  }

  /** The one message line (src/log/message-log.ts), shared schema with the other fronts. */
  private writeLine(m: Message, v: VerdictColumns, action: Action | 'none', reply: string | undefined, early: boolean, at?: string): void {
    m.logged = true;
    const port = this.conn?.port;
    const queueId = this.macro('i');
    logMessage(this.log, {
      front: 'milter',
      conn: this.connId,
      ...(this.clientAddress() ? { client: this.clientAddress()! } : {}),
      ...(port ? { clientPort: port } : {}),
      ...(this.helo !== undefined ? { helo: this.helo } : {}),
      ...(m.sender !== undefined ? { sender: bareAddress(m.sender)! } : {}),
      rcpts: m.recipients.map((r) => bareAddress(r)!),
      ...(queueId ? { queueId } : {}),
      size: m.core?.stats.bytes ?? 0,
      ...v,
      ...(m.core?.rule ? { rule: m.core.rule } : {}),
      action,
      ...(reply ? { reply } : {}),
      ms: Date.now() - m.started,
      ...(m.eomAt && !early ? { eodMs: Date.now() - m.eomAt } : {}),
      ...(early ? { early: true } : {}),
      ...(at ? { at } : {}),
      ...(m.core && m.core.stats.anomalies?.length ? { anomalies: m.core.stats.anomalies } : {}),
      ...(m.core?.stats.rawScan ? { rawScan: m.core.stats.rawScan } : {}),
    });
  }

  private clientAddress(): string | undefined {
    return this.conn?.address || this.macro('{client_addr}');
  }

  /**
   * The end-of-message replies for a verdict: a refusal (REPLYCODE), or the edits of its
   * action (src/actions/message-edits.ts: headers, subject, quarantine) with the removal of
   * incoming X-Virus-* fields, then CONTINUE or DISCARD. When the MTA did not grant an action
   * the edits need, only cosmetic ones (our headers on accepted mail) are dropped; anything
   * else (a forged header to remove, tag, quarantine) fails closed with a tempfail.
   */
  private decideEob(v: Verdict, m: Message): { packets: Packet[]; action: Action; reply?: string } {
    const r = this.replyFor(v, m);
    if (refuses(r.action)) {
      const text = replyText(r.code, r.enhanced, r.text);
      return { packets: [{ cmd: SMFIR.REPLYCODE, data: cstrings(text) }], action: r.action, reply: text.replace(/%%/g, '%') };
    }
    const h = this.opts.headers ?? DEFAULT_HEADER_SETTINGS;
    const edits = editsFor(v, r.action, h);
    // No leading space: without HDR_LEADSPC the MTA adds one itself.
    const lead = (this.protocol & SMFIP.HDR_LEADSPC) !== 0 ? ' ' : '';
    const top = this.version >= 6; // SMFIR_INSHEADER
    const incoming = m.ledger.incomingPackets(h.incoming, lead, top);
    let packets = [...incoming, ...m.ledger.editPackets(edits, lead, top)];
    const missing = actionsNeeded(packets) & ~this.actions;
    if (missing !== 0) {
      if (r.action === 'accept' && incoming.length === 0) {
        this.log.debug('milter-headers-skipped', { front: 'milter', conn: this.connId, missing: flagNames(missing, SMFIF_NAME) });
        packets = [];
      } else {
        this.log.error('milter-actions-missing', { front: 'milter', conn: this.connId, action: r.action, missing: flagNames(missing, SMFIF_NAME), note: 'tempfail: the MTA did not grant the actions this message needs' });
        const text = replyText(451, '4.7.1', 'Message could not be processed, try again later');
        return { packets: [{ cmd: SMFIR.REPLYCODE, data: cstrings(text) }], action: 'tempfail', reply: text };
      }
    }
    packets.push({ cmd: edits.discard ? SMFIR.DISCARD : SMFIR.CONTINUE, data: Buffer.alloc(0) });
    return { packets, action: r.action };
  }

  /** Drop the current message (ABORT, reset, disconnect). Safe to call repeatedly. */
  private abortMessage(why: string): void {
    const m = this.msg;
    this.msg = null;
    this.phaseNow = 'idle';
    if (!m) return;
    m.finalWaiter = null;
    m.core?.abort();
    // Content had started and no verdict was given: the message line says it was aborted.
    if (m.core && !m.logged) this.writeLine(m, { verdict: 'aborted', detail: why }, 'none', undefined, false);
  }

  /** Await `p` (end of message), sending SMFIR_PROGRESS every interval so the MTA's per-read timer does not fire. */
  private async withProgress<T>(p: Promise<T>): Promise<T> {
    const timer = setInterval(() => {
      if (this.closed) clearInterval(timer);
      else {
        this.send({ cmd: SMFIR.PROGRESS, data: Buffer.alloc(0) });
        this.flush();
      }
    }, this.progressMs);
    try {
      return await p;
    } finally {
      clearInterval(timer);
    }
  }
}

/**
 * The SMFIR_REPLYCODE text: "ddd x.y.z text". Text is sanitised to printable ASCII
 * and '%' doubled (Sendmail uses it as a printf format). A code/enhanced pair that
 * is not 4xx/5xx with a matching class falls back to a generic tempfail.
 */
export function replyText(code: number, enhanced: string, text: string): string {
  const cls = Math.floor(code / 100);
  const ok = (cls === 4 || cls === 5) && code < 600 && new RegExp(`^${cls}\\.\\d{1,3}\\.\\d{1,3}$`).test(enhanced);
  if (!ok) return '451 4.7.1 Message could not be scanned, try again later';
  return `${code} ${enhanced} ${sanitize(text, 200).replace(/%/g, '%%')}`;
}

/** Bare LF → CRLF (folded header lines arrive joined by "\n"); existing CRLF kept. */
export function lfToCrlf(b: Buffer): Buffer {
  let lf = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) lf++;
  if (lf === 0) return b;
  const out = Buffer.allocUnsafe(b.length + lf);
  let o = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) out[o++] = 0x0d;
    out[o++] = b[i]!;
  }
  return out;
}
