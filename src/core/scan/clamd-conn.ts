/**
 * clamd-conn.ts — one socket to clamd, used by one INSTREAM at a time, and, in session
 * mode, reused for the next one (IDSESSION).
 *
 * Protocol note (clamd.8, checked against clamd 1.4.6 here): after `zIDSESSION\0` a
 * connection takes commands one after another; clamd numbers them from 1 and prefixes
 * each reply with `N: `. It closes the connection after an error such as
 * `N: INSTREAM size limit exceeded. ERROR`. An INSTREAM cannot be cancelled inside a
 * session, so a stream that stops early (cache hit, message aborted) destroys its
 * connection instead of returning it. `zEND\0` ends a session.
 *
 * Input: a connected socket (clamd-wire.ts connectOnce, with its onread hook routed here).
 * Output: events for the current owner (the InstreamScan using it): data, EOF, error, drain.
 * While idle (no owner) any byte or EOF from clamd means the session is over: the
 * connection closes itself and tells the endpoint (onIdleClose).
 * Node internals: auto-destroy is switched off on the socket's stream states so a write
 * error does not drop clamd's unread early reply (see clamd-stream.ts); net's public
 * `onread` delivers reply bytes before any write can fail.
 * Limits: one command in flight per connection (we never pipeline INSTREAMs).
 */
import type { Socket } from 'node:net';
import type { ClamdAddress } from './clamd-wire.js';
import { connectOnce } from './clamd-wire.js';

export interface ConnOwner {
  onData(chunk: Buffer): void;
  onEof(): void;
  onError(e: NodeJS.ErrnoException): void;
  onDrain(): void;
}

/** Stream states of net.Socket (Node internals, stable since Node 14). */
interface NodeStreamStates {
  _writableState?: { autoDestroy: boolean };
  _readableState?: { autoDestroy: boolean };
}

const INSTREAM = Buffer.from('zINSTREAM\0', 'latin1');
const IDSESSION = Buffer.from('zIDSESSION\0', 'latin1');
const END = Buffer.from('zEND\0', 'latin1');

export class ClamdConn {
  owner: ConnOwner | null = null;
  /** Set when the socket is gone or must not be used again. */
  closed = false;
  /** performance.now() when it last went idle. */
  idleSince = 0;
  /** INSTREAM commands sent on this connection. */
  uses = 0;
  /** Called once when an idle connection closes by itself (clamd ended the session). */
  onIdleClose: ((c: ClamdConn) => void) | null = null;
  private socket!: Socket;

  private constructor(readonly session: boolean) {}

  /** Connect; in session mode send IDSESSION (it has no reply). */
  static async open(address: ClamdAddress, timeoutMs: number, signal: AbortSignal, session: boolean): Promise<ClamdConn> {
    const c = new ClamdConn(session);
    const sock = await connectOnce(address, timeoutMs, signal, (d) => c.data(d));
    c.attach(sock);
    if (session) sock.write(IDSESSION);
    return c;
  }

  get writableLength(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  /** Starts an INSTREAM; returns the number clamd will prefix its reply with (0 outside a session). */
  beginInstream(): number {
    this.uses++;
    this.socket.write(INSTREAM);
    return this.session ? this.uses : 0;
  }

  /** false = the kernel buffer is full: wait for the owner's onDrain. */
  write(b: Uint8Array): boolean {
    return this.socket.write(b);
  }

  /** One INSTREAM frame: header and pieces (the stream's own blocks, a few) as one corked writev. */
  writeFrame(header: Buffer, pieces: Buffer[]): boolean {
    const s = this.socket;
    s.cork();
    s.write(header);
    let ok = true;
    for (const p of pieces) ok = s.write(p);
    s.uncork();
    return ok;
  }

  /** Back to idle (session mode only; the caller checked the reply was complete). */
  release(): void {
    this.owner = null;
    this.idleSince = performance.now();
  }

  /** End the session politely (idle connections), or drop it at once. */
  close(polite = false): void {
    if (this.closed) return;
    this.closed = true;
    this.owner = null;
    if (polite && this.session && !this.socket.destroyed) {
      this.socket.end(END);
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else this.socket.destroy();
  }

  private data(d: Buffer): void {
    if (this.owner) this.owner.onData(d);
    else this.idleGone();
  }

  private idleGone(): void {
    if (this.closed) return;
    this.close();
    this.onIdleClose?.(this);
  }

  private attach(s: Socket): void {
    this.socket = s;
    const states = s as unknown as NodeStreamStates;
    for (const st of [states._writableState, states._readableState]) {
      if (st && typeof st.autoDestroy === 'boolean') st.autoDestroy = false;
    }
    s.on('drain', () => this.owner?.onDrain());
    const eof = () => {
      if (this.owner) this.owner.onEof();
      else this.idleGone();
    };
    s.on('end', eof);
    s.on('close', eof);
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (this.owner) this.owner.onError(e);
      else this.idleGone();
    });
  }

  /** @internal for the stream's write-error grace: is the socket already destroyed? */
  get destroyed(): boolean {
    return this.socket.destroyed;
  }
}
