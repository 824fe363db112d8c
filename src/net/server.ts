/**
 * server.ts — the one server lifecycle every front plugs into: listen, serve, reload,
 * drain, shut down. The proxy, the milter and the POP3 front are each a FrontSpec: how
 * to serve one accepted socket, and how to refuse one over the connection limit.
 *
 *   const srv = await serve(front, settings, serveOptions(listen, frontOptions));
 *   srv.reload(newSettings, reloadLimits(newFrontOptions));        // new connections only
 *   await srv.close();                                              // drain, then drop
 *
 * Lifecycle:
 *   listen    listenOn(): TCP or unix socket (stale-socket check, mode, owner, group).
 *   serve     each accepted socket gets Nagle off, a connection id, the settings snapshot
 *             current at accept time (immutable for that connection: STYLE 12), and is
 *             handed to front.connect(). Over maxConnections: front.refuse().
 *   reload    reload(settings) swaps the snapshot for new connections; connections in
 *             progress keep theirs. The listen address cannot change without a restart.
 *   drain     close(): the listener stops at once; every connection gets drain() (finish
 *             the message in progress, then close; idle ones close now).
 *   shutdown  after shutdownGraceMs, destroy() whatever is left (mid-message: the MTA
 *             sees a lost connection and retries; nothing was accepted, nothing is lost).
 *             Then the unix socket file is removed and `closed` is logged.
 * Logs (event names are the lifecycle's, `front` says whose): listening, too-many-connections,
 * shutdown-deadline, closed; listener errors as listen-error; connect/disconnect at debug.
 * Errors: serve() rejects with MidstreamError LISTEN_* for bind trouble; front.connect()
 * throwing is a bug: that socket is destroyed and logged, the server keeps serving.
 */
import { createServer, isIPv4, type Socket } from 'node:net';
import { errorFields } from '../core/errors.js';
import { formatAddress, type SocketAddress } from '../core/address.js';
import type { Logger } from '../log/logger.js';
import { listenOn, type UnixSocketOptions } from './listen.js';

/** What the lifecycle needs of one served connection. */
export interface Connection {
  /** Resolves when the connection is closed, by either side. */
  readonly closed: Promise<void>;
  /** Shutdown asked: finish the message in progress, then close; idle connections close now. Idempotent. */
  drain(): void;
  /** Grace over: close now, dropping whatever is in progress. Idempotent. */
  destroy(): void;
}

/** Facts about an accepted socket, for the front and its log lines. */
export interface ConnInfo {
  /** Unique in this process, e.g. "1k2.3f". */
  id: string;
  /** Peer address ("unix" for a unix socket; IPv4-mapped IPv6 unwrapped). */
  peer: string;
  /** Peer port, for TCP. */
  peerPort?: number;
}

export interface FrontSpec<S> {
  /** "proxy" | "milter" | "pop3": the `front` field of the lifecycle's log lines. */
  readonly front: string;
  /** Serve one accepted socket under settings snapshot `settings`. */
  connect(socket: Socket, settings: S, info: ConnInfo): Connection;
  /** Over maxConnections: answer in the protocol's words and close (default: destroy). */
  refuse?(socket: Socket, settings: S): void;
  /** How the bound address is printed (default hostport; the milter uses Sendmail's). */
  readonly addressStyle?: 'hostport' | 'sendmail';
}

export interface ServeOptions {
  listen: SocketAddress;
  socket?: UnixSocketOptions;
  /** Concurrent connections; more are refused. Default unlimited. */
  maxConnections?: number;
  /** close(): time for messages in progress before connections are dropped (ms). Default 60000. */
  shutdownGraceMs?: number;
  logger: Logger;
  /** Connection opened/closed (e.g. a gauge). Must not throw. */
  onConnection?: (event: 'open' | 'close') => void;
}

export interface Server<S> {
  /** The bound address in the front's style, with the real port when 0 was asked. */
  readonly address: string;
  /** Connections open now. */
  readonly connections: number;
  /** New connections get `settings` (and the new limits); connections in progress keep theirs. */
  reload(settings: S, limits?: { maxConnections?: number; shutdownGraceMs?: number }): void;
  /** Graceful: stop accepting, drain (up to shutdownGraceMs), drop the rest, remove the socket file. */
  close(): Promise<void>;
}

/** The listening settings each front's options carry (the same keys in every config section). */
export interface FrontListenOptions {
  socketMode?: number;
  socketOwner?: string;
  socketGroup?: string;
  maxConnections?: number;
  shutdownGraceMs?: number;
  logger: Logger;
  onConnection?: (event: 'open' | 'close') => void;
}

/** serve()'s options from a front's: unix socket mode 0660 unless set, a 60 s grace. */
export function serveOptions(listen: SocketAddress, o: FrontListenOptions): ServeOptions {
  return {
    listen,
    socket: { mode: o.socketMode ?? 0o660, ...(o.socketOwner ? { owner: o.socketOwner } : {}), ...(o.socketGroup ? { group: o.socketGroup } : {}) },
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    shutdownGraceMs: o.shutdownGraceMs ?? 60_000,
    logger: o.logger,
    ...(o.onConnection ? { onConnection: o.onConnection } : {}),
  };
}

/** The limits a reload applies, from a front's new options (unset = unlimited, 60 s grace). */
export function reloadLimits(o: { maxConnections?: number; shutdownGraceMs?: number }): { maxConnections: number; shutdownGraceMs: number } {
  return { maxConnections: o.maxConnections ?? Infinity, shutdownGraceMs: o.shutdownGraceMs ?? 60_000 };
}

let seq = 0;
const PID = process.pid.toString(36);

/** Connection ids: process id and a counter, base 36 (short, unique in this process). */
export function nextConnId(): string {
  return `${PID}.${(++seq).toString(36)}`;
}

export async function serve<S>(front: FrontSpec<S>, initial: S, opts: ServeOptions): Promise<Server<S>> {
  const log = opts.logger;
  let settings = initial;
  let maxConnections = opts.maxConnections ?? Infinity;
  let graceMs = opts.shutdownGraceMs ?? 60_000;
  const conns = new Map<Socket, Connection>();
  const sockets = new Set<Socket>();
  let draining = false;

  const server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    // A socket error is handled by the front; this keeps an unhandled one from crashing us.
    socket.on('error', () => {});
    safe(() => opts.onConnection?.('open'));
    socket.once('close', () => {
      sockets.delete(socket);
      conns.delete(socket);
      safe(() => opts.onConnection?.('close'));
    });
    if (draining) {
      socket.destroy();
      return;
    }
    if (conns.size >= maxConnections) {
      log.warn('too-many-connections', { front: front.front, limit: maxConnections });
      if (front.refuse) front.refuse(socket, settings);
      else socket.destroy();
      return;
    }
    let peer = socket.remoteAddress ?? '';
    if (peer.startsWith('::ffff:') && isIPv4(peer.slice(7))) peer = peer.slice(7);
    const info: ConnInfo = { id: nextConnId(), peer: peer === '' ? 'unix' : peer, ...(socket.remotePort ? { peerPort: socket.remotePort } : {}) };
    log.debug('connect', { front: front.front, conn: info.id, peer: info.peer, ...(info.peerPort ? { port: info.peerPort } : {}) });
    try {
      const c = front.connect(socket, settings, info);
      conns.set(socket, c);
      c.closed
        .finally(() => {
          conns.delete(socket);
          log.debug('disconnect', { front: front.front, conn: info.id });
        })
        .catch(() => {});
    } catch (e) {
      log.error('bug', { front: front.front, conn: info.id, stage: 'connect', ...errorFields(e) });
      socket.destroy();
    }
  });

  const bound = await listenOn(server, opts.listen, opts.socket);
  server.on('error', (e) => log.error('listen-error', { front: front.front, ...errorFields(e) }));
  const address = formatAddress(bound.address, front.addressStyle ?? 'hostport');
  log.info('listening', { front: front.front, address });

  let closing: Promise<void> | null = null;
  const drain = async (): Promise<void> => {
    draining = true;
    const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const inFlight = conns.size;
    for (const c of conns.values()) c.drain();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), graceMs);
    });
    const finished = Promise.all([...conns.values()].map((c) => c.closed.catch(() => undefined))).then(() => 'drained' as const);
    const how = await Promise.race([finished, deadline]);
    clearTimeout(timer);
    if (how === 'deadline') {
      log.warn('shutdown-deadline', { front: front.front, graceMs, dropped: conns.size });
      for (const c of conns.values()) c.destroy();
    }
    // Whatever a peer keeps half-open goes too.
    for (const so of sockets) so.destroy();
    await listenerClosed;
    bound.removeSocket();
    log.info('closed', { front: front.front, address, connections: inFlight, how });
  };

  return {
    address,
    get connections() {
      return sockets.size;
    },
    reload(next, limits) {
      settings = next;
      if (limits?.maxConnections !== undefined) maxConnections = limits.maxConnections;
      if (limits?.shutdownGraceMs !== undefined) graceMs = limits.shutdownGraceMs;
    },
    close() {
      closing ??= drain();
      return closing;
    },
  };
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // observers must not break serving
  }
}
