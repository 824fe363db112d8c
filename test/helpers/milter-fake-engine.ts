/**
 * milter-fake-engine.ts — a scriptable Engine for milter protocol tests.
 *
 * Records every session's envelope, pushed bytes and abort/end calls; latches an
 * `infected` verdict when the pushed bytes contain `marker`; can delay push()/end()
 * or make them throw. Implements the public Engine/Session API of src/core/index.ts.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_ACTIONS, type Engine, type Envelope, type Session, type Verdict } from '../../src/core/index.js';

export interface FakeOptions {
  marker?: string;
  /** Verdict latched on the marker (default infected "Fake.Virus"). */
  markerVerdict?: Verdict;
  /** Verdict end() returns when nothing latched (default clean). */
  endVerdict?: Verdict;
  endDelayMs?: number;
  pushDelayMs?: number;
  pushThrows?: boolean;
  endThrows?: boolean;
  /** Per-kind actions the engine's policy reports (default DEFAULT_ACTIONS). */
  actions?: Partial<Record<'infected' | 'banned' | 'limit' | 'error', 'accept' | 'reject' | 'tempfail'>>;
}

export interface FakeSessionRecord {
  envelope: Envelope;
  chunks: Buffer[];
  aborted: number;
  ended: number;
  /** pushes that arrived after a verdict latched. */
  pushesAfterVerdict: number;
  text(): string;
}

export function fakeEngine(o: FakeOptions = {}): Engine & { sessions: FakeSessionRecord[] } {
  const sessions: FakeSessionRecord[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Cast: the real Engine has more members (clamd, policy details) that the milter does not use.
  const policy = { actions: { ...DEFAULT_ACTIONS, ...o.actions } } as unknown as Session['policy'];
  const engine = {
    sessions,
    engines: ['fake'],
    signatureCount: 1,
    signatureVersion: 'fake',
    policy,
    clamd: null,
    async close() {},
    begin(envelope: Envelope = {}): Session {
      const rec: FakeSessionRecord = {
        envelope: { ...envelope, recipients: [...(envelope.recipients ?? [])] },
        chunks: [],
        aborted: 0,
        ended: 0,
        pushesAfterVerdict: 0,
        text: () => Buffer.concat(rec.chunks).toString('latin1'),
      };
      sessions.push(rec);
      let verdict: Verdict | null = null;
      const cbs: ((v: Verdict) => void)[] = [];
      const latch = (v: Verdict) => {
        if (verdict) return;
        verdict = v;
        for (const cb of cbs) cb(v);
      };
      return {
        get verdict() {
          return verdict;
        },
        stats: { bytes: 0, parts: 0, archives: 0, files: 0, decodedBytes: 0, unpackedBytes: 0, warnings: [], anomalies: [] } as unknown as Session['stats'],
        policy,
        onFinal(cb) {
          cbs.push(cb);
          if (verdict) cb(verdict);
        },
        async push(chunk) {
          if (verdict) rec.pushesAfterVerdict++;
          rec.chunks.push(Buffer.from(chunk));
          (this.stats as { bytes: number }).bytes += chunk.length;
          if (o.pushThrows) throw new Error('fake push failure');
          if (o.marker && rec.text().includes(o.marker)) {
            latch(o.markerVerdict ?? { kind: 'infected', name: 'Fake.Virus', where: '1', engine: 'fake' });
          }
          if (o.pushDelayMs) await sleep(o.pushDelayMs);
        },
        async end() {
          rec.ended++;
          if (o.endDelayMs) await sleep(o.endDelayMs);
          if (o.endThrows) throw new Error('fake end failure');
          return verdict ?? o.endVerdict ?? { kind: 'clean' };
        },
        abort() {
          rec.aborted++;
        },
        // Nothing is released early: the milter never reads the gate.
        gate: { releasable: 0, onStructure() {} },
      };
    },
  };
  return engine as unknown as Engine & { sessions: FakeSessionRecord[] };
}
