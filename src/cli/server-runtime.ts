/**
 * server-runtime.ts — the process around a front (`midstream proxy`, `midstream milter`,
 * and the POP3 front): config + flags, the logger, the metrics endpoint, the engine with
 * its policy and verdict hooks, and the signals. A front plugs in as a FrontDef.
 *
 *   export const def: FrontDef<Handle> = { front: 'proxy', start(config, services), reload(handle, config, services) };
 *   return runServer(flags, def);   // resolves with the exit code after SIGTERM/SIGINT
 *
 * Hooks, explicit (never patched onto sessions): the engine gets `policyFor` ([[rules]]
 * from the config: by client, AUTH, recipient domain) and `onVerdict` (metrics); clamd
 * endpoint transitions (`onHealth`) become warn lines and the clamd_up gauge; scans per
 * endpoint, cache lookups and shared-cache fallback come through engine-events.ts.
 *
 * Signals:
 *   SIGHUP   reload. The config and signatures are loaded beside the running set; on
 *            success the engine is swapped for new messages (messages in flight finish on
 *            theirs; the old engine is closed when its last session ends), the log level
 *            and file change, and the front's reload() gives new connections the new
 *            settings. Keys marked [restart] in the schema (listen sockets, metrics.listen)
 *            cannot change in place: the reload logs `restart required: <keys>` and keeps
 *            running on the old values of those keys. A failed reload changes nothing
 *            and logs reload-failed. Both count in midstream_reloads_total{result}.
 *   SIGUSR1  reopen the log file (logrotate's postrotate).
 *   SIGTERM / SIGINT  graceful shutdown: the front drains (shutdown_grace), then exit 0.
 *   The handlers are installed first thing, before the config is read: a signal without
 *   a handler kills Node, and start-up (engine build, clamd probe) takes long enough for
 *   a logrotate HUP or a deploy's reload to land in it. A HUP during start-up runs one
 *   reload once the front is serving (the file may have changed after we read it); a
 *   SIGTERM/SIGINT during start-up shuts down as soon as it is serving; a HUP once
 *   shutdown began is ignored (logged).
 * Errors: start-up failures (bad config, unreadable log file, busy socket) reject with a
 * MidstreamError; the CLI prints it and exits 2.
 */
import { clamdWarnings, configWarnings, failOpenWarnings, loadConfig, renamedKeyWarnings, ruleFor, ruleWarnings, type FrozenConfig } from '../config/load-config.js';
import { SECTIONS, type Field } from '../config/schema.js';
import { GlobList, createEngine, errorFields, type BeginOptions, type Engine, type EngineOptions, type Envelope, type Session } from '../core/index.js';
import { engineEvents } from './engine-events.js';
import { createNotifier } from './actions-setup.js';
import type { Notifier } from '../actions/notifier.js';
import { createLogger, type ReconfigurableLogger } from '../log/logger.js';
import { LogFile } from '../log/log-file.js';
import { createMetrics, type Front, type Metrics } from '../metrics/metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { VERSION } from '../version.js';
import type { CommonFlags } from './args.js';
import { engineOptions, overridesFrom } from './settings.js';

export type { Front };

/** A running front: what the runtime needs to report on it and stop it. */
export interface RunningFront {
  readonly address: string;
  readonly connections: number;
  close(): Promise<void>;
}

/** What the runtime gives a front. `engine` always begins sessions on the current engine. */
export interface RuntimeServices {
  engine: Engine;
  logger: ReconfigurableLogger;
  metrics: Metrics | null;
  /** Notices ([notify]); replaced on a reload that changes [notify], before the front's reload(). */
  notifier: Notifier | null;
  /** The connections gauge, for the front's onConnection option (undefined without metrics). */
  onConnection?: (event: 'open' | 'close') => void;
}

/** How a front plugs into the runtime. */
export interface FrontDef<H extends RunningFront> {
  readonly front: Front;
  /** The config section whose [restart] keys concern this front ('proxy', 'milter', 'pop3'). */
  readonly section: string;
  /** Start listening under `config`. */
  start(config: FrozenConfig, services: RuntimeServices): Promise<H>;
  /** A reload succeeded: new connections get `config`'s settings. Throws on values the front refuses (the reload then fails). */
  reload(handle: H, config: FrozenConfig, services: RuntimeServices): void;
  /** shutdown_grace of this front, for the "stopping" line. */
  graceMs(config: FrozenConfig): number;
}

/**
 * An Engine whose current snapshot swap() replaces. begin() always uses the current one;
 * a session keeps the engine it began on. Pure delegation: no policy, no metrics here.
 */
export class SwappableEngine implements Engine {
  constructor(private engine: Engine) {}
  get engines() { return this.engine.engines; }
  get signatureCount() { return this.engine.signatureCount; }
  get signatureVersion() { return this.engine.signatureVersion; }
  get signaturesSkipped() { return this.engine.signaturesSkipped; }
  get policy() { return this.engine.policy; }
  get clamd() { return this.engine.clamd; }
  get activeSessions() { return this.engine.activeSessions; }
  get current(): Engine { return this.engine; }
  begin(envelope?: Envelope, options?: BeginOptions): Session {
    return this.engine.begin(envelope, options);
  }
  /** Make `next` current; returns the previous engine (close() it: that waits for its sessions). */
  swap(next: Engine): Engine {
    const old = this.engine;
    this.engine = next;
    return old;
  }
  close(): Promise<void> {
    return this.engine.close();
  }
}

/** Compiled glob lists by their patterns: a rule's lists are compiled once, not per message. */
const globCache = new Map<string, GlobList>();
function globs(patterns: readonly string[]): GlobList {
  const key = patterns.join('\n');
  let g = globCache.get(key);
  if (!g) {
    g = new GlobList(patterns);
    if (globCache.size < 1000) globCache.set(key, g);
  }
  return g;
}

/**
 * The [[rules]], the lovers' exemptions and the sender lists as the engine's policy hook
 * (undefined when there are none: every message gets the engine's policy).
 */
export function rulesPolicy(config: FrozenConfig): EngineOptions['policyFor'] {
  const g = config.policy;
  if (config.rules.length === 0 && !g.virusLovers.length && !g.bannedLovers.length && !g.senderAllow.length && !g.senderBlock.length) return undefined;
  return (envelope) => {
    const p = ruleFor(config, {
      ...(envelope.clientAddress ? { clientAddress: envelope.clientAddress } : {}),
      ...(envelope.authenticated ? { authenticated: envelope.authenticated } : {}),
      ...(envelope.sender !== undefined ? { sender: envelope.sender } : {}),
      ...(envelope.recipients ? { recipients: envelope.recipients } : {}),
      ...(envelope.localPort !== undefined ? { localPort: envelope.localPort } : {}),
      ...(envelope.daemonName !== undefined ? { daemonName: envelope.daemonName } : {}),
      ...(envelope.localAddress !== undefined ? { localAddress: envelope.localAddress } : {}),
    });
    return {
      policy: {
        actions: p.actions,
        bannedExtensions: new Set(p.bannedExtensions.map((e) => e.toLowerCase())),
        bannedTypes: new Set(p.bannedTypes),
        bannedNames: globs(p.bannedNames),
        bannedMimeTypes: globs(p.bannedMimeTypes),
        checkBannedInArchives: p.checkBannedInArchives,
        encrypted: p.encrypted,
        skipBanned: p.skipBanned,
        ...(p.blocked ? { blocked: p.blocked } : {}),
      },
      ...(p.rules.length ? { rule: p.rules.join(',') } : {}),
    };
  };
}

/** Keys marked [restart] in `sections` whose values differ between two configs. */
export function restartKeysChanged(a: FrozenConfig, b: FrozenConfig, sections: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of sections) {
    const schema = (SECTIONS as Record<string, Record<string, Field<unknown>>>)[name];
    if (!schema) continue;
    const sa = (a as unknown as Record<string, Record<string, unknown>>)[name]!;
    const sb = (b as unknown as Record<string, Record<string, unknown>>)[name]!;
    for (const [prop, f] of Object.entries(schema)) {
      if (f.restart && JSON.stringify(sa[prop]) !== JSON.stringify(sb[prop])) out.push(`${name}.${f.toml}`);
    }
  }
  return out;
}

/** Keep [restart] values from the running config in a reloaded one (they cannot change in place). */
function keepRestartKeys(running: FrozenConfig, next: FrozenConfig, sections: readonly string[]): FrozenConfig {
  const copy = JSON.parse(JSON.stringify(next)) as Record<string, Record<string, unknown>>;
  for (const name of sections) {
    const schema = (SECTIONS as Record<string, Record<string, Field<unknown>>>)[name];
    if (!schema) continue;
    for (const [prop, f] of Object.entries(schema)) {
      if (f.restart) copy[name]![prop] = (running as unknown as Record<string, Record<string, unknown>>)[name]![prop];
    }
  }
  return copy as unknown as FrozenConfig;
}

function connectionGauge(metrics: Metrics, front: Front): (event: 'open' | 'close') => void {
  return (event) => (event === 'open' ? metrics.connOpened(front) : metrics.connClosed(front));
}

/** How often clamd endpoint health is copied into the metrics (transitions also arrive at once). */
const CLAMD_HEALTH_POLL_MS = 5000;

export async function runServer<H extends RunningFront>(flags: CommonFlags, def: FrontDef<H>): Promise<number> {
  // Signals before anything else (see the header): until the front serves, they are noted.
  const early: { hup: boolean; stop: string | null } = { hup: false, stop: null };
  let hupNow: () => void = () => (early.hup = true);
  let usr1Now: () => void = () => {};
  let stopNow: (signal: string) => void = (signal) => (early.stop ??= signal);
  const onHup = () => hupNow();
  const onUsr1 = () => usr1Now();
  const onTerm = () => stopNow('SIGTERM');
  const onInt = () => stopNow('SIGINT');
  process.on('SIGHUP', onHup);
  process.on('SIGUSR1', onUsr1);
  // once: a second SIGTERM/SIGINT during the drain gets Node's default (exit at once).
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    return await serveUntilStopped(flags, def, early, {
      onHup: (f) => (hupNow = f),
      onUsr1: (f) => (usr1Now = f),
      onStop: (f) => (stopNow = f),
    });
  } finally {
    process.off('SIGHUP', onHup);
    process.off('SIGUSR1', onUsr1);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
}

/** Where runServer's signal listeners deliver, once the runtime is ready for each. */
interface SignalRoutes {
  onHup(f: () => void): void;
  onUsr1(f: () => void): void;
  onStop(f: (signal: string) => void): void;
}

async function serveUntilStopped<H extends RunningFront>(
  flags: CommonFlags,
  def: FrontDef<H>,
  early: { hup: boolean; stop: string | null },
  signals: SignalRoutes,
): Promise<number> {
  const listenKey = `${def.section}.listen` as 'proxy.listen' | 'milter.listen' | 'pop3.listen';
  const overrides = overridesFrom(flags, listenKey);
  let config = loadConfig(flags.config, overrides);
  const sections = [def.section, 'metrics'];

  const logger = createLogger({ level: config.log.level });
  let logFile: LogFile | null = null;
  /** Open the log file `path` ("" = stderr); returns the switch to it, or null if unchanged. Throws LOG_WRITE. */
  const prepareLog = (path: string): (() => void) | null => {
    if (path === (logFile?.path ?? '')) return null;
    const next = path ? new LogFile(path) : null;
    return () => {
      logFile?.close();
      logFile = next;
      logger.setWrite(next ? (l) => next.write(l) : (l) => process.stderr.write(l + '\n'));
    };
  };
  prepareLog(config.log.file)?.();
  // From here on a SIGUSR1 (logrotate moved the file) has a file to reopen.
  signals.onUsr1(() => {
    try {
      logFile?.reopen();
      logger.info('log-reopened', { file: logFile?.path ?? '(stderr)' });
    } catch (err) {
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'log-reopen-failed', ...errorFields(err) }) + '\n');
    }
  });
  logger.info('starting', { front: def.front, version: VERSION, node: process.versions.node, pid: process.pid, config: flags.config ?? '(defaults)' });
  for (const w of failOpenWarnings(config)) logger.warn('fail-open', { key: w.key, reason: w.reason });
  // Rules on SMTP AUTH never match through the proxy: say so where it matters.
  const warnings = def.front === 'proxy' ? configWarnings(config) : renamedKeyWarnings(config);
  for (const w of [...warnings, ...clamdWarnings(config)]) logger.warn('config-warning', { key: w.key, reason: w.reason });
  for (const w of ruleWarnings(config, def.front)) logger.warn('config-warning', { key: w.key, reason: w.reason });

  const metrics = config.metrics.listen ? createMetrics({ version: VERSION }) : null;
  /** While the start-up/reload probe runs, its own line (clamd-unreachable) says it. */
  let probing = false;
  const onHealth = (c: { endpoint: string; up: boolean; why: string }) => {
    metrics?.clamdHealth(c.endpoint, c.up);
    if (probing) return;
    if (c.up) logger.warn('clamd-up', { endpoint: c.endpoint, note: 'endpoint answers again' });
    else logger.warn('clamd-down', { endpoint: c.endpoint, error: c.why });
  };
  const hooks = (c: FrozenConfig): EngineOptions => {
    const o = engineOptions(c);
    const policyFor = rulesPolicy(c);
    return {
      ...o,
      ...(o.clamd ? { clamd: { ...o.clamd, onHealth } } : {}),
      events: engineEvents(logger, metrics),
      ...(policyFor ? { policyFor } : {}),
      ...(metrics
        ? {
            onAnomaly: (code: string) => metrics.anomaly(code),
            onVerdict: (e) => {
              metrics.messageDone({
                front: def.front, verdict: e.verdict.kind, action: e.reply.action, bytes: e.stats.bytes, scanMs: e.scanMs, eodMs: e.eodMs,
                ...(e.verdict.kind === 'limit' ? { limit: e.verdict.which } : {}),
              });
              if (e.stats.rawScan) metrics.clamdRawScan(e.stats.rawScan);
            },
          }
        : {}),
    };
  };
  const build = async (c: FrozenConfig): Promise<Engine> => {
    const t0 = performance.now();
    const e = await createEngine(hooks(c));
    const secs = (performance.now() - t0) / 1000;
    metrics?.signaturesLoaded(e.signatureCount, e.signatureVersion, secs, e.signaturesSkipped);
    const skipped = Object.values(e.signaturesSkipped).reduce((a, b) => a + b, 0);
    if (skipped > 0) logger.warn('signatures-skipped', { total: skipped, byReason: e.signaturesSkipped, note: 'valid signatures the built-in engine cannot use; clamd can' });
    return e;
  };
  /** Start-up and post-reload check: every clamd endpoint answers PING, or a warning says which does not. */
  const probeClamd = async (e: Engine) => {
    if (!e.clamd) return;
    probing = true;
    const statuses = await e.clamd.checkAll().finally(() => (probing = false));
    for (const st of statuses) {
      metrics?.clamdHealth(st.endpoint, st.up);
      if (!st.up) logger.warn('clamd-unreachable', { endpoint: st.endpoint, error: st.lastError, note: 'messages needing clamd get actions.error until it answers' });
    }
  };

  const t0 = performance.now();
  const engine = new SwappableEngine(await build(config));
  logger.info('engine-ready', { engines: engine.engines, signatures: engine.signatureCount, version: engine.signatureVersion, ms: Math.round(performance.now() - t0) });
  await probeClamd(engine.current);
  const metricsServer = metrics ? await startMetricsServer(config.metrics.listen, metrics) : null;
  if (metricsServer) logger.info('metrics-listening', { address: metricsServer.address });
  metrics?.setClamdSource(() => engine.clamd?.endpointStatus() ?? []);
  let healthTimer: NodeJS.Timeout | null = null;
  if (metrics) {
    healthTimer = setInterval(() => {
      for (const st of engine.clamd?.endpointStatus() ?? []) metrics.clamdHealth(st.endpoint, st.up);
    }, CLAMD_HEALTH_POLL_MS);
    healthTimer.unref();
  }
  const services: RuntimeServices = { engine, logger, metrics, notifier: createNotifier(config, logger, metrics), ...(metrics ? { onConnection: connectionGauge(metrics, def.front) } : {}) };
  const handle = await def.start(config, services);

  // ---- SIGHUP: reload -------------------------------------------------------------------
  let reloading: Promise<void> | null = null;
  const reload = async () => {
    const r0 = performance.now();
    let fresh: Engine | null = null;
    try {
      const loaded = loadConfig(flags.config, overrides);
      const restart = restartKeysChanged(config, loaded, sections);
      const next = restart.length ? keepRestartKeys(config, loaded, sections) : loaded;
      fresh = await build(next);
      // Everything that can fail is tried before anything changes: the engine is built,
      // the log file opened, and the front's settings validated (reload() throws first).
      const switchLog = prepareLog(next.log.file);
      // A changed [notify] gets a new notifier; the old one is closed once the front moved on.
      const oldNotifier = services.notifier;
      const notifyChanged = JSON.stringify(next.notify) !== JSON.stringify(config.notify) || JSON.stringify(next.headers) !== JSON.stringify(config.headers);
      if (notifyChanged) services.notifier = createNotifier(next, logger, metrics);
      try {
        def.reload(handle, next, services);
      } catch (e) {
        if (notifyChanged) {
          void services.notifier?.close();
          services.notifier = oldNotifier;
        }
        throw e;
      }
      if (notifyChanged) void oldNotifier?.close();
      switchLog?.();
      logger.setLevel(next.log.level);
      const old = engine.swap(fresh);
      fresh = null;
      config = next;
      // Closed when its last in-flight session ends (a slow clamd scan keeps its client).
      void old.close();
      metrics?.reloaded(true);
      logger.info('reloaded', {
        signatures: engine.signatureCount, version: engine.signatureVersion, ms: Math.round(performance.now() - r0),
        inFlightOnOld: old.activeSessions, ...(restart.length ? { restartRequired: restart } : {}),
      });
      if (restart.length) logger.warn('restart-required', { keys: restart, message: `restart required: ${restart.join(', ')}` });
      await probeClamd(engine.current);
    } catch (err) {
      if (fresh) void fresh.close();
      metrics?.reloaded(false);
      logger.error('reload-failed', { ...errorFields(err), reason: (err as Error).message, note: 'the running configuration is unchanged' });
    }
  };
  let stopping = false;
  const onHup = () => {
    if (stopping) return logger.warn('reload-ignored', { reason: 'shutting down' });
    // One reload at a time; a HUP during a reload runs one more afterwards (the file may have changed again).
    reloading = (reloading ?? Promise.resolve()).then(reload).finally(() => undefined);
  };
  signals.onHup(onHup);
  // A HUP that came during start-up: reload now.
  if (early.hup && !early.stop) onHup();

  const why = early.stop ?? (await new Promise<string>((resolve) => signals.onStop(resolve)));
  stopping = true;
  logger.info('stopping', { front: def.front, signal: why, graceMs: def.graceMs(config), connections: handle.connections });
  await handle.close();
  await reloading;
  if (healthTimer) clearInterval(healthTimer);
  await metricsServer?.close();
  await engine.close();
  await services.notifier?.close();
  logger.info('stopped', { front: def.front });
  (logFile as LogFile | null)?.close();
  return 0;
}
