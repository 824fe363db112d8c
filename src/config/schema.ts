/**
 * schema.ts — the one typed config schema: every key, its default, its validation
 * and its one-line description, side by side.
 *
 * Each section is a `SectionSchema<T>`: one `Field` per property of the section's
 * interface (the compiler checks none is missing). A Field knows its TOML key
 * (snake_case), default, a parser that validates and normalises a TOML value, a
 * coercion for string values from command-line flags, and how to print itself.
 * Durations are milliseconds in TS (`reply_budget` → `replyBudgetMs`), sizes are
 * bytes. Parsers throw RangeError(reason); load-config.ts adds file and key.
 * [[rules]] are validated separately (rules.ts) because they are a list of tables.
 *
 * Known gaps: banned_types is checked against KNOWN_FILE_TYPES, a copy of the type
 * names sniff.ts documents; keep it in sync when the core learns new ones.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';
import { ACTION_NAMES, DEFAULT_ACTIONS, parseReplyTemplate, type Action, type Actions } from '../core/policy-table.js';
import { checkAddressItem } from './address-list.js';
import { compileGlob } from '../core/name-glob.js';
import { DEFAULT_BANNED_EXTENSIONS, DEFAULT_BANNED_MIME_TYPES, DEFAULT_BANNED_TYPES } from '../core/banned.js';
import { parseCidr } from './cidr.js';
import { formatAddress, isHostname, parseAddress, type AddressUse } from '../core/address.js';
import { formatDuration, parseDuration } from './duration.js';
import { formatSize, parseSize } from './size.js';
import { parseRedisUrl } from '../core/scan/redis-url.js';

// ---------------------------------------------------------------------------------
// The Config shape (camelCase; every value validated and normalised).

export interface ProxyConfig {
  /** "host:port" or "unix:/path" the before-queue proxy listens on (Postfix smtpd_proxy_filter points here). */
  listen: string;
  /** More sockets served the same way (e.g. the submission smtpd's filter port). */
  listenAlso: readonly string[];
  /** Permission bits for a unix listen socket (e.g. 0o660). */
  socketMode: number;
  /** Owner and group of a unix listen socket (name or id; "" = the process's). */
  socketOwner: string;
  socketGroup: string;
  /** "host:port" or "unix:/path" of the after-filter smtpd that receives clean mail. */
  forward: string;
  /** CIDRs whose XFORWARD attributes we believe (normally only the local Postfix). */
  trustedXforward: readonly string[];
  /** Time from the client's final "." to our reply, scan included (Postfix smtpd_proxy_timeout must be larger). */
  replyBudgetMs: number;
  /** Postfix's smtpd_proxy_timeout as configured there; replyBudgetMs must stay below it. */
  smtpdProxyTimeoutMs: number;
  maxConnections: number;
  /** Name in our own greeting/replies; "" = os.hostname(). */
  hostname: string;
  /** A header added to clean mail, e.g. "X-Virus-Scanned: midstream"; "" = off. */
  addHeader: string;
  /** Milter socket (Sendmail notation) the after-filter smtpd calls for verdict-dependent edits (tag, quarantine, X-Virus-Status); "" = off. */
  afterFilterMilter: string;
  /** On SIGTERM: how long messages in flight may take to finish before connections are dropped. */
  shutdownGraceMs: number;
}

export interface Pop3Config {
  /** "host:port" or "unix:/path" POP3 clients connect to. */
  listen: string;
  /** The POP3 server (e.g. Dovecot) we relay to: "host:port" or "unix:/path". */
  upstream: string;
  socketMode: number;
  socketOwner: string;
  socketGroup: string;
  maxConnections: number;
  /** Client silence between commands before we close (RFC 1939 autologout: at least 10 minutes). */
  idleTimeoutMs: number;
  /** Connecting to the upstream, and its silence while a response is due. */
  upstreamTimeoutMs: number;
  /** Content bytes of one RETR/TOP held back while the scan catches up (per connection). */
  holdBytes: number;
  /** When more would have to be held: "replace" the rest with a notice, or "stream" on with only the last hold_bytes held. */
  holdExceeded: 'replace' | 'stream';
  /** Add an X-Virus-Status header to every retrieved message (holds each message until its verdict, up to hold_bytes). */
  xVirusStatus: boolean;
  /** TLS towards the client: "none" (STLS removed from CAPA), "stls" (we offer STLS), "pop3s" (TLS from the first byte). */
  tls: 'none' | 'stls' | 'pop3s';
  /** PEM certificate chain and key for tls = "stls" / "pop3s". */
  tlsCert: string;
  tlsKey: string;
  shutdownGraceMs: number;
}

export interface MilterConfig {
  /** Sendmail-style socket: "inet:7357@127.0.0.1", "inet6:7357@::1", "unix:/run/midstream/milter.sock". */
  listen: string;
  /** Permission bits for a unix socket (e.g. 0o660). */
  socketMode: number;
  /** Owner and group of a unix socket (name or id; "" = the process's). */
  socketOwner: string;
  socketGroup: string;
  /** Concurrent MTA connections. */
  maxConnections: number;
  /** How often to send SMFIR_PROGRESS while a scan is running after end-of-message. */
  progressIntervalMs: number;
  /** The MTA's per-reply milter timeout (Sendmail T=R, Postfix milter_content_timeout); progress_interval must stay below it. */
  mtaTimeoutMs: number;
  /** On SIGTERM: how long messages in flight may take to finish before connections are dropped. */
  shutdownGraceMs: number;
}

export interface EngineConfig {
  /** Signature files or directories for the built-in engine (absolute paths after loading). */
  signatures: readonly string[];
}

export interface ClamdConfig {
  /** "tcp:host:port" or "unix:/path"; empty = built-in engine only. */
  endpoints: readonly string[];
  mode: 'per-file' | 'whole-message';
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  totalTimeoutMs: number;
  maxConcurrent: number;
  maxStreamBytes: number;
  healthIntervalMs: number;
  /** Results cache: verdicts remembered by content hash + clamd signature version; 0 = off. */
  cacheEntries: number;
  /** Per-file mode: also stream the raw message, finished for anomalous messages / all / none. */
  rawMessage: 'anomaly' | 'always' | 'off';
  /** Raw-message streams open at once (their own pool beside max_concurrent). */
  rawMaxConcurrent: number;
  /** Keep idle IDSESSION connections this long for reuse; 0 = a new connection per scan. */
  keepaliveMs: number;
  /** Consecutive failures that eject an endpoint. */
  healthFall: number;
  /** Consecutive good health checks (PING + VERSION) that readmit it. */
  healthRise: number;
}

export interface CacheConfig {
  /** Shared verdict cache: "redis://HOST:PORT[/DB]", "rediss://..." (TLS), "unix:/path"; "" = in-process only. */
  url: string;
  /** Overrides a password in the URL; "" = none. */
  password: string;
  ttlMs: number;
  timeoutMs: number;
  retryMs: number;
  prefix: string;
}

export interface PolicyConfig {
  bannedExtensions: readonly string[];
  bannedTypes: readonly string[];
  /** File-name globs banned beside the extensions, e.g. "*.pdf.exe". */
  bannedNames: readonly string[];
  /** Declared MIME types (globs) that are banned, e.g. "application/x-msdownload". */
  bannedMimeTypes: readonly string[];
  checkBannedInArchives: boolean;
  /** What to do with an encrypted archive (it cannot be scanned). */
  encrypted: Action;
  /** Recipients (address, domain, ".domain") who get infected mail tagged instead of blocked. */
  virusLovers: readonly string[];
  /** Recipients who get mail with banned files tagged instead of blocked. */
  bannedLovers: readonly string[];
  /** Senders (address, domain, ".domain", "<>", client CIDR) whose mail skips banned checks; never virus scanning. */
  senderAllow: readonly string[];
  /** Senders whose mail is banned ("sender blocked"); wins over senderAllow. */
  senderBlock: readonly string[];
}

/** [reply]: templates per verdict kind; "" = the built-in text. */
export type ReplyConfig = Record<Exclude<keyof Actions, never>, string>;

export interface HeadersConfig {
  /** X-Virus-Scanned value template (%V version, %H host name); "" = off. */
  scanned: string;
  /** X-Virus-Status on accepted mail too (tagged and quarantined mail always carries it). */
  status: boolean;
  /** Incoming X-Virus-Status / X-Virus-Scanned: removed, or renamed to X-Upstream-Virus-*. */
  incoming: 'remove' | 'rename';
  /** Subject prefix for tagged mail; "" = none. */
  subjectPrefix: string;
  /** %H; "" = the system host name. */
  hostname: string;
}

export interface NotifyConfig {
  /** Relay "host:port" notices are sent through; "" = no notices. */
  relay: string;
  /** Header From of notices; "" = "midstream <postmaster@HOSTNAME>". */
  from: string;
  /** Envelope sender of notices; "" = the null sender <> (no bounce loops). */
  envelopeFrom: string;
  admin: readonly string[];
  recipients: boolean;
  sender: boolean;
  /** Verdict kinds and actions that trigger notices. */
  on: readonly string[];
  maxPerMinute: number;
  queue: number;
  timeoutMs: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogConfig {
  level: LogLevel;
  /** "" = stderr; else an absolute path (relative paths resolve against the config file's directory). */
  file: string;
}

export interface MetricsConfig {
  /** "" = off; "127.0.0.1:9357"; a bare "9357" / ":9357" means loopback (normalised to "127.0.0.1:9357"). */
  listen: string;
}

export interface RuleMatch {
  /** Client address in any of these CIDRs. */
  client?: readonly string[];
  /** SMTP AUTH done (true) or not (false). */
  authenticated?: boolean;
  /** Recipient domain is one of these (lower case); ".example.org" also matches subdomains. */
  recipientDomain?: readonly string[];
  /** Envelope sender: address, domain, ".domain", "<>", or a CIDR (the client's address). */
  sender?: readonly string[];
  /** Recipient: full address, domain or ".domain". */
  recipient?: readonly string[];
  /** Proxy: the port of ours the connection came in on ([proxy] listen, listen_also). */
  listenPort?: readonly number[];
  /** Milter: the MTA's {daemon_name} (Sendmail DaemonPortOptions Name=, Postfix milter_macro_daemon_name). */
  daemonName?: readonly string[];
  /** Milter: the MTA's receiving address, {if_addr} (Sendmail) or {daemon_addr} (Postfix), as CIDRs. */
  ifAddr?: readonly string[];
}

/** One [[rules]] entry. Absent properties inherit the global [policy]/[actions]. */
export interface Rule {
  /** For logs; defaults to "rules[N]". */
  name: string;
  /** Conditions, all of which must hold; an empty match matches everything. */
  match: RuleMatch;
  skipBanned?: boolean;
  actions?: Partial<Actions>;
  bannedExtensions?: readonly string[];
  bannedTypes?: readonly string[];
  bannedNames?: readonly string[];
  bannedMimeTypes?: readonly string[];
  encrypted?: Action;
}

export interface Config {
  proxy: ProxyConfig;
  milter: MilterConfig;
  pop3: Pop3Config;
  engine: EngineConfig;
  clamd: ClamdConfig;
  cache: CacheConfig;
  policy: PolicyConfig;
  actions: Actions;
  reply: ReplyConfig;
  headers: HeadersConfig;
  notify: NotifyConfig;
  limits: Limits;
  log: LogConfig;
  metrics: MetricsConfig;
  /** First matching rule wins, per recipient (see rules.ts ruleFor). */
  rules: readonly Rule[];
}

/** What loadConfig returns: the same shape, deep-frozen. */
export type FrozenConfig = DeepReadonly<Config>;
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends readonly (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

// ---------------------------------------------------------------------------------
// Fields.

export interface ParseCtx {
  /** Directory that relative paths resolve against (config file's dir, or cwd for flags/defaults). */
  baseDir: string;
}

export interface Field<T> {
  readonly toml: string;
  readonly def: T;
  readonly doc: string;
  /** Validate and normalise; throws RangeError(reason). `path` suffix like "[2]" is added by list fields via KeyedError. */
  parse(v: unknown, ctx: ParseCtx): T;
  /** Coerce a command-line string into what parse() expects (identity for strings). */
  fromFlag(s: string): unknown;
  /** TOML text of a value. */
  render(v: T): string;
  /** A change needs a restart (the listening socket); everything else applies on SIGHUP. */
  readonly restart?: boolean;
}

/** A RangeError that knows which sub-key (e.g. "[3]" or ".client[0]") it concerns. */
export class KeyedError extends RangeError {
  constructor(
    readonly subkey: string,
    reason: string,
  ) {
    super(reason);
  }
}

export type SectionSchema<T> = { readonly [K in keyof T]-?: Field<T[K]> };

const q = (s: string) => JSON.stringify(s);
const ident = (s: string) => s;

function field<T>(f: Omit<Field<T>, 'fromFlag'> & { fromFlag?: (s: string) => unknown }): Field<T> {
  return Object.freeze({ fromFlag: ident, ...f });
}

/** Mark a field as needing a restart to change (its doc says so in the sample config). */
export function restart<T>(f: Field<T>): Field<T> {
  return Object.freeze({ ...f, restart: true, doc: `${f.doc} [restart]` });
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'a table' : `a ${typeof v}`;
}

export function str(toml: string, def: string, doc: string, check?: (s: string, ctx: ParseCtx) => string): Field<string> {
  return field({
    toml,
    def,
    doc,
    parse(v, ctx) {
      if (typeof v !== 'string') throw new RangeError(`must be a string, not ${typeName(v)}`);
      return check ? check(v, ctx) : v;
    },
    render: q,
  });
}

export function bool(toml: string, def: boolean, doc: string): Field<boolean> {
  return field({
    toml,
    def,
    doc,
    parse(v) {
      if (typeof v !== 'boolean') throw new RangeError(`must be true or false, not ${typeName(v)}`);
      return v;
    },
    fromFlag: (s) => (s === 'true' || s === 'yes' || s === '1' ? true : s === 'false' || s === 'no' || s === '0' ? false : s),
    render: String,
  });
}

export function int(toml: string, def: number, doc: string, min: number, max: number): Field<number> {
  return field({
    toml,
    def,
    doc,
    parse(v) {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new RangeError(`must be an integer, not ${typeName(v)}`);
      if (v < min || v > max) throw new RangeError(`must be between ${min} and ${max}`);
      return v;
    },
    fromFlag: (s) => (/^-?[0-9]+$/.test(s) ? Number(s) : s),
    render: String,
  });
}

export function num(toml: string, def: number, doc: string, min: number, max: number): Field<number> {
  return field({
    toml,
    def,
    doc,
    parse(v) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`must be a number, not ${typeName(v)}`);
      if (v < min || v > max) throw new RangeError(`must be between ${min} and ${max}`);
      return v;
    },
    fromFlag: (s) => (/^-?[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : s),
    render: (v) => (Number.isInteger(v) ? String(v) : String(v)),
  });
}

export function dur(toml: string, defMs: number, doc: string, minMs: number, maxMs: number): Field<number> {
  return field({
    toml,
    def: defMs,
    doc,
    parse(v) {
      const ms = parseDuration(v);
      if (ms < minMs || ms > maxMs) throw new RangeError(`must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)}`);
      return ms;
    },
    render: (v) => q(formatDuration(v)),
  });
}

export function size(toml: string, def: number, doc: string, min: number, max = Number.MAX_SAFE_INTEGER): Field<number> {
  return field({
    toml,
    def,
    doc,
    parse(v) {
      const n = parseSize(v);
      if (n < min || n > max) throw new RangeError(`must be between ${formatSize(min)} and ${formatSize(max)}`);
      return n;
    },
    fromFlag: (s) => (/^[0-9]+$/.test(s) ? Number(s) : s),
    render: (v) => {
      const t = formatSize(v);
      return /^[0-9]+$/.test(t) ? t : q(t);
    },
  });
}

export function oneOf<T extends string>(toml: string, def: T, values: readonly T[], doc: string): Field<T> {
  return field<T>({
    toml,
    def,
    doc,
    parse(v) {
      if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
        throw new RangeError(`must be one of ${values.map(q).join(', ')}`);
      }
      return v as T;
    },
    render: q,
  });
}

export function strList(
  toml: string,
  def: readonly string[],
  doc: string,
  item: (s: string, ctx: ParseCtx) => string,
  opts: { max?: number; unique?: boolean } = {},
): Field<readonly string[]> {
  const max = opts.max ?? 1000;
  return field({
    toml,
    def,
    doc,
    parse(v, ctx) {
      if (!Array.isArray(v)) throw new RangeError(`must be an array of strings, not ${typeName(v)}`);
      if (v.length > max) throw new RangeError(`at most ${max} entries`);
      const out: string[] = [];
      v.forEach((x, i) => {
        if (typeof x !== 'string') throw new KeyedError(`[${i}]`, `must be a string, not ${typeName(x)}`);
        let norm: string;
        try {
          norm = item(x, ctx);
        } catch (e) {
          throw new KeyedError(`[${i}]`, (e as Error).message);
        }
        if (!opts.unique || !out.includes(norm)) out.push(norm);
      });
      return out;
    },
    fromFlag: (s) => (s === '' ? [] : s.split(',').map((x) => x.trim())),
    render: (v) => `[${v.map(q).join(', ')}]`,
  });
}

// ---------------------------------------------------------------------------------
// Item validators shared with rules.ts.

export const ACTION_VALUES: readonly Action[] = ACTION_NAMES;
/** An encrypted archive is banned (reject), an error (tempfail) or let through (accept). */
export const ENCRYPTED_VALUES: readonly Action[] = ['reject', 'tempfail', 'accept'];
/** Type names src/core/unpack/sniff.ts sniffType() can return (keep in sync with its header). */
export const KNOWN_FILE_TYPES: readonly string[] = Object.freeze([
  'pe', 'elf', 'macho', 'java-class', 'msi', 'ole', 'rar', '7z', 'cab', 'arj', 'xz', 'lzh', 'ace', 'zstd', 'lz4',
  'cpio', 'szdd', 'chm', 'rtf', 'pdf', 'lnk', 'swf', 'wasm', 'script-shebang', 'zip', 'gzip', 'bzip2', 'tar',
]);
const SIGNATURE_EXTENSIONS = ['.ndb', '.hdb', '.hsb', '.fp', '.sfp', '.cvd', '.cld'];

export function checkCidr(s: string): string {
  parseCidr(s);
  return s;
}

export function checkExtension(s: string): string {
  const e = s.replace(/^\./, '').toLowerCase();
  if (!/^[a-z0-9_-]{1,32}$/.test(e)) throw new RangeError('an extension is 1-32 letters, digits, "_" or "-" (without the dot)');
  return e;
}

export function checkFileType(s: string): string {
  if (!KNOWN_FILE_TYPES.includes(s)) throw new RangeError(`unknown file type (known: ${KNOWN_FILE_TYPES.join(', ')})`);
  return s;
}

/** A file-name glob (name-glob.ts syntax). */
export function checkGlob(s: string): string {
  compileGlob(s);
  return s;
}

/** A MIME type glob: type/subtype, lower case, * ? [..] allowed. */
export function checkMimeGlob(s: string): string {
  const t = s.trim().toLowerCase();
  if (!/^[a-z0-9*?[\]!.+-]+\/[a-z0-9*?[\]!.+-]+$/.test(t)) throw new RangeError('must be type/subtype, e.g. "application/x-msdownload" (globs allowed)');
  compileGlob(t);
  return t;
}

export function checkDomain(s: string): string {
  const d = s.toLowerCase().replace(/\.$/, '');
  const bare = d.startsWith('.') ? d.slice(1) : d;
  if (bare === '' || !isHostname(bare)) throw new RangeError('not a domain name');
  return d;
}

/** Validate an address for its use (one grammar: src/core/address.ts); the text is kept as written. */
function checkAddress(use: AddressUse) {
  return (s: string) => {
    try {
      parseAddress(s, use);
    } catch (e) {
      throw new RangeError((e as { reason?: string }).reason ?? (e as Error).message);
    }
    return s;
  };
}

/** A user or group for a unix socket: a name or a numeric id; "" = the process's own. */
function checkAccount(s: string): string {
  if (s !== '' && !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/.test(s) && !/^[0-9]{1,10}$/.test(s)) {
    throw new RangeError('must be a user/group name or a numeric id');
  }
  return s;
}

function checkSignaturePath(s: string, ctx: ParseCtx): string {
  if (s === '') throw new RangeError('empty path');
  const p = isAbsolute(s) ? s : resolve(ctx.baseDir, s);
  if (!existsSync(p)) throw new RangeError(`no such file or directory: ${p}`);
  const st = statSync(p);
  if (st.isDirectory()) return p;
  if (!st.isFile()) throw new RangeError('not a regular file or directory');
  if (!SIGNATURE_EXTENSIONS.some((e) => p.toLowerCase().endsWith(e))) {
    throw new RangeError(`unsupported signature file type (use ${SIGNATURE_EXTENSIONS.join(' ')})`);
  }
  return p;
}

function checkHeader(s: string): string {
  if (s === '') return s;
  if (s.length > 998) throw new RangeError('header line longer than 998 characters');
  const m = /^([\x21-\x39\x3b-\x7e]+):[ \t]*(.*)$/.exec(s);
  if (!m) throw new RangeError('must be "Name: value" (printable ASCII name, no spaces)');
  if (/[^\x20-\x7e\t]/.test(m[2]!)) throw new RangeError('header value must be printable ASCII on one line');
  if (m[2]!.trim() === '') throw new RangeError('header value is empty');
  return s;
}

// ---------------------------------------------------------------------------------
// The sections.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

/** An octal file mode given as a string ("0660"); TOML would read a bare 0660 as decimal. */
function socketModeField(doc: string) {
  return field({
    toml: 'socket_mode',
    def: 0o660,
    doc,
    parse(v) {
      if (typeof v !== 'string') throw new RangeError('must be an octal string like "0660" (quoted, or TOML reads it as decimal)');
      if (!/^0?[0-7]{3}$/.test(v)) throw new RangeError('must be an octal mode like "0660"');
      return parseInt(v, 8);
    },
    render: (v: number) => q('0' + v.toString(8).padStart(3, '0')),
  });
}

export const PROXY: SectionSchema<ProxyConfig> = {
  listen: restart(str('listen', '127.0.0.1:10025', 'where Postfix smtpd_proxy_filter connects (host:port or unix:/path)', checkAddress('listen'))),
  listenAlso: restart(strList('listen_also', [], 'more sockets served the same way, e.g. one per Postfix smtpd; [[rules]] tell them apart by listen_port', checkAddress('listen'), { unique: true, max: 16 })),
  forward: str('forward', '127.0.0.1:10026', 'after-filter smtpd that receives accepted mail (host:port or unix:/path)', checkAddress('connect')),
  trustedXforward: strList('trusted_xforward', ['127.0.0.0/8', '::1/128'], 'CIDRs whose XFORWARD client facts we believe', checkCidr),
  replyBudgetMs: dur('reply_budget', 90 * SECOND, 'max time from the final "." to our reply; must stay below smtpd_proxy_timeout', SECOND, 10 * MINUTE),
  smtpdProxyTimeoutMs: dur('smtpd_proxy_timeout', 100 * SECOND, "Postfix's smtpd_proxy_timeout (its default 100s); set it here too if you change it there", SECOND, HOUR),
  maxConnections: int('max_connections', 200, 'concurrent SMTP sessions; more get 421', 1, 100_000),
  hostname: str('hostname', '', 'name in our greeting; "" = system hostname', (s) => {
    if (s !== '' && !isHostname(s)) throw new RangeError('not a hostname');
    return s;
  }),
  socketMode: restart(socketModeField('permissions of the unix socket, if listen is unix:/path (octal string)')),
  socketOwner: restart(str('socket_owner', '', 'owner of the unix socket (user name or uid); "" = the user midstream runs as', checkAccount)),
  socketGroup: restart(str('socket_group', '', 'group of the unix socket (e.g. "postfix"); "" = our own group', checkAccount)),
  addHeader: str('add_header', '', 'an extra header line added to every message passed on, e.g. "X-Filtered-By: mx1"; "" = off', checkHeader),
  afterFilterMilter: restart(str('after_filter_milter', '', 'milter socket the after-filter smtpd calls (smtpd_milters) for tag, quarantine and X-Virus-Status; "" = off (those need it)', (s) => (s === '' ? s : checkAddress('milter')(s)))),
  shutdownGraceMs: dur('shutdown_grace', MINUTE, 'on SIGTERM, time for messages in flight to finish; then connections are dropped', 0, HOUR),
};

export const MILTER: SectionSchema<MilterConfig> = {
  listen: restart(str('listen', 'inet:7357@127.0.0.1', "milter socket in Sendmail's notation: inet:PORT@HOST, inet6:PORT@HOST or unix:/path", checkAddress('milter'))),
  socketMode: restart(socketModeField('permissions of the unix socket, if listen is unix:/path (octal string)')),
  socketOwner: restart(str('socket_owner', '', 'owner of the unix socket (user name or uid); "" = the user midstream runs as', checkAccount)),
  socketGroup: restart(str('socket_group', '', 'group of the unix socket (e.g. "postfix", "smmsp"); "" = our own group', checkAccount)),
  maxConnections: int('max_connections', 1000, 'concurrent MTA connections; more are closed (the MTA applies its milter default action)', 1, 100_000),
  progressIntervalMs: dur('progress_interval', 5 * SECOND, 'send SMFIR_PROGRESS this often while scanning after end of message; must stay below mta_timeout', SECOND, 5 * MINUTE),
  mtaTimeoutMs: dur('mta_timeout', 10 * SECOND, "the MTA's milter reply timeout: Sendmail T=R (10s default), Postfix milter_content_timeout (300s)", SECOND, HOUR),
  shutdownGraceMs: dur('shutdown_grace', MINUTE, 'on SIGTERM, time for messages in flight to finish; then connections are dropped', 0, HOUR),
};

function checkPemPath(s: string, ctx: ParseCtx): string {
  if (s === '') return s;
  const p = isAbsolute(s) ? s : resolve(ctx.baseDir, s);
  if (!existsSync(p) || !statSync(p).isFile()) throw new RangeError(`no such file: ${p}`);
  return p;
}

export const POP3: SectionSchema<Pop3Config> = {
  listen: restart(str('listen', '127.0.0.1:10110', 'where POP3 clients connect (host:port or unix:/path)', checkAddress('listen'))),
  upstream: str('upstream', '127.0.0.1:110', 'the POP3 server relayed to, e.g. Dovecot (host:port or unix:/path); keep this hop local', checkAddress('connect')),
  socketMode: restart(socketModeField('permissions of the unix socket, if listen is unix:/path (octal string)')),
  socketOwner: restart(str('socket_owner', '', 'owner of the unix socket (user name or uid); "" = the user midstream runs as', checkAccount)),
  socketGroup: restart(str('socket_group', '', 'group of the unix socket; "" = our own group', checkAccount)),
  maxConnections: int('max_connections', 200, 'concurrent POP3 sessions; more get -ERR', 1, 100_000),
  idleTimeoutMs: dur('idle_timeout', 10 * MINUTE, 'client silence between commands before we close (RFC 1939: at least 10m)', SECOND, HOUR),
  upstreamTimeoutMs: dur('upstream_timeout', 2 * MINUTE, 'connecting to the upstream, and its silence while a response is due', SECOND, HOUR),
  holdBytes: size('hold_bytes', 4 * 1024 * 1024, 'message bytes one retrieval may hold back while the scan catches up (per connection)', 128 * 1024, GiB),
  holdExceeded: oneOf('hold_exceeded', 'replace', ['replace', 'stream'] as const, 'when more must be held: replace the rest with a notice, or stream on holding only the last hold_bytes'),
  xVirusStatus: bool('x_virus_status', false, 'add X-Virus-Status to retrieved messages (each is held until its verdict, up to hold_bytes)'),
  tls: oneOf('tls', 'none', ['none', 'stls', 'pop3s'] as const, 'TLS towards clients: none (STLS removed from CAPA), stls (we offer STLS), pop3s (TLS from the first byte)'),
  tlsCert: str('tls_cert', '', 'PEM certificate chain for tls = "stls"/"pop3s"', checkPemPath),
  tlsKey: str('tls_key', '', 'PEM private key for tls = "stls"/"pop3s"', checkPemPath),
  shutdownGraceMs: dur('shutdown_grace', MINUTE, 'on SIGTERM, time for retrievals in flight to finish; then connections are dropped', 0, HOUR),
};

export const ENGINE: SectionSchema<EngineConfig> = {
  signatures: strList('signatures', [], 'built-in engine: .ndb .hdb .hsb .fp .sfp .cvd .cld files or directories; EICAR is always built in', checkSignaturePath, { unique: true }),
};

export const CLAMD: SectionSchema<ClamdConfig> = {
  endpoints: strList('endpoints', [], 'clamd sockets "tcp:HOST:PORT" or "unix:/path"; empty = built-in engine only', checkAddress('clamd'), { max: 64, unique: true }),
  mode: oneOf('mode', 'per-file', ['per-file', 'whole-message'] as const, 'send each decoded file, or the raw message once'),
  connectTimeoutMs: dur('connect_timeout', 2 * SECOND, 'connecting to clamd', 100, MINUTE),
  idleTimeoutMs: dur('idle_timeout', 30 * SECOND, 'silence from clamd while it scans', 100, 10 * MINUTE),
  totalTimeoutMs: dur('total_timeout', 60 * SECOND, "from the end of a file to clamd's answer (the upload runs at the client's pace)", 100, HOUR),
  maxConcurrent: int('max_concurrent', 8, 'clamd connections at once, per endpoint', 1, 1024),
  maxStreamBytes: size('max_stream_bytes', 25 * 1024 * 1024, 'bytes per INSTREAM; keep <= clamd StreamMaxLength (larger = limit verdict)', 1024, 4 * GiB),
  healthIntervalMs: dur('health_interval', 15 * SECOND, 'PING each endpoint this often', SECOND, HOUR),
  cacheEntries: int('cache_entries', 10_000, 'results cache: clamd verdicts remembered by content hash + signature version; 0 = off', 0, 10_000_000),
  rawMessage: oneOf('raw_message', 'anomaly', ['anomaly', 'always', 'off'] as const, 'per-file mode: also stream the raw message to clamd; scanned when the message shows an anomaly, always, or off'),
  rawMaxConcurrent: int('raw_max_concurrent', 32, 'raw-message streams open at once; keep max_concurrent + this below clamd MaxQueue (100)', 1, 1024),
  keepaliveMs: dur('keepalive', 10 * SECOND, 'reuse TCP clamd connections (IDSESSION) idle up to this long; "0s" = a new connection per scan (unix sockets always are)', 0, 10 * MINUTE),
  healthFall: int('health_fall', 3, 'consecutive failed scans or checks that eject an endpoint (a refused connect ejects at once)', 1, 100),
  healthRise: int('health_rise', 2, 'consecutive good checks (PING + VERSION) that readmit an ejected endpoint', 1, 100),
};

export const CACHE: SectionSchema<CacheConfig> = {
  url: str('url', '', 'shared verdict cache: "redis://HOST:PORT[/DB]", "rediss://..." (TLS) or "unix:/path"; "" = in-process only', (s) => {
    if (s !== '') parseRedisUrl(s);
    return s;
  }),
  password: str('password', '', 'Redis/Valkey password (overrides one in url); "" = none'),
  ttlMs: dur('ttl', HOUR, 'how long a verdict is remembered, in both tiers', SECOND, 30 * 24 * HOUR),
  timeoutMs: dur('timeout', 100, 'deadline per Redis command; slower counts as down (fall back to local cache + clamd)', 10, 10 * SECOND),
  retryMs: dur('retry', 5 * SECOND, 'after a Redis failure, skip it this long before trying again', 100, 10 * MINUTE),
  prefix: str('prefix', 'midstream:', 'key namespace; change it to drop every cached verdict (e.g. new third-party signatures)', (s) => {
    if (!/^[\x21-\x7e]{0,64}$/.test(s)) throw new RangeError('printable ASCII without spaces, at most 64 characters');
    return s;
  }),
};

export const POLICY: SectionSchema<PolicyConfig> = {
  bannedExtensions: strList('banned_extensions', DEFAULT_BANNED_EXTENSIONS, 'attachment name extensions that are banned (last extension counts)', checkExtension, { unique: true }),
  bannedTypes: strList('banned_types', DEFAULT_BANNED_TYPES, 'file types by magic bytes: pe elf macho java-class msi ole rar 7z cab ... (see src/core/unpack/sniff.ts)', checkFileType, { unique: true }),
  bannedNames: strList('banned_names', [], 'file-name globs banned beside the extensions, e.g. "*.pdf.exe", "invoice*.zip" (* ? [a-z])', checkGlob, { unique: true }),
  bannedMimeTypes: strList('banned_mime_types', DEFAULT_BANNED_MIME_TYPES, 'declared MIME types of parts that are banned (globs, e.g. "application/x-ms*")', checkMimeGlob, { unique: true }),
  checkBannedInArchives: bool('check_banned_in_archives', true, 'apply the banned lists to archive members too'),
  encrypted: oneOf('encrypted', 'reject', ENCRYPTED_VALUES, 'encrypted archive (cannot be scanned): reject, tempfail or accept (accept = fail-open)'),
  virusLovers: strList('virus_lovers', [], 'recipients (address, domain, ".domain") who get infected mail tagged and delivered instead of blocked', (s) => checkAddressItem(s, false), { unique: true }),
  bannedLovers: strList('banned_lovers', [], 'recipients who get mail with banned files tagged and delivered instead of blocked', (s) => checkAddressItem(s, false), { unique: true }),
  senderAllow: strList('sender_allow', [], 'senders (address, domain, ".domain", "<>", or client CIDR) whose mail skips banned checks; virus scanning always runs', (s) => checkAddressItem(s, true), { unique: true }),
  senderBlock: strList('sender_block', [], 'senders whose mail is refused as banned ("sender blocked"); wins over sender_allow', (s) => checkAddressItem(s, true), { unique: true }),
};

function checkTemplate(s: string): string {
  if (s !== '') parseReplyTemplate(s);
  return s;
}

export const REPLY: SectionSchema<ReplyConfig> = {
  infected: str('infected', '', 'reply to infected mail, e.g. "550 5.7.1 Virus found: %v" (%v name, %r reason, %w where); "" = built-in', checkTemplate),
  banned: str('banned', '', 'reply to banned mail, e.g. "550 5.7.1 Attachment refused: %r (%w)"; "" = built-in', checkTemplate),
  limit: str('limit', '', 'reply when a limit was exceeded; "" = built-in', checkTemplate),
  anomaly: str('anomaly', '', 'reply to ambiguous structure; "" = built-in', checkTemplate),
  unparseable: str('unparseable', '', 'reply to unreadable input; "" = built-in', checkTemplate),
  error: str('error', '', 'reply when the message could not be scanned (keep it generic); "" = built-in', checkTemplate),
};

export const HEADERS: SectionSchema<HeadersConfig> = {
  scanned: str('scanned', 'midstream %V on %H', 'X-Virus-Scanned value on mail passed on (%V version, %H host name); "" = off', (s) => {
    if (s !== '' && !/^[\x20-\x7e]{1,200}$/.test(s)) throw new RangeError('printable ASCII on one line, at most 200 characters');
    if (/%[^VH%]/.test(s)) throw new RangeError('unknown placeholder (known: %V %H %%)');
    return s;
  }),
  status: bool('status', false, 'X-Virus-Status: Clean on accepted mail (tagged and quarantined mail always carry X-Virus-Status)'),
  incoming: oneOf('incoming', 'remove', ['remove', 'rename'] as const, 'X-Virus-Status/X-Virus-Scanned from outside: remove, or rename to X-Upstream-Virus-*'),
  subjectPrefix: str('subject_prefix', '', 'prefix for the Subject of tagged mail, e.g. "***VIRUS*** "; "" = none', (s) => {
    if (!/^[\x20-\x7e]{0,60}$/.test(s)) throw new RangeError('printable ASCII, at most 60 characters');
    return s;
  }),
  hostname: str('hostname', '', 'host name for %H; "" = the system host name', (s) => {
    if (s !== '' && !isHostname(s)) throw new RangeError('not a hostname');
    return s;
  }),
};

export const NOTIFY_ON_VALUES: readonly string[] = Object.freeze(['infected', 'banned', 'limit', 'anomaly', 'unparseable', 'error', ...ACTION_NAMES]);

export const NOTIFY: SectionSchema<NotifyConfig> = {
  relay: str('relay', '', 'SMTP relay "host:port" notices go through (e.g. the local MTA); "" = no notices', (s) => {
    if (s === '') return s;
    checkAddress('connect')(s);
    if (s.startsWith('unix:')) throw new RangeError('must be host:port (notices go out over SMTP on TCP)');
    return s;
  }),
  from: str('from', '', 'From of notices; "" = "midstream <postmaster@HOSTNAME>"', (s) => {
    if (!/^[\x20-\x7e]{0,200}$/.test(s)) throw new RangeError('printable ASCII, at most 200 characters');
    return s;
  }),
  envelopeFrom: str('envelope_from', '', 'envelope sender of notices; "" = the null sender <> (bounces of notices cannot loop)', (s) => (s === '' ? s : checkAddressItem(s, false))),
  admin: strList('admin', [], 'admin addresses that get a notice for each message listed in `on`', (s) => {
    const a = checkAddressItem(s, false);
    if (!a.includes('@')) throw new RangeError('must be a full address');
    return a;
  }, { unique: true, max: 20 }),
  recipients: bool('recipients', false, 'notify each envelope recipient of mail not delivered to them (rejected, discarded, quarantined)'),
  sender: bool('sender', false, 'notify the envelope sender too (off: a forged sender turns notices into backscatter)'),
  on: strList('on', ['infected', 'banned', 'quarantine'], 'verdict kinds and actions that trigger notices', (s) => {
    if (!NOTIFY_ON_VALUES.includes(s)) throw new RangeError(`must be one of ${NOTIFY_ON_VALUES.join(', ')}`);
    return s;
  }, { unique: true }),
  maxPerMinute: int('max_per_minute', 60, 'notices sent per minute at most (a burst of infected mail cannot flood the admin)', 1, 100_000),
  queue: int('queue', 1000, 'notices waiting to be sent; more are dropped (logged and counted)', 1, 1_000_000),
  timeoutMs: dur('timeout', 30 * SECOND, 'connecting to the relay and each of its replies', SECOND, 10 * MINUTE),
};

export const ACTIONS: SectionSchema<Actions> = {
  infected: oneOf('infected', DEFAULT_ACTIONS.infected, ACTION_VALUES, 'virus found (reject, tempfail, quarantine, tag, discard or accept)'),
  banned: oneOf('banned', DEFAULT_ACTIONS.banned, ACTION_VALUES, 'banned name or type'),
  limit: oneOf('limit', DEFAULT_ACTIONS.limit, ACTION_VALUES, 'a [limits] value was exceeded (accept = fail-open)'),
  anomaly: oneOf('anomaly', DEFAULT_ACTIONS.anomaly, ACTION_VALUES, 'ambiguous structure clients may read differently (message/partial, zip directory mismatch...)'),
  unparseable: oneOf('unparseable', DEFAULT_ACTIONS.unparseable, ACTION_VALUES, 'input that cannot be read (corrupt archive): deterministic, so tempfail would loop'),
  error: oneOf('error', DEFAULT_ACTIONS.error, ACTION_VALUES, 'could not scan: scanner down, timeout, internal error (accept = fail-open, logged at startup)'),
};

const L = DEFAULT_LIMITS;
export const LIMITS: SectionSchema<Limits> = {
  headerLineBytes: size('header_line_bytes', L.headerLineBytes, 'one unfolded header line', 1000, GiB),
  headerBytes: size('header_bytes', L.headerBytes, 'one header block', 1024, GiB),
  headerFields: int('header_fields', L.headerFields, 'header fields per header block', 10, 10_000_000),
  boundaryBytes: int('boundary_bytes', L.boundaryBytes, 'longest MIME boundary tracked (RFC 2046 allows 70)', 70, 65_536),
  mimeDepth: int('mime_depth', L.mimeDepth, 'multipart / message/rfc822 nesting', 1, 10_000),
  mimeParts: int('mime_parts', L.mimeParts, 'MIME parts per message', 1, 10_000_000),
  decodedBytes: size('decoded_bytes', L.decodedBytes, 'transfer-decoded bytes per message', 1024, TiB),
  unpackedBytes: size('unpacked_bytes', L.unpackedBytes, 'decompressed bytes per message, all archives', 1024, TiB),
  ratio: num('ratio', L.ratio, 'max output/input ratio of one compressed stream', 2, 1_000_000),
  ratioGraceBytes: size('ratio_grace_bytes', L.ratioGraceBytes, 'output before the ratio is checked', 0, GiB),
  archiveDepth: int('archive_depth', L.archiveDepth, 'archive nesting depth', 0, 100),
  archiveEntries: int('archive_entries', L.archiveEntries, 'entries per archive and per message', 1, 10_000_000),
  messageBytes: size('message_bytes', L.messageBytes, 'raw message size; 0 = no limit (Postfix message_size_limit applies first)', 0, TiB),
  scanTimeMs: dur('scan_time', L.scanTimeMs, 'wall-clock budget to scan one message', SECOND, HOUR),
};

export const LOG: SectionSchema<LogConfig> = {
  level: oneOf('level', 'info', ['debug', 'info', 'warn', 'error'] as const, 'debug, info, warn or error'),
  file: str('file', '', 'JSON-lines log file; "" = stderr', (s, ctx) => (s === '' || isAbsolute(s) ? s : resolve(ctx.baseDir, s))),
};

export const METRICS: SectionSchema<MetricsConfig> = {
  listen: restart(str('listen', '', 'Prometheus /metrics address; "" = off; a bare ":9357" binds loopback', (s) => (s === '' ? '' : formatAddress(parseAddress(checkAddress('metrics')(s), 'metrics'))))),
};

/** Section name → schema, in the order they are printed. `rules` is handled by rules.ts. */
export const SECTIONS = {
  proxy: PROXY,
  milter: MILTER,
  pop3: POP3,
  engine: ENGINE,
  clamd: CLAMD,
  cache: CACHE,
  policy: POLICY,
  actions: ACTIONS,
  reply: REPLY,
  headers: HEADERS,
  notify: NOTIFY,
  limits: LIMITS,
  log: LOG,
  metrics: METRICS,
} as const satisfies { [K in Exclude<keyof Config, 'rules'>]: SectionSchema<Config[K]> };

export type SectionName = keyof typeof SECTIONS;

/** A section's defaults, straight from its schema. */
export function sectionDefaults<T>(s: SectionSchema<T>): T {
  const out = {} as Record<string, unknown>;
  for (const [k, f] of Object.entries(s) as [string, Field<unknown>][]) out[k] = Array.isArray(f.def) ? [...f.def] : f.def;
  return out as T;
}
