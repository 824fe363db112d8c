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
 *   banned_names = ["*.pdf.exe"]
 *   banned_mime_types = ["application/x-msdownload"]
 *   encrypted = "tempfail"
 *
 * Conditions (all must hold; an empty match matches everything):
 *   per transaction  client (CIDRs), authenticated (SMTP AUTH: milter only), sender
 *                    (address, domain, ".domain", "<>", or CIDR of the client),
 *                    listen_port (proxy: our port the connection came in on),
 *                    daemon_name, if_addr (milter: the MTA's {daemon_name}, {if_addr} or
 *                    Postfix's {daemon_addr});
 *   per recipient    recipient (address, domain, ".domain"), recipient_domain.
 * Matching: per recipient, the first rule (file order) whose every condition holds
 * applies; no rule → the global [policy]/[actions]. Virus scanning is never skipped by any
 * rule: rules only change banned checks and actions. Then, per recipient, the built-in
 * exemptions: a recipient in [policy] virus_lovers gets infected mail tagged (delivered,
 * marked) instead of blocked, banned_lovers the same for banned mail. Per transaction:
 * a sender in sender_block is refused as banned ("sender blocked"); one in sender_allow
 * skips banned checks (block wins over allow).
 *
 * "Strictest" (one message has one verdict, so several recipients' policies merge):
 *   - each action kind and `encrypted`: reject > tempfail > discard > quarantine > tag > accept;
 *   - banned lists (extensions, types, name globs, MIME types): the union;
 *   - check_banned_in_archives: true if any recipient's policy has it;
 *   - skip_banned: only if every recipient's rule says so.
 *
 * parseRules throws KeyedError(subkey, reason) for load-config.ts to wrap.
 * explainRules/ruleWarnings (check-config) say how the rules combine and which can never match.
 * Known gap: domains compare as ASCII; IDNs must be written in A-label form.
 */
import { ACTION_RANK, stricterAction, type Action, type Actions } from '../core/policy-table.js';
import { anyCidrContains, parseCidr, type Cidr } from './cidr.js';
import { addressListMatches, checkAddressItem, compileAddressList, type CompiledAddressList } from './address-list.js';
import {
  ACTION_VALUES,
  ENCRYPTED_VALUES,
  KeyedError,
  checkCidr,
  checkDomain,
  checkExtension,
  checkFileType,
  checkGlob,
  checkMimeGlob,
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

function action(v: unknown, sub: string, values: readonly Action[] = ACTION_VALUES): Action {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw new KeyedError(sub, `must be one of ${values.map((a) => JSON.stringify(a)).join(', ')}`);
  }
  return v as Action;
}

function unknownKeys(t: Raw, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(t)) if (!allowed.includes(k)) throw new KeyedError(`${prefix}.${k}`, 'unknown key');
}

function ports(v: unknown, sub: string): number[] {
  if (!Array.isArray(v)) throw new KeyedError(sub, 'must be an array of port numbers, e.g. [10025]');
  const out: number[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 65535) throw new KeyedError(`${sub}[${i}]`, 'must be a port number (1-65535)');
    if (!out.includes(x)) out.push(x);
  });
  return out;
}

const ACTION_KINDS = ['infected', 'banned', 'limit', 'anomaly', 'unparseable', 'error'] as const;
const MATCH_KEYS = ['client', 'authenticated', 'recipient_domain', 'sender', 'recipient', 'listen_port', 'daemon_name', 'if_addr'] as const;

/** Validate the `rules` array of tables. Subkeys are relative to "rules", e.g. "[1].match.client[0]". */
export function parseRules(v: unknown): Rule[] {
  if (!Array.isArray(v)) throw new KeyedError('', 'must be an array of tables ([[rules]])');
  if (v.length > 1000) throw new KeyedError('', 'at most 1000 rules');
  return v.map((r, i) => {
    const p = `[${i}]`;
    if (!isTable(r)) throw new KeyedError(p, 'must be a table');
    unknownKeys(r, ['name', 'match', 'skip_banned', 'actions', 'banned_extensions', 'banned_types', 'banned_names', 'banned_mime_types', 'encrypted'], p);
    const rule: Rule = { name: `rules[${i}]`, match: {} };
    if (r.name !== undefined) {
      if (typeof r.name !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(r.name)) throw new KeyedError(`${p}.name`, 'must be 1-64 printable ASCII characters');
      rule.name = r.name;
    }
    if (r.match !== undefined) {
      if (!isTable(r.match)) throw new KeyedError(`${p}.match`, 'must be a table, e.g. { client = ["10.0.0.0/8"] }');
      unknownKeys(r.match, MATCH_KEYS, `${p}.match`);
      const m: RuleMatch = {};
      const mk = `${p}.match`;
      if (r.match.client !== undefined) m.client = list(r.match.client, `${mk}.client`, checkCidr);
      if (r.match.authenticated !== undefined) {
        if (typeof r.match.authenticated !== 'boolean') throw new KeyedError(`${mk}.authenticated`, 'must be true or false');
        m.authenticated = r.match.authenticated;
      }
      if (r.match.recipient_domain !== undefined) m.recipientDomain = list(r.match.recipient_domain, `${mk}.recipient_domain`, checkDomain);
      if (r.match.sender !== undefined) m.sender = list(r.match.sender, `${mk}.sender`, (s) => checkAddressItem(s, true));
      if (r.match.recipient !== undefined) m.recipient = list(r.match.recipient, `${mk}.recipient`, (s) => checkAddressItem(s, false));
      if (r.match.listen_port !== undefined) m.listenPort = ports(r.match.listen_port, `${mk}.listen_port`);
      if (r.match.daemon_name !== undefined) {
        m.daemonName = list(r.match.daemon_name, `${mk}.daemon_name`, (s) => {
          if (!/^[\x21-\x7e]{1,64}$/.test(s)) throw new RangeError('1-64 printable characters without spaces');
          return s;
        });
      }
      if (r.match.if_addr !== undefined) m.ifAddr = list(r.match.if_addr, `${mk}.if_addr`, checkCidr);
      rule.match = m;
    }
    if (r.skip_banned !== undefined) {
      if (typeof r.skip_banned !== 'boolean') throw new KeyedError(`${p}.skip_banned`, 'must be true or false');
      rule.skipBanned = r.skip_banned;
    }
    if (r.actions !== undefined) {
      if (!isTable(r.actions)) throw new KeyedError(`${p}.actions`, 'must be a table, e.g. { banned = "tempfail" }');
      unknownKeys(r.actions, ACTION_KINDS, `${p}.actions`);
      const a: Partial<Actions> = {};
      for (const [k, x] of Object.entries(r.actions)) a[k as keyof Actions] = action(x, `${p}.actions.${k}`);
      rule.actions = a;
    }
    if (r.banned_extensions !== undefined) rule.bannedExtensions = list(r.banned_extensions, `${p}.banned_extensions`, checkExtension);
    if (r.banned_types !== undefined) rule.bannedTypes = list(r.banned_types, `${p}.banned_types`, checkFileType);
    if (r.banned_names !== undefined) rule.bannedNames = list(r.banned_names, `${p}.banned_names`, checkGlob);
    if (r.banned_mime_types !== undefined) rule.bannedMimeTypes = list(r.banned_mime_types, `${p}.banned_mime_types`, checkMimeGlob);
    if (r.encrypted !== undefined) rule.encrypted = action(r.encrypted, `${p}.encrypted`, ENCRYPTED_VALUES);
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
      const mm = r.match;
      if (mm.client) m.push(`client = ${arr(mm.client)}`);
      if (mm.authenticated !== undefined) m.push(`authenticated = ${mm.authenticated}`);
      if (mm.recipientDomain) m.push(`recipient_domain = ${arr(mm.recipientDomain)}`);
      if (mm.sender) m.push(`sender = ${arr(mm.sender)}`);
      if (mm.recipient) m.push(`recipient = ${arr(mm.recipient)}`);
      if (mm.listenPort) m.push(`listen_port = [${mm.listenPort.join(', ')}]`);
      if (mm.daemonName) m.push(`daemon_name = ${arr(mm.daemonName)}`);
      if (mm.ifAddr) m.push(`if_addr = ${arr(mm.ifAddr)}`);
      lines.push(`match = { ${m.join(', ')} }`.replace('{  }', '{}'));
      if (r.skipBanned !== undefined) lines.push(`skip_banned = ${r.skipBanned}`);
      if (r.actions) lines.push(`actions = { ${Object.entries(r.actions).map(([k, v]) => `${k} = ${q(v!)}`).join(', ')} }`);
      if (r.bannedExtensions) lines.push(`banned_extensions = ${arr(r.bannedExtensions)}`);
      if (r.bannedTypes) lines.push(`banned_types = ${arr(r.bannedTypes)}`);
      if (r.bannedNames) lines.push(`banned_names = ${arr(r.bannedNames)}`);
      if (r.bannedMimeTypes) lines.push(`banned_mime_types = ${arr(r.bannedMimeTypes)}`);
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
  bannedNames: readonly string[];
  bannedMimeTypes: readonly string[];
  checkBannedInArchives: boolean;
  encrypted: Action;
  /** True only when every recipient's rule skips banned checks (or the sender is allowed). Virus scanning always runs. */
  skipBanned: boolean;
  /** The sender is in sender_block: the message is refused as banned with this reason. */
  blocked?: string;
  /** Names of the rules and exemptions that applied (deduplicated, in order), for the summary log line. */
  rules: readonly string[];
}

export interface PolicyEnvelope {
  clientAddress?: string;
  /** SMTP AUTH identity (non-empty = authenticated) or a boolean. */
  authenticated?: string | boolean;
  /** Envelope sender (with or without <>; "" = null sender). */
  sender?: string;
  recipients?: readonly string[];
  /** Proxy: our port the connection came in on. */
  localPort?: number;
  /** Milter {daemon_name}. */
  daemonName?: string;
  /** Milter {if_addr} / {daemon_addr}. */
  localAddress?: string;
}

interface Compiled {
  client: Cidr[] | null;
  ifAddr: Cidr[] | null;
  sender: CompiledAddressList | null;
  recipient: CompiledAddressList | null;
}
const compiledCache = new WeakMap<object, Compiled>();
function compiled(m: DeepReadonly<RuleMatch>): Compiled {
  let c = compiledCache.get(m);
  if (!c) {
    c = {
      client: m.client ? m.client.map(parseCidr) : null,
      ifAddr: m.ifAddr ? m.ifAddr.map(parseCidr) : null,
      sender: m.sender ? compileAddressList(m.sender) : null,
      recipient: m.recipient ? compileAddressList(m.recipient) : null,
    };
    compiledCache.set(m, c);
  }
  return c;
}
const listCache = new WeakMap<object, CompiledAddressList>();
function compiledList(items: readonly string[]): CompiledAddressList {
  let c = listCache.get(items);
  if (!c) listCache.set(items, (c = compileAddressList(items)));
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

/** The transaction-level conditions of a rule (everything but the recipient). */
function matchesTransaction(r: DeepReadonly<Rule>, e: PolicyEnvelope, authed: boolean): boolean {
  const m = r.match;
  const c = compiled(m);
  if (c.client && !anyCidrContains(c.client, e.clientAddress)) return false;
  if (m.authenticated !== undefined && m.authenticated !== authed) return false;
  if (c.sender && !addressListMatches(c.sender, e.sender, e.clientAddress)) return false;
  if (m.listenPort && (e.localPort === undefined || !m.listenPort.includes(e.localPort))) return false;
  if (m.daemonName && (e.daemonName === undefined || !m.daemonName.includes(e.daemonName))) return false;
  if (c.ifAddr && !anyCidrContains(c.ifAddr, e.localAddress)) return false;
  return true;
}

function matchesRecipient(r: DeepReadonly<Rule>, rcpt: string | undefined): boolean {
  const m = r.match;
  if (m.recipientDomain && !domainMatches(m.recipientDomain, rcpt === undefined ? undefined : recipientDomain(rcpt))) return false;
  const c = compiled(m);
  if (c.recipient && !addressListMatches(c.recipient, rcpt)) return false;
  return true;
}

/** Lovers get the kind tagged (delivered, marked) unless their policy is already laxer. */
function loverAction(current: Action): Action {
  return ACTION_RANK[current] > ACTION_RANK.tag ? 'tag' : current;
}

/**
 * The policy for one transaction: each recipient's first matching rule overlaid on
 * the global [policy]/[actions], the lovers' exemptions, then the strictest merge across
 * recipients, then the sender lists (see the file header). With no recipients yet, rules
 * that need a recipient do not match.
 */
export function ruleFor(config: DeepReadonly<Config>, envelope: PolicyEnvelope): EffectivePolicy {
  const authed = typeof envelope.authenticated === 'string' ? envelope.authenticated !== '' : envelope.authenticated === true;
  const rcpts = envelope.recipients && envelope.recipients.length > 0 ? envelope.recipients : [undefined];
  const g = config.policy;
  const candidates = config.rules.filter((r) => matchesTransaction(r, envelope, authed));
  const virusLovers = g.virusLovers.length ? compiledList(g.virusLovers) : null;
  const bannedLovers = g.bannedLovers.length ? compiledList(g.bannedLovers) : null;
  let out: EffectivePolicy | null = null;
  const names: string[] = [];
  const seen = new Set<string>();
  for (const rcpt of rcpts) {
    const rule = candidates.find((r) => matchesRecipient(r, rcpt)) ?? null;
    const vl = virusLovers !== null && rcpt !== undefined && addressListMatches(virusLovers, rcpt);
    const bl = bannedLovers !== null && rcpt !== undefined && addressListMatches(bannedLovers, rcpt);
    const key = `${rule ? config.rules.indexOf(rule) : -1}/${vl}/${bl}`;
    if (seen.has(key)) continue; // same policy as an earlier recipient
    seen.add(key);
    for (const n of [rule?.name, vl ? 'virus_lovers' : undefined, bl ? 'banned_lovers' : undefined]) if (n && !names.includes(n)) names.push(n);
    const actions: Actions = { ...config.actions, ...rule?.actions };
    if (vl) actions.infected = loverAction(actions.infected);
    if (bl) actions.banned = loverAction(actions.banned);
    const p: EffectivePolicy = {
      actions,
      bannedExtensions: rule?.bannedExtensions ?? g.bannedExtensions,
      bannedTypes: rule?.bannedTypes ?? g.bannedTypes,
      bannedNames: rule?.bannedNames ?? g.bannedNames,
      bannedMimeTypes: rule?.bannedMimeTypes ?? g.bannedMimeTypes,
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
        infected: stricterAction(a.infected, b.infected),
        banned: stricterAction(a.banned, b.banned),
        limit: stricterAction(a.limit, b.limit),
        anomaly: stricterAction(a.anomaly, b.anomaly),
        unparseable: stricterAction(a.unparseable, b.unparseable),
        error: stricterAction(a.error, b.error),
      },
      bannedExtensions: [...new Set([...out.bannedExtensions, ...p.bannedExtensions])],
      bannedTypes: [...new Set([...out.bannedTypes, ...p.bannedTypes])],
      bannedNames: [...new Set([...out.bannedNames, ...p.bannedNames])],
      bannedMimeTypes: [...new Set([...out.bannedMimeTypes, ...p.bannedMimeTypes])],
      checkBannedInArchives: out.checkBannedInArchives || p.checkBannedInArchives,
      encrypted: stricterAction(out.encrypted, p.encrypted),
      skipBanned: out.skipBanned && p.skipBanned,
      rules: [],
    };
  }
  const res: EffectivePolicy = { ...out!, rules: names };
  if (g.senderBlock.length && addressListMatches(compiledList(g.senderBlock), envelope.sender, envelope.clientAddress)) {
    res.blocked = 'sender blocked';
    names.push('sender_block');
  } else if (g.senderAllow.length && addressListMatches(compiledList(g.senderAllow), envelope.sender, envelope.clientAddress)) {
    res.skipBanned = true;
    names.push('sender_allow');
  }
  Object.freeze(res.actions);
  Object.freeze(res.bannedExtensions);
  Object.freeze(res.bannedTypes);
  Object.freeze(res.bannedNames);
  Object.freeze(res.bannedMimeTypes);
  Object.freeze(res.rules);
  return Object.freeze(res);
}

// ---------------------------------------------------------------------------------
// check-config: how the rules combine, and rules that can never match.

export type RuleFront = 'proxy' | 'milter' | 'pop3' | undefined;

function describeMatch(m: DeepReadonly<RuleMatch>): string {
  const parts: string[] = [];
  if (m.client) parts.push(`client in ${m.client.join(', ')}`);
  if (m.authenticated !== undefined) parts.push(m.authenticated ? 'authenticated' : 'not authenticated');
  if (m.sender) parts.push(`sender is ${m.sender.join(', ')}`);
  if (m.listenPort) parts.push(`came in on port ${m.listenPort.join(', ')}`);
  if (m.daemonName) parts.push(`{daemon_name} is ${m.daemonName.join(', ')}`);
  if (m.ifAddr) parts.push(`{if_addr} in ${m.ifAddr.join(', ')}`);
  if (m.recipient) parts.push(`recipient is ${m.recipient.join(', ')}`);
  if (m.recipientDomain) parts.push(`recipient domain is ${m.recipientDomain.join(', ')}`);
  return parts.length ? parts.join(' and ') : 'always';
}

function describeEffect(r: DeepReadonly<Rule>): string {
  const e: string[] = [];
  if (r.skipBanned) e.push('skip banned checks');
  if (r.actions) e.push(...Object.entries(r.actions).map(([k, v]) => `${k} → ${v}`));
  if (r.bannedExtensions) e.push(`banned extensions: ${r.bannedExtensions.join(' ') || '(none)'}`);
  if (r.bannedTypes) e.push(`banned types: ${r.bannedTypes.join(' ') || '(none)'}`);
  if (r.bannedNames) e.push(`banned names: ${r.bannedNames.join(' ') || '(none)'}`);
  if (r.bannedMimeTypes) e.push(`banned MIME types: ${r.bannedMimeTypes.join(' ') || '(none)'}`);
  if (r.encrypted) e.push(`encrypted → ${r.encrypted}`);
  return e.length ? e.join('; ') : 'nothing (the global policy)';
}

/** Lines for check-config: how policy is decided, rule by rule. */
export function explainRules(c: DeepReadonly<Config>): string[] {
  const out: string[] = [];
  const g = c.policy;
  out.push(`policy: ${c.rules.length} [[rules]]. Per recipient the first rule whose every condition holds applies (none: [policy] and [actions]).`);
  c.rules.forEach((r, i) => out.push(`  ${i + 1}. ${JSON.stringify(r.name)}: if ${describeMatch(r.match)} then ${describeEffect(r)}`));
  if (g.virusLovers.length) out.push(`  then virus_lovers (${g.virusLovers.join(', ')}): infected mail to them is tagged and delivered`);
  if (g.bannedLovers.length) out.push(`  then banned_lovers (${g.bannedLovers.join(', ')}): banned mail to them is tagged and delivered`);
  out.push('  One message takes the strictest policy of its recipients: per verdict kind reject > tempfail > discard > quarantine > tag > accept;');
  out.push('  banned lists are united; skip_banned holds only if every recipient has it. Virus scanning is never skipped.');
  if (g.senderBlock.length) out.push(`  sender_block (${g.senderBlock.join(', ')}): refused as banned ("sender blocked"), whatever the rules say`);
  if (g.senderAllow.length) out.push(`  sender_allow (${g.senderAllow.join(', ')}): banned checks skipped (the envelope sender can be forged: prefer client CIDRs)`);
  return out;
}

/** Rules that can never match (or only through one front), as check-config warnings. */
export function ruleWarnings(c: DeepReadonly<Config>, front?: RuleFront): { key: string; reason: string }[] {
  const w: { key: string; reason: string }[] = [];
  const proxyPorts = new Set<number>();
  for (const a of [c.proxy.listen, ...c.proxy.listenAlso]) {
    const m = /:([0-9]+)$/.exec(a);
    if (m && !a.startsWith('unix:')) proxyPorts.add(Number(m[1]));
  }
  c.rules.forEach((r, i) => {
    const key = `rules[${i}]`;
    const m = r.match;
    const empty = (x: readonly unknown[] | undefined, k: string) => {
      if (x && x.length === 0) w.push({ key: `${key}.match.${k}`, reason: `rule ${JSON.stringify(r.name)} can never match: empty ${k} list` });
    };
    empty(m.client, 'client');
    empty(m.sender, 'sender');
    empty(m.recipient, 'recipient');
    empty(m.recipientDomain, 'recipient_domain');
    empty(m.listenPort, 'listen_port');
    empty(m.daemonName, 'daemon_name');
    empty(m.ifAddr, 'if_addr');
    // An earlier rule with the same or no conditions takes every recipient this one could.
    const shadow = c.rules.slice(0, i).findIndex((e) => describeMatch(e.match) === 'always' || JSON.stringify(e.match) === JSON.stringify(m));
    if (shadow >= 0) w.push({ key, reason: `rule ${JSON.stringify(r.name)} can never match: rules[${shadow}] ${JSON.stringify(c.rules[shadow]!.name)} before it matches everything it would` });
    // recipient addresses outside every recipient_domain: the two conditions exclude each other.
    if (m.recipient && m.recipientDomain && m.recipient.length > 0) {
      const any = m.recipient.some((a) => {
        const d = a.includes('@') ? a.slice(a.lastIndexOf('@') + 1) : a.replace(/^\./, '');
        return domainMatches(m.recipientDomain!, d) || a.startsWith('.');
      });
      if (!any) w.push({ key: `${key}.match`, reason: `rule ${JSON.stringify(r.name)} can never match: no recipient in it lies in its recipient_domain` });
    }
    if (front === 'proxy') {
      if (m.daemonName || m.ifAddr) w.push({ key: `${key}.match`, reason: `rule ${JSON.stringify(r.name)} never matches through the proxy: daemon_name and if_addr are milter macros` });
      if (m.listenPort && proxyPorts.size > 0 && !m.listenPort.some((pt) => proxyPorts.has(pt))) {
        w.push({ key: `${key}.match.listen_port`, reason: `rule ${JSON.stringify(r.name)} can never match: the proxy listens on port ${[...proxyPorts].join(', ')}` });
      }
    }
    if (front === 'milter' && m.listenPort) w.push({ key: `${key}.match.listen_port`, reason: `rule ${JSON.stringify(r.name)} never matches through the milter: listen_port is the proxy's (use daemon_name or if_addr)` });
    if (front === undefined && (m.daemonName || m.ifAddr) && m.listenPort) {
      w.push({ key: `${key}.match`, reason: `rule ${JSON.stringify(r.name)} can never match: listen_port (proxy only) with daemon_name/if_addr (milter only)` });
    }
  });
  if (c.policy.senderAllow.length) w.push({ key: 'policy.sender_allow', reason: 'trusts the envelope sender, which anyone can forge: banned files from a forged allowed sender pass (virus scanning still runs)' });
  if (c.notify.sender) w.push({ key: 'notify.sender', reason: 'notices to the envelope sender: with forged senders they are backscatter' });
  return w;
}
