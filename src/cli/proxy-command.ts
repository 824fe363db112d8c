/**
 * proxy-command.ts — `midstream proxy [--config FILE] [--listen HOST:PORT|unix:PATH]
 * [--forward HOST:PORT|unix:PATH] [--signatures PATH]... [--clamd ADDR]`.
 * Defaults: listen 127.0.0.1:10025, forward 127.0.0.1:10026, built-in engine.
 */
import { startProxy } from '../smtp/proxy-server.js';
import type { CommonFlags } from './args.js';
import { connectionGauge, startRuntime } from './server-runtime.js';

export async function runProxyCommand(flags: CommonFlags): Promise<number> {
  const rt = await startRuntime(flags, 'proxy');
  const p = rt.config.proxy;
  const handle = await startProxy({
    engine: rt.holder,
    logger: rt.logger,
    listen: p.listen,
    forward: p.forward,
    socketMode: p.socketMode,
    trustedXforward: p.trustedXforward,
    replyBudgetMs: p.replyBudgetMs,
    maxConnections: p.maxConnections,
    shutdownGraceMs: p.shutdownGraceMs,
    ...(rt.metrics ? { onConnection: connectionGauge(rt.metrics, 'proxy') } : {}),
    ...(p.hostname ? { hostname: p.hostname } : {}),
    ...(p.addHeader ? { addHeader: p.addHeader } : {}),
  });
  rt.logger.info('proxy-listening', { address: handle.address, forward: p.forward, engines: rt.holder.engines });
  const why = await rt.stopped;
  rt.logger.info('stopping', { signal: why, graceMs: p.shutdownGraceMs, connections: handle.connections });
  await handle.close();
  await rt.shutdown();
  return 0;
}
