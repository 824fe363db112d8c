/**
 * proxy-command.ts — `midstream proxy [--config FILE] [--listen HOST:PORT|unix:PATH]
 * [--forward HOST:PORT|unix:PATH] [--signatures PATH]... [--clamd ADDR]`.
 * Defaults: listen 127.0.0.1:10025, forward 127.0.0.1:10026, built-in engine.
 * The proxy as a FrontDef of the shared runtime (server-runtime.ts), plus, when
 * `[proxy] after_filter_milter` is set, the small milter the after-filter smtpd calls to
 * apply verdict-dependent edits (milter/after-filter-milter.ts; one TicketBook shared by both).
 * Errors: a config whose actions need that milter (tag, quarantine, X-Virus-Status on
 * accepted mail, virus_lovers/banned_lovers) without it is refused at start and on reload:
 * the proxy cannot add a header after the header block has passed.
 */
import type { FrozenConfig } from '../config/load-config.js';
import { MidstreamError, ERROR_CODES } from '../core/index.js';
import { startProxy, type ProxyHandle, type ProxyReloadOptions } from '../smtp/proxy-server.js';
import { TicketBook } from '../actions/verdict-tickets.js';
import { startAfterFilterMilter, type AfterFilterMilter } from '../../milter/after-filter-milter.js';
import type { CommonFlags } from './args.js';
import { runServer, type FrontDef, type RuntimeServices } from './server-runtime.js';
import { headerSettings } from './actions-setup.js';

/** Why this config needs the after-filter milter through the proxy (the first key that does), or null. */
export function afterFilterNeed(c: FrozenConfig): string | null {
  const needs = (a: string | undefined) => a === 'tag' || a === 'quarantine';
  for (const [k, a] of Object.entries(c.actions)) if (needs(a)) return `actions.${k} = "${a}"`;
  for (const [i, r] of c.rules.entries()) for (const [k, a] of Object.entries(r.actions ?? {})) if (needs(a)) return `rules[${i}].actions.${k} = "${a}"`;
  if (c.policy.virusLovers.length) return 'policy.virus_lovers (their mail is tagged)';
  if (c.policy.bannedLovers.length) return 'policy.banned_lovers (their mail is tagged)';
  if (c.headers.status) return 'headers.status = true';
  return null;
}

function checkAfterFilter(c: FrozenConfig): void {
  const need = afterFilterNeed(c);
  if (need && c.proxy.afterFilterMilter === '') {
    throw new MidstreamError(
      ERROR_CODES.configInvalid,
      `proxy.after_filter_milter: ${need} needs it through the proxy: the header block has passed before the verdict is known, so the after-filter smtpd applies the edits (smtpd_milters; see postfix/after-filter.cf.in)`,
    );
  }
}

/** [proxy] settings that apply on reload (everything but the listen sockets). */
function reloadable(c: FrozenConfig, rt: RuntimeServices, tickets: TicketBook | null): ProxyReloadOptions {
  const p = c.proxy;
  return {
    engine: rt.engine,
    forward: p.forward,
    trustedXforward: p.trustedXforward,
    replyBudgetMs: p.replyBudgetMs,
    maxConnections: p.maxConnections,
    shutdownGraceMs: p.shutdownGraceMs,
    hostname: p.hostname,
    addHeader: p.addHeader,
    headers: headerSettings(c),
    tickets,
    notifier: rt.notifier,
    ...(rt.metrics ? { onUnclaimed: () => rt.metrics!.ticketUnclaimed() } : {}),
  };
}

type Handle = ProxyHandle & { afterFilter: AfterFilterMilter | null; tickets: TicketBook | null };

export const PROXY_DEF: FrontDef<Handle> = {
  front: 'proxy',
  section: 'proxy',
  async start(c, rt) {
    checkAfterFilter(c);
    const tickets = c.proxy.afterFilterMilter ? new TicketBook() : null;
    const afterFilter = tickets
      ? await startAfterFilterMilter({
          listen: c.proxy.afterFilterMilter,
          tickets,
          logger: rt.logger,
          socketMode: c.proxy.socketMode,
          ...(c.proxy.socketOwner ? { socketOwner: c.proxy.socketOwner } : {}),
          ...(c.proxy.socketGroup ? { socketGroup: c.proxy.socketGroup } : {}),
        })
      : null;
    try {
      const h = await startProxy({
        ...reloadable(c, rt, tickets),
        logger: rt.logger,
        listen: c.proxy.listen,
        listenAlso: c.proxy.listenAlso,
        socketMode: c.proxy.socketMode,
        socketOwner: c.proxy.socketOwner,
        socketGroup: c.proxy.socketGroup,
        ...(rt.onConnection ? { onConnection: rt.onConnection } : {}),
      });
      const closeProxy = h.close;
      return Object.assign(h, {
        afterFilter,
        tickets,
        close: async () => {
          await closeProxy();
          // After the proxy: its last messages may still need their edits claimed.
          await afterFilter?.close();
        },
      });
    } catch (e) {
      await afterFilter?.close();
      throw e;
    }
  },
  reload(h, c, rt) {
    checkAfterFilter(c);
    h.reload(reloadable(c, rt, h.tickets));
  },
  graceMs: (c) => c.proxy.shutdownGraceMs,
};

export function runProxyCommand(flags: CommonFlags): Promise<number> {
  return runServer(flags, PROXY_DEF);
}
