/**
 * milter-command.ts — `midstream milter [--config FILE] [--listen inet:PORT@HOST|unix:PATH]
 * [--signatures PATH]... [--clamd ADDR]`. Default listen inet:7357@127.0.0.1.
 * The milter as a FrontDef of the shared runtime (server-runtime.ts).
 */
import type { FrozenConfig } from '../config/load-config.js';
import { startMilter, type MilterReloadOptions, type MilterServer } from '../../milter/milter-server.js';
import type { CommonFlags } from './args.js';
import { runServer, type FrontDef, type RuntimeServices } from './server-runtime.js';
import { headerSettings } from './actions-setup.js';

/** [milter] settings that apply on reload (everything but the listen socket). */
function reloadable(c: FrozenConfig, rt: RuntimeServices): MilterReloadOptions {
  const m = c.milter;
  return {
    engine: rt.engine,
    headers: headerSettings(c),
    notifier: rt.notifier,
    progressIntervalMs: m.progressIntervalMs,
    maxConnections: m.maxConnections,
    shutdownGraceMs: m.shutdownGraceMs,
  };
}

export const MILTER_DEF: FrontDef<MilterServer> = {
  front: 'milter',
  section: 'milter',
  start: (c, rt) =>
    startMilter({
      ...reloadable(c, rt),
      logger: rt.logger,
      listen: c.milter.listen,
      socketMode: c.milter.socketMode,
      socketOwner: c.milter.socketOwner,
      socketGroup: c.milter.socketGroup,
      ...(rt.onConnection ? { onConnection: rt.onConnection } : {}),
    }),
  reload: (h, c, rt) => h.reload(reloadable(c, rt)),
  graceMs: (c) => c.milter.shutdownGraceMs,
};

export function runMilterCommand(flags: CommonFlags): Promise<number> {
  return runServer(flags, MILTER_DEF);
}
