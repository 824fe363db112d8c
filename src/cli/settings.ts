/**
 * settings.ts — config file + flags → the options each part takes.
 *
 * Flags override the file (they become dotted-key overrides, so they are validated
 * exactly like file values and errors name "<command line>").
 */
import { loadConfig, type FrozenConfig } from '../config/load-config.js';
import type { EngineOptions } from '../core/index.js';
import type { CommonFlags } from './args.js';

export { ConfigError } from '../config/load-config.js';

export interface Settings {
  config: FrozenConfig;
  engine: EngineOptions;
}

export function overridesFrom(flags: CommonFlags, listenKey?: 'proxy.listen' | 'milter.listen' | 'pop3.listen'): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (flags.signatures.length) o['engine.signatures'] = flags.signatures;
  if (flags.clamd.length) o['clamd.endpoints'] = flags.clamd;
  if (flags.clamdMode) o['clamd.mode'] = flags.clamdMode;
  if (listenKey && flags.listen !== undefined) o[listenKey] = flags.listen;
  if (flags.forward !== undefined) o['proxy.forward'] = flags.forward;
  if (flags.upstream !== undefined) o['pop3.upstream'] = flags.upstream;
  return o;
}

export function engineOptions(c: FrozenConfig): EngineOptions {
  const opts: EngineOptions = {
    signatures: [...c.engine.signatures],
    limits: { ...c.limits },
    actions: { ...c.actions },
    bannedExtensions: [...c.policy.bannedExtensions],
    bannedTypes: [...c.policy.bannedTypes],
    checkBannedInArchives: c.policy.checkBannedInArchives,
    encrypted: c.policy.encrypted,
    bannedNames: [...c.policy.bannedNames],
    bannedMimeTypes: [...c.policy.bannedMimeTypes],
  };
  const replies = Object.fromEntries(Object.entries(c.reply).filter(([, t]) => t !== ''));
  if (Object.keys(replies).length > 0) opts.replies = replies;
  if (c.clamd.endpoints.length) {
    opts.clamd = {
      endpoints: [...c.clamd.endpoints],
      mode: c.clamd.mode,
      connectTimeoutMs: c.clamd.connectTimeoutMs,
      idleTimeoutMs: c.clamd.idleTimeoutMs,
      totalTimeoutMs: c.clamd.totalTimeoutMs,
      maxConcurrent: c.clamd.maxConcurrent,
      maxStreamBytes: c.clamd.maxStreamBytes,
      healthIntervalMs: c.clamd.healthIntervalMs,
      cacheEntries: c.clamd.cacheEntries,
      rawMessage: c.clamd.rawMessage,
      maxRawStreams: c.clamd.rawMaxConcurrent,
      keepaliveMs: c.clamd.keepaliveMs,
      healthFall: c.clamd.healthFall,
      healthRise: c.clamd.healthRise,
    };
    opts.cache = {
      ttlMs: c.cache.ttlMs,
      prefix: c.cache.prefix,
      timeoutMs: c.cache.timeoutMs,
      retryMs: c.cache.retryMs,
      ...(c.cache.url ? { url: c.cache.url } : {}),
      ...(c.cache.password ? { password: c.cache.password } : {}),
    };
  }
  return opts;
}

export function buildSettings(flags: CommonFlags, listenKey?: 'proxy.listen' | 'milter.listen' | 'pop3.listen'): Settings {
  const config = loadConfig(flags.config, overridesFrom(flags, listenKey));
  return { config, engine: engineOptions(config) };
}
