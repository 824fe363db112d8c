/**
 * engine-events.ts — what the engine reports (scans per clamd endpoint, verdict cache
 * lookups, the shared cache falling back and coming back) turned into metrics and log
 * lines: one log line per transition, never per message. (clamd endpoint transitions
 * arrive through the client's onHealth hook in server-runtime.ts.)
 * Input: the Logger and the Metrics (or null when metrics are off).
 * Output: an EngineEvents object for createEngine. Errors: none (listeners never throw).
 */
import type { EngineEvents } from '../core/index.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';

export function engineEvents(logger: Logger, metrics: Metrics | null): EngineEvents {
  return {
    scan: (endpoint, seconds, outcome) => metrics?.clamdScan(endpoint, seconds, outcome),
    cacheLookup: (result) => metrics?.cacheLookup(result),
    cacheShared: (state, reason) => {
      metrics?.cacheShared(state === 'up');
      if (state === 'up') logger.info('cache-shared-up', { reason });
      else logger.warn('cache-shared-down', { reason, fallback: 'local cache and clamd' });
    },
  };
}
