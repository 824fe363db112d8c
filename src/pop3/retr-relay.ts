/**
 * retr-relay.ts — one RETR or TOP response body, from the upstream server through the
 * core to the client, with cushioned forwarding.
 *
 * Input: the body's Pieces (response-reader.ts), then its terminator. The content is
 * pushed into a core session; the wire bytes wait in a Cushion and go to the client only
 * as far as the session's release gate allows (release-gate.ts): no byte that could
 * complete a match still to be found is delivered before the scan has passed it.
 * Output: bytes for the client through `write` (false = the socket is full: we wait for
 * `drain`), and an Outcome for the log.
 *
 * On a verdict (policy actions, the same table as the other fronts):
 *   accept   → the held bytes and the terminator go out: the client gets the exact bytes;
 *   reject   → the delivery stops where it is: the rest is replaced by a notice and the
 *              MIME structure is closed (defang.ts), then the terminator. The rest of the
 *              upstream body is read and discarded. A verdict that latches mid-stream
 *              cuts at once; one that arrives at the end (hash signatures, clamd) cuts
 *              the held tail;
 *   tempfail → the client connection must be dropped before the terminator ('drop'):
 *              the client keeps the message on the server and retries later.
 * Holding is bounded by `holdBytes` of content. Beyond it, `holdExceeded` applies:
 *   'replace' → cut there as for a reject (the notice says why); the session is aborted;
 *   'stream'  → deliver all but the last holdBytes (the guarantee then holds only for
 *               detections within holdBytes of their evidence).
 * X-Virus-Status (optional): the message is held from its first byte until the verdict
 * (or holdBytes), then the header goes first: Clean / Infected (…) / …, or "Unknown
 * (scanned while delivered)" when holdBytes forced the delivery to begin first.
 * TOP: the response is a truncated message by request; 'unparseable' verdicts there
 * come from the truncation and are delivered (RETR scans the whole message).
 * Errors: a throw from the core's push is a bug: it becomes an internal error (tempfail).
 */
import type { Action, Actions, Session, StructureEvent, Verdict } from '../core/index.js';
import { replyFor } from '../core/index.js';
import { Cushion } from './cushion.js';
import { closingBytes, noticeText, verdictReason, virusStatus, type CutPoint } from './defang.js';
import type { Piece } from './response-reader.js';

export interface RelayOptions {
  session: Session;
  actions: Actions;
  /** Write to the client; false when its buffer is full. */
  write: (b: Uint8Array) => boolean;
  /** Resolves when the client's buffer has drained (or the client is gone). */
  drain: () => Promise<void>;
  holdBytes: number;
  holdExceeded: 'replace' | 'stream';
  xVirusStatus: boolean;
  top: boolean;
}

export type RelayAction = 'delivered' | 'defanged' | 'drop';

/**
 * The SMTP-side actions in POP3 terms: a retrieval cannot be held or discarded by us, so
 * quarantine and discard keep the content from the client as reject does (cut with a
 * notice); tag delivers as accept does (X-Virus-Status is pop3.x_virus_status's part).
 */
function pop3Action(a: Action): 'accept' | 'reject' | 'tempfail' {
  return a === 'quarantine' || a === 'discard' ? 'reject' : a === 'tag' ? 'accept' : a;
}

export interface Outcome {
  action: RelayAction;
  verdict: Verdict;
  /** Content bytes received from upstream. */
  bytes: number;
  /** Content offset where the message was cut (defanged). */
  cutAt?: number;
  /** Why it was cut when not for the verdict ('hold-bytes'). */
  cutReason?: string;
  /** Largest number of content bytes held at once. */
  heldMax: number;
  /** Content bytes delivered before the verdict was known. */
  deliveredBeforeVerdict: number;
  /** The verdict was final before the end of the body. */
  early: boolean;
  /** Structural anomalies the core recorded. */
  anomalies: readonly string[];
  /** clamd raw_message: how the raw message's scan ended, when one was asked for. */
  rawScan?: string;
}

const TOP_LEVEL_HEADER: StructureEvent = { kind: 'header', offset: 0, path: '', delimiters: [], encoding: '' };
const TERMINATOR = Buffer.from('.\r\n', 'latin1');

export class RetrRelay {
  private readonly cushion = new Cushion();
  private readonly events: StructureEvent[] = [];
  private current: StructureEvent = TOP_LEVEL_HEADER;
  private cut: { at: number; reason?: string; terminated: boolean } | null = null;
  private headerSent: boolean;
  private heldMax = 0;
  private deliveredEarly = 0;
  private discarded = 0;
  private internal: string | null = null;
  private full = false;
  private earlyVerdict = false;

  constructor(private readonly o: RelayOptions) {
    this.headerSent = !o.xVirusStatus;
    o.session.gate.onStructure((e) => this.events.push(e));
  }

  /** Content bytes received so far. */
  get received(): number {
    return this.cushion.received + this.discarded;
  }

  /** True once the message has been cut: further pieces are not delivered. */
  get isCut(): boolean {
    return this.cut !== null;
  }

  async data(pieces: Piece[]): Promise<void> {
    const s = this.o.session;
    for (const p of pieces) {
      if (this.cut) this.discarded += p.bytes.length;
      else this.cushion.add(p);
      // After a hold-bytes cut the scan goes on: the log and metrics get the real verdict.
      if (s.verdict !== null || this.internal !== null) continue;
      try {
        await s.push(p.bytes);
      } catch (e) {
        this.internal = String((e as Error)?.message ?? e);
      }
    }
    if (this.cut) return;
    if (this.cushion.held > this.heldMax) this.heldMax = this.cushion.held;
    if (s.verdict !== null && this.rejects(s.verdict)) return this.cutFor(s.verdict);
    // X-Virus-Status waits for the verdict while the whole message fits in hold_bytes.
    if (!this.headerSent) {
      if (this.cushion.received - this.cushion.released <= this.o.holdBytes) return;
      this.sendHeader(null);
    }
    let upTo = this.internal === null ? s.gate.releasable : this.cushion.released;
    if (this.cushion.received - Math.max(upTo, this.cushion.released) > this.o.holdBytes) {
      if (this.o.holdExceeded === 'replace') {
        this.cut = { at: this.cushion.released, reason: 'hold-bytes', terminated: false };
        return this.close(`it could not be scanned before delivery within hold_bytes (${this.o.holdBytes} bytes)`, null);
      }
      upTo = Math.max(upTo, this.cushion.received - this.o.holdBytes);
    }
    const before = this.cushion.released;
    await this.forward(upTo);
    this.deliveredEarly += this.cushion.released - before;
  }

  /** The upstream body ended. Returns what was done; 'drop' = close the client now, before any terminator. */
  async end(terminator: Buffer): Promise<Outcome> {
    const s = this.o.session;
    let verdict: Verdict;
    this.earlyVerdict = s.verdict !== null;
    if (this.internal !== null) {
      s.abort();
      verdict = { kind: 'error', errorKind: 'internal', where: '(message)', detail: this.internal };
    } else verdict = await s.end();
    let action = pop3Action(replyFor(verdict, this.o.actions).action);
    if (this.o.top && verdict.kind === 'unparseable') action = 'accept';
    if (this.cut?.terminated) return this.outcome('defanged', verdict);
    if (action === 'tempfail') return this.outcome('drop', verdict);
    if (!this.cut) {
      if (action === 'reject') await this.cutFor(verdict);
      else {
        if (!this.headerSent) this.sendHeader(verdict);
        await this.forward(Infinity);
        this.write(terminator);
        return this.outcome('delivered', verdict);
      }
    }
    if (!this.cut!.terminated) this.write(TERMINATOR);
    return this.outcome('defanged', verdict);
  }

  private rejects(v: Verdict): boolean {
    if (this.o.top && v.kind === 'unparseable') return false;
    return pop3Action(replyFor(v, this.o.actions).action) === 'reject';
  }

  private outcome(action: RelayAction, verdict: Verdict): Outcome {
    const o: Outcome = {
      action,
      verdict,
      bytes: this.cushion.received + this.discarded,
      heldMax: this.heldMax,
      deliveredBeforeVerdict: this.deliveredEarly,
      early: this.earlyVerdict,
      anomalies: this.o.session.stats.anomalies,
      ...(this.o.session.stats.rawScan ? { rawScan: this.o.session.stats.rawScan } : {}),
    };
    if (this.cut) {
      o.cutAt = this.cut.at;
      if (this.cut.reason) o.cutReason = this.cut.reason;
    }
    return o;
  }

  private sendHeader(v: Verdict | null): void {
    this.headerSent = true;
    this.write(Buffer.from(`X-Virus-Status: ${virusStatus(v)}\r\n`, 'latin1'));
  }

  /** A rejecting verdict: cut where the delivery stands, notice, close, terminate. */
  private async cutFor(v: Verdict): Promise<void> {
    if (!this.headerSent) this.sendHeader(v);
    // The gate may have moved when the verdict latched (up to the start of the entity it
    // came from: what lies before was scanned and settled).
    await this.forward(this.o.session.gate.releasable);
    // A complete top-level header block still held goes out whole (headers are not file
    // content — except to clamd whole-message mode, whose verdicts say '(message)'): the
    // user should see which message this was.
    const next = this.events[0];
    const wholeMessage = 'where' in v && v.where === '(message)';
    if (this.current === TOP_LEVEL_HEADER && next && !wholeMessage) await this.forward(next.offset);
    this.cut = { at: this.cushion.released, terminated: true };
    await this.close(verdictReason(v), this.o.xVirusStatus ? virusStatus(v) : null);
    this.write(TERMINATOR);
  }

  private async close(reason: string, status: string | null): Promise<void> {
    this.advanceStructure(this.cushion.released);
    const cut: CutPoint = { at: this.current, offset: this.cushion.released, atLineStart: this.cushion.atLineStart };
    this.cushion.drop();
    this.write(closingBytes(cut, noticeText(reason), status));
    if (this.full) {
      this.full = false;
      await this.o.drain();
    }
  }

  /** Apply structure events at or before `offset`. */
  private advanceStructure(offset: number): void {
    let k = 0;
    while (k < this.events.length && this.events[k]!.offset <= offset) this.current = this.events[k++]!;
    if (k > 0) this.events.splice(0, k);
  }

  private async forward(upTo: number): Promise<void> {
    for (const b of this.cushion.take(upTo)) this.write(b);
    this.advanceStructure(this.cushion.released);
    if (this.full) {
      this.full = false;
      await this.o.drain();
    }
  }

  private write(b: Uint8Array): void {
    if (!this.o.write(b)) this.full = true;
  }
}
