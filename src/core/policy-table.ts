/**
 * policy-table.ts — the one table that maps each verdict to what the MTA is told.
 *
 * Worst first (as Postfix's cleanup_strerror.c): when two outcomes compete the
 * earlier row wins. Both fronts (SMTP proxy, milter) take their reply from here and
 * nowhere else. Peer-controlled strings (virus names, file names) are sanitised and
 * length-capped before they reach a reply; tempfails carry generic text only.
 */
import type { Verdict, VerdictKind } from './types.js';

export type Action = 'accept' | 'reject' | 'tempfail';

export interface Reply {
  action: Action;
  /** SMTP reply code, e.g. 550. */
  code: number;
  /** RFC 3463 enhanced status code, e.g. '5.7.1'. */
  enhanced: string;
  /** Human text, already sanitised (printable ASCII, no CR/LF, capped). */
  text: string;
}

/** Per-kind actions; defaults: infected/banned/limit/anomaly/unparseable → reject, error → tempfail. */
export type Actions = Record<Exclude<VerdictKind, 'clean'>, Action>;

export const DEFAULT_ACTIONS: Readonly<Actions> = Object.freeze({
  infected: 'reject',
  banned: 'reject',
  limit: 'reject',
  anomaly: 'reject',
  // Deterministic: the same bytes are unreadable tomorrow, so a tempfail would loop for days.
  unparseable: 'reject',
  error: 'tempfail',
});

/** Severity order for "worst wins" (lower = worse). */
export const SEVERITY: Readonly<Record<VerdictKind, number>> = Object.freeze({
  infected: 0,
  banned: 1,
  limit: 2,
  anomaly: 3,
  unparseable: 4,
  error: 5,
  clean: 6,
});

const MAX_TEXT = 200;

/** Printable ASCII only, no CR/LF/NUL/'%' games, capped; safe in SMTP and milter replies and logs. */
export function sanitize(s: string, max = 120): string {
  let out = '';
  for (let i = 0; i < s.length && out.length < max; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f ? s[i] : '?';
  }
  return s.length > max ? out + '...' : out;
}

/** Why, in the client's words, without the "rejected"/"deferred" verb; null for error (generic text). */
function reason(v: Exclude<Verdict, { kind: 'clean' }>): string | null {
  switch (v.kind) {
    case 'infected':
      return `virus found: ${sanitize(v.name)}`;
    case 'banned':
      return sanitize(v.reason);
    case 'limit':
      return `exceeds the ${v.which} limit`;
    case 'anomaly':
      return `ambiguous message structure (${sanitize(v.which, 40)})`;
    case 'unparseable':
      return `${sanitize(v.reason, 60)} cannot be read`;
    case 'error':
      return null;
  }
}

/**
 * The reply for a verdict under per-kind actions. Each action has words that fit it:
 * reject says "rejected" and why; tempfail says "deferred" and why (a policy decision
 * such as a banned file under a tempfail rule is not a scanning failure), except for
 * `error`, whose tempfail is the generic "could not be scanned" (the detail goes to the
 * log only); accept is 250.
 */
export function replyFor(v: Verdict, actions: Actions = DEFAULT_ACTIONS): Reply {
  if (v.kind === 'clean') return { action: 'accept', code: 250, enhanced: '2.0.0', text: 'Ok' };
  const action = actions[v.kind];
  if (action === 'accept') return { action, code: 250, enhanced: '2.0.0', text: 'Ok' };
  const why = reason(v);
  if (action === 'tempfail') {
    const text = why === null ? 'Message could not be scanned, try again later' : `Message deferred: ${why}, try again later`;
    return { action, code: 451, enhanced: '4.7.1', text: text.slice(0, MAX_TEXT) };
  }
  const text = why === null ? 'Message rejected: could not be scanned' : `Message rejected: ${why}`;
  return { action, code: 550, enhanced: '5.7.1', text: text.slice(0, MAX_TEXT) };
}
