/**
 * proxy-command.ts — `midstream proxy [--config FILE] [--listen HOST:PORT|unix:PATH]
 * [--forward HOST:PORT|unix:PATH] [--signatures PATH]... [--clamd ADDR]`.
 * Defaults: listen 127.0.0.1:10025, forward 127.0.0.1:10026, built-in engine.
 * The proxy as a FrontDef of the shared runtime (server-runtime.ts).
 */
import type { FrozenConfig } from '../config/load-config.js';
import { startProxy, type ProxyHandle, type ProxyReloadOptions } from '../smtp/proxy-server.js';
import type { CommonFlags } from './args.js';
import { runServer, type FrontDef, type RuntimeServices } from './server-runtime.js';

/** [proxy] settings that apply on reload (everything but the listen socket). */
function reloadable(c: FrozenConfig, rt: RuntimeServices): ProxyReloadOptions {
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
  };
}

export const PROXY_DEF: FrontDef<ProxyHandle> = {
  front: 'proxy',
  section: 'proxy',
  start: (c, rt) =>
    startProxy({
      ...reloadable(c, rt),
      logger: rt.logger,
      listen: c.proxy.listen,
      socketMode: c.proxy.socketMode,
      socketOwner: c.proxy.socketOwner,
      socketGroup: c.proxy.socketGroup,
      ...(rt.onConnection ? { onConnection: rt.onConnection } : {}),
    }),
  reload: (h, c, rt) => h.reload(reloadable(c, rt)),
  graceMs: (c) => c.proxy.shutdownGraceMs,
};

export function runProxyCommand(flags: CommonFlags): Promise<number> {
  return runServer(flags, PROXY_DEF);
}
