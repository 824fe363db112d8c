/**
 * server-runtime.ts — what `midstream proxy` and `midstream milter` share when they
 * run for real: config + flags, the logger, the metrics endpoint, the engine snapshot
 * that SIGHUP swaps, per-recipient policy rules, and graceful shutdown on SIGTERM.
 *
 * Reload: the new config and signatures are loaded beside the running engine; only
 * when that succeeds is the snapshot swapped, so new messages use it while messages in
 * flight finish on theirs. A failed reload keeps the old set and logs why.
 *
 * Metrics: messages via EngineHolder, connections via connectionGauge() (the commands
 * pass it to the front's onConnection hook), clamd endpoint health polled from the
 * current engine's client every few seconds (unref'd timer).
 */
import { createWriteStream } from 'node:fs';
import { failOpenWarnings, loadConfig, ruleFor, type FrozenConfig } from '../config/load-config.js';
import { createEngine, type Engine, type Envelope, type Verdict } from '../core/index.js';
import type { Session, MessagePolicy } from '../core/engine.js';
import { createLogger, type Logger } from '../log/logger.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import type { CommonFlags } from './args.js';
import { engineOptions, overridesFrom } from './settings.js';

export type Front = 'proxy' | 'milter';

/** An Engine whose snapshot can be swapped; applies [[rules]] per message and records metrics. */
export class EngineHolder implements Engine {
  constructor(
    private engine: Engine,
    private config: FrozenConfig,
    private readonly front: Front,
    private readonly metrics: Metrics | null,
  ) {}

  get engines() { return this.engine.engines; }
  get signatureCount() { return this.engine.signatureCount; }
  get signatureVersion() { return this.engine.signatureVersion; }
  get policy() { return this.engine.policy; }
  get clamd() { return this.engine.clamd; }
  get current(): Engine { return this.engine; }
  get currentConfig(): FrozenConfig { return this.config; }

  swap(engine: Engine, config: FrozenConfig): Engine {
    const old = this.engine;
    this.engine = engine;
    this.config = config;
    return old;
  }

  begin(envelope?: Envelope, override?: Partial<MessagePolicy>): Session {
    const engine = this.engine;
    let policy = override;
    if (this.config.rules.length > 0) {
      const p = ruleFor(this.config, {
        ...(envelope?.clientAddress ? { clientAddress: envelope.clientAddress } : {}),
        ...(envelope?.authenticated ? { authenticated: envelope.authenticated } : {}),
        ...(envelope?.recipients ? { recipients: envelope.recipients } : {}),
      });
      policy = {
        actions: p.actions,
        bannedExtensions: new Set(p.bannedExtensions.map((e) => e.toLowerCase())),
        bannedTypes: new Set(p.bannedTypes),
        checkBannedInArchives: p.checkBannedInArchives,
        encrypted: p.encrypted,
        skipBanned: p.skipBanned,
        ...override,
      };
    }
    const session = engine.begin(envelope, policy);
    const metrics = this.metrics;
    if (!metrics) return session;
    const t0 = performance.now();
    const front = this.front;
    const end = session.end.bind(session);
    // Counted once per message with a verdict: at end(), or when a verdict latches before
    // the end of data (the fronts then reject without calling end(); bytes = bytes seen so far).
    let eod0: number | null = null;
    let recorded = false;
    const record = (v: Verdict, eodMs: number) => {
      if (recorded) return;
      recorded = true;
      metrics.messageDone({
        front, verdict: v.kind, bytes: session.stats.bytes, scanMs: performance.now() - t0, eodMs,
        ...(v.kind === 'limit' ? { limit: v.which } : {}),
      });
    };
    session.onFinal((v) => {
      if (eod0 === null) record(v, 0);
    });
    session.end = async () => {
      eod0 ??= performance.now();
      const v = await end();
      record(v, performance.now() - eod0);
      return v;
    };
    return session;
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

/** The front's onConnection hook → the connections gauge. */
export function connectionGauge(metrics: Metrics, front: Front): (event: 'open' | 'close') => void {
  return (event) => (event === 'open' ? metrics.connOpened(front) : metrics.connClosed(front));
}

/** How often clamd endpoint health is copied into the metrics (the client itself PINGs down endpoints). */
const CLAMD_HEALTH_POLL_MS = 5000;

export interface Runtime {
  config: FrozenConfig;
  logger: Logger;
  holder: EngineHolder;
  metrics: Metrics | null;
  /** Resolves when SIGTERM/SIGINT asked us to stop. */
  stopped: Promise<string>;
  shutdown(): Promise<void>;
}

function makeLogger(config: FrozenConfig): Logger {
  if (!config.log.file) return createLogger({ level: config.log.level });
  const out = createWriteStream(config.log.file, { flags: 'a' });
  return createLogger({ level: config.log.level, write: (l) => out.write(l + '\n') });
}

export async function startRuntime(flags: CommonFlags, front: Front): Promise<Runtime> {
  const listenKey = front === 'proxy' ? 'proxy.listen' : 'milter.listen';
  const overrides = overridesFrom(flags, listenKey);
  const config = loadConfig(flags.config, overrides);
  const logger = makeLogger(config);
  for (const w of failOpenWarnings(config)) logger.warn('fail-open', { key: w.key, reason: w.reason });
  const metrics = config.metrics.listen ? createMetrics() : null;
  const t0 = performance.now();
  const engineOpts = (c: FrozenConfig) => ({ ...engineOptions(c), ...(metrics ? { onAnomaly: (code: string) => metrics.anomaly(code) } : {}) });
  const engine = await createEngine(engineOpts(config));
  metrics?.signaturesLoaded(engine.signatureCount, engine.signatureVersion, (performance.now() - t0) / 1000);
  logger.info('engine-ready', {
    engines: engine.engines, signatures: engine.signatureCount, version: engine.signatureVersion,
    ms: Math.round(performance.now() - t0),
  });
  const holder = new EngineHolder(engine, config, front, metrics);
  const metricsServer = metrics ? await startMetricsServer(config.metrics.listen, metrics) : null;
  if (metricsServer) logger.info('metrics-listening', { address: metricsServer.address });
  let healthTimer: NodeJS.Timeout | null = null;
  if (metrics) {
    const pollHealth = () => {
      for (const st of holder.clamd?.endpointStatus() ?? []) metrics.clamdHealth(st.endpoint, st.up);
    };
    pollHealth();
    healthTimer = setInterval(pollHealth, CLAMD_HEALTH_POLL_MS);
    healthTimer.unref();
  }

  let reloading = false;
  const reload = async () => {
    if (reloading) return;
    reloading = true;
    const r0 = performance.now();
    try {
      const next = loadConfig(flags.config, overrides);
      const e = await createEngine(engineOpts(next));
      const old = holder.swap(e, next);
      const secs = (performance.now() - r0) / 1000;
      metrics?.signaturesLoaded(e.signatureCount, e.signatureVersion, secs);
      logger.info('reloaded', { signatures: e.signatureCount, version: e.signatureVersion, ms: Math.round(secs * 1000) });
      // Messages in flight keep their scanners; the old clamd client's timers stop.
      setTimeout(() => void old.close(), 1000).unref();
    } catch (err) {
      logger.error('reload-failed', { reason: (err as Error).message });
    } finally {
      reloading = false;
    }
  };
  process.on('SIGHUP', () => void reload());

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  return {
    config, logger, holder, metrics, stopped,
    async shutdown() {
      if (healthTimer) clearInterval(healthTimer);
      await metricsServer?.close();
      await holder.close();
    },
  };
}
