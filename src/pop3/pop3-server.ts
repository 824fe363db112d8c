/**
 * pop3-server.ts — `midstream pop3`: the POP3 relay as a front of the shared server
 * lifecycle (src/net/server.ts: listen, reload, drain, shutdown).
 *
 * startPop3(opts) listens on `listen` (HOST:PORT or unix:/path), serves each connection
 * with a Pop3Session that relays to `upstream`, and returns the bound address, reload()
 * and close().
 * TLS towards the client: 'stls' (we offer STLS) and 'pop3s' (TLS from the first byte:
 * every accepted socket is wrapped) use the PEM certificate and key, read at start and
 * at every reload (certificate renewal needs only SIGHUP). The hop to the upstream is
 * plain POP3: keep it on loopback. 'none' (default): STLS is removed from CAPA and
 * refused — the relay cannot scan inside TLS it does not terminate.
 * close() is graceful: the listener stops; a retrieval in progress runs to its end, idle
 * sessions get "-ERR [SYS/TEMP] Server shutting down"; after shutdownGraceMs the rest
 * are dropped (the client retries; no QUIT reached the server for them, so nothing it
 * marked deleted is lost).
 * Limits: maxConnections (more get -ERR and are closed); per session see Pop3Session.
 * Errors: bad options (addresses, certificate files) throw MidstreamError at startup and
 * from reload() (the running settings stay); a listen error rejects the promise.
 */
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { ERROR_CODES, MidstreamError, parseAddress } from '../core/index.js';
import { reloadLimits, serve, serveOptions, type FrontSpec } from '../net/server.js';
import { LOCAL_REPLIES } from './pop3-commands.js';
import { Pop3Session, type Pop3Context, type Pop3Engine } from './pop3-session.js';

export interface Pop3Options {
  engine: Pop3Engine;
  logger: Logger;
  /** Default 127.0.0.1:10110. */
  listen?: string;
  /** The POP3 server. Default 127.0.0.1:110. */
  upstream?: string;
  socketMode?: number;
  socketOwner?: string;
  socketGroup?: string;
  /** Content bytes one RETR/TOP may hold back while the scan catches up. Default 4 MiB. */
  holdBytes?: number;
  /** Beyond holdBytes: 'replace' the rest with a notice (default) or 'stream' on. */
  holdExceeded?: 'replace' | 'stream';
  /** Add X-Virus-Status to every retrieved message. Default false. */
  xVirusStatus?: boolean;
  tls?: 'none' | 'stls' | 'pop3s';
  tlsCert?: string;
  tlsKey?: string;
  /** Client silence between commands (ms). Default 600000 (RFC 1939's minimum autologout). */
  idleTimeoutMs?: number;
  /** Upstream connect and response silence (ms). Default 120000. */
  upstreamTimeoutMs?: number;
  maxConnections?: number;
  /** Outstanding pipelined commands per session before we stop reading the client. Default 64. */
  maxPipeline?: number;
  shutdownGraceMs?: number;
  onConnection?: (event: 'open' | 'close') => void;
}

/** What reload() may change: everything but the listen socket and the hooks. */
export type Pop3ReloadOptions = Omit<Pop3Options, 'listen' | 'socketMode' | 'socketOwner' | 'socketGroup' | 'onConnection' | 'logger'>;

export interface Pop3Handle {
  address: string;
  reload(opts: Pop3ReloadOptions): void;
  close(): Promise<void>;
  readonly connections: number;
}

function configError(msg: string): MidstreamError {
  return new MidstreamError(ERROR_CODES.configInvalid, msg);
}

function tlsContext(opts: Pop3ReloadOptions): SecureContext | null {
  const mode = opts.tls ?? 'none';
  if (mode === 'none') return null;
  if (!opts.tlsCert || !opts.tlsKey) throw configError(`pop3 tls = "${mode}" needs tls_cert and tls_key`);
  try {
    return createSecureContext({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey), minVersion: 'TLSv1.2' });
  } catch (e) {
    throw configError(`pop3 tls_cert/tls_key: ${(e as Error).message}`);
  }
}

function buildContext(opts: Pop3ReloadOptions, logger: Logger): Pop3Context {
  const holdBytes = opts.holdBytes ?? 4 * 1024 * 1024;
  if (!(holdBytes > 0)) throw configError('pop3 holdBytes must be > 0');
  return Object.freeze({
    engine: opts.engine,
    logger,
    upstream: parseAddress(opts.upstream ?? '127.0.0.1:110', 'connect'),
    holdBytes,
    holdExceeded: opts.holdExceeded ?? 'replace',
    xVirusStatus: opts.xVirusStatus ?? false,
    idleTimeoutMs: opts.idleTimeoutMs ?? 600_000,
    upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 120_000,
    tls: opts.tls ?? 'none',
    tlsContext: tlsContext(opts),
    maxPipeline: opts.maxPipeline ?? 64,
  });
}

/** The POP3 relay as a front of the shared lifecycle. */
export const POP3_FRONT: FrontSpec<Pop3Context> = {
  front: 'pop3',
  connect(socket: Socket, ctx, info) {
    // A client may send its last commands (QUIT) and shut its side: we still owe it the responses.
    socket.allowHalfOpen = true;
    let s: Socket = socket;
    if (ctx.tls === 'pop3s') {
      const t = new TLSSocket(socket, { isServer: true, secureContext: ctx.tlsContext! });
      t.on('error', (e) => ctx.logger.warn('tls', { front: 'pop3', conn: info.id, error: e.message }));
      s = t;
    }
    const session = new Pop3Session(s, ctx, info);
    return { closed: session.run(), drain: () => session.drain(), destroy: () => session.shutdown() };
  },
  refuse(socket) {
    socket.end(LOCAL_REPLIES.tooManyConnections);
  },
};

export async function startPop3(opts: Pop3Options): Promise<Pop3Handle> {
  const listen = parseAddress(opts.listen ?? '127.0.0.1:10110', 'listen');
  const ctx = buildContext(opts, opts.logger);
  const srv = await serve(POP3_FRONT, ctx, serveOptions(listen, opts));
  return {
    address: srv.address,
    get connections() {
      return srv.connections;
    },
    reload(next) {
      srv.reload(buildContext(next, opts.logger), reloadLimits(next));
    },
    close: () => srv.close(),
  };
}
