/**
 * message-edits.ts — what happens to the message itself once its action is known: the
 * headers we add, the subject prefix, quarantine, discard. Front-agnostic: the milter
 * turns the edits into SMFIR_* replies, the proxy adds X-Virus-Scanned in the stream and
 * hands the rest to its after-filter milter (the header block has passed by the time the
 * verdict is known).
 *
 * Input: the verdict, the action the policy chose, and HeaderSettings (plain values; the
 * CLI fills them from [headers]). Output: MessageEdits.
 *   accept      X-Virus-Scanned (if on); X-Virus-Status (if `status`): Clean, or the kind
 *               of a verdict the admin chose to let through (e.g. "Error (scanner-timeout)").
 *   tag         X-Virus-Scanned; X-Virus-Status always (`Infected (NAME)`, `Banned (REASON)`…);
 *               the subject prefix if set.
 *   quarantine  as tag (the admin sees why when releasing it), without the subject prefix,
 *               plus the quarantine reason for the MTA's hold queue.
 *   discard     nothing is delivered: `discard`.
 *   reject, tempfail  nothing is delivered: no edits.
 * Incoming X-Virus-Status / X-Virus-Scanned are removed or renamed by each front
 * (INCOMING_HEADERS, renamedHeader), whatever the action.
 * Limits: header values are printable ASCII, capped at 200 characters (peer-controlled
 * names are sanitised by the core's sanitize()).
 */
import { sanitize, type Action, type Verdict } from '../core/index.js';

/** Header names a sender may forge to look scanned: removed or renamed on the way in. */
export const INCOMING_HEADERS: readonly string[] = Object.freeze(['X-Virus-Status', 'X-Virus-Scanned']);

export type IncomingPolicy = 'remove' | 'rename';

export interface HeaderSettings {
  /** X-Virus-Scanned value, already expanded (e.g. "midstream 0.1.0 on mx1"); "" = off. */
  scanned: string;
  /** Add X-Virus-Status to accepted mail too (tag and quarantine always carry it). */
  status: boolean;
  /** What becomes of incoming X-Virus-Status / X-Virus-Scanned. */
  incoming: IncomingPolicy;
  /** Prefix for the Subject of tagged mail; "" = none. */
  subjectPrefix: string;
}

export const DEFAULT_HEADER_SETTINGS: Readonly<HeaderSettings> = Object.freeze({ scanned: '', status: false, incoming: 'remove', subjectPrefix: '' });

export interface MessageEdits {
  /** Headers to add, in order: [name, value]. */
  readonly add: readonly (readonly [string, string])[];
  /** Prepend this to the Subject (tag). */
  readonly subjectPrefix?: string;
  /** Hold the message with this reason (MTA quarantine / hold queue). */
  readonly quarantine?: string;
  /** Deliver nothing, tell the client 250. */
  readonly discard: boolean;
}

const NO_EDITS: MessageEdits = Object.freeze({ add: Object.freeze([]), discard: false });
const MAX_VALUE = 200;

/** The X-Virus-Status value: `Clean`, `Infected (NAME)`, `Banned (REASON)`, `Limit (WHICH)`, `Anomaly (WHICH)`, `Unparseable (REASON)`, `Error (KIND)`. */
export function statusText(v: Verdict): string {
  switch (v.kind) {
    case 'clean':
      return 'Clean';
    case 'infected':
      return `Infected (${sanitize(v.name, 150)})`;
    case 'banned':
      return `Banned (${sanitize(v.reason, 150)})`;
    case 'limit':
      return `Limit (${v.which})`;
    case 'anomaly':
      return `Anomaly (${sanitize(v.which, 60)})`;
    case 'unparseable':
      return `Unparseable (${sanitize(v.reason, 100)})`;
    case 'error':
      return `Error (${v.errorKind})`;
  }
}

/** One line for logs, quarantine reasons and notices: "infected Eicar-Test-Signature (2/eicar.txt)". */
export function describeVerdict(v: Verdict): string {
  const where = 'where' in v && v.where ? ` (${sanitize(v.where, 80)})` : '';
  switch (v.kind) {
    case 'clean':
      return 'clean';
    case 'infected':
      return `infected ${sanitize(v.name, 100)}${where}`;
    case 'banned':
      return `banned ${sanitize(v.reason, 100)}${where}`;
    case 'limit':
      return `limit ${v.which}${where}`;
    case 'anomaly':
      return `anomaly ${sanitize(v.which, 60)}${where}`;
    case 'unparseable':
      return `unparseable ${sanitize(v.reason, 60)}${where}`;
    case 'error':
      return `error ${v.errorKind}${where}`;
  }
}

/**
 * The edits for a verdict under its action. `withScanned: false` leaves X-Virus-Scanned
 * out (the proxy adds it in the stream, before the verdict is known).
 */
export function editsFor(v: Verdict, action: Action, h: Readonly<HeaderSettings>, withScanned = true): MessageEdits {
  if (action === 'reject' || action === 'tempfail') return NO_EDITS;
  if (action === 'discard') return Object.freeze({ add: Object.freeze([]), discard: true });
  const add: [string, string][] = [];
  if (withScanned && h.scanned) add.push(['X-Virus-Scanned', h.scanned.slice(0, MAX_VALUE)]);
  if (action !== 'accept' || h.status) add.push(['X-Virus-Status', statusText(v).slice(0, MAX_VALUE)]);
  return Object.freeze({
    add: Object.freeze(add),
    discard: false,
    ...(action === 'tag' && h.subjectPrefix ? { subjectPrefix: h.subjectPrefix } : {}),
    ...(action === 'quarantine' ? { quarantine: `midstream: ${describeVerdict(v)}`.slice(0, MAX_VALUE) } : {}),
  });
}

/** True when the edits change nothing. */
export function noEdits(e: MessageEdits): boolean {
  return e.add.length === 0 && !e.subjectPrefix && !e.quarantine && !e.discard;
}

/** "X-Virus-Status" → "X-Upstream-Virus-Status": what `incoming = "rename"` turns a forged header into. */
export function renamedHeader(name: string): string {
  return 'X-Upstream-' + name.replace(/^x-/i, '');
}

/** Is `name` one of INCOMING_HEADERS (case-insensitive)? */
export function isIncomingHeader(name: string): boolean {
  const n = name.trim().toLowerCase();
  return INCOMING_HEADERS.some((h) => h.toLowerCase() === n);
}

/** The Subject with a prefix, not doubled when the subject already starts with it. */
export function prefixSubject(subject: string, prefix: string): string {
  const s = subject.replace(/^[ \t]+/, '');
  return s.startsWith(prefix.trim()) ? subject : prefix + s;
}

/** Expand the X-Virus-Scanned template: %V version, %H host name, %% a percent sign. */
export function expandScanned(template: string, facts: { version: string; hostname: string }): string {
  return template.replace(/%([VH%])/g, (_, c: string) => (c === 'V' ? facts.version : c === 'H' ? facts.hostname : '%'));
}
