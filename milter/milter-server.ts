/**
 * milter-server.ts — the listening socket for `midstream milter`.
 *
 * startMilter({listen, engine, logger, …}) listens on `inet:PORT@HOST`,
 * `inet6:PORT@HOST` or `unix:PATH` (`local:PATH`), runs one MilterSession per
 * accepted connection and resolves to `{address, close}`. `address` is in the
 * same notation with the real port (listen on port 0 in tests).
 * The lifecycle (listen, reload, drain, shutdown) is the shared one in src/net/server.ts;
 * this file is the milter's FrontSpec. Addresses use the one grammar (src/core/address.ts)
 * in Sendmail's notation; Postfix's `inet:HOST:PORT` gets an error showing the right form.
 * Sockets: Nagle off (one write per reply batch; see FACTS.md on delayed ACKs);
 * a read is handled synchronously; reading pauses only while the session waits (core
 * backpressure, the end-of-message verdict), so a slow scan pushes back on the MTA
 * instead of buffering. Unix sockets: a stale socket file is removed
 * (a live one is an error: another milter is running), the socket gets `socketMode`
 * (default 0660), `socketOwner`/`socketGroup`, and is unlinked on close.
 * close() is graceful: the listener stops at once; a connection between messages is
 * closed now (the MTA applies its milter_default_action / F= flags to later mail), one
 * with a message in progress answers that message's end of body first and then
 * closes; after `shutdownGraceMs` whatever is left is dropped.
 * reload(opts): new connections get the new engine, header, notice and progress settings.
 * Errors: a bad `listen` string or a busy address rejects the promise (MidstreamError).
 * Known gaps: `inet:PORT` without a host binds 127.0.0.1 (not all addresses as
 * libmilter would) to stay on loopback unless told otherwise.
 */
import type net from 'node:net';
import { parseAddress, type Engine } from '../src/core/index.js';
import type { Logger } from '../src/log/logger.js';
import { reloadLimits, serve, serveOptions, type FrontSpec } from '../src/net/server.js';
import { MilterSession } from './milter-session.js';
import { DEFAULT_HEADER_SETTINGS, type HeaderSettings } from '../src/actions/message-edits.js';
import type { Notifier } from '../src/actions/notifier.js';

export interface MilterOptions {
  /** 'inet:PORT@HOST' | 'inet6:PORT@HOST' | 'unix:/path' (default 'inet:7357@127.0.0.1'). */
  listen?: string;
  /** Mode of a unix socket (default 0o660). */
  socketMode?: number;
  /** Owner and group of a unix socket (names or ids; default: ours), e.g. group "postfix". */
  socketOwner?: string;
  socketGroup?: string;
  engine: Engine;
  logger: Logger;
  /** Headers we add, remove or rename (default: none added, forged X-Virus-* removed). */
  headers?: HeaderSettings;
  /** Notices about blocked, quarantined or tagged mail (default none). */
  notifier?: Notifier | null;
  /** PROGRESS interval while a verdict is pending (ms, default 5000). */
  progressIntervalMs?: number;
  /** Concurrent MTA connections; more are closed at once (the MTA applies its default action). Default unlimited. */
  maxConnections?: number;
  /** close(): how long messages in progress may take before connections are dropped (ms). Default 60000. */
  shutdownGraceMs?: number;
  /** Called when an MTA connection opens and closes (e.g. the connections gauge). */
  onConnection?: (event: 'open' | 'close') => void;
}

export type MilterReloadOptions = Pick<MilterOptions, 'engine' | 'headers' | 'notifier' | 'progressIntervalMs' | 'maxConnections' | 'shutdownGraceMs'>;

export interface MilterServer {
  address: string;
  /** New connections get these settings; connections in progress keep theirs. */
  reload(opts: MilterReloadOptions): void;
  /** Graceful: stop accepting, let messages in progress finish (up to shutdownGraceMs), then drop the rest. */
  close(): Promise<void>;
  /** MTA connections open now. */
  readonly connections: number;
}

interface MilterSettings {
  readonly engine: Engine;
  readonly logger: Logger;
  readonly headers: HeaderSettings;
  readonly notifier: Notifier | null;
  readonly progressIntervalMs: number | undefined;
}

/** One MTA connection: socket bytes into a MilterSession, in order, with backpressure. */
function serveConnection(sock: net.Socket, s: MilterSettings, connId: string): { closed: Promise<void>; drain(): void; destroy(): void } {
  const log = s.logger;
  let draining = false;
  const session = new MilterSession({
    engine: s.engine,
    logger: log,
    headers: s.headers,
    notifier: s.notifier,
    connId,
    progressIntervalMs: s.progressIntervalMs,
    write: (buf) => {
      if (!sock.destroyed) sock.write(buf);
    },
    close: () => sock.end(),
  });
  /** While draining: close as soon as no message is in progress (the MTA applies its default action to later mail). */
  const closeIfIdle = () => {
    if (draining && session.phase === 'idle' && !sock.destroyed) {
      session.destroy();
      sock.end();
      // A peer that never closes its side is not waited for.
      setTimeout(() => sock.destroy(), 1000).unref();
    }
  };
  const closed = new Promise<void>((resolve) => {
    sock.once('close', () => {
      session.destroy();
      resolve();
    });
  });
  sock.on('data', (chunk: Buffer) => {
    // Handled synchronously unless the session must wait: then (and only then) stop reading.
    const w = session.receive(chunk);
    if (w === undefined) return closeIfIdle();
    sock.pause();
    w.then(
      () => {
        closeIfIdle();
        if (!sock.destroyed && !session.isClosed) sock.resume();
      },
      (e: unknown) => {
        log.error('bug', { front: 'milter', conn: connId, error: String(e) });
        sock.destroy();
      },
    );
  });
  sock.on('error', (e) => log.debug('socket-error', { front: 'milter', conn: connId, error: String(e) }));
  return {
    closed,
    drain() {
      draining = true;
      closeIfIdle();
    },
    destroy() {
      sock.destroy();
    },
  };
}

/** The milter as a front of the shared lifecycle. */
export const MILTER_FRONT: FrontSpec<MilterSettings> = {
  front: 'milter',
  addressStyle: 'sendmail',
  connect: (sock, s, info) => serveConnection(sock, s, info.id),
};

function settingsOf(o: MilterReloadOptions, logger: Logger): MilterSettings {
  return Object.freeze({ engine: o.engine, logger, headers: o.headers ?? DEFAULT_HEADER_SETTINGS, notifier: o.notifier ?? null, progressIntervalMs: o.progressIntervalMs });
}

export async function startMilter(opts: MilterOptions): Promise<MilterServer> {
  const listen = parseAddress(opts.listen ?? 'inet:7357@127.0.0.1', 'milter');
  const srv = await serve(MILTER_FRONT, settingsOf(opts, opts.logger), serveOptions(listen, opts));
  return {
    address: srv.address,
    get connections() {
      return srv.connections;
    },
    reload(next) {
      srv.reload(settingsOf(next, opts.logger), reloadLimits(next));
    },
    close: () => srv.close(),
  };
}
