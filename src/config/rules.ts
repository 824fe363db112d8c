/**
 * rules.ts — [[rules]]: who gets which policy, and the "strictest of the recipients" merge.
 *
 *   [[rules]]
 *   name = "internal"                                   # optional, for logs
 *   match = { client = ["10.0.0.0/8"], authenticated = true, recipient_domain = ["example.org"] }
 *   skip_banned = true                                  # and/or:
 *   actions = { banned = "tempfail" }                   # per-kind overrides of [actions]
 *   banned_extensions = ["exe"]                         # replaces [policy] lists for this rule
 *   banned_types = ["pe"]
 *   encrypted = "tempfail"
 *
 * Matching: per recipient, the first rule (file order) whose every `match` condition
 * holds applies; no rule → the global [policy]/[actions]. Virus scanning is never
 * skipped by any rule: rules only change banned checks and actions.
 *
 * "Strictest" (one message has one verdict, so several recipients' policies merge):
 *   - each action kind and `encrypted`: reject > tempfail > accept (the strictest wins);
 *   - banned_extensions / banned_types: the union of the recipients' lists;
 *   - check_banned_in_archives: true if any recipient's policy has it;
 *   - skip_banned: only if every recipient's rule says so.
 *
 * parseRules throws KeyedError(subkey, reason) for load-config.ts to wrap.
 * Known gap: recipient_domain compares ASCII domains; IDNs must be written in A-label form.
 */
import type { Action, Actions } from '../core/policy-table.js';
import { anyCidrContains, parseCidr, type Cidr } from './cidr.js';
import {
  ACTION_VALUES,
  KeyedError,
  checkCidr,
  checkDomain,
  checkExtension,
  checkFileType,
  type Config,
  type DeepReadonly,
  type Rule,
  type RuleMatch,
} from './schema.js';

type Raw = Record<string, unknown>;

const isTable = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function list(v: unknown, sub: string, item: (s: string) => string): string[] {
  if (!Array.isArray(v)) throw new KeyedError(sub, 'must be an array of strings');
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'string') throw new KeyedError(`${sub}[${i}]`, 'must be a string');
    try {
      const n = item(x);
      if (!out.includes(n)) out.push(n);
    } catch (e) {
      throw new KeyedError(`${sub}[${i}]`, (e as Error).message);
    }
  });
  return out;
}

function action(v: unknown, sub: string): Action {
  if (typeof v !== 'string' || !(ACTION_VALUES as readonly string[]).includes(v)) {
    throw new KeyedError(sub, `must be one of ${ACTION_VALUES.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  return v as Action;
}

function unknownKeys(t: Raw, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(t)) if (!allowed.includes(k)) throw new KeyedError(`${prefix}.${k}`, 'unknown key');
}

/** Validate the `rules` array of tables. Subkeys are relative to "rules", e.g. "[1].match.client[0]". */
export function parseRules(v: unknown): Rule[] {
  if (!Array.isArray(v)) throw new KeyedError('', 'must be an array of tables ([[rules]])');
  if (v.length > 1000) throw new KeyedError('', 'at most 1000 rules');
  return v.map((r, i) => {
    const p = `[${i}]`;
    if (!isTable(r)) throw new KeyedError(p, 'must be a table');
    unknownKeys(r, ['name', 'match', 'skip_banned', 'actions', 'banned_extensions', 'banned_types', 'encrypted'], p);
    const rule: Rule = { name: `rules[${i}]`, match: {} };
    if (r.name !== undefined) {
      if (typeof r.name !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(r.name)) throw new KeyedError(`${p}.name`, 'must be 1-64 printable ASCII characters');
      rule.name = r.name;
    }
    if (r.match !== undefined) {
      if (!isTable(r.match)) throw new KeyedError(`${p}.match`, 'must be a table, e.g. { client = ["10.0.0.0/8"] }');
      unknownKeys(r.match, ['client', 'authenticated', 'recipient_domain'], `${p}.match`);
      const m: RuleMatch = {};
      if (r.match.client !== undefined) m.client = list(r.match.client, `${p}.match.client`, checkCidr);
      if (r.match.authenticated !== undefined) {
        if (typeof r.match.authenticated !== 'boolean') throw new KeyedError(`${p}.match.authenticated`, 'must be true or false');
        m.authenticated = r.match.authenticated;
      }
      if (r.match.recipient_domain !== undefined) m.recipientDomain = list(r.match.recipient_domain, `${p}.match.recipient_domain`, checkDomain);
      rule.match = m;
    }
    if (r.skip_banned !== undefined) {
      if (typeof r.skip_banned !== 'boolean') throw new KeyedError(`${p}.skip_banned`, 'must be true or false');
      rule.skipBanned = r.skip_banned;
    }
    if (r.actions !== undefined) {
      if (!isTable(r.actions)) throw new KeyedError(`${p}.actions`, 'must be a table, e.g. { banned = "tempfail" }');
      unknownKeys(r.actions, ['infected', 'banned', 'limit', 'error'], `${p}.actions`);
      const a: Partial<Actions> = {};
      for (const [k, x] of Object.entries(r.actions)) a[k as keyof Actions] = action(x, `${p}.actions.${k}`);
      rule.actions = a;
    }
    if (r.banned_extensions !== undefined) rule.bannedExtensions = list(r.banned_extensions, `${p}.banned_extensions`, checkExtension);
    if (r.banned_types !== undefined) rule.bannedTypes = list(r.banned_types, `${p}.banned_types`, checkFileType);
    if (r.encrypted !== undefined) rule.encrypted = action(r.encrypted, `${p}.encrypted`);
    return rule;
  });
}

/** TOML text for the rules (used by renderConfig). */
export function renderRules(rules: readonly DeepReadonly<Rule>[]): string {
  const q = (s: string) => JSON.stringify(s);
  const arr = (a: readonly string[]) => `[${a.map(q).join(', ')}]`;
  return rules
    .map((r) => {
      const lines = ['[[rules]]', `name = ${q(r.name)}`];
      const m: string[] = [];
      if (r.match.client) m.push(`client = ${arr(r.match.client)}`);
      if (r.match.authenticated !== undefined) m.push(`authenticated = ${r.match.authenticated}`);
      if (r.match.recipientDomain) m.push(`recipient_domain = ${arr(r.match.recipientDomain)}`);
      lines.push(`match = { ${m.join(', ')} }`.replace('{  }', '{}'));
      if (r.skipBanned !== undefined) lines.push(`skip_banned = ${r.skipBanned}`);
      if (r.actions) lines.push(`actions = { ${Object.entries(r.actions).map(([k, v]) => `${k} = ${q(v!)}`).join(', ')} }`);
      if (r.bannedExtensions) lines.push(`banned_extensions = ${arr(r.bannedExtensions)}`);
      if (r.bannedTypes) lines.push(`banned_types = ${arr(r.bannedTypes)}`);
      if (r.encrypted) lines.push(`encrypted = ${q(r.encrypted)}`);
      return lines.join('\n') + '\n';
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------
// Evaluation.

/** What the core applies to one transaction. */
export interface EffectivePolicy {
  actions: Readonly<Actions>;
  bannedExtensions: readonly string[];
  bannedTypes: readonly string[];
  checkBannedInArchives: boolean;
  encrypted: Action;
  /** True only when every recipient's rule skips banned checks. Virus scanning always runs. */
  skipBanned: boolean;
  /** Names of the rules that applied (deduplicated, file order), for the summary log line. */
  rules: readonly string[];
}

export interface PolicyEnvelope {
  clientAddress?: string;
  /** SMTP AUTH identity (non-empty = authenticated) or a boolean. */
  authenticated?: string | boolean;
  recipients?: readonly string[];
}

const STRICTNESS: Readonly<Record<Action, number>> = { accept: 0, tempfail: 1, reject: 2 };
const stricter = (a: Action, b: Action): Action => (STRICTNESS[b] > STRICTNESS[a] ? b : a);

const cidrCache = new WeakMap<object, Cidr[]>();
function cidrsOf(m: DeepReadonly<RuleMatch>): Cidr[] {
  let c = cidrCache.get(m);
  if (!c) {
    c = (m.client ?? []).map(parseCidr);
    cidrCache.set(m, c);
  }
  return c;
}

/** "<User@Example.ORG.>" → "example.org"; undefined when there is no domain. */
export function recipientDomain(rcpt: string): string | undefined {
  const s = rcpt.trim().replace(/^<|>$/g, '');
  const at = s.lastIndexOf('@');
  if (at < 0 || at === s.length - 1) return undefined;
  return s.slice(at + 1).toLowerCase().replace(/\.$/, '');
}

function domainMatches(patterns: readonly string[], domain: string | undefined): boolean {
  if (domain === undefined) return false;
  return patterns.some((p) => (p.startsWith('.') ? domain.endsWith(p) || domain === p.slice(1) : domain === p));
}

function matches(r: DeepReadonly<Rule>, clientAddress: string | undefined, authed: boolean, domain: string | undefined): boolean {
  const m = r.match;
  if (m.client && !anyCidrContains(cidrsOf(m), clientAddress)) return false;
  if (m.authenticated !== undefined && m.authenticated !== authed) return false;
  if (m.recipientDomain && !domainMatches(m.recipientDomain, domain)) return false;
  return true;
}

/**
 * The policy for one transaction: each recipient's first matching rule overlaid on
 * the global [policy]/[actions], then the strictest merge across recipients (see the
 * file header). With no recipients yet, rules that need a recipient domain do not match.
 */
export function ruleFor(config: DeepReadonly<Config>, envelope: PolicyEnvelope): EffectivePolicy {
  const authed = typeof envelope.authenticated === 'string' ? envelope.authenticated !== '' : envelope.authenticated === true;
  const rcpts = envelope.recipients && envelope.recipients.length > 0 ? envelope.recipients : [undefined];
  const g = config.policy;
  let out: EffectivePolicy | null = null;
  const names: string[] = [];
  const seen = new Set<DeepReadonly<Rule> | null>();
  for (const rcpt of rcpts) {
    const domain = rcpt === undefined ? undefined : recipientDomain(rcpt);
    const rule = config.rules.find((r) => matches(r, envelope.clientAddress, authed, domain)) ?? null;
    if (seen.has(rule)) continue; // same policy as an earlier recipient
    seen.add(rule);
    if (rule) names.push(rule.name);
    const p: EffectivePolicy = {
      actions: { ...config.actions, ...rule?.actions },
      bannedExtensions: rule?.bannedExtensions ?? g.bannedExtensions,
      bannedTypes: rule?.bannedTypes ?? g.bannedTypes,
      checkBannedInArchives: g.checkBannedInArchives,
      encrypted: rule?.encrypted ?? g.encrypted,
      skipBanned: rule?.skipBanned ?? false,
      rules: [],
    };
    if (!out) {
      out = p;
      continue;
    }
    const a: Readonly<Actions> = out.actions;
    const b: Readonly<Actions> = p.actions;
    out = {
      actions: {
        infected: stricter(a.infected, b.infected),
        banned: stricter(a.banned, b.banned),
        limit: stricter(a.limit, b.limit),
        anomaly: stricter(a.anomaly, b.anomaly),
        unparseable: stricter(a.unparseable, b.unparseable),
        error: stricter(a.error, b.error),
      },
      bannedExtensions: [...new Set([...out.bannedExtensions, ...p.bannedExtensions])],
      bannedTypes: [...new Set([...out.bannedTypes, ...p.bannedTypes])],
      checkBannedInArchives: out.checkBannedInArchives || p.checkBannedInArchives,
      encrypted: stricter(out.encrypted, p.encrypted),
      skipBanned: out.skipBanned && p.skipBanned,
      rules: [],
    };
  }
  const res = { ...out!, rules: names };
  Object.freeze(res.actions);
  Object.freeze(res.bannedExtensions);
  Object.freeze(res.bannedTypes);
  Object.freeze(res.rules);
  return Object.freeze(res);
}
