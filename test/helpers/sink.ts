/**
 * sink.ts — a recording SMTP sink for tests, built on smtp-server, on 127.0.0.1 port 0.
 *
 * Records per message: envelope (MAIL FROM with parameters, RCPT TO list), what the peer
 * told us through XFORWARD (if anything), the peer's HELO and address, and the exact
 * message bytes (smtp-server has already removed the SMTP dot-stuffing) or, with
 * `storeData: false`, only their size and SHA-256 (100 MB tests).
 * Knobs: `rejectRcpt` (per-recipient 550), `killAfterBytes` (destroy the connection
 * mid-DATA), `dataDelayMs` (answer the final dot late).
 * Gaps: no TLS, no AUTH; replies carry smtp-server's own wording.
 */
import { createHash } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

export interface SinkMessage {
  from: string;
  mailParams: Record<string, unknown>;
  rcpt: string[];
  xforward: Record<string, string>;
  helo: string;
  remoteAddress: string;
  size: number;
  sha256: string;
  /** SHA-256 of everything after the first empty line (the body: headers added on the way do not change it). */
  bodySha256: string;
  data: Buffer | null;
}

export interface SinkOptions {
  /** Return an error text to reject this recipient with 550. */
  rejectRcpt?: (address: string) => string | null;
  /** Keep whole message bytes (default true). */
  storeData?: boolean;
  /** Destroy the connection once this many DATA bytes arrived. */
  killAfterBytes?: number;
  /** Delay the final reply to DATA. */
  dataDelayMs?: number;
}

export interface Sink {
  port: number;
  messages: SinkMessage[];
  /** Connections that reached DATA but were cut (by the peer or by killAfterBytes). */
  abortedData: number;
  /** Keep whole message bytes; switch off for huge messages (sizes and hashes are still recorded). */
  store: boolean;
  /** Resolve with the first message matching `pred`, polling until `timeoutMs`. */
  waitFor(pred: (m: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  close(): Promise<void>;
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const sink: Sink = {
    port: 0,
    messages,
    abortedData: 0,
    store: opts.storeData !== false,
    async waitFor(pred, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = messages.find(pred);
        if (m) return m;
        if (Date.now() > until) throw new Error(`sink: no matching message within ${timeoutMs} ms (have ${messages.length})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    useXForward: true,
    size: 0,
    logger: false,
    onRcptTo(address, _session, cb) {
      const why = opts.rejectRcpt?.(address.address) ?? null;
      if (why) {
        const e = new Error(why) as Error & { responseCode: number };
        e.responseCode = 550;
        return cb(e);
      }
      cb();
    },
    onData(stream, session, cb) {
      const hash = createHash('sha256');
      const bodyHash = createHash('sha256');
      const store = sink.store;
      const parts: Buffer[] = [];
      let size = 0;
      let finished = false;
      // Find the first CRLF CRLF across chunk borders with a 3-byte tail.
      let inBody = false;
      let tail = Buffer.alloc(0);
      stream.on('data', (c: Buffer) => {
        size += c.length;
        hash.update(c);
        if (inBody) bodyHash.update(c);
        else {
          const joined = Buffer.concat([tail, c]);
          const at = joined.indexOf('\r\n\r\n');
          if (at >= 0) {
            inBody = true;
            bodyHash.update(joined.subarray(at + 4));
          } else tail = joined.subarray(Math.max(0, joined.length - 3));
        }
        if (store) parts.push(c);
        if (opts.killAfterBytes !== undefined && size >= opts.killAfterBytes && !finished) {
          finished = true;
          sink.abortedData++;
          // Reach for the connection's socket: smtp-server offers no public kill switch.
          for (const conn of (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections) {
            if (conn.id === session.id) conn._socket.destroy();
          }
        }
      });
      stream.on('error', () => {
        if (!finished) sink.abortedData++;
        finished = true;
      });
      stream.on('end', () => {
        if (finished) return;
        finished = true;
        const xf: Record<string, string> = {};
        const raw = (session as unknown as { xForward?: Map<string, string> }).xForward;
        if (raw) for (const [k, v] of raw) if (!k.includes(':')) xf[k] = v;
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          mailParams: (session.envelope.mailFrom && (session.envelope.mailFrom as { args?: Record<string, unknown> }).args) || {},
          rcpt: session.envelope.rcptTo.map((r) => r.address),
          xforward: xf,
          helo: session.hostNameAppearsAs ?? '',
          remoteAddress: session.remoteAddress,
          size,
          sha256: hash.digest('hex'),
          bodySha256: bodyHash.digest('hex'),
          data: store ? Buffer.concat(parts) : null,
        });
        const reply = () => cb(null, `Ok: queued as SINK${messages.length}`);
        if (opts.dataDelayMs) setTimeout(reply, opts.dataDelayMs);
        else reply();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  sink.port = (server.server.address() as { port: number }).port;
  return sink;
}
