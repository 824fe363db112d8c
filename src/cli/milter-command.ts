/**
 * milter-command.ts — `midstream milter [--config FILE] [--listen inet:PORT@HOST|unix:PATH]
 * [--signatures PATH]... [--clamd ADDR]`. Default listen inet:7357@127.0.0.1.
 */
import { startMilter } from '../../milter/milter-server.js';
import type { CommonFlags } from './args.js';
import { connectionGauge, startRuntime } from './server-runtime.js';

export async function runMilterCommand(flags: CommonFlags): Promise<number> {
  const rt = await startRuntime(flags, 'milter');
  const m = rt.config.milter;
  const handle = await startMilter({
    engine: rt.holder,
    logger: rt.logger,
    listen: m.listen,
    socketMode: m.socketMode,
    addHeaders: m.addHeaders,
    progressIntervalMs: m.progressIntervalMs,
    shutdownGraceMs: m.shutdownGraceMs,
    ...(rt.metrics ? { onConnection: connectionGauge(rt.metrics, 'milter') } : {}),
  });
  rt.logger.info('milter-listening', { address: handle.address, engines: rt.holder.engines });
  const why = await rt.stopped;
  rt.logger.info('stopping', { signal: why, graceMs: m.shutdownGraceMs, connections: handle.connections });
  await handle.close();
  await rt.shutdown();
  return 0;
}
