/**
 * stub-engine.ts — a controllable engine for proxy tests, independent of the real core.
 *
 * Implements the core's Session contract (push/end/abort/onFinal/verdict): finds any of
 * `detect` (default: the EICAR string) in the raw bytes, latches an `infected` verdict and
 * fires onFinal at once (an early verdict), like the real engine does. Knobs: delay the
 * final verdict (`verdictDelayMs`, reply-budget tests), slow every push
 * (`pushDelayMs`, backpressure), force the verdict (`verdict`), record pushed bytes.
 * Every session is listed in `sessions` so tests can check abort/end and what the core saw.
 */
import { DEFAULT_ACTIONS, type Envelope, type Session, type Verdict } from '../../src/core/index.js';
import type { ProxyEngine } from '../../src/smtp/proxy-session.js';

export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

export interface StubEngineOptions {
  detect?: Buffer[];
  verdictDelayMs?: number;
  pushDelayMs?: number;
  verdict?: Verdict;
  record?: boolean;
}

export interface StubSessionInfo {
  envelope: Envelope;
  chunks: Buffer[];
  size: number;
  pushes: number;
  aborted: boolean;
  ended: boolean;
}

export function createStubEngine(o: StubEngineOptions = {}): ProxyEngine & { sessions: StubSessionInfo[] } {
  const detect = o.detect ?? [EICAR];
  const maxLen = Math.max(...detect.map((d) => d.length));
  const sessions: StubSessionInfo[] = [];
  return {
    engines: ['stub'],
    sessions,
    begin(envelope?: Envelope): Session {
      const info: StubSessionInfo = { envelope: envelope ?? {}, chunks: [], size: 0, pushes: 0, aborted: false, ended: false };
      sessions.push(info);
      let carry = Buffer.alloc(0);
      let verdict: Verdict | null = null;
      const cbs: ((v: Verdict) => void)[] = [];
      const latch = (v: Verdict) => {
        if (verdict) return;
        verdict = v;
        for (const cb of cbs) cb(v);
      };
      const s = {
        get verdict() {
          return verdict;
        },
        stats: { bytes: 0, anomalies: [] } as unknown as Session['stats'],
        policy: { actions: DEFAULT_ACTIONS } as unknown as Session['policy'],
        onFinal(cb: (v: Verdict) => void) {
          cbs.push(cb);
          if (verdict) cb(verdict);
        },
        async push(chunk: Uint8Array) {
          info.pushes++;
          info.size += chunk.length;
          if (o.record) info.chunks.push(Buffer.from(chunk));
          // The chunk is borrowed until push() returns (src/core/chunk-ownership.ts): read it
          // now, before any delay; the verdict latches after the delay, as a slow scan's would.
          let found = false;
          if (!verdict) {
            // Search the carry+head seam and the chunk itself; copy only a bounded carry.
            const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
            const seam = Buffer.concat([carry, c.subarray(0, maxLen)]);
            found = detect.some((d) => seam.indexOf(d) >= 0 || c.indexOf(d) >= 0);
            const tail = c.length >= maxLen ? c.subarray(c.length - maxLen + 1) : seam.subarray(Math.max(0, seam.length - maxLen + 1));
            carry = Buffer.from(tail);
          }
          if (o.pushDelayMs) await new Promise((r) => setTimeout(r, o.pushDelayMs));
          if (found && !verdict) latch({ kind: 'infected', name: 'Eicar-Test-Signature', where: '1', engine: 'stub' });
        },
        async end(): Promise<Verdict> {
          info.ended = true;
          if (o.verdictDelayMs) await new Promise((r) => setTimeout(r, o.verdictDelayMs));
          return verdict ?? o.verdict ?? { kind: 'clean' };
        },
        abort() {
          info.aborted = true;
        },
      };
      return s as Session;
    },
  };
}
