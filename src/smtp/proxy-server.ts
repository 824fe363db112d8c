/**
 * proxy-server.ts — `midstream proxy`: the Postfix before-queue (smtpd_proxy_filter) server.
 *
 * startProxy(opts) listens on `listen` (HOST:PORT or unix:/path), serves each connection
 * with a ProxySession that forwards to `forward` (the after-filter smtpd), and returns
 * the bound address ("127.0.0.1:PORT" with the real port when 0 was asked, or
 * "unix:/path"), reload() and close(). The lifecycle (listen, reload, drain, shutdown)
 * is the shared one in src/net/server.ts; this file is the proxy's FrontSpec.
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
 * reload(opts): new connections get the new forward address, hostname, header, budget,
 * trusted networks and limits; `listen` and the socket's mode/owner need a restart.
 * Errors: bad options (addresses, CIDRs, header text) throw MidstreamError at startup (and
 * from reload(), leaving the running settings alone); a listen error rejects the promise.
 */
import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { Logger } from '../log/logger.js';
import { ERROR_CODES, MidstreamError, parseAddress } from '../core/index.js';
import { reloadLimits, serve, serveOptions, type FrontSpec, type Server } from '../net/server.js';
import { ProxySession, type ProxyContext, type ProxyEngine } from './proxy-session.js';
import { DEFAULT_MAX_LINE_BYTES } from './smtp-reader.js';
import { DEFAULT_HEADER_SETTINGS, INCOMING_HEADERS, renamedHeader, type HeaderSettings } from '../actions/message-edits.js';
import type { Notifier } from '../actions/notifier.js';
import { TICKET_HEADER, type TicketBook } from '../actions/verdict-tickets.js';

export interface ProxyOptions {
  engine: ProxyEngine;
  logger: Logger;
  /** Where Postfix's smtpd_proxy_filter connects. Default 127.0.0.1:10025. */
  listen?: string;
  /** More sockets served the same way (max_connections applies to each). */
  listenAlso?: readonly string[];
  /** Mode of a unix listen socket (default 0o660: Postfix's group may connect, others not). */
  socketMode?: number;
  /** Owner and group of a unix listen socket (names or ids; default: ours). */
  socketOwner?: string;
  socketGroup?: string;
  /** The after-filter smtpd. Default 127.0.0.1:10026. */
  forward?: string;
  /** Peers allowed to send XFORWARD (CIDR or address). Default ['127.0.0.0/8']. Unix-socket peers always are. */
  trustedXforward?: readonly string[];
  /** A header line prepended to each message, e.g. 'X-Filtered-By: mx1'. Off by default. */
  addHeader?: string;
  /** Headers: X-Virus-Scanned (prepended in the stream), incoming X-Virus-* removed or renamed, what the verdict adds. */
  headers?: HeaderSettings;
  /** The after-filter milter's ticket book (proxy.after_filter_milter); null = tag, quarantine and X-Virus-Status are unavailable. */
  tickets?: TicketBook | null;
  /** Notices about blocked, quarantined or tagged mail. */
  notifier?: Notifier | null;
  /** Verdict edits filed but never claimed by the after-filter milter (metric). */
  onUnclaimed?: () => void;
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

/** What reload() may change: everything but the listen socket and the hooks. */
export type ProxyReloadOptions = Omit<ProxyOptions, 'listen' | 'listenAlso' | 'socketMode' | 'socketOwner' | 'socketGroup' | 'onConnection' | 'logger'>;

export interface ProxyHandle {
  address: string;
  /** Every listening socket's address (listen, then listenAlso). */
  addresses: readonly string[];
  /** New connections get these settings; connections in progress keep theirs. Throws on bad values. */
  reload(opts: ProxyReloadOptions): void;
  /** Graceful: stop accepting, let transactions in progress finish (up to shutdownGraceMs), then drop the rest. */
  close(): Promise<void>;
  /** Client connections open now. */
  readonly connections: number;
}

function configError(msg: string): MidstreamError {
  return new MidstreamError(ERROR_CODES.configInvalid, msg);
}

function buildTrusted(list: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const item of list) {
    const [net, bits, extra] = item.split('/');
    const type = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : null;
    if (!type || extra !== undefined) throw configError(`trustedXforward: bad network ${JSON.stringify(item)}`);
    if (bits === undefined) bl.addAddress(net, type);
    else {
      const n = Number(bits);
      if (!/^\d+$/.test(bits) || n > (type === 'ipv4' ? 32 : 128)) {
        throw configError(`trustedXforward: bad prefix length in ${JSON.stringify(item)}`);
      }
      bl.addSubnet(net, n, type);
    }
  }
  return bl;
}

function buildHeader(h: string | undefined, scanned: string): Buffer | null {
  const lines: string[] = [];
  if (scanned !== '') {
    if (!/^[ -~]+$/.test(scanned)) throw configError(`headers.scanned: not printable ASCII on one line: ${JSON.stringify(scanned)}`);
    lines.push(`X-Virus-Scanned: ${scanned}`);
  }
  if (h !== undefined && h !== '') {
    // One header field: "Name: value", printable, no CR/LF (folding is not needed for ours).
    if (!/^[!-9;-~]+:[ -~]*$/.test(h)) throw configError(`addHeader: not a single "Name: value" header line: ${JSON.stringify(h)}`);
    lines.push(h);
  }
  // As it goes on the wire: a line-start dot is stuffed.
  return lines.length ? Buffer.from(lines.map((l) => (l.startsWith('.') ? '.' : '') + l + '\r\n').join(''), 'latin1') : null;
}

function buildContext(opts: ProxyReloadOptions, logger: Logger): ProxyContext {
  const replyBudgetMs = opts.replyBudgetMs ?? 90_000;
  const headers = opts.headers ?? DEFAULT_HEADER_SETTINGS;
  if (!(replyBudgetMs > 0)) throw configError('replyBudgetMs must be > 0');
  return Object.freeze({
    engine: opts.engine,
    logger,
    forward: parseAddress(opts.forward ?? '127.0.0.1:10026', 'connect'),
    hostname: opts.hostname || osHostname(),
    trusted: buildTrusted(opts.trustedXforward ?? ['127.0.0.0/8']),
    addHeader: buildHeader(opts.addHeader, headers.scanned),
    // Our ticket is never taken from outside; forged X-Virus-* go or get renamed.
    headerRemove: [TICKET_HEADER, ...(headers.incoming === 'remove' ? INCOMING_HEADERS : [])],
    headerRename: new Map(headers.incoming === 'rename' ? INCOMING_HEADERS.map((n) => [n, renamedHeader(n)] as const) : []),
    headers,
    tickets: opts.tickets ?? null,
    notifier: opts.notifier ?? null,
    ...(opts.onUnclaimed ? { onUnclaimed: opts.onUnclaimed } : {}),
    replyBudgetMs,
    idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
    maxLineBytes: DEFAULT_MAX_LINE_BYTES,
  });
}

/** The proxy as a front of the shared lifecycle. */
export const PROXY_FRONT: FrontSpec<ProxyContext> = {
  front: 'proxy',
  connect(socket: Socket, ctx, info) {
    const s = new ProxySession(socket, ctx, info);
    return { closed: s.run(), drain: () => s.drain(), destroy: () => s.shutdown() };
  },
  refuse(socket, ctx) {
    socket.end(`421 4.7.0 ${ctx.hostname} Error: too many connections\r\n`);
  },
};

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const listens = [opts.listen ?? '127.0.0.1:10025', ...(opts.listenAlso ?? [])].map((a) => parseAddress(a, 'listen'));
  const ctx = buildContext(opts, opts.logger);
  const servers: Server<ProxyContext>[] = [];
  try {
    // One server per socket, the same front and settings: a rule may tell them apart by
    // listen_port (e.g. Postfix's port 25 and submission smtpd each with its own filter port).
    for (const listen of listens) {
      servers.push(
        await serve(PROXY_FRONT, ctx, serveOptions(listen, opts)),
      );
    }
  } catch (e) {
    await Promise.all(servers.map((x) => x.close()));
    throw e;
  }
  return {
    address: servers[0]!.address,
    addresses: servers.map((x) => x.address),
    get connections() {
      return servers.reduce((n, x) => n + x.connections, 0);
    },
    reload(next) {
      const c = buildContext(next, opts.logger);
      for (const x of servers) x.reload(c, reloadLimits(next));
    },
    close: async () => {
      await Promise.all(servers.map((x) => x.close()));
    },
  };
}
