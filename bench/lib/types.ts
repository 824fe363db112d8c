// Shared shapes of the benchmark's measurements.
import type { MsgResult } from './load.js';

export interface ConfigDef {
  key: string;
  label: string;
  mta: 'postfix' | 'sendmail';
  kind: 'direct' | 'ceiling' | 'peer' | 'midstream';
  /** front port the load generator talks to */
  port: number;
  /** filter processes (absent for direct) */
  filterRoots?: () => number[];
  mtaRoots: () => number[];
  tempDir?: string | null;
  /** a filter is expected to keep EICAR away from the sink */
  filters: boolean;
  /** include in the memory test (a filter whose processes are its own) */
  memory: boolean;
}

export interface Cell {
  config: string;
  workload: string;
  sessions: number;
  round: number;
  idPrefix: string;
  elapsedMs: number;
  results: MsgResult[];
  sessionErrors: string[];
  cpuMs: { mta: number; filter: number; clamd: number; sink: number; loadgen: number };
  tempPeakKb: number;
  tempFilesPeak: number;
}

export interface CellFigures {
  msgs: number;
  msgPerS: number;
  mbitPerS: number;
  p50: number;
  p99: number;
  cpuPerMsg: { mta: number; filter: number; clamd: number };
}

export interface Accounting {
  sentClean: number;
  acceptedClean: number;
  delivered: number;
  missing: number;
  duplicates: number;
  tempfailClean: number;
  rejectedClean: number;
  virusSent: number;
  virusRejected: number;
  virusDiscarded: number;
  virusDelivered: number;
  sessionErrors: number;
}

export interface LatencyProbe { config: string; waits: number[]; codes: number[] }

export interface MemoryResult {
  config: string;
  sessions: number;
  baselineKb: number;
  peakRssKb: number;
  peakPssKb: number;
  peakProcs: number;
  hwmMainKb: number;
  tempPeakKb: number;
  tempFilesPeak: number;
  reached: number;
  errors: string[];
  mode: string;
}
