/**
 * policy-table.ts — the one table that maps each verdict to what the MTA is told.
 *
 * Worst first (as Postfix's cleanup_strerror.c): when two outcomes compete the
 * earlier row wins. Both fronts (SMTP proxy, milter) take their reply from here and
 * nowhere else. Peer-controlled strings (virus names, file names) are sanitised and
 * length-capped before they reach a reply; tempfails carry generic text only.
 * Actions: reject (5xx) and tempfail (4xx) refuse; quarantine, tag, discard and accept
 * answer 250 (what happens to the message is the fronts' part: src/actions/). The admin
 * may replace the text (and code) of refusals per verdict kind with a template
 * (`[reply]`, parseReplyTemplate): validated once at load, expanded here with sanitised
 * values.
 */
import type { Verdict, VerdictKind } from './types.js';

/**
 * What becomes of a message. reject / tempfail: the client gets 5xx / 4xx, nothing is
 * delivered. The others answer 250: quarantine (held by the MTA until an admin releases
 * it), tag (delivered with X-Virus-Status and an optional subject prefix), discard
 * (nothing delivered), accept (delivered).
 */
export type Action = 'accept' | 'tag' | 'quarantine' | 'discard' | 'tempfail' | 'reject';

/** Every action, strictest first (the order the docs and `check-config` list them in). */
export const ACTION_NAMES: readonly Action[] = Object.freeze(['reject', 'tempfail', 'discard', 'quarantine', 'tag', 'accept']);

/**
 * How strict an action is (higher = stricter). "Strictest wins" wherever two choices meet:
 * several recipients' policies in one transaction, and several findings in one message.
 * Refusals first (the client is told); then what delivers nothing, what holds it, what
 * marks it, and last what passes it unmarked.
 */
export const ACTION_RANK: Readonly<Record<Action, number>> = Object.freeze({ accept: 0, tag: 1, quarantine: 2, discard: 3, tempfail: 4, reject: 5 });

/** The stricter of two actions. */
export function stricterAction(a: Action, b: Action): Action {
  return ACTION_RANK[b] > ACTION_RANK[a] ? b : a;
}

/** Does the client get a refusal (4xx/5xx)? Everything else is answered 250. */
export function refuses(a: Action): a is 'reject' | 'tempfail' {
  return a === 'reject' || a === 'tempfail';
}

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

/** Admin reply templates per verdict kind (`[reply]`), e.g. infected = "550 5.7.1 Virus found: %v". */
export type ReplyTemplates = Partial<Readonly<Record<Exclude<VerdictKind, 'clean'>, string>>>;

/** A parsed template: an optional code and enhanced code, and text with %v %r %w %% placeholders. */
export interface ReplyTemplate {
  code?: number;
  enhanced?: string;
  text: string;
}

const parsedTemplates = new Map<string, ReplyTemplate>();

/**
 * Parse and validate a reply template: printable ASCII on one line (no CR, LF, NUL),
 * optionally starting with a 4xx/5xx code and a matching enhanced code ("550 5.7.1 "),
 * placeholders %v (virus name; for other kinds their name: banned reason, limit, anomaly,
 * unparseable reason, error kind), %r (the reason in words), %w (where), %% (a percent
 * sign). Throws RangeError(reason).
 */
export function parseReplyTemplate(s: string): ReplyTemplate {
  const cached = parsedTemplates.get(s);
  if (cached) return cached;
  if (/[\r\n\0]/.test(s)) throw new RangeError('a reply template is one line: no CR, LF or NUL');
  if (/[^\x20-\x7e]/.test(s)) throw new RangeError('a reply template is printable ASCII');
  if (s.length > MAX_TEXT) throw new RangeError(`a reply template is at most ${MAX_TEXT} characters`);
  let rest = s;
  const out: ReplyTemplate = { text: '' };
  const m = /^([0-9]{3})(?: ([0-9])\.([0-9]{1,3})\.([0-9]{1,3}))?(?: |$)/.exec(s);
  if (m) {
    const code = Number(m[1]);
    const cls = Math.floor(code / 100);
    if (cls !== 4 && cls !== 5) throw new RangeError(`reply code ${code}: a refusal is 4xx or 5xx`);
    if (m[2] !== undefined && Number(m[2]) !== cls) throw new RangeError(`enhanced code ${m[2]}.${m[3]}.${m[4]} does not match reply code ${code} (class ${cls})`);
    out.code = code;
    out.enhanced = m[2] !== undefined ? `${m[2]}.${m[3]}.${m[4]}` : `${cls}.7.1`;
    rest = s.slice(m[0].length);
  } else if (/^[0-9]/.test(s)) throw new RangeError('a reply template starts with "CODE X.Y.Z text" (e.g. "550 5.7.1 Virus found: %v") or with text');
  for (const p of rest.matchAll(/%(.?)/g)) {
    if (!['v', 'r', 'w', '%'].includes(p[1]!)) throw new RangeError(`unknown placeholder %${p[1]} (known: %v %r %w %%)`);
  }
  if (rest.trim() === '') throw new RangeError('a reply template needs text after the code');
  out.text = rest;
  if (parsedTemplates.size < 1000) parsedTemplates.set(s, Object.freeze(out));
  return out;
}

/** Why `t` cannot be the reply of `action` (a 5xx template under tempfail…), or null when it fits. */
export function templateMisfit(t: ReplyTemplate, action: Action): string | null {
  if (t.code === undefined || !refuses(action)) return null;
  const want = action === 'reject' ? 5 : 4;
  return Math.floor(t.code / 100) === want ? null : `code ${t.code} does not fit action ${action} (${want}xx)`;
}

function expand(text: string, v: Exclude<Verdict, { kind: 'clean' }>): string {
  const name = (): string => {
    switch (v.kind) {
      case 'infected':
        return sanitize(v.name);
      case 'banned':
      case 'unparseable':
        return sanitize(v.reason, 80);
      case 'limit':
      case 'anomaly':
        return sanitize(v.which, 60);
      case 'error':
        return v.errorKind;
    }
  };
  return text.replace(/%([vrw%])/g, (_, c: string) =>
    c === 'v' ? name() : c === 'r' ? (reason(v) ?? 'could not be scanned') : c === 'w' ? sanitize(v.where ?? '', 80) : '%',
  );
}

/**
 * The reply for a verdict under per-kind actions (and the admin's templates). Each action
 * has words that fit it: reject says "rejected" and why; tempfail says "deferred" and why
 * (a policy decision such as a banned file under a tempfail rule is not a scanning
 * failure), except for `error`, whose tempfail is the generic "could not be scanned" (the
 * detail goes to the log only); every other action is a 250. A template replaces the text
 * (and the code, when it has one that fits the action; one that does not is ignored:
 * the config layer refuses such templates, this is the last line of defence).
 */
export function replyFor(v: Verdict, actions: Actions = DEFAULT_ACTIONS, templates?: ReplyTemplates): Reply {
  if (v.kind === 'clean') return { action: 'accept', code: 250, enhanced: '2.0.0', text: 'Ok' };
  const action = actions[v.kind];
  if (!refuses(action)) return { action, code: 250, enhanced: '2.0.0', text: 'Ok' };
  const code = action === 'reject' ? 550 : 451;
  const enhanced = action === 'reject' ? '5.7.1' : '4.7.1';
  const tpl = templates?.[v.kind];
  if (tpl) {
    let t: ReplyTemplate | null = null;
    try {
      t = parseReplyTemplate(tpl);
    } catch {
      t = null;
    }
    if (t) {
      const fits = templateMisfit(t, action) === null;
      return {
        action,
        code: fits && t.code !== undefined ? t.code : code,
        enhanced: fits && t.enhanced !== undefined ? t.enhanced : enhanced,
        text: sanitize(expand(t.text, v), MAX_TEXT).slice(0, MAX_TEXT),
      };
    }
  }
  const why = reason(v);
  if (action === 'tempfail') {
    const text = why === null ? 'Message could not be scanned, try again later' : `Message deferred: ${why}, try again later`;
    return { action, code, enhanced, text: text.slice(0, MAX_TEXT) };
  }
  const text = why === null ? 'Message rejected: could not be scanned' : `Message rejected: ${why}`;
  return { action, code, enhanced, text: text.slice(0, MAX_TEXT) };
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
