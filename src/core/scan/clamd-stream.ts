/**
 * clamd-stream.ts — one INSTREAM scan: buffer a little, take a slot from the pool,
 * connect (or reuse an idle IDSESSION connection), send frames, read the one reply.
 *
 * Wire: `zINSTREAM\0`, frames `uint32-BE length ‖ bytes` (never empty), a zero-length
 * terminator; clamd scans only after the terminator and sends one reply (`N: ` in front
 * inside a session, N checked). Results are strict: only a complete `stream: OK` after
 * our terminator is clean; any other reply, EOF, reset, timeout or abort is an error.
 * Limits: at most maxStreamBytes taken (over it: stop, send the terminator, infected if
 * clamd found something in the head, else scanner-size-limit). Buffered bytes: needsDrain
 * above highWaterBytes once connected, above WAITING_PENDING_BYTES while waiting for a
 * slot (so waiting streams hold little whatever the number of connections); drain()
 * resolves at half of that (a low-water mark, so a front resumes with room for a full
 * read, not a trickle); `room` says how much fits below the mark (fronts size their
 * socket reads by it: a stream is not overrun by one read). Buffered bytes are copies
 * (write() borrows its chunk) packed into blocks of BLOCK_BYTES — a large write gets a
 * block of its own size — so a stream holds about what it buffers, never a preallocated
 * 64 KiB, and a frame goes out as its header plus a few blocks in one corked writev,
 * with no second copy. Frames ≤ chunkBytes, one per event-loop turn so clamd's early
 * reply is read between writes.
 * Deadlines: connect per attempt; idle while we wait on clamd; total from end() to reply
 * (the upload runs at the client's pace); the wait for a slot is bounded by total too.
 * Failover: a connect failure ejects the endpoint and the stream tries the next best one
 * (each endpoint once); once bytes went out a stream is not retried (we do not keep them).
 * Reuse (TCP endpoints only): after a complete clean/infected reply inside a session the
 * connection goes back to the endpoint's idle list; every other ending destroys it.
 * Node internals: see clamd-conn.ts (auto-destroy off, onread). Measured: without them,
 * 9–18 of 40 early size-limit replies over TCP were lost as EPIPE; with them, 0 of 40.
 */
import type { ErrorKind, ScanResult } from '../types.js';
import { ClamdConn, type ConnOwner } from './clamd-conn.js';
import type { ClamdEndpoint } from './clamd-endpoint.js';
import type { ClamdPool, Lease } from './clamd-pool.js';
import { ClamdError, MAX_REPLY_BYTES, clip, errText, parseClamdReply } from './clamd-wire.js';

export interface StreamOptions {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxStreamBytes: number;
  chunkBytes: number;
  highWaterBytes: number;
  keepaliveMs: number;
}

export interface ClamdStreamStats {
  endpoint?: string;
  /** Bytes taken into the stream (≤ maxStreamBytes). */
  bytesAccepted: number;
  /** Payload bytes written to the socket. */
  bytesSent: number;
  /** Bytes dropped: over the cap, or after the result was already final. */
  bytesDropped: number;
  /** ms spent waiting for a concurrency slot. */
  waitedMs: number;
  /** The INSTREAM went over a reused IDSESSION connection. */
  reused?: boolean;
}

export interface ClamdStream {
  /** Resolves once the stream holds its slot and is connected, or has settled. Never rejects. */
  ready(): Promise<void>;
  /** Never blocks, never throws for peer trouble; copies `chunk`. Throws only on write after end(). */
  write(chunk: Uint8Array): void;
  readonly needsDrain: boolean;
  /** Bytes it takes before needsDrain turns true (0 when it is; Infinity once ended or settled). */
  readonly room: number;
  /** Resolves when buffered bytes fall to half the mark, or the stream is finished. Never rejects. */
  drain(): Promise<void>;
  /** No more bytes; resolves with the result (also when it was settled earlier). Never rejects. */
  end(): Promise<ScanResult>;
  /** Idempotent. Destroys the connection, frees the slot; end() gives `aborted` unless already final. */
  abort(): void;
  /** The final result once known (may be before end(), e.g. an early size-limit reply). */
  readonly result: ScanResult | null;
  readonly stats: ClamdStreamStats;
  /**
   * The signature version the result comes (or would come) from, for cache keys: the
   * pool's common version (ClamdPool.uniformVersion), else that of the endpoint this
   * stream got (waiting for one; asked once when it never answered VERSION).
   * null = unknown (do not cache).
   */
  signatureVersion(): Promise<string | null>;
}

/** Bytes a stream may hold while it waits for a clamd slot (see needsDrain). */
export const WAITING_PENDING_BYTES = 8 * 1024;
/**
 * Small writes are packed into blocks (see the file header): a new block is as large as
 * what the stream took so far, between MIN_BLOCK_BYTES and BLOCK_BYTES, so a short file
 * does not hold a full block's worth of slack.
 */
const BLOCK_BYTES = 8 * 1024;
const MIN_BLOCK_BYTES = 1024;
/** After a failed write, how long we keep reading for clamd's (early) reply. */
const WRITE_ERROR_GRACE_MS = 500;
const TERMINATOR = Buffer.alloc(4);

/** Scan events for metrics (see clamd-client.ts ClamdEvents). */
export type ScanOutcome = 'ok' | ErrorKind;
export type ScanListener = (endpoint: string, seconds: number, outcome: ScanOutcome) => void;

type Phase = 'new' | 'starting' | 'connected' | 'done';

/** How a stream gets its place: a scan slot on an endpoint (default), or a raw-message slot. */
export interface SlotOptions {
  /** Raw-message stream: wait for a raw slot this way (then any endpoint, no scan slot). */
  acquireRaw?: (signal: AbortSignal) => Promise<() => void>;
  /** Raw-message stream whose raw slot is already held. */
  rawPreacquired?: () => void;
  /** Terminator only on end(), never early at the byte cap (raw-message streams). */
  speculative: boolean;
  highWaterBytes: number;
}

export class InstreamScan implements ClamdStream, ConnOwner {
  private phase: Phase = 'new';
  private readonly ac = new AbortController();
  /** Bytes not yet sent: views into our own blocks, in order. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The block the last pending view lies in, while it has room after that view. */
  private tail: Buffer | null = null;
  private tailUsed = 0;
  private overCap = false;
  private ended = false;
  private terminatorSent = false;
  private terminatorAt = 0;
  private writeBlocked = false;
  private pumpScheduled = false;
  private conn: ClamdConn | null = null;
  private lease: Lease | null = null;
  /** The endpoint that took (or last took) this stream. */
  private assigned: ClamdEndpoint | null = null;
  private replyId = 0;
  private replyParts: Buffer[] = [];
  private replyBytes = 0;
  private totalTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** Set when a write failed: stop sending, keep reading until a reply, EOF or the grace timer. */
  private writeFailed: string | null = null;
  /** The reply was complete and the connection may carry another INSTREAM. */
  private reusable = false;
  private drainWaiters: (() => void)[] = [];
  private readyWaiters: (() => void)[] = [];
  /** The raw-message slot, for raw streams. */
  private rawRelease: (() => void) | null = null;
  private assignedWaiters: ((e: ClamdEndpoint | null) => void)[] = [];
  private settledResult: ScanResult | null = null;
  private resolveResult!: (r: ScanResult) => void;
  private readonly resultPromise: Promise<ScanResult>;
  private readonly onUserAbort = () => this.abort();
  readonly stats: ClamdStreamStats = { bytesAccepted: 0, bytesSent: 0, bytesDropped: 0, waitedMs: 0 };

  constructor(
    private readonly pool: ClamdPool,
    private readonly opts: Readonly<StreamOptions>,
    private readonly totalTimeoutMs: number,
    private readonly userSignal: AbortSignal | undefined,
    private readonly onScan: ScanListener | undefined,
    private readonly slot: SlotOptions = { speculative: false, highWaterBytes: opts.highWaterBytes },
  ) {
    if (slot.rawPreacquired) this.rawRelease = slot.rawPreacquired;
    this.resultPromise = new Promise((r) => (this.resolveResult = r));
    if (userSignal?.aborted) this.abort();
    else userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
  }

  get result(): ScanResult | null {
    return this.settledResult;
  }

  ready(): Promise<void> {
    if (this.phase === 'connected' || this.settledResult) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** Start connecting before the first byte (raw-message streams). */
  connectNow(): void {
    this.start();
  }

  private get raw(): boolean {
    return this.slot.acquireRaw !== undefined || this.slot.rawPreacquired !== undefined;
  }

  /**
   * Until clamd has a slot for us, hold little: hundreds of messages waiting for slots
   * must not each buffer highWaterBytes (that memory would grow with the number of
   * connections); the SMTP client waits instead.
   */
  private get limit(): number {
    return this.phase === 'connected' ? this.slot.highWaterBytes : Math.min(WAITING_PENDING_BYTES, this.slot.highWaterBytes);
  }

  private get buffered(): number {
    return this.pendingBytes + (this.conn?.writableLength ?? 0);
  }

  get needsDrain(): boolean {
    return this.settledResult === null && this.buffered > this.limit;
  }

  /**
   * Waiting for a slot: what fits below the small waiting mark, so a front reads no more
   * than that (hundreds may wait; their memory is what bench/conn-memory.ts measures).
   * Connected: unbounded until needsDrain. Such streams hold a slot (at most max_concurrent
   * per endpoint), so one read over the mark does not grow with connections, while reads
   * sized to the shrinking room cost 15-20% more CPU per message (bench/ab-proxy.ts, b64-1m).
   */
  get room(): number {
    if (this.settledResult || this.ended) return Infinity;
    if (this.phase === 'connected') return this.needsDrain ? 0 : Infinity;
    return Math.max(0, this.limit - this.buffered);
  }

  drain(): Promise<void> {
    if (!this.needsDrain) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  signatureVersion(): Promise<string | null> {
    const common = this.pool.uniformVersion();
    if (common !== null) return Promise.resolve(common);
    // The endpoint this stream got (waiting for one); asked once if it never told us.
    const of = (e: ClamdEndpoint | null) => (e ? this.pool.learnVersion(e) : Promise.resolve(null));
    if (this.assigned || this.settledResult) return of(this.assigned);
    this.start();
    return new Promise<ClamdEndpoint | null>((r) => this.assignedWaiters.push(r)).then(of);
  }

  write(chunk: Uint8Array): void {
    if (this.ended) throw new Error('clamd stream: write after end');
    const len = chunk.length;
    if (len === 0) return;
    if (this.settledResult) {
      this.stats.bytesDropped += len;
      return;
    }
    const room = this.opts.maxStreamBytes - this.stats.bytesAccepted;
    const take = Math.min(room, len);
    if (take < len) {
      this.overCap = true;
      this.stats.bytesDropped += len - take;
    }
    if (take > 0) {
      // Copy: the caller may reuse its buffer after write() returns.
      this.append(take < len ? chunk.subarray(0, take) : chunk);
      this.pendingBytes += take;
      this.stats.bytesAccepted += take;
    }
    this.start();
    this.schedulePump();
  }

  /** No more writes: a last block with room to spare is copied to its used size (the stream may wait long for a slot). */
  private trimTail(): void {
    const tail = this.tail;
    this.tail = null;
    const last = this.pending.length - 1;
    const v = this.pending[last];
    if (tail && v && v.buffer === tail.buffer && tail.length - v.length > MIN_BLOCK_BYTES) this.pending[last] = Buffer.from(v);
  }

  /** Copy into the tail block's free space, then into a new block (≤ BLOCK_BYTES and ≤ the room left below the mark, or the rest's size when larger). */
  private append(src: Uint8Array): void {
    let off = 0;
    const tail = this.tail;
    if (tail) {
      off = Math.min(tail.length - this.tailUsed, src.length);
      tail.set(src.subarray(0, off), this.tailUsed);
      const last = this.pending.length - 1;
      // The last pending view ends where the tail's free space begins (unless it was sent): extend it.
      const lastView = this.pending[last];
      if (lastView && lastView.buffer === tail.buffer && lastView.byteOffset + lastView.length === tail.byteOffset + this.tailUsed) {
        this.pending[last] = tail.subarray(lastView.byteOffset - tail.byteOffset, this.tailUsed + off);
      } else this.pending.push(tail.subarray(this.tailUsed, this.tailUsed + off));
      this.tailUsed += off;
      if (this.tailUsed === tail.length) this.tail = null;
    }
    const rest = src.length - off;
    if (rest === 0) return;
    // No slack past what may still come before needsDrain: a stream waiting for a slot
    // stops at its small mark, and may wait long holding this block.
    const left = this.limit - this.buffered - src.length;
    const size = Math.min(BLOCK_BYTES, Math.max(MIN_BLOCK_BYTES, this.stats.bytesAccepted), Math.max(MIN_BLOCK_BYTES, left));
    const block = Buffer.allocUnsafeSlow(Math.max(rest, size));
    block.set(off === 0 ? src : src.subarray(off), 0);
    this.pending.push(block.subarray(0, rest));
    this.tail = rest < block.length ? block : null;
    this.tailUsed = rest;
  }

  end(): Promise<ScanResult> {
    if (!this.ended) {
      this.ended = true;
      this.trimTail();
      this.armTotal();
      this.start();
      this.schedulePump();
    }
    return this.resultPromise;
  }

  abort(): void {
    this.settle({ kind: 'error', errorKind: 'aborted', detail: 'scan aborted' });
  }

  // ---- lifecycle ------------------------------------------------------------------

  private start(): void {
    if (this.phase !== 'new' || this.settledResult) return;
    this.phase = 'starting';
    void this.connect();
  }

  /** The total deadline runs from end() to the reply (see the file header). */
  private armTotal(): void {
    if (this.totalTimer || this.settledResult) return;
    const total = this.totalTimeoutMs;
    this.totalTimer = setTimeout(() => this.fail('scanner-timeout', `no result within the total deadline of ${total} ms`), total);
  }

  private wakeAssigned(e: ClamdEndpoint | null): void {
    const w = this.assignedWaiters;
    this.assignedWaiters = [];
    for (const r of w) r(e);
  }

  private async connect(): Promise<void> {
    const t0 = performance.now();
    // Waiting for a slot is bounded even before end(): a stream that cannot start would
    // otherwise hold its buffered bytes (and the SMTP client, via backpressure) forever.
    const total = this.totalTimeoutMs;
    const slotTimer = setTimeout(() => this.fail('scanner-timeout', `no clamd slot within ${total} ms`), total);
    const tried = new Set<ClamdEndpoint>();
    const failures: string[] = [];
    try {
      if (this.slot.acquireRaw && !this.rawRelease) {
        const release = await this.slot.acquireRaw(this.ac.signal);
        if (this.settledResult) return release();
        this.rawRelease = release;
      }
      for (;;) {
        let lease: Lease;
        try {
          lease = await this.pool.acquire(this.ac.signal, tried, this.raw);
        } catch (e) {
          if (failures.length > 0 && e instanceof ClamdError && e.errorKind === 'scanner-unavailable') {
            throw new ClamdError('scanner-unavailable', 'no clamd endpoint reachable: ' + failures.join('; '));
          }
          throw e;
        }
        this.stats.waitedMs = Math.round(performance.now() - t0);
        if (this.settledResult) return lease.release();
        this.lease = lease;
        const ep = (this.assigned = lease.endpoint);
        this.wakeAssigned(ep);
        // Reuse only over TCP: over a unix socket a connect is nearly free and clamd spends
        // 2.3x the CPU per scan inside IDSESSION (measured, see clamd-client.ts).
        const session = this.opts.keepaliveMs > 0 && !this.raw && ep.address.kind === 'tcp';
        let conn = session ? ep.takeIdle() : null;
        if (conn) this.stats.reused = true;
        else {
          try {
            conn = await ClamdConn.open(ep.address, this.opts.connectTimeoutMs, this.ac.signal, session);
            ep.connects++;
          } catch (e) {
            if (this.settledResult) return;
            const msg = e instanceof ClamdError ? e.message : `${ep.text}: ${errText(e)}`;
            failures.push(msg);
            ep.connectFailed(msg);
            this.lease = null;
            lease.release();
            tried.add(ep);
            continue;
          }
        }
        if (this.settledResult) return void conn.close();
        clearTimeout(slotTimer);
        this.conn = conn;
        conn.owner = this;
        this.stats.endpoint = ep.text;
        this.phase = 'connected';
        this.replyId = conn.beginInstream();
        this.wakeReady();
        this.pump();
        return;
      }
    } catch (e) {
      if (this.settledResult) return;
      if (e instanceof ClamdError) this.fail(e.errorKind, e.message);
      else this.fail('scanner-unavailable', errText(e));
    } finally {
      clearTimeout(slotTimer);
    }
  }

  // ---- ConnOwner ----------------------------------------------------------------------

  onDrain(): void {
    this.writeBlocked = false;
    this.armIdle(true);
    this.pump();
  }

  onError(e: NodeJS.ErrnoException): void {
    if (this.settledResult) return;
    const partial = this.replyBytes > 0 ? ' after a partial reply' : '';
    const why = `connection to ${this.stats.endpoint} lost (${errText(e)})${partial} after ${this.stats.bytesSent} bytes sent`;
    // An early reply (size limit) may still be unread when our next write fails: keep
    // reading for a short grace instead of failing at once.
    if (e.syscall === 'write' && this.conn && !this.conn.destroyed) {
      if (this.writeFailed) return;
      this.writeFailed = why;
      this.graceTimer = setTimeout(() => this.fail('scanner-unavailable', why), WRITE_ERROR_GRACE_MS);
      return;
    }
    this.fail('scanner-unavailable', why);
  }

  onData(d: Buffer): void {
    if (this.settledResult) return;
    this.replyParts.push(d);
    this.replyBytes += d.length;
    const buf = this.replyParts.length === 1 ? this.replyParts[0]! : Buffer.concat(this.replyParts);
    this.replyParts = [buf];
    const end = buf.findIndex((b) => b === 0 || b === 0x0a);
    if (end >= 0) {
      // Inside a session nothing may follow the one reply we wait for.
      const clean = end === buf.length - 1;
      return this.onReply(buf.subarray(0, end).toString('latin1'), true, clean);
    }
    if (this.replyBytes > MAX_REPLY_BYTES) return this.fail('scanner-protocol', `reply longer than ${MAX_REPLY_BYTES} bytes`);
    this.armIdle(true);
  }

  onEof(): void {
    if (this.settledResult) return;
    if (this.replyBytes === 0) {
      return this.fail('scanner-unavailable', this.writeFailed ?? `${this.stats.endpoint ?? 'clamd'} closed the connection without a reply`);
    }
    this.onReply(Buffer.concat(this.replyParts).toString('latin1'), false, false);
  }

  /** A complete (terminated) or EOF-cut reply. Decide, never reading clean by accident. */
  private onReply(raw: string, terminated: boolean, nothingAfter: boolean): void {
    let text = raw;
    if (this.replyId > 0) {
      const m = /^(\d+): /.exec(raw);
      if (m && Number(m[1]) !== this.replyId) {
        return this.fail('scanner-protocol', `reply for command ${m[1]} while waiting for ${this.replyId}: ${clip(raw)}`);
      }
      if (m) text = raw.slice(m[0].length);
    }
    let r = parseClamdReply(text);
    if (r.kind === 'clean' && !terminated) {
      r = { kind: 'error', errorKind: 'scanner-protocol', detail: 'unterminated reply: ' + clip(text) };
    } else if (r.kind === 'clean' && !this.terminatorSent) {
      r = { kind: 'error', errorKind: 'scanner-protocol', detail: 'clean reply before the end of the stream' };
    } else if (r.kind === 'clean' && this.overCap) {
      r = {
        kind: 'error',
        errorKind: 'scanner-size-limit',
        detail: `only the first ${this.stats.bytesAccepted} bytes were scanned (maxStreamBytes); ${this.stats.bytesDropped} not sent`,
      };
    }
    this.reusable =
      this.replyId > 0 && terminated && nothingAfter && this.terminatorSent && !this.writeFailed &&
      this.pendingBytes === 0 && (r.kind === 'clean' || r.kind === 'infected');
    this.settle(r);
  }

  private fail(errorKind: ErrorKind, detail: string): void {
    this.settle({ kind: 'error', errorKind, detail });
  }

  private settle(r: ScanResult): void {
    if (this.settledResult) return;
    this.settledResult = r;
    this.phase = 'done';
    if (this.totalTimer) clearTimeout(this.totalTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.totalTimer = this.idleTimer = this.graceTimer = null;
    this.userSignal?.removeEventListener('abort', this.onUserAbort);
    this.ac.abort();
    const ep = this.lease?.endpoint;
    if (ep && this.conn) this.account(ep, r);
    if (this.conn) {
      if (this.reusable && ep) this.pool.giveIdle(ep, this.conn);
      else this.conn.close();
    }
    this.conn = null;
    this.lease?.release();
    this.lease = null;
    this.rawRelease?.();
    this.rawRelease = null;
    this.stats.bytesDropped += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.tail = null;
    this.replyParts = [];
    this.wakeDrainers();
    this.wakeReady();
    this.wakeAssigned(ep ?? null);
    this.resolveResult(r);
  }

  /** Feed the endpoint's health and the scan listener; only clamd's own doing counts. */
  private account(ep: ClamdEndpoint, r: ScanResult): void {
    const seconds = this.terminatorAt > 0 ? (performance.now() - this.terminatorAt) / 1000 : 0;
    if (r.kind !== 'error') {
      ep.scanOk(seconds * 1000);
      this.onScan?.(ep.text, seconds, 'ok');
      return;
    }
    if (r.errorKind === 'aborted' || r.errorKind === 'scanner-size-limit') return;
    ep.scanFailed(r.detail ?? r.errorKind);
    this.onScan?.(ep.text, seconds, r.errorKind);
  }

  // ---- sending --------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled || this.phase !== 'connected') return;
    this.pumpScheduled = true;
    // Coalesce synchronous small writes into full frames.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const c = this.conn;
    if (this.phase !== 'connected' || !c || this.settledResult || this.writeFailed) return;
    const max = this.opts.chunkBytes;
    let progress = false;
    // One frame per event-loop turn: between our writes the poll phase reads whatever
    // clamd sent (an early "size limit exceeded" reply before it closes).
    if (!this.writeBlocked && this.pendingBytes > 0) {
      const n = Math.min(max, this.pendingBytes);
      // The pending views are our own blocks (write() copies into them), so a frame goes
      // out as header + pieces in one corked writev, without being copied again.
      const pieces: Buffer[] = [];
      let got = 0;
      while (got < n) {
        const head = this.pending[0]!;
        const want = n - got;
        if (head.length <= want) {
          pieces.push(head);
          got += head.length;
          this.pending.shift();
        } else {
          pieces.push(head.subarray(0, want));
          this.pending[0] = head.subarray(want);
          got += want;
        }
      }
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(n, 0);
      this.pendingBytes -= n;
      this.stats.bytesSent += n;
      progress = true;
      if (!c.writeFrame(header, pieces)) this.writeBlocked = true;
    }
    if (this.pendingBytes === 0 && (this.ended || (this.overCap && !this.slot.speculative)) && !this.terminatorSent) {
      this.terminatorSent = true;
      this.terminatorAt = performance.now();
      progress = true;
      if (!c.write(TERMINATOR)) this.writeBlocked = true;
    }
    this.armIdle(progress);
    this.wakeDrainers();
    if (this.pendingBytes > 0 && !this.writeBlocked) this.schedulePump();
  }

  /**
   * The idle deadline runs only while we wait on clamd (a full socket or an awaited
   * reply) and restarts only on progress, so writes into a stuck socket do not extend it.
   */
  private armIdle(progress: boolean): void {
    const waiting = !this.settledResult && this.phase === 'connected' && (this.writeBlocked || this.terminatorSent);
    if (!waiting || progress) {
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (!waiting || this.idleTimer) return;
    const ms = this.opts.idleTimeoutMs;
    this.idleTimer = setTimeout(
      () => this.fail('scanner-timeout', this.terminatorSent && !this.writeBlocked ? `no reply from clamd within ${ms} ms` : `clamd read nothing for ${ms} ms`),
      ms,
    );
  }

  private wakeReady(): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of w) r();
  }

  /** At the low-water mark (half the limit): the front then resumes with room for a full read. */
  private wakeDrainers(): void {
    if (this.drainWaiters.length === 0) return;
    if (this.settledResult === null && this.buffered > this.limit / 2) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const r of w) r();
  }
}
