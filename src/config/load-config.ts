/**
 * load-config.ts — read, validate and freeze the configuration; print it back.
 *
 * loadConfig(file, overrides):
 *   1. file undefined → all defaults; else parse it as TOML (syntax errors name the
 *      file, line and column);
 *   2. validate every key against schema.ts (unknown keys are fatal, with a
 *      did-you-mean hint), relative paths resolve against the file's directory;
 *   3. apply command-line overrides (dotted snake_case keys, e.g. "proxy.listen",
 *      string values coerced per field) — they win over the file;
 *   4. cross-field checks, then deep-freeze.
 * Every failure is a ConfigError { file, key, reason } (exit code 2 at the CLI).
 * Each connection should take the returned snapshot; reload builds a new one.
 *
 * renderConfig(config) prints the effective config as TOML (check-config), one
 * comment per key; loadConfig(renderConfig(c)) gives c back.
 * failOpenWarnings(config) lists fail-open choices the CLI must log at startup.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import TOML from '@iarna/toml';
import { ConfigError, echo } from './config-error.js';
import { KeyedError, SECTIONS, sectionDefaults, type Config, type Field, type FrozenConfig, type ParseCtx, type SectionName } from './schema.js';
import { parseRules, renderRules } from './rules.js';
import { parseReplyTemplate, templateMisfit, type Action } from '../core/policy-table.js';

export { ConfigError } from './config-error.js';
export type { Config, FrozenConfig } from './schema.js';
export { ruleFor, explainRules, ruleWarnings, type EffectivePolicy, type PolicyEnvelope } from './rules.js';

/** Dotted snake_case key → value, e.g. { "proxy.listen": "127.0.0.1:0", "log.level": "debug" }. */
export type ConfigOverrides = Readonly<Record<string, unknown>>;

export const CLI_SOURCE = '<command line>';
export const DEFAULTS_SOURCE = '<defaults>';

type Raw = Record<string, unknown>;
const isTable = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function unknownReason(key: string, known: readonly string[]): string {
  const best = known.map((k) => [k, editDistance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= 2 ? `unknown key (did you mean "${best[0]}"?)` : 'unknown key';
}

function fieldsByToml(section: SectionName): Map<string, [string, Field<unknown>]> {
  const m = new Map<string, [string, Field<unknown>]>();
  for (const [prop, f] of Object.entries(SECTIONS[section]) as [string, Field<unknown>][]) m.set(f.toml, [prop, f]);
  return m;
}

function parseField(f: Field<unknown>, v: unknown, ctx: ParseCtx, source: string, key: string): unknown {
  try {
    return f.parse(v, ctx);
  } catch (e) {
    if (e instanceof KeyedError) throw new ConfigError(source, key + e.subkey, e.message);
    throw new ConfigError(source, key, `${(e as Error).message} (got ${echo(v)})`);
  }
}

/** Build the default config (mutable, unfrozen). */
function defaults(): Config {
  const c = {} as Record<string, unknown>;
  for (const name of Object.keys(SECTIONS) as SectionName[]) c[name] = sectionDefaults(SECTIONS[name] as never);
  c.rules = [];
  return c as unknown as Config;
}

/**
 * Keys from earlier releases, still accepted (a config that worked must keep starting):
 * each maps its value onto today's keys unless the file sets those itself, and leaves a
 * warning for check-config and the start-up log.
 */
const RENAMED: Readonly<Record<string, (v: unknown, c: Config, doc: Raw, source: string) => string>> = {
  // [milter] add_headers (round 1): X-Virus-Scanned/X-Virus-Status on accepted mail, off by default.
  'milter.add_headers': (v, c, doc, source) => {
    if (typeof v !== 'boolean') throw new ConfigError(source, 'milter.add_headers', 'must be true or false');
    const set = isTable(doc.headers) ? doc.headers : {};
    if (!('status' in set)) c.headers.status = v;
    if (!v && !('scanned' in set)) c.headers.scanned = '';
    return `renamed: use [headers] scanned and status (add_headers = ${v} read as status = ${v}${v ? '' : ', scanned = ""'})`;
  },
};
const renamedWarnings = new WeakMap<object, { key: string; reason: string }[]>();

/** Keys of an earlier release this config still uses (see RENAMED). */
export function renamedKeyWarnings(c: FrozenConfig): { key: string; reason: string }[] {
  return [...(renamedWarnings.get(c) ?? [])];
}

function applyDocument(c: Config, doc: Raw, ctx: ParseCtx, source: string, warnings: { key: string; reason: string }[] = []): void {
  const top = [...Object.keys(SECTIONS), 'rules'];
  for (const [sk, sv] of Object.entries(doc)) {
    if (sk === 'rules') {
      try {
        c.rules = parseRules(sv);
      } catch (e) {
        if (e instanceof KeyedError) throw new ConfigError(source, 'rules' + e.subkey, e.message);
        throw e;
      }
      continue;
    }
    if (!(sk in SECTIONS)) throw new ConfigError(source, sk, unknownReason(sk, top));
    if (!isTable(sv)) throw new ConfigError(source, sk, `must be a table ([${sk}])`);
    const fields = fieldsByToml(sk as SectionName);
    const target = c[sk as SectionName] as unknown as Raw;
    for (const [k, v] of Object.entries(sv)) {
      const hit = fields.get(k);
      const renamed = hit ? undefined : RENAMED[`${sk}.${k}`];
      if (renamed) {
        warnings.push({ key: `${sk}.${k}`, reason: renamed(v, c, doc, source) });
        continue;
      }
      if (!hit) throw new ConfigError(source, `${sk}.${k}`, unknownReason(k, [...fields.keys()]));
      target[hit[0]] = parseField(hit[1], v, ctx, source, `${sk}.${k}`);
    }
  }
}

function applyOverrides(c: Config, overrides: ConfigOverrides): void {
  const ctx: ParseCtx = { baseDir: process.cwd() };
  for (const [key, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const dot = key.indexOf('.');
    const sk = dot < 0 ? key : key.slice(0, dot);
    const k = dot < 0 ? '' : key.slice(dot + 1);
    if (!(sk in SECTIONS)) throw new ConfigError(CLI_SOURCE, key, sk === 'rules' ? 'rules cannot be set from the command line' : 'unknown key');
    const hit = fieldsByToml(sk as SectionName).get(k);
    if (!hit) throw new ConfigError(CLI_SOURCE, key, unknownReason(k, [...fieldsByToml(sk as SectionName).keys()]));
    const value = typeof v === 'string' ? hit[1].fromFlag(v) : v;
    (c[sk as SectionName] as unknown as Raw)[hit[0]] = parseField(hit[1], value, ctx, CLI_SOURCE, key);
  }
}

function crossChecks(c: Config, source: string): void {
  if (c.limits.headerLineBytes > c.limits.headerBytes) {
    throw new ConfigError(source, 'limits.header_line_bytes', 'must not exceed limits.header_bytes');
  }
  if (c.clamd.connectTimeoutMs > c.clamd.totalTimeoutMs) {
    throw new ConfigError(source, 'clamd.connect_timeout', 'must not exceed clamd.total_timeout');
  }
  // The MTAs' own timeouts: past them the MTA has already given its client a 451 (Postfix
  // proxy) or dropped the milter, and a late verdict only wastes work or duplicates mail.
  if (c.proxy.replyBudgetMs >= c.proxy.smtpdProxyTimeoutMs) {
    throw new ConfigError(source, 'proxy.reply_budget', `must stay below Postfix's smtpd_proxy_timeout (proxy.smtpd_proxy_timeout = ${c.proxy.smtpdProxyTimeoutMs / 1000}s): Postfix would answer the client 451 first and the client would send the message again`);
  }
  if (c.milter.progressIntervalMs >= c.milter.mtaTimeoutMs) {
    throw new ConfigError(source, 'milter.progress_interval', `must stay below the MTA's milter timeout (milter.mta_timeout = ${c.milter.mtaTimeoutMs / 1000}s, Sendmail's T=R default 10s): the MTA would give up between PROGRESS packets`);
  }
  if (c.proxy.listen === c.proxy.forward) {
    throw new ConfigError(source, 'proxy.forward', 'is the same address as proxy.listen (mail would loop)');
  }
  // A template's code must fit every action its kind can get: [actions] and each rule.
  for (const [kind, tpl] of Object.entries(c.reply) as [keyof Config['reply'], string][]) {
    if (tpl === '') continue;
    const t = parseReplyTemplate(tpl);
    const uses: [string, Action][] = [[`actions.${kind}`, c.actions[kind]]];
    c.rules.forEach((r, i) => {
      const a = r.actions?.[kind];
      if (a) uses.push([`rules[${i}].actions.${kind}`, a]);
    });
    for (const [where, a] of uses) {
      const misfit = templateMisfit(t, a);
      if (misfit) throw new ConfigError(source, `reply.${kind}`, `${misfit} (${where} = "${a}"): give the template no code, or one of class ${a === 'reject' ? 5 : 4}`);
    }
  }
  if (c.pop3.listen === c.pop3.upstream) {
    throw new ConfigError(source, 'pop3.upstream', 'is the same address as pop3.listen (the relay would loop)');
  }
  if (c.pop3.tls !== 'none' && (c.pop3.tlsCert === '' || c.pop3.tlsKey === '')) {
    throw new ConfigError(source, c.pop3.tlsCert === '' ? 'pop3.tls_cert' : 'pop3.tls_key', `is needed for pop3.tls = "${c.pop3.tls}"`);
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Parse TOML text as if read from `source` (a path, for messages and relative paths). */
export function parseConfigText(text: string, source: string, overrides: ConfigOverrides = {}): FrozenConfig {
  let doc: Raw;
  try {
    doc = TOML.parse(text) as Raw;
  } catch (e) {
    const err = e as Error & { line?: number; col?: number };
    const where = typeof err.line === 'number' ? `line ${err.line + 1}, column ${(err.col ?? 0) + 1}: ` : '';
    const first = String(err.message).split('\n')[0]!.replace(/ at row \d+, col \d+, pos \d+:?$/, '').replace(/^Unexpected/, 'unexpected');
    throw new ConfigError(source, '', `TOML syntax error: ${where}${first}`);
  }
  const c = defaults();
  const warnings: { key: string; reason: string }[] = [];
  applyDocument(c, doc, { baseDir: dirname(resolve(source)) }, source, warnings);
  applyOverrides(c, overrides);
  crossChecks(c, source);
  const frozen = deepFreeze(c);
  if (warnings.length) renamedWarnings.set(frozen, warnings);
  return frozen;
}

/**
 * Load the configuration. `file` undefined → defaults (plus overrides). A missing or
 * unreadable file is a ConfigError (an explicit --config that does not exist is a mistake).
 */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}): FrozenConfig {
  if (file === undefined) {
    const c = defaults();
    applyOverrides(c, overrides);
    crossChecks(c, Object.keys(overrides).length > 0 ? CLI_SOURCE : DEFAULTS_SOURCE);
    return deepFreeze(c);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(file, '', code === 'ENOENT' ? 'no such file' : `cannot read: ${code ?? (e as Error).message}`);
  }
  return parseConfigText(text, file, overrides);
}

/** The effective configuration as TOML, one comment per key. Round-trips through loadConfig. */
export function renderConfig(c: FrozenConfig): string {
  const out: string[] = [];
  for (const name of Object.keys(SECTIONS) as SectionName[]) {
    out.push(`[${name}]`);
    const section = c[name] as unknown as Raw;
    const lines = (Object.entries(SECTIONS[name]) as [string, Field<unknown>][]).map(([prop, f]) => [`${f.toml} = ${f.render(section[prop])}`, f.doc] as const);
    const width = Math.min(48, Math.max(...lines.map(([l]) => l.length)));
    for (const [l, doc] of lines) out.push(`${l.padEnd(width)}  # ${doc}`);
    out.push('');
  }
  if (c.rules.length > 0) out.push(renderRules(c.rules));
  return out.join('\n');
}

/** Fail-open choices in effect, for the CLI to log as warnings at startup (STYLE 9). */
export function failOpenWarnings(c: FrozenConfig): { key: string; reason: string }[] {
  const w: { key: string; reason: string }[] = [];
  const check = (prefix: string, a: { infected?: string; limit?: string; error?: string }, encrypted: string | undefined) => {
    const delivers = (x: string | undefined) => x === 'accept' || x === 'tag';
    if (delivers(a.error)) w.push({ key: `${prefix}actions.error`, reason: `mail that could not be scanned is delivered${a.error === 'tag' ? ' (tagged)' : ''} (fail-open)` });
    if (a.error === 'discard') w.push({ key: `${prefix}actions.error`, reason: 'mail that could not be scanned is discarded: lost without a bounce' });
    if (delivers(a.limit)) w.push({ key: `${prefix}actions.limit`, reason: `mail over a scan limit is delivered${a.limit === 'tag' ? ' (tagged)' : ''} partly unscanned (fail-open)` });
    if (delivers(a.infected)) w.push({ key: `${prefix}actions.infected`, reason: `infected mail is delivered${a.infected === 'tag' ? ' (tagged)' : ''}` });
    if (encrypted === 'accept') w.push({ key: `${prefix}${prefix ? '' : 'policy.'}encrypted`, reason: 'encrypted archives are accepted unscanned (fail-open)' });
  };
  check('', c.actions, c.policy.encrypted);
  if (c.pop3.holdExceeded === 'stream') {
    w.push({ key: 'pop3.hold_exceeded', reason: 'beyond pop3.hold_bytes a retrieval is delivered before its scan has caught up: a late detection can only cut the tail' });
  }
  c.rules.forEach((r, i) => check(`rules[${i}].`, r.actions ?? {}, r.encrypted));
  return w;
}

/**
 * clamd's defaults (clamd.conf(5), ClamAV 1.4): MaxThreads 10 scans at once, MaxQueue 100
 * items queued, those being scanned included. Every open INSTREAM connection is one of
 * them (clamd reads an upload in its receiving thread); at MaxQueue clamd stops taking
 * new work, so every scan stalls until a timeout. We cannot read the clamd's own settings
 * from here, so the check is against the defaults and says so.
 */
export const CLAMD_DEFAULT_MAX_THREADS = 10;
export const CLAMD_DEFAULT_MAX_QUEUE = 100;

/**
 * [clamd] connection counts one clamd may not take at its defaults. Per endpoint, at worst
 * max_concurrent scan streams plus every raw_message stream (they go to the least loaded
 * endpoint: with one endpoint, or the others down, all to one), plus our health check's
 * PING: that must stay below MaxQueue.
 */
export function clamdWarnings(c: FrozenConfig): { key: string; reason: string }[] {
  const k = c.clamd;
  if (k.endpoints.length === 0) return [];
  const raw = k.mode === 'per-file' && k.rawMessage !== 'off' ? k.rawMaxConcurrent : 0;
  const open = k.maxConcurrent + raw + 1;
  if (open <= CLAMD_DEFAULT_MAX_QUEUE) return [];
  const sum = raw > 0 ? `max_concurrent (${k.maxConcurrent}) + raw_max_concurrent (${raw})` : `max_concurrent (${k.maxConcurrent})`;
  return [{
    key: raw > 0 ? 'clamd.raw_max_concurrent' : 'clamd.max_concurrent',
    reason: `${sum} + 1 health check = ${open} connections to one clamd, over its default MaxQueue (${CLAMD_DEFAULT_MAX_QUEUE}; MaxThreads ${CLAMD_DEFAULT_MAX_THREADS} of them scan at once): at MaxQueue clamd takes no new work and scans stall until they time out. Raise MaxQueue in clamd.conf (and keep RLIMIT_NOFILE above it) or lower these`,
  }];
}

/** Warnings that are not fail-open choices but still change what the admin gets. */
export function configWarnings(c: FrozenConfig): { key: string; reason: string }[] {
  const w: { key: string; reason: string }[] = renamedKeyWarnings(c);
  c.rules.forEach((r, i) => {
    if (r.match.authenticated !== undefined) {
      w.push({
        key: `rules[${i}].match.authenticated`,
        reason: 'applies to the milter only: Postfix passes no SMTP AUTH facts to a before-queue proxy (XFORWARD has no AUTH attribute), so through the proxy no client counts as authenticated',
      });
    }
  });
  return w;
}

