/**
 * message-log.ts — the one per-message log line, the same fields and types from every
 * front (proxy, milter, pop3). Documented in the README ("Log schema"); a test reads
 * both fronts' lines against it.
 *
 * One `event: "message"` line per message that reached the content stage (DATA /
 * first header), whatever happened to it — accepted, rejected, tempfailed, quarantined,
 * tagged, discarded, or aborted when the client left. Level `info`, except `warn` for
 * error verdicts (the message could not be scanned: an admin must look) and for discarded
 * mail (the sender was told 250 and nothing was delivered: loud on purpose). Fields absent when unknown, never null.
 * Every other line is an event of its own kind (`listening`, `reloaded`, `clamd-down`…).
 *
 * Input: a MessageRecord. Output: one logger call. Peer-controlled strings are capped
 * by the logger; virus and file names are already sanitised by the core's policy table.
 * Never body content.
 */
import type { Verdict, VerdictKind, Action } from '../core/index.js';
import type { Logger } from './logger.js';

export type FrontName = 'proxy' | 'milter' | 'pop3';

/** The verdict columns: kind plus what was found, where, by which engine, and detail for errors. */
export interface VerdictColumns {
  /** clean | infected | banned | limit | anomaly | unparseable | error | aborted (client gone, no verdict). */
  verdict: VerdictKind | 'aborted';
  /** What: virus name, banned reason, limit name, anomaly name, unparseable reason, or error kind. */
  name?: string;
  /** MIME path + file name + archive member path, e.g. "2/docs.zip!a.exe". */
  where?: string;
  /** Engine that found it (infected). */
  engine?: string;
  /** Error and unparseable detail for the admin (endpoint, errno, corrupt-archive reason); never sent to the client. */
  detail?: string;
}

export interface MessageRecord extends VerdictColumns {
  front: FrontName;
  conn: string;
  /** Client IP (XFORWARD ADDR / milter connect info), or the peer socket's. */
  client?: string;
  clientPort?: number;
  helo?: string;
  /** Envelope sender without angle brackets ("" for the null sender). */
  sender?: string;
  /** Envelope recipients without angle brackets (the logger caps the list at 50). */
  rcpts: readonly string[];
  /** MTA queue id where known (proxy: after-filter's 250 reply; milter: the `i` macro). */
  queueId?: string;
  /** Raw message bytes seen. */
  size: number;
  /** [[rules]] that chose the policy (names joined by ","). */
  rule?: string;
  /** What we did: accept | reject | tempfail | quarantine | tag | discard, or none (aborted: no reply was due). */
  action: Action | 'none';
  /** The reply given, e.g. "550 5.7.1 Message rejected: virus found: X" (absent where the MTA answers itself). */
  reply?: string;
  /** Transaction start (MAIL / first content) to our reply, ms. */
  ms: number;
  /** Final dot / end of message to our reply, ms (absent for early verdicts). */
  eodMs?: number;
  /** The verdict was final before the end of data. */
  early?: boolean;
  /** When the reply was given: DOT (proxy, after the final dot), or the milter command answered: HEADER, EOH, BODY, EOB. */
  at?: string;
  /** Structural anomalies seen (code@where), if any. */
  anomalies?: readonly string[];
  /** clamd raw_message: how the raw message's scan ended, when one was asked for (SessionStats.rawScan). */
  rawScan?: string;
  /** pop3: the login name (USER/APOP; absent after SASL). */
  user?: string;
  /** pop3: the retrieval, e.g. "RETR 3" or "TOP 3 10". */
  command?: string;
  /** pop3: message bytes delivered before the cut (action reject: the rest was replaced by a notice). */
  cutAt?: number;
  /** pop3: why the cut came before a rejecting verdict ("hold-bytes"). */
  cutReason?: string;
  /** pop3: the most message bytes held back at once while the scan caught up. */
  heldMax?: number;
}

/** The verdict columns of a core Verdict. */
export function verdictColumns(v: Verdict): VerdictColumns {
  switch (v.kind) {
    case 'clean':
      return { verdict: 'clean' };
    case 'infected':
      return { verdict: v.kind, name: v.name, where: v.where, engine: v.engine };
    case 'banned':
      return { verdict: v.kind, name: v.reason, where: v.where };
    case 'limit':
    case 'anomaly':
      return { verdict: v.kind, name: v.which, where: v.where };
    case 'unparseable':
      return { verdict: v.kind, name: v.reason, where: v.where, ...(v.detail ? { detail: v.detail } : {}) };
    case 'error':
      return { verdict: v.kind, name: v.errorKind, ...(v.where ? { where: v.where } : {}), ...(v.detail ? { detail: v.detail } : {}) };
  }
}

/** Strip one pair of angle brackets: "<a@b>" → "a@b", "<>" → "". */
export function bareAddress(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

/** Field order of the line (after time, level, event). */
const ORDER: readonly (keyof MessageRecord)[] = [
  'front', 'conn', 'client', 'clientPort', 'helo', 'sender', 'rcpts', 'queueId', 'size',
  'verdict', 'name', 'where', 'engine', 'detail', 'rule', 'action', 'reply', 'ms', 'eodMs', 'early', 'at', 'anomalies', 'rawScan',
  'user', 'command', 'cutAt', 'cutReason', 'heldMax',
];

/** Write the message line. Error verdicts and discarded mail at warn (an admin must look), everything else at info. */
export function logMessage(logger: Logger, rec: MessageRecord): void {
  const out: Record<string, unknown> = {};
  for (const k of ORDER) {
    const v = rec[k];
    if (v === undefined) continue;
    if (k === 'anomalies' && (v as readonly string[]).length === 0) continue;
    out[k] = typeof v === 'number' && k !== 'clientPort' && k !== 'size' && k !== 'cutAt' && k !== 'heldMax' ? Math.round(v) : v;
  }
  if (rec.verdict === 'error' || rec.action === 'discard') logger.warn('message', out);
  else logger.info('message', out);
}
