/**
 * milter-server.ts — the listening socket for `midstream milter`.
 *
 * startMilter({listen, engine, logger, …}) listens on `inet:PORT@HOST`,
 * `inet6:PORT@HOST` or `unix:PATH` (`local:PATH`), runs one MilterSession per
 * accepted connection and resolves to `{address, close}`. `address` is in the
 * same notation with the real port (listen on port 0 in tests).
 * Sockets: Nagle off (one write per reply batch; see FACTS.md on delayed ACKs);
 * reading pauses while a command is being handled, so a slow scan pushes back
 * on the MTA instead of buffering. Unix sockets: a stale socket file is removed
 * (a live one is an error: another milter is running), the socket is chmod'ed
 * to `socketMode` (default 0660) and unlinked on close.
 * close() is graceful: the listener stops at once; a connection between messages is
 * closed now (the MTA applies its milter_default_action / F= flags to later mail), one
 * with a message in progress answers that message's end of body first and then
 * closes; after `shutdownGraceMs` whatever is left is dropped.
 * Errors: a bad `listen` string or a busy address rejects the promise.
 * Known gaps: no connection limit; `inet:PORT` without a host binds 127.0.0.1
 * (not all addresses as libmilter would) to stay on loopback unless told otherwise.
 */
import { lstat, unlink } from 'node:fs/promises';
import { listenUnix } from '../src/net/listen-unix.js';
import net from 'node:net';
import type { Engine } from '../src/core/index.js';
import type { Logger } from '../src/log/logger.js';
import { MilterSession } from './milter-session.js';

export interface MilterOptions {
  /** 'inet:PORT@HOST' | 'inet6:PORT@HOST' | 'unix:/path' (default 'inet:7357@127.0.0.1'). */
  listen?: string;
  /** Mode of a unix socket (default 0o660). */
  socketMode?: number;
  engine: Engine;
  logger: Logger;
  /** Add X-Virus-Scanned / X-Virus-Status to clean mail (default off). */
  addHeaders?: boolean;
  /** PROGRESS interval while a verdict is pending (ms, default 5000). */
  progressIntervalMs?: number;
  /** close(): how long messages in progress may take before connections are dropped (ms). Default 60000. */
  shutdownGraceMs?: number;
  /** Called when an MTA connection opens and closes (e.g. the connections gauge). */
  onConnection?: (event: 'open' | 'close') => void;
}

export interface MilterServer {
  address: string;
  /** Graceful: stop accepting, let messages in progress finish (up to shutdownGraceMs), then drop the rest. */
  close(): Promise<void>;
  /** MTA connections open now. */
  readonly connections: number;
}

export type ListenSpec = { kind: 'inet'; host: string; port: number; v6: boolean } | { kind: 'unix'; path: string };

/** Parse Sendmail-style socket notation. Throws a descriptive Error on bad input. */
export function parseListen(spec: string): ListenSpec {
  const m = /^(inet6?|unix|local):(.+)$/.exec(spec);
  if (!m) throw new Error(`milter listen: expected inet:PORT@HOST or unix:PATH, got ${JSON.stringify(spec)}`);
  const [, proto, rest] = m as unknown as [string, string, string];
  if (proto === 'unix' || proto === 'local') {
    if (!rest.startsWith('/')) throw new Error(`milter listen: unix socket path must be absolute: ${rest}`);
    return { kind: 'unix', path: rest };
  }
  const at = rest.indexOf('@');
  const portStr = at < 0 ? rest : rest.slice(0, at);
  let host = at < 0 ? '' : rest.slice(at + 1);
  if (!/^\d{1,5}$/.test(portStr) || Number(portStr) > 65535) throw new Error(`milter listen: bad port in ${spec}`);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const v6 = proto === 'inet6';
  return { kind: 'inet', host: host || (v6 ? '::1' : '127.0.0.1'), port: Number(portStr), v6 };
}

/** Remove a unix socket file left by a dead process; refuse to touch a live socket or a non-socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new Error(`milter listen: ${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((res) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
  if (alive) throw new Error(`milter listen: ${path} is in use by another process`);
  await unlink(path);
}

export async function startMilter(opts: MilterOptions): Promise<MilterServer> {
  const spec = parseListen(opts.listen ?? 'inet:7357@127.0.0.1');
  const log = opts.logger;
  const sockets = new Map<net.Socket, MilterSession>();
  let nextId = 1;
  let draining = false;
  /** While draining: close a connection as soon as it has no message in progress. */
  const closeIfIdle = (sock: net.Socket, session: MilterSession) => {
    if (draining && session.phase === 'idle' && !sock.destroyed) {
      session.destroy();
      sock.end();
    }
  };

  const server = net.createServer((sock) => {
    const connId = `m${nextId++}`;
    sock.setNoDelay(true);
    opts.onConnection?.('open');
    const session = new MilterSession({
      engine: opts.engine,
      logger: log,
      addHeaders: opts.addHeaders ?? false,
      connId,
      progressIntervalMs: opts.progressIntervalMs,
      write: (buf) => {
        if (!sock.destroyed) sock.write(buf);
      },
      close: () => sock.end(),
    });
    sockets.set(sock, session);
    log.debug('milter.connect', { conn: connId, peer: sock.remoteAddress ?? 'unix' });
    sock.on('data', (chunk: Buffer) => {
      sock.pause();
      session.receive(chunk).then(
        () => {
          closeIfIdle(sock, session);
          if (!sock.destroyed && !session.isClosed) sock.resume();
        },
        (e: unknown) => {
          log.error('milter.bug', { conn: connId, err: String(e) });
          sock.destroy();
        },
      );
    });
    sock.on('error', (e) => log.debug('milter.socket-error', { conn: connId, err: String(e) }));
    sock.on('close', () => {
      sockets.delete(sock);
      opts.onConnection?.('close');
      session.destroy();
      log.debug('milter.disconnect', { conn: connId });
    });
  });

  if (spec.kind === 'unix') await removeStaleSocket(spec.path);
  if (spec.kind === 'unix') await listenUnix(server, spec.path, opts.socketMode ?? 0o660);
  else {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen({ port: spec.port, host: spec.host }, () => {
        server.off('error', rej);
        res();
      });
    });
  }
  server.on('error', (e) => log.error('milter.server-error', { err: String(e) }));

  let address: string;
  if (spec.kind === 'unix') {
    address = `unix:${spec.path}`;
  } else {
    const a = server.address() as net.AddressInfo;
    address = `${spec.v6 ? 'inet6' : 'inet'}:${a.port}@${spec.host}`;
  }
  log.info('milter.listening', { address });

  const graceMs = opts.shutdownGraceMs ?? 60_000;
  let closing: Promise<void> | null = null;
  const drain = async (): Promise<void> => {
    draining = true;
    const done = new Promise<void>((res) => server.close(() => res()));
    const inFlight = sockets.size;
    for (const [sock, session] of sockets) closeIfIdle(sock, session);
    const until = Date.now() + graceMs;
    // Connections close themselves as their messages finish (closeIfIdle after each packet batch).
    while (sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, until - Date.now()))));
    const how = sockets.size > 0 ? 'deadline' : 'drained';
    if (how === 'deadline') log.warn('milter.shutdown-deadline', { graceMs, dropped: sockets.size });
    for (const s of sockets.keys()) s.destroy();
    await done;
    if (spec.kind === 'unix') await unlink(spec.path).catch(() => undefined);
    log.info('milter.closed', { address, connections: inFlight, how });
  };
  return {
    address,
    get connections() {
      return sockets.size;
    },
    close() {
      closing ??= drain();
      return closing;
    },
  };
}
