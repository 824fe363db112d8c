/**
 * downstream-client.ts — our small SMTP client to the after-filter smtpd.
 *
 * Why not nodemailer: its SMTP connection sends DATA content and the final "." as one
 * unit and offers no way to withhold the dot until a verdict, nor to destroy the
 * transaction after streaming; it also rebuilds MAIL/RCPT parameters instead of passing
 * the client's lines on unchanged.
 *
 * Input: an Endpoint (tcp or unix); commands as raw lines (Buffer or string, no CRLF);
 * DATA content as received: dot-stuffed CRLF lines (SmtpReader's `wire`), written as is.
 * Output: parsed SmtpReply objects (multi-line kept verbatim for relaying).
 * The final "." is sent only by `endData()`; `destroy()` drops the connection so the
 * after-filter smtpd discards the unfinished transaction (nothing is delivered).
 * Limits: every reply wait has a timeout (ETIMEOUT, connection destroyed); reply size is
 * capped by ReplyParser. Errors: DownstreamError (a MidstreamError) with code
 * DOWNSTREAM_CONNECT | DOWNSTREAM_TIMEOUT | DOWNSTREAM_CLOSED | DOWNSTREAM_PROTOCOL. An unsolicited reply (e.g. 421 while we stream) marks the connection broken.
 * Gaps: no TLS, no BDAT, no pipelining of our own commands (one command, one reply).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { ERROR_CODES, MidstreamError, formatAddress, hostLookup, type SocketAddress } from '../core/index.js';
import { ReplyParser, type SmtpReply } from './smtp-reply.js';

const CODES = {
  ECONNECT: ERROR_CODES.downstreamConnect,
  ETIMEOUT: ERROR_CODES.downstreamTimeout,
  ECLOSED: ERROR_CODES.downstreamClosed,
  EPROTO: ERROR_CODES.downstreamProtocol,
} as const;

export type DownstreamErrorCode = (typeof CODES)[keyof typeof CODES];

export class DownstreamError extends MidstreamError {
  declare readonly code: DownstreamErrorCode;
  constructor(kind: keyof typeof CODES, message: string, cause?: unknown) {
    super(CODES[kind], message, cause !== undefined ? { cause } : {});
    this.name = 'DownstreamError';
  }
}

const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('.\r\n');

export interface DownstreamOptions {
  /** Bound on connecting and on every reply wait (ms). */
  timeoutMs: number;
}

export class DownstreamClient {
  private readonly parser = new ReplyParser();
  private readonly replies: SmtpReply[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | null = null;
  private failure: DownstreamError | null = null;
  private readonly closeCbs: ((e: DownstreamError) => void)[] = [];
  private inData = false;
  greeting: SmtpReply | null = null;
  /** Bytes written as DATA content (dot-stuffed, as on the wire). */
  dataBytes = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly opts: DownstreamOptions,
    readonly endpoint: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const { replies, error } = this.parser.feed(chunk);
      for (const r of replies) this.deliver(r);
      if (error) this.fail(new DownstreamError('EPROTO', `${endpoint}: ${error}`));
    });
    socket.on('error', (e) => this.fail(new DownstreamError('ECLOSED', `${endpoint}: ${e.message}`, e)));
    socket.on('close', () => this.fail(new DownstreamError('ECLOSED', `${endpoint}: connection closed`)));
  }

  /** Connect and read the greeting; a non-2xx greeting is returned as a failure reply. */
  static connect(ep: SocketAddress, opts: DownstreamOptions): Promise<DownstreamClient> {
    const name = formatAddress(ep);
    return new Promise((resolve, reject) => {
      const socket = ep.kind === 'unix' ? netConnect({ path: ep.path }) : netConnect({ host: ep.host, port: ep.port, lookup: hostLookup });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DownstreamError('ETIMEOUT', `${name}: connect timeout`));
      }, opts.timeoutMs);
      const onError = (e: Error) => {
        clearTimeout(timer);
        reject(new DownstreamError('ECONNECT', `${name}: ${e.message}`, e));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        const c = new DownstreamClient(socket, opts, name);
        c.readReply().then(
          (g) => {
            c.greeting = g;
            if (g.code >= 200 && g.code < 300) resolve(c);
            else {
              c.destroy();
              reject(new DownstreamError('EPROTO', `${name}: greeting ${g.lines[0]}`));
            }
          },
          (e) => reject(e),
        );
      });
    });
  }

  get alive(): boolean {
    return this.failure === null;
  }

  get error(): DownstreamError | null {
    return this.failure;
  }

  /** Called once when the connection breaks or is destroyed. */
  onClose(cb: (e: DownstreamError) => void): void {
    if (this.failure) cb(this.failure);
    else this.closeCbs.push(cb);
  }

  private deliver(r: SmtpReply): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(r);
    } else if (this.inData) {
      // A reply while we stream content means the server gave up (421, 552, …).
      this.fail(new DownstreamError('EPROTO', `${this.endpoint}: unexpected reply during DATA: ${r.lines[0]}`));
    } else {
      this.replies.push(r);
    }
  }

  private fail(e: DownstreamError): void {
    if (this.failure) return;
    this.failure = e;
    this.socket.destroy();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
    for (const cb of this.closeCbs.splice(0)) cb(e);
  }

  /** Wait for the next reply, bounded by `timeoutMs`. */
  readReply(timeoutMs = this.opts.timeoutMs): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        const e = new DownstreamError('ETIMEOUT', `${this.endpoint}: no reply within ${timeoutMs} ms`);
        reject(e);
        this.fail(e);
      }, timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Send one command line (no CRLF inside) and read its reply. */
  command(line: string | Uint8Array, timeoutMs?: number): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    const bytes = typeof line === 'string' ? Buffer.from(line, 'latin1') : line;
    if (bytes.includes(0x0d) || bytes.includes(0x0a)) {
      return Promise.reject(new DownstreamError('EPROTO', 'command contains CR or LF'));
    }
    this.socket.write(Buffer.concat([bytes, CRLF]));
    return this.readReply(timeoutMs);
  }

  /** DATA; on 354 the client switches to content mode. */
  async data(): Promise<SmtpReply> {
    const r = await this.command('DATA');
    if (r.code >= 300 && r.code < 400) this.inData = true;
    return r;
  }

  /**
   * Write DATA content that is already dot-stuffed and CRLF-terminated line by line, as
   * SmtpReader's `wire` pieces are. The socket keeps each piece until it is written: pass
   * only bytes nobody overwrites (socket chunks, constants). Returns false when the
   * socket's buffer is full: the caller awaits drain() before writing more.
   */
  writeData(pieces: readonly Uint8Array[]): boolean {
    if (this.failure || !this.inData || pieces.length === 0) return true;
    const s = this.socket;
    if (pieces.length === 1) {
      this.dataBytes += pieces[0]!.length;
      return s.write(pieces[0]!);
    }
    if (pieces.length > 4) {
      // A client sending bare LFs gets two pieces per line: one copy, one write.
      const b = Buffer.concat(pieces);
      this.dataBytes += b.length;
      return s.write(b);
    }
    // A few pieces (a doubled dot, a CRLF for a bare LF): one writev.
    s.cork();
    let ok = true;
    for (const p of pieces) {
      this.dataBytes += p.length;
      ok = s.write(p) && ok;
    }
    s.uncork();
    return ok;
  }

  /** Resolves when the write buffer drained or the connection is gone, or after timeoutMs (then fails it). */
  drain(timeoutMs = this.opts.timeoutMs): Promise<void> {
    if (this.failure || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.fail(new DownstreamError('ETIMEOUT', `${this.endpoint}: write stalled for ${timeoutMs} ms`));
        done();
      }, timeoutMs);
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** The withheld final dot: finish the transaction and return the server's final reply. */
  endData(timeoutMs?: number): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.inData) return Promise.reject(new DownstreamError('EPROTO', 'endData() outside DATA'));
    this.inData = false;
    // SmtpReader's wire always ends a line before the terminator it withheld.
    this.socket.write(TERMINATOR);
    return this.readReply(timeoutMs);
  }

  /** Polite end: QUIT, then close without waiting long for the reply. */
  quit(): void {
    if (this.failure) return;
    this.socket.end('QUIT\r\n');
    // Whatever the server answers, we are done; 'close' marks us failed (harmlessly).
    setTimeout(() => this.destroy(), 2000).unref();
  }

  /** Drop the connection now: an unfinished DATA transaction is discarded by the server. */
  destroy(reason = 'destroyed by proxy'): void {
    this.fail(new DownstreamError('ECLOSED', `${this.endpoint}: ${reason}`));
  }
}
