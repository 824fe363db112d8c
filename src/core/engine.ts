/**
 * engine.ts — TEMPORARY STUB with the final API (createEngine / Engine / Session).
 * Replaced by the real session pipeline; only naive EICAR detection over raw bytes.
 */
import type { Envelope, Verdict } from './types.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';

export interface EngineOptions {
  /** Built-in engine signature files/dirs (.ndb .hdb .hsb .fp .sfp .cvd .cld); EICAR is always built in. */
  signatures?: string[];
  /** clamd endpoints like 'tcp:127.0.0.1:3310' or 'unix:/run/clamav/clamd.ctl'; empty = built-in only. */
  clamd?: string[];
  limits?: Partial<Limits>;
}

export interface SessionStats {
  bytes: number;
  parts: number;
  archives: number;
  files: number;
}

export interface Session {
  push(chunk: Uint8Array): Promise<void>;
  end(): Promise<Verdict>;
  abort(): void;
  onFinal(cb: (v: Verdict) => void): void;
  /** The latched final verdict, if one is already certain. */
  readonly verdict: Verdict | null;
  readonly stats: SessionStats;
}

export interface Engine {
  begin(envelope?: Envelope): Session;
  /** Names of engines in use, for logs/headers, e.g. ['builtin'] or ['builtin','clamd']. */
  readonly engines: readonly string[];
  readonly signatureCount: number;
  close(): Promise<void>;
}

const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*');

export async function createEngine(opts: EngineOptions = {}): Promise<Engine> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  void limits;
  return {
    engines: ['builtin'],
    signatureCount: 1,
    async close() {},
    begin(): Session {
      let carry = Buffer.alloc(0);
      let verdict: Verdict | null = null;
      const cbs: ((v: Verdict) => void)[] = [];
      const stats: SessionStats = { bytes: 0, parts: 0, archives: 0, files: 0 };
      return {
        get verdict() { return verdict; },
        stats,
        onFinal(cb) { cbs.push(cb); if (verdict) cb(verdict); },
        async push(chunk) {
          stats.bytes += chunk.length;
          if (verdict) return;
          const buf = Buffer.concat([carry, chunk]);
          if (buf.indexOf(EICAR) >= 0) {
            verdict = { kind: 'infected', name: 'Eicar-Test-Signature', where: '1', engine: 'builtin' };
            for (const cb of cbs) cb(verdict);
          }
          carry = buf.subarray(Math.max(0, buf.length - EICAR.length));
        },
        async end() { return verdict ?? { kind: 'clean' }; },
        abort() {},
      };
    },
  };
}
