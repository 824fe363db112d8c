/**
 * metrics.ts — Prometheus metrics for both fronts, on a private prom-client Registry.
 *
 * Series (label values are bounded: fronts and verdicts are closed sets, limits are
 * LimitName, clamd endpoints come from the config; anything else becomes "other"):
 *   midstream_messages_total{front,verdict}        counter, one per finished message
 *   midstream_actions_total{front,action}          counter, accept | reject | tempfail | quarantine | tag | discard per message
 *   midstream_notices_total{target,result}         counter, notices: admin | recipient | sender × sent | failed | dropped
 *   midstream_tickets_unclaimed_total              counter, proxy verdict edits the after-filter milter never took
 *   midstream_reloads_total{result}                counter, SIGHUP reloads: success | failure
 *   midstream_last_reload_success                  gauge, 1 if the last reload worked, 0 if not
 *   midstream_build_info{version,node}             gauge = 1
 *   midstream_signatures_skipped{reason}           gauge, signatures the built-in engine could not use
 *   midstream_bytes_total{front}                   counter, raw message bytes
 *   midstream_limits_total{which}                  counter, tripped limits by name
 *   midstream_scan_seconds                         histogram, begin() → verdict
 *   midstream_eod_wait_seconds{front}              histogram, wait after the final dot
 *   midstream_connections{front}                   gauge, open client connections
 *   midstream_clamd_up{endpoint}                   gauge, 1 healthy / 0 ejected (read at scrape)
 *   midstream_clamd_in_flight{endpoint}            gauge, streams holding a slot (read at scrape)
 *   midstream_clamd_scans_total{endpoint,outcome}  counter, ok or the error kind
 *   midstream_clamd_scan_seconds{endpoint}         histogram, our terminator → clamd's reply
 *   midstream_clamd_raw_scans_total{result}        counter, raw_message scans: clean | infected | limit | error | no-slot
 *   midstream_cache_lookups_total{result}          counter, hit-local|hit-shared|hit-inflight|miss|bypass
 *   midstream_cache_shared_up                      gauge, 1 shared cache answering / 0 fallen back to local
 *   midstream_signatures                           gauge, signatures loaded
 *   midstream_signature_reload_seconds             gauge, duration of the last load
 *   midstream_signature_version_info{version}      gauge = 1 for the loaded version only
 * plus prom-client's default process metrics (CPU, memory, event loop lag, GC).
 * Never throws into a front: bad numbers are clamped to 0.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Front = 'proxy' | 'milter' | 'pop3';
const FRONTS: readonly string[] = ['proxy', 'milter', 'pop3'];
const ACTIONS: readonly string[] = ['accept', 'reject', 'tempfail', 'quarantine', 'tag', 'discard'];
const NOTICE_TARGETS: readonly string[] = ['admin', 'recipient', 'sender'];
const NOTICE_RESULTS: readonly string[] = ['sent', 'failed', 'dropped'];
const VERDICTS: readonly string[] = ['clean', 'infected', 'banned', 'limit', 'anomaly', 'unparseable', 'error'];
const LIMITS: readonly string[] = [
  'header-line', 'header-bytes', 'header-fields', 'boundary-length', 'mime-depth', 'mime-parts', 'decoded-bytes',
  'unpacked-bytes', 'ratio', 'archive-depth', 'archive-entries', 'scan-bytes', 'scan-time', 'message-bytes',
];

export interface MessageDone {
  front: Front;
  /** Verdict kind: clean | infected | banned | limit | anomaly | unparseable | error. */
  verdict: string;
  /** The action: accept | reject | tempfail | quarantine | tag | discard. */
  action?: string;
  /** Raw message bytes received. */
  bytes: number;
  /** Scan time, begin() to verdict (ms). */
  scanMs: number;
  /** Time between the client's final "." (or milter EOM) and our reply (ms). */
  eodMs: number;
  /** LimitName when verdict is "limit". */
  limit?: string;
}

export interface Metrics {
  readonly registry: Registry;
  messageDone(m: MessageDone): void;
  connOpened(front: Front): void;
  connClosed(front: Front): void;
  clamdHealth(endpoint: string, up: boolean): void;
  /** Where midstream_clamd_up / _in_flight are read from at each scrape (the live engine's pool). */
  setClamdSource(source: () => readonly ClamdEndpointView[]): void;
  clamdScan(endpoint: string, seconds: number, outcome: string): void;
  /** A clamd raw_message scan was asked for and ended (SessionStats.rawScan). */
  clamdRawScan(result: string): void;
  cacheLookup(result: string): void;
  cacheShared(up: boolean): void;
  signaturesLoaded(count: number, version: string, seconds: number, skipped?: Readonly<Record<string, number>>): void;
  /** A SIGHUP reload finished. */
  reloaded(ok: boolean): void;
  /** One structural anomaly seen (read every way or given a verdict). */
  anomaly(code: string): void;
  /** A notice was sent, failed, or dropped (queue full, shutdown). */
  notice(result: string, target: string): void;
  /** The proxy filed verdict edits the after-filter milter never claimed (misconfiguration). */
  ticketUnclaimed(): void;
  /** Exposition text and its Content-Type. */
  render(): Promise<string>;
  readonly contentType: string;
}

/** The part of an endpoint's status the metrics read. */
export interface ClamdEndpointView {
  endpoint: string;
  up: boolean;
  inFlight: number;
}

export interface MetricsOptions {
  /** Collect prom-client's default process metrics (default true). */
  processMetrics?: boolean;
  /** midstream's version for midstream_build_info. */
  version?: string;
}

const bounded = (v: string, allowed: readonly string[]) => (allowed.includes(v) ? v : 'other');
const nonNeg = (n: number) => (Number.isFinite(n) && n > 0 ? n : 0);
const label = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 120);

const RAW_RESULTS: readonly string[] = ['clean', 'infected', 'limit', 'error', 'no-slot'];
const LOOKUPS: readonly string[] = ['hit-local', 'hit-shared', 'hit-inflight', 'miss', 'bypass'];
const OUTCOMES: readonly string[] = ['ok', 'scanner-unavailable', 'scanner-timeout', 'scanner-protocol', 'scanner-size-limit', 'scanner-error', 'aborted', 'internal'];

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const messages = new Counter({ name: 'midstream_messages_total', help: 'Messages finished, by front and verdict.', labelNames: ['front', 'verdict'] as const, registers });
  const bytes = new Counter({ name: 'midstream_bytes_total', help: 'Raw message bytes received, by front.', labelNames: ['front'] as const, registers });
  const anomalies = new Counter({ name: 'midstream_anomalies_total', help: 'Structural anomalies seen, by name (read every way, or an anomaly verdict).', labelNames: ['name'] as const, registers });
  const limits = new Counter({ name: 'midstream_limits_total', help: 'Tripped limits, by limit name.', labelNames: ['which'] as const, registers });
  const scan = new Histogram({ name: 'midstream_scan_seconds', help: 'Time to scan one message, begin to verdict.', buckets: SECONDS_BUCKETS, registers });
  const eod = new Histogram({
    name: 'midstream_eod_wait_seconds',
    help: 'Wait between the final dot (or milter end of message) and our reply.',
    labelNames: ['front'] as const,
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const conns = new Gauge({ name: 'midstream_connections', help: 'Open client connections, by front.', labelNames: ['front'] as const, registers });
  let clamdSource: (() => readonly ClamdEndpointView[]) | null = null;
  const clamdUp = new Gauge({
    name: 'midstream_clamd_up',
    help: 'clamd endpoint health: 1 up, 0 ejected.',
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      for (const e of clamdSource?.() ?? []) this.set({ endpoint: label(e.endpoint) }, e.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'midstream_clamd_in_flight',
    help: 'clamd streams holding a slot, per endpoint.',
    labelNames: ['endpoint'] as const,
    registers,
    collect() {
      for (const e of clamdSource?.() ?? []) this.set({ endpoint: label(e.endpoint) }, nonNeg(e.inFlight));
    },
  });
  const clamdScans = new Counter({ name: 'midstream_clamd_scans_total', help: 'clamd scans finished, by endpoint and outcome (ok = clean or infected; else the error kind).', labelNames: ['endpoint', 'outcome'] as const, registers });
  const clamdSeconds = new Histogram({ name: 'midstream_clamd_scan_seconds', help: 'clamd latency per endpoint: end of our stream to its reply.', labelNames: ['endpoint'] as const, buckets: SECONDS_BUCKETS, registers });
  const rawScans = new Counter({
    name: 'midstream_clamd_raw_scans_total',
    help: 'clamd raw_message scans (the raw message, when it showed an anomaly or raw_message = "always"), by result: clean, infected, limit, error, no-slot (no raw slot free: tempfail).',
    labelNames: ['result'] as const,
    registers,
  });
  const lookups = new Counter({ name: 'midstream_cache_lookups_total', help: 'Verdict cache lookups by result.', labelNames: ['result'] as const, registers });
  const sharedUp = new Gauge({ name: 'midstream_cache_shared_up', help: 'Shared verdict cache (Redis/Valkey): 1 answering, 0 fallen back to the local cache and clamd.', registers });
  const sigs = new Gauge({ name: 'midstream_signatures', help: 'Signatures loaded in the built-in engine.', registers });
  const reload = new Gauge({ name: 'midstream_signature_reload_seconds', help: 'Duration of the last signature load.', registers });
  const version = new Gauge({ name: 'midstream_signature_version_info', help: 'Loaded signature version (value is always 1).', labelNames: ['version'] as const, registers });
  const actions = new Counter({ name: 'midstream_actions_total', help: 'Messages by action: accept, reject, tempfail, quarantine, tag, discard.', labelNames: ['front', 'action'] as const, registers });
  const notices = new Counter({ name: 'midstream_notices_total', help: 'Notices by target (admin, recipient, sender) and result (sent, failed, dropped).', labelNames: ['target', 'result'] as const, registers });
  const unclaimed = new Counter({ name: 'midstream_tickets_unclaimed_total', help: 'Proxy verdict edits (tag, quarantine, X-Virus-Status) the after-filter milter never claimed.', registers });
  const reloads = new Counter({ name: 'midstream_reloads_total', help: 'SIGHUP reloads, by result (success, failure).', labelNames: ['result'] as const, registers });
  const lastReload = new Gauge({ name: 'midstream_last_reload_success', help: '1 if the last reload succeeded (or none was tried), 0 if it failed.', registers });
  const build = new Gauge({ name: 'midstream_build_info', help: 'midstream version and Node version (value is always 1).', labelNames: ['version', 'node'] as const, registers });
  const skippedSigs = new Gauge({ name: 'midstream_signatures_skipped', help: 'Signatures the built-in engine skipped at load, by reason.', labelNames: ['reason'] as const, registers });
  build.set({ version: label(opts.version ?? 'unknown'), node: process.versions.node }, 1);
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);
  lastReload.set(1);

  // Initialise the closed label sets so dashboards show zeros, not "no data".
  for (const f of FRONTS) {
    conns.set({ front: f }, 0);
    bytes.inc({ front: f }, 0);
    for (const v of VERDICTS) messages.inc({ front: f, verdict: v }, 0);
    for (const a of ACTIONS) actions.inc({ front: f, action: a }, 0);
  }
  for (const l of LOOKUPS) lookups.inc({ result: l }, 0);
  for (const r of RAW_RESULTS) rawScans.inc({ result: r }, 0);
  for (const t of NOTICE_TARGETS) for (const r of NOTICE_RESULTS) notices.inc({ target: t, result: r }, 0);
  unclaimed.inc(0);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    messageDone(m) {
      const front = bounded(m.front, FRONTS);
      const verdict = bounded(m.verdict, VERDICTS);
      messages.inc({ front, verdict });
      if (m.action !== undefined) actions.inc({ front, action: bounded(m.action, ACTIONS) });
      bytes.inc({ front }, nonNeg(m.bytes));
      scan.observe(nonNeg(m.scanMs) / 1000);
      eod.observe({ front }, nonNeg(m.eodMs) / 1000);
      if (m.limit !== undefined) limits.inc({ which: bounded(m.limit, LIMITS) });
    },
    connOpened(front) {
      conns.inc({ front: bounded(front, FRONTS) });
    },
    connClosed(front) {
      conns.dec({ front: bounded(front, FRONTS) });
    },
    clamdHealth(endpoint, up) {
      clamdUp.set({ endpoint: label(endpoint) }, up ? 1 : 0);
    },
    setClamdSource(source) {
      clamdSource = source;
    },
    clamdScan(endpoint, seconds, outcome) {
      const ep = label(endpoint);
      clamdScans.inc({ endpoint: ep, outcome: bounded(outcome, OUTCOMES) });
      clamdSeconds.observe({ endpoint: ep }, nonNeg(seconds));
    },
    clamdRawScan(result) {
      rawScans.inc({ result: bounded(result, RAW_RESULTS) });
    },
    cacheLookup(result) {
      lookups.inc({ result: bounded(result, LOOKUPS) });
    },
    cacheShared(up) {
      sharedUp.set(up ? 1 : 0);
    },
    anomaly(code) {
      // Names come from our parsers (a closed set in practice); cap them anyway.
      anomalies.inc({ name: label(code).slice(0, 48) });
    },
    notice(result, target) {
      notices.inc({ target: bounded(target, NOTICE_TARGETS), result: bounded(result, NOTICE_RESULTS) });
    },
    ticketUnclaimed() {
      unclaimed.inc();
    },
    reloaded(ok) {
      reloads.inc({ result: ok ? 'success' : 'failure' });
      lastReload.set(ok ? 1 : 0);
    },
    signaturesLoaded(count, v, seconds, skipped) {
      skippedSigs.reset();
      for (const [reason, n] of Object.entries(skipped ?? {})) skippedSigs.set({ reason: label(reason).slice(0, 48) }, nonNeg(n));
      sigs.set(nonNeg(count));
      reload.set(nonNeg(seconds));
      version.reset();
      version.set({ version: label(v) }, 1);
    },
  };
}
