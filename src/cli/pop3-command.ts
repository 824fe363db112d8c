/**
 * pop3-command.ts — `midstream pop3 [--config FILE] [--listen HOST:PORT] [--upstream HOST:PORT]
 * [--signatures PATH]... [--clamd ADDR]`. Defaults: listen 127.0.0.1:10110, upstream
 * 127.0.0.1:110, built-in engine. The POP3 relay as a FrontDef of the shared runtime
 * (server-runtime.ts): rules, metrics, reload and shutdown as for the other fronts.
 */
import type { FrozenConfig } from '../config/load-config.js';
import { startPop3, type Pop3Handle, type Pop3ReloadOptions } from '../pop3/pop3-server.js';
import type { CommonFlags } from './args.js';
import { runServer, type FrontDef, type RuntimeServices } from './server-runtime.js';

/** [pop3] settings that apply on reload (everything but the listen socket). */
function reloadable(c: FrozenConfig, rt: RuntimeServices): Pop3ReloadOptions {
  const p = c.pop3;
  return {
    engine: rt.engine,
    upstream: p.upstream,
    holdBytes: p.holdBytes,
    holdExceeded: p.holdExceeded,
    xVirusStatus: p.xVirusStatus,
    tls: p.tls,
    tlsCert: p.tlsCert,
    tlsKey: p.tlsKey,
    idleTimeoutMs: p.idleTimeoutMs,
    upstreamTimeoutMs: p.upstreamTimeoutMs,
    maxConnections: p.maxConnections,
    shutdownGraceMs: p.shutdownGraceMs,
  };
}

export const POP3_DEF: FrontDef<Pop3Handle> = {
  front: 'pop3',
  section: 'pop3',
  start: (c, rt) =>
    startPop3({
      ...reloadable(c, rt),
      logger: rt.logger,
      listen: c.pop3.listen,
      socketMode: c.pop3.socketMode,
      socketOwner: c.pop3.socketOwner,
      socketGroup: c.pop3.socketGroup,
      ...(rt.onConnection ? { onConnection: rt.onConnection } : {}),
    }),
  reload: (h, c, rt) => h.reload(reloadable(c, rt)),
  graceMs: (c) => c.pop3.shutdownGraceMs,
};

export function runPop3Command(flags: CommonFlags): Promise<number> {
  return runServer(flags, POP3_DEF);
}
