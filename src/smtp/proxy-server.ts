/**
 * proxy-server.ts — `midstream proxy`: the Postfix before-queue (smtpd_proxy_filter) server.
 *
 * startProxy(opts) listens on `listen` (HOST:PORT or unix:/path), serves each connection
 * with a ProxySession that forwards to `forward` (the after-filter smtpd), and returns
 * the bound address ("127.0.0.1:PORT" with the real port when 0 was asked, or
 * "unix:/path") and close().
 *
 * Why our own server and not smtp-server: smtp-server adds its own enhanced status code
 * to every reply and rebuilds replies from (code, message), so the after-filter's
 * multi-line replies and its "250 2.0.0 Ok: queued as …" cannot pass through verbatim; it
 * validates and re-parses MAIL/RCPT parameters instead of passing the lines on
 * unchanged; and its DATA parser un-stuffs dots after bare LF and lets bare CR/LF through,
 * where we need strict CRLF handling.
 *
 * close() is graceful: the listener stops at once (new connections are refused); a
 * transaction in progress runs to its final reply (delivered or rejected as usual), a
 * session idle between transactions gets "421 4.3.2 Service shutting down"; after
 * `shutdownGraceMs` whatever is left is dropped (mid-DATA: connection lost = the
 * client retries; Postfix never saw a 250, so nothing is lost or duplicated).
 * Limits: maxConnections (421 beyond it); each session's limits in ProxySession.
 * Errors: bad options (addresses, CIDRs, header text) throw at startup with the reason;
 * a listen error rejects the returned promise.
 * Gaps: no config reload of our own (the CLI swaps the engine; listen/forward need a restart).
 */
import { BlockList, createServer, isIPv4, isIPv6, type Socket } from 'node:net';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { listenUnix } from '../net/listen-unix.js';
import { hostname as osHostname } from 'node:os';
import type { Logger } from '../log/logger.js';
import { formatEndpoint, parseEndpoint } from './address.js';
import { ProxySession, type ProxyContext, type ProxyEngine } from './proxy-session.js';
import { DEFAULT_MAX_LINE_BYTES } from './smtp-reader.js';

export interface ProxyOptions {
  engine: ProxyEngine;
  logger: Logger;
  /** Where Postfix's smtpd_proxy_filter connects. Default 127.0.0.1:10025. */
  listen?: string;
  /** Mode of a unix listen socket (default 0o660: Postfix's group may connect, others not). */
  socketMode?: number;
  /** The after-filter smtpd. Default 127.0.0.1:10026. */
  forward?: string;
  /** Peers allowed to send XFORWARD (CIDR or address). Default ['127.0.0.0/8']. Unix-socket peers always are. */
  trustedXforward?: readonly string[];
  /** A header line prepended to each message, e.g. 'X-Virus-Scanned: midstream'. Off by default. */
  addHeader?: string;
  /** Longest wait for the verdict and each downstream reply (ms); keep it below Postfix's smtpd_proxy_timeout (100 s). Default 90000. */
  replyBudgetMs?: number;
  /** Concurrent connections; more get 421. Default unlimited. */
  maxConnections?: number;
  /** Name in our greeting and EHLO reply. Default: os.hostname(). */
  hostname?: string;
  /** Inactivity timeout on the inbound socket (ms). Default 300000 (Postfix smtpd_timeout). */
  idleTimeoutMs?: number;
  /** close(): how long transactions in progress may take before connections are dropped (ms). Default 60000. */
  shutdownGraceMs?: number;
  /** Called when a client connection opens and closes (e.g. the connections gauge). */
  onConnection?: (event: 'open' | 'close') => void;
}

export interface ProxyHandle {
  address: string;
  /** Graceful: stop accepting, let transactions in progress finish (up to shutdownGraceMs), then drop the rest. */
  close(): Promise<void>;
  /** Client connections open now. */
  readonly connections: number;
}

export class ProxyConfigError extends Error {
  readonly code = 'ECONFIG';
}

function buildTrusted(list: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const item of list) {
    const [net, bits, extra] = item.split('/');
    const type = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : null;
    if (!type || extra !== undefined) throw new ProxyConfigError(`trustedXforward: bad network ${JSON.stringify(item)}`);
    if (bits === undefined) bl.addAddress(net, type);
    else {
      const n = Number(bits);
      if (!/^\d+$/.test(bits) || n > (type === 'ipv4' ? 32 : 128)) {
        throw new ProxyConfigError(`trustedXforward: bad prefix length in ${JSON.stringify(item)}`);
      }
      bl.addSubnet(net, n, type);
    }
  }
  return bl;
}

function buildHeader(h: string | undefined): Buffer | null {
  if (h === undefined || h === '') return null;
  // One header field: "Name: value", printable, no CR/LF (folding is not needed for ours).
  if (!/^[!-9;-~]+:[ -~]*$/.test(h)) throw new ProxyConfigError(`addHeader: not a single "Name: value" header line: ${JSON.stringify(h)}`);
  return Buffer.from(h + '\r\n', 'latin1');
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const listen = parseEndpoint(opts.listen ?? '127.0.0.1:10025');
  const forward = parseEndpoint(opts.forward ?? '127.0.0.1:10026');
  const replyBudgetMs = opts.replyBudgetMs ?? 90_000;
  if (!(replyBudgetMs > 0)) throw new ProxyConfigError('replyBudgetMs must be > 0');
  const ctx: ProxyContext = Object.freeze({
    engine: opts.engine,
    logger: opts.logger,
    forward,
    hostname: opts.hostname ?? osHostname(),
    trusted: buildTrusted(opts.trustedXforward ?? ['127.0.0.0/8']),
    addHeader: buildHeader(opts.addHeader),
    replyBudgetMs,
    idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
    maxLineBytes: DEFAULT_MAX_LINE_BYTES,
  });
  const maxConnections = opts.maxConnections ?? Infinity;
  const shutdownGraceMs = opts.shutdownGraceMs ?? 60_000;
  const sessions = new Map<ProxySession, Promise<void>>();
  const sockets = new Set<Socket>();
  const onConnection = opts.onConnection;

  const server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    onConnection?.('open');
    socket.on('close', () => {
      sockets.delete(socket);
      onConnection?.('close');
    });
    if (sessions.size >= maxConnections) {
      opts.logger.warn('too-many-connections', { limit: maxConnections });
      socket.on('error', () => {});
      socket.end(`421 4.7.0 ${ctx.hostname} Error: too many connections\r\n`);
      return;
    }
    const s = new ProxySession(socket, ctx);
    sessions.set(s, s.run().finally(() => sessions.delete(s)));
  });

  if (listen.kind === 'unix' && existsSync(listen.path)) {
    // A stale socket from a previous run; never remove anything that is not a socket.
    if (!lstatSync(listen.path).isSocket()) throw new ProxyConfigError(`listen: ${listen.path} exists and is not a socket`);
    unlinkSync(listen.path);
  }
  if (listen.kind === 'unix') await listenUnix(server, listen.path, opts.socketMode ?? 0o660);
  else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
  }
  server.on('error', (e) => opts.logger.error('listen', { error: e.message }));
  const bound = server.address();
  const address =
    listen.kind === 'unix' || bound === null || typeof bound === 'string'
      ? formatEndpoint(listen)
      : formatEndpoint({ kind: 'tcp', host: bound.address, port: bound.port });
  opts.logger.info('listening', { address, forward: formatEndpoint(forward), engines: opts.engine.engines });

  let closing: Promise<void> | null = null;
  const drain = async (): Promise<void> => {
    const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const inFlight = sessions.size;
    for (const s of sessions.keys()) s.drain();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), shutdownGraceMs);
    });
    const finished = Promise.all(sessions.values()).then(() => 'drained' as const);
    const how = await Promise.race([finished, deadline]);
    clearTimeout(timer);
    if (how === 'deadline') {
      opts.logger.warn('shutdown-deadline', { graceMs: shutdownGraceMs, dropped: sessions.size });
      for (const s of sessions.keys()) s.shutdown();
    }
    // Sessions end their sockets; destroy whatever a client keeps half-open.
    for (const so of sockets) so.destroy();
    await listenerClosed;
    opts.logger.info('closed', { address, sessions: inFlight, how });
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
