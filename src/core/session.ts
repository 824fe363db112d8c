/**
 * session.ts — one message through the core: raw bytes → MIME → transfer-decode →
 * unpack (recursively) → scanners → one verdict.
 *
 * Input: raw RFC 5322 bytes in any chunking (push), then end(). Output: a Verdict.
 * Everything is push-driven and synchronous except clamd streams, whose
 * backpressure surfaces as the promise push() returns.
 *
 * The verdict latch: an outcome whose action is `reject` (by default infected,
 * banned, limit) is final at once — onFinal fires, scanners are aborted, and all
 * later input is only counted, never processed, so nothing can weaken it. A banned
 * name or type is offered only when that file has been scanned to its end (its own
 * scanners' results included): a file that is both banned and infected is reported as
 * the virus it is (EICAR named eicar.com is infected, not banned). Other
 * outcomes (errors, or kinds the admin set to tempfail/accept) are kept and the
 * worst one (reject > tempfail > accept, then infected > banned > limit > error)
 * decides at end(). A thrown exception is a bug in a state machine: the session
 * stops processing and ends in error('internal'), which maps to a tempfail.
 *
 * Raw message beside the per-file scans (clamd `raw_message`, a RawMessageSource). In
 * 'anomaly' mode the first RAW_HOLD_BYTES of the message are held; a message that ends
 * within them opens no clamd connection at all unless it showed an anomaly. Past them a
 * speculative raw stream is opened (only if a raw slot is free now: waiting here, while
 * this session may hold per-file slots, could deadlock) and fed every raw byte; at end() it
 * is finished only if the message showed an anomaly or a structural warning — something a
 * client might read differently — else abandoned, which costs clamd no scan. An anomalous
 * message whose raw stream got no slot ends in error (tempfail): never accepted unscanned.
 * In 'always' mode every message is streamed, and the session parses nothing before its raw
 * stream holds a slot (raw slot first, per-file slots after: one lock order, no deadlock).
 *
 * Where-paths: MIME path (IMAP numbering), "/" + file name, then "!" + member
 * path per archive level, e.g. `2.1/invoice.zip!docs/a.exe`.
 *
 * Release gate (release-gate.ts): every sink below (MessageParser, FileNode, TeeSink)
 * also reports how much of its input it still holds back (`Holding`), so a front that
 * delivers the message while it is scanned (POP3) knows how far it may go. Whole-message
 * streams and 'always' raw-message streams make the whole message evidence: nothing is
 * released before the end. An 'anomaly' raw stream is scanned only when the message
 * shows an anomaly or a warning: from the first one on, the gate stops (what came before
 * was read unambiguously and scanned per file).
 */
import { setMaxListeners } from 'node:events';
import type { ByteSink, Envelope, FileInfo, LimitName, ScanResult, Verdict } from './types.js';
import type { Limits } from './limits.js';
import { ACTION_RANK, SEVERITY, replyFor, type Action, type Actions, type Reply, type ReplyTemplates } from './policy-table.js';
import type { MimeHandler, PartInfo } from './mime/mime-events.js';
import type { SplitterView } from './mime/mime-events.js';
import { MimeReadings, MAX_READINGS } from './mime/mime-readings.js';
import { Base64Decoder, createDecoder, type Decoder } from './decode/index.js';
import { UuExtractor } from './decode/uu-extractor.js';
import { sniffArchive, sniffType } from './unpack/sniff.js';
import { createEmbeddedZipUnpacker, createUnpacker, EocdWatch, MAX_UNDECIDED, opensAsZip } from './unpack/index.js';
import type { EntryMeta, UnpackBudget, UnpackHandler, Unpacker } from './unpack/unpack-types.js';
import type { RawMessageSource, RawMessageStream, Scanner, ScanStream } from './scan/scanner.js';
import { bannedMimeReason, bannedNameReason, bannedTypeReason, extensionOf } from './banned.js';
import type { GlobList } from './name-glob.js';
import { latin1Bytes } from './mime/charset.js';
import { DECODER_SLACK, OffsetMap, UNPACK_LAG, ZIP_TAIL, type Holding, type ReleaseGate, type StructureEvent } from './release-gate.js';

/** The policy one message is scanned under (an immutable snapshot per message). */
export interface MessagePolicy {
  limits: Readonly<Limits>;
  actions: Readonly<Actions>;
  bannedExtensions: ReadonlySet<string>;
  bannedTypes: ReadonlySet<string>;
  checkBannedInArchives: boolean;
  /** Trusted senders may skip banned-name/type checks; virus scanning is never skipped. */
  skipBanned: boolean;
  /** What an encrypted archive is: reject/tempfail/accept (the others are not meaningful here). */
  encrypted: Action;
  /** Banned file-name globs beside the extensions, e.g. `*.pdf.exe`. */
  bannedNames: GlobList;
  /** Banned declared MIME types (globs), e.g. `application/x-msdownload`. */
  bannedMimeTypes: GlobList;
  /** Reply templates per verdict kind (the admin's texts), if any. */
  replies?: ReplyTemplates;
  /** The envelope is refused by policy (a blocked sender): the message is `banned` with this reason. */
  blocked?: string;
}

/** What a verdict hook is told, once per message, when its verdict is settled. */
export interface VerdictEvent {
  verdict: Verdict;
  /** What the MTA is told, from the one policy table under this message's actions. */
  reply: Reply;
  policy: Readonly<MessagePolicy>;
  /** The [[rules]] that chose the policy, if any (names joined by ","). */
  rule?: string;
  envelope: Envelope;
  stats: Readonly<SessionStats>;
  /** begin() to verdict, ms. */
  scanMs: number;
  /** end() to verdict, ms; 0 when the verdict latched before the end of data. */
  eodMs: number;
  /** The verdict latched before end() (the fronts reject without waiting for the end). */
  early: boolean;
}

/** Hooks one session calls; all optional, none may throw (a throwing hook is ignored). */
export interface SessionHooks {
  /** Each structural anomaly seen (for a metric). */
  anomaly?: (code: string) => void;
  /** Once per message with a verdict (not for aborted messages without one). */
  verdict?: readonly ((e: VerdictEvent) => void)[];
  /** Once, when the session needs no scanner any more (verdict latched, end() settled, or abort()). */
  done?: () => void;
}

export interface SessionStats {
  bytes: number;
  /** Every structural anomaly seen (`code@where`, bounded), read every way or not; for logs and metrics. */
  anomalies: string[];
  parts: number;
  decodedBytes: number;
  archives: number;
  files: number;
  unpackedBytes: number;
  warnings: string[];
  /**
   * clamd `raw_message`: how the scan of the raw message ended, when one was asked for
   * (always mode, or an anomalous message): clean | infected | limit (our byte cap) |
   * error (clamd failed: the error kind is in the verdict) | no-slot (anomalous, and no raw
   * slot was free: tempfail). Absent when no raw scan was asked for (abandoned streams
   * cost clamd nothing and are not counted) or the verdict latched before it ended.
   */
  rawScan?: RawScanResult;
}

export type RawScanResult = 'clean' | 'infected' | 'limit' | 'error' | 'no-slot';

/** undefined for a stream we aborted ourselves (another verdict latched first): no scan ended. */
function rawScanResult(r: ScanResult): RawScanResult | undefined {
  if (r.kind !== 'error') return r.kind;
  if (r.errorKind === 'aborted') return undefined;
  return r.errorKind === 'scanner-size-limit' ? 'limit' : 'error';
}

/** Bytes a file node holds back to sniff its type; also the longest delay before scanning starts. */
const HEAD_BYTES = 1024;
const MAX_WARNINGS = 20;
const MAX_ANOMALIES = 50;
/** raw_message "anomaly": bytes held before a raw stream is opened (a shorter message never opens one unless anomalous). */
const RAW_HOLD_BYTES = 32 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();
/** What push() returns when nothing needs awaiting: a front may compare and skip the await (one promise hop less per read). */
export const PUSHED = RESOLVED;

export class MessageSession {
  private final: Verdict | null = null;
  private broken = false;
  private ended = false;
  private readonly soft: Verdict[] = [];
  /** The message was read several ways at some point: verdicts are decided at the end from then on. */
  private multiEver = false;
  private readonly callbacks: ((v: Verdict) => void)[] = [];
  private readonly pending: Promise<void>[] = [];
  private drainWait: ScanStream[] = [];
  private readonly open = new Set<ScanStream>();
  private readonly ac = new AbortController();
  private readonly root: MessageParser;
  private readonly whole: { stream: ScanStream; engine: string; keeps: boolean }[] = [];
  private raw: RawMessageStream | null = null;
  /** 'anomaly' mode: the message's first bytes, until RAW_HOLD_BYTES (then the raw stream opens). */
  private rawHeld: Buffer[] | null = null;
  private rawHeldBytes = 0;
  /** 'anomaly' mode and no raw slot was free: an anomalous message cannot be accepted. */
  private rawMissing = false;
  /** 'always' mode: parsing waits until the raw stream holds its slot. */
  private rawGate: Promise<void> | null = null;
  readonly perFile: Scanner[];
  readonly budget: UnpackBudget;
  readonly stats: SessionStats = {
    bytes: 0, anomalies: [], parts: 0, decodedBytes: 0, archives: 0, files: 0, unpackedBytes: 0, warnings: [],
  };
  readonly started = Date.now();
  private readonly t0 = performance.now();
  private endAt: number | null = null;
  private reported = false;
  private finished = false;
  readonly gate: ReleaseGate;
  private released = 0;
  private frozen = false;
  /** Whole-message or raw-message streams whose results are not in: the whole message is held. */
  private wholeHeld = true;
  private readonly structureCbs: ((e: StructureEvent) => void)[] = [];

  constructor(
    readonly policy: MessagePolicy,
    scanners: readonly Scanner[],
    readonly envelope: Envelope = {},
    private readonly hooks: SessionHooks = {},
    readonly rule?: string,
    private readonly rawSource: RawMessageSource | null = null,
  ) {
    const l = policy.limits;
    this.budget = {
      unpackedBytes: 0, maxUnpackedBytes: l.unpackedBytes, entries: 0, maxEntries: l.archiveEntries,
      maxRatio: l.ratio, ratioGraceBytes: l.ratioGraceBytes,
    };
    this.perFile = scanners.filter((s) => s.mode === 'per-file');
    for (const s of scanners) {
      if (s.mode !== 'whole-message') continue;
      const stream = s.open({ where: '(message)', archiveDepth: 0 }, this.ac.signal);
      this.open.add(stream);
      this.whole.push({ stream, engine: s.name, keeps: s.keepsChunks === true });
    }
    if (rawSource?.mode === 'always') {
      const stream = (this.raw = rawSource.open(this.ac.signal, true)!);
      this.open.add(stream);
      this.rawGate = stream.ready();
    } else if (rawSource) this.rawHeld = [];
    this.wholeHeld = this.whole.length > 0 || rawSource?.mode === 'always';
    const self = this;
    this.gate = {
      get releasable() {
        return self.releasable();
      },
      onStructure: (cb) => this.structureCbs.push(cb),
    };
    // One listener per open scan stream; bounded by the file count, freed with the session.
    setMaxListeners(0, this.ac.signal);
    this.root = new MessageParser(this, '', 0, 0, [], { decoded: 0, parts: 0, unpack: this.budget }, MAX_READINGS);
    // A blocked sender is decided before any content: banned, under the banned action.
    if (policy.blocked) this.offer({ kind: 'banned', reason: policy.blocked, where: '(envelope)' });
  }

  get verdict(): Verdict | null {
    return this.final;
  }

  /** True once nothing more needs processing (final verdict or broken state machine). */
  get done(): boolean {
    return this.final !== null || this.broken;
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  onFinal(cb: (v: Verdict) => void): void {
    this.callbacks.push(cb);
    if (this.final) cb(this.final);
  }

  push(chunk: Uint8Array): Promise<void> {
    if (this.ended) throw new Error('push after end');
    if (this.rawGate) return this.pushAfterGate(this.rawGate, chunk);
    this.stats.bytes += chunk.length;
    if (this.done || chunk.length === 0) return RESOLVED;
    const max = this.policy.limits.messageBytes;
    if (max > 0 && this.stats.bytes > max) {
      this.limit('message-bytes', '(message)');
      return RESOLVED;
    }
    try {
      for (const w of this.whole) this.feed(w.stream, w.keeps ? new Uint8Array(chunk) : chunk, '(message)', w.engine);
      if (this.rawHeld) this.holdRaw(chunk);
      else if (this.raw) this.feed(this.raw, chunk, '(message)', this.rawSource!.engine);
      if (!this.done) this.root.write(chunk);
    } catch (err) {
      this.bug(err);
    }
    if (this.drainWait.length === 0 || this.done) return RESOLVED;
    const wait = this.drainWait;
    this.drainWait = [];
    return Promise.all(wait.map((s) => s.drain())).then(() => undefined);
  }

  /**
   * 'always' mode before the raw stream holds its slot. A method of its own: a closure
   * over `chunk` inside push() would put `chunk` in push()'s context, and every promise
   * push() returns would keep the caller's (borrowed) socket buffer alive while it waits.
   */
  private pushAfterGate(gate: Promise<void>, borrowed: Uint8Array): Promise<void> {
    // Chained on one promise, so pushes that were not awaited keep their order; the
    // caller may reuse its buffer once push() returns, so keep a copy meanwhile.
    const chunk = Buffer.from(borrowed);
    return gate.then(() => {
      if (this.rawGate === gate) this.rawGate = null;
      // Aborted (client gone) while waiting: the bytes are no longer wanted.
      return this.ended ? undefined : this.push(chunk);
    });
  }

  /**
   * Bytes this session can take in one push without a scan stream going over its
   * high-water mark: the least room among its open streams, and the room a stream opened
   * by this push would start with (a clamd stream waiting for a slot holds little).
   * Every stream gets at most the bytes pushed (decoding only shrinks them), so a front
   * that reads at most this much keeps buffering streams at their marks instead of one
   * socket read over them. Infinity when nothing bounded is open or can open (built-in
   * engine only, verdict latched); 0 while a stream needs a drain.
   */
  room(): number {
    if (this.done || this.ended) return Infinity;
    let room = Infinity;
    for (const st of this.open) {
      const r = st.room;
      if (r !== undefined && r < room) room = r;
    }
    for (const sc of this.perFile) {
      const r = sc.openRoom;
      if (r !== undefined && r < room) room = r;
    }
    return room;
  }

  async end(): Promise<Verdict> {
    if (!this.ended) {
      if (this.rawGate) await this.rawGate;
      this.ended = true;
      this.endAt = performance.now();
      if (!this.done) {
        try {
          this.root.end();
          for (const w of this.whole) this.track(w.stream, w.stream.end(), '(message)', w.engine);
          this.endRaw();
        } catch (err) {
          this.bug(err);
        }
      }
      await this.settle();
      this.wholeHeld = false;
    }
    const v = this.decide();
    this.report(v);
    this.finish();
    return v;
  }

  abort(): void {
    this.ended = true;
    this.stopScanners();
    this.finish();
  }

  /**
   * Everything before the entity being processed now was scanned and settled without a
   * verdict, so a front may deliver up to its start; then nothing more.
   */
  private freezeGate(): void {
    if (!this.broken && !this.wholeHeld) this.released = Math.max(this.released, this.root.cutFloor());
    this.frozen = true;
  }

  /** See ReleaseGate.releasable: frozen once a verdict that is not accepted came, or a state machine broke. */
  private releasable(): number {
    if (this.frozen || this.broken) return this.released;
    const r = this.wholeHeld ? 0 : this.root.safeIn();
    if (r > this.released) this.released = r;
    return this.released;
  }

  /**
   * A readings group has several readings now (see offer()): from here on every reject
   * waits for the end — results still to come from other engines, or from files that
   * end while several readings are alive, included.
   */
  readings(_group: object, several: boolean): void {
    if (several) this.multiEver = true;
  }

  /** Someone follows the structure (a front delivering while it scans): events are worth building. */
  get wantsStructure(): boolean {
    return this.structureCbs.length > 0;
  }

  structure(e: StructureEvent): void {
    for (const cb of this.structureCbs) safe(cb, e);
  }

  /** True when clients might read this message differently from us: scan it raw too. */
  get readDifferently(): boolean {
    return this.stats.anomalies.length > 0 || this.stats.warnings.length > 0;
  }

  /** 'anomaly' mode: hold the first bytes; past RAW_HOLD_BYTES open the speculative stream (never waiting). */
  private holdRaw(chunk: Uint8Array): void {
    const held = this.rawHeld!;
    if (this.rawHeldBytes + chunk.length <= RAW_HOLD_BYTES) {
      held.push(Buffer.from(chunk));
      this.rawHeldBytes += chunk.length;
      return;
    }
    this.rawHeld = null;
    this.rawHeldBytes = 0;
    const src = this.rawSource!;
    const stream = src.open(this.ac.signal, false);
    if (!stream) {
      this.rawMissing = true;
      return;
    }
    this.raw = stream;
    this.open.add(stream);
    for (const b of held) this.feed(stream, b, '(message)', src.engine);
    this.feed(stream, chunk, '(message)', src.engine);
  }

  /** Finish the raw-message stream (always, or when the message showed an anomaly) or abandon it unscanned. */
  private endRaw(): void {
    const src = this.rawSource;
    if (!src || this.done) return;
    const scan = src.mode === 'always' || this.readDifferently;
    const held = this.rawHeld;
    this.rawHeld = null;
    if (!scan) {
      if (this.raw) {
        this.open.delete(this.raw);
        this.raw.abort();
      }
      return;
    }
    if (!this.raw && held) {
      // A short anomalous message: its bytes are all here. At end() every per-file stream
      // has ended (their slots free themselves as clamd answers), so waiting for a raw
      // slot now cannot deadlock; the wait is bounded by the clamd total deadline.
      this.raw = src.open(this.ac.signal, true)!;
      this.open.add(this.raw);
      for (const b of held) this.raw.write(b);
    }
    if (this.raw) {
      const r = this.raw.end();
      // Noted before track() applies it, so the verdict hooks (metric, log line) see it.
      const noted = r instanceof Promise ? r.then((x) => ((this.stats.rawScan ??= rawScanResult(x)), x)) : ((this.stats.rawScan ??= rawScanResult(r)), r);
      this.track(this.raw, noted, '(message)', src.engine);
    } else if (this.rawMissing) {
      this.stats.rawScan = 'no-slot';
      this.offer({ kind: 'error', errorKind: 'scanner-unavailable', where: '(message)', detail: 'anomalous message and no clamd slot was free for its raw stream (raw_message)' });
    }
  }

  // ---- called by parsers and file nodes -------------------------------------------

  offer(v: Verdict): void {
    if (this.final) return;
    const action = v.kind === 'clean' ? 'accept' : this.policy.actions[v.kind];
    // Release gate: a verdict that will not be accepted stops delivery where it stands
    // (tempfail: the front drops the client at the end; nothing more of it goes out).
    if (action !== 'accept' && !this.frozen) this.freezeGate();
    if (action !== 'reject' || this.multiEver) {
      // Keep one of each kind, the least by content: enough to decide, bounded whatever the
      // input, and the same whatever order the readings report in. While the message is
      // read several ways, even a reject waits for the end: the readings are fed one after
      // another, so which one reports first depends on the chunking; the least verdict by
      // (action, severity, content) does not.
      const k = this.soft.findIndex((s) => s.kind === v.kind);
      if (k < 0) this.soft.push(v);
      else if (verdictKey(v) < verdictKey(this.soft[k]!)) this.soft[k] = v;
      return;
    }
    this.final = v;
    this.stopScanners();
    for (const cb of this.callbacks) cb(v);
    // Latched before end(): the fronts answer now and may never call end().
    if (this.endAt === null) {
      this.report(v);
      this.finish();
    }
  }

  limit(which: LimitName, where: string): void {
    this.offer({ kind: 'limit', which, where });
  }

  warn(code: string, where: string): void {
    if (this.rawSource?.mode === 'anomaly' && !this.frozen) this.freezeGate();
    if (this.stats.warnings.length < MAX_WARNINGS) this.stats.warnings.push(`${code}@${where}`);
  }

  /**
   * A structural anomaly: a place where clients could read the message differently.
   * Always recorded (bounded) and counted. `verdict` = it could not be read every way,
   * so it becomes a named `anomaly` verdict for policy instead of a guess.
   */
  anomaly(code: string, where: string, verdict = false): void {
    const a = this.stats.anomalies;
    const item = `${code}@${where}`;
    if (a.length < MAX_ANOMALIES && !a.includes(item)) a.push(item);
    if (this.rawSource?.mode === 'anomaly' && !this.frozen) this.freezeGate();
    if (this.hooks.anomaly) safe(this.hooks.anomaly, code);
    if (verdict) this.offer({ kind: 'anomaly', which: code, where });
  }

  /** Deterministically unreadable input (corrupt archive, ...): the rest of it was not scanned. */
  unparseable(reason: string, where: string, detail?: string): void {
    this.offer({ kind: 'unparseable', reason, where, ...(detail ? { detail } : {}) });
  }

  encryptedEntry(where: string): void {
    const a = this.policy.encrypted;
    if (a === 'reject') this.offer({ kind: 'banned', reason: 'encrypted archive', where });
    else if (a === 'tempfail') this.offer({ kind: 'error', errorKind: 'encrypted', where });
    else this.warn('encrypted-accepted', where);
  }

  result(r: ScanResult, where: string, engine: string): void {
    if (r.kind === 'infected') this.offer({ kind: 'infected', name: r.name, where, engine });
    // Our own byte cap (clamd StreamMaxLength): deterministic, a retry cannot help, so it
    // is a limit for policy (reject by default), not a tempfail that would loop forever.
    else if (r.kind === 'error' && r.errorKind === 'scanner-size-limit') this.limit('scan-bytes', where);
    else if (r.kind === 'error') {
      this.offer({ kind: 'error', errorKind: r.errorKind, where, ...(r.detail ? { detail: r.detail } : {}) });
    }
  }

  openStream(scanner: Scanner, info: FileInfo): ScanStream {
    const s = scanner.open(info, this.ac.signal);
    this.open.add(s);
    return s;
  }

  /** Write to a scan stream; early results latch, backpressure is collected for push(). */
  feed(stream: ScanStream, chunk: Uint8Array, where: string, engine: string, unpacked = false): void {
    const r = unpacked && stream.writeUnpacked ? stream.writeUnpacked(chunk) : stream.write(chunk);
    if (r && stream === this.raw) this.stats.rawScan ??= rawScanResult(r); // an early reply (clamd found something mid-stream)
    if (r) this.result(r, where, engine);
    if (stream.needsDrain && !this.drainWait.includes(stream)) this.drainWait.push(stream);
  }

  /** Record a stream's final result; `settled` runs right after it is applied (release gate). */
  track(stream: ScanStream, r: Promise<ScanResult> | ScanResult, where: string, engine: string, settled?: () => void): void {
    if (!(r instanceof Promise)) {
      this.open.delete(stream);
      this.result(r, where, engine);
      settled?.();
      return;
    }
    this.pending.push(
      r.then(
        (res) => {
          this.open.delete(stream);
          this.result(res, where, engine);
          settled?.();
        },
        (err) => {
          this.open.delete(stream);
          this.offer({ kind: 'error', errorKind: 'internal', where, detail: String(err) });
          settled?.();
        },
      ),
    );
  }

  // ---- internals ---------------------------------------------------------------------

  /** The verdict hooks, once per message. */
  private report(v: Verdict): void {
    if (this.reported) return;
    this.reported = true;
    const hooks = this.hooks.verdict;
    if (!hooks || hooks.length === 0) return;
    const now = performance.now();
    const e: VerdictEvent = {
      verdict: v,
      reply: replyFor(v, this.policy.actions, this.policy.replies),
      policy: this.policy,
      envelope: this.envelope,
      stats: this.stats,
      scanMs: now - this.t0,
      eodMs: this.endAt === null ? 0 : now - this.endAt,
      early: this.endAt === null,
      ...(this.rule ? { rule: this.rule } : {}),
    };
    for (const h of hooks) safe(h, e);
  }

  /** No scanner is needed any more: the engine may close once all its sessions finished. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.hooks.done) safe(this.hooks.done, undefined);
  }

  private bug(err: unknown): void {
    this.broken = true;
    this.soft.push({ kind: 'error', errorKind: 'internal', where: '(message)', detail: String((err as Error)?.stack ?? err) });
    this.stopScanners();
  }

  private stopScanners(): void {
    if (!this.ac.signal.aborted) this.ac.abort();
    for (const s of this.open) s.abort();
    this.open.clear();
  }

  /** Wait for scanner results, bounded by the scan-time limit. */
  private async settle(): Promise<void> {
    if (this.pending.length === 0 || this.done) return;
    const left = this.policy.limits.scanTimeMs - (Date.now() - this.started);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), Math.max(0, left));
    });
    // A final verdict settles everything early: no need to wait for slower engines.
    const early = new Promise<'final'>((res) => this.onFinal(() => res('final')));
    const all = Promise.all(this.pending).then(() => 'done' as const);
    const r = await Promise.race([all, timeout, early]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.limit('scan-time', '(message)');
      this.stopScanners();
    }
  }

  private decide(): Verdict {
    if (this.final) return this.final;
    let best: Verdict = { kind: 'clean' };
    let bestRank = Infinity;
    for (const v of this.soft) {
      if (v.kind === 'clean') continue;
      // Strictest action first (ACTION_RANK: reject > tempfail > discard > quarantine > tag > accept), then the worse kind;
      // ties by a stable key, so the verdict does not depend on which reading found it first.
      const rank = (10 - ACTION_RANK[this.policy.actions[v.kind]]) * 10 + SEVERITY[v.kind];
      if (rank < bestRank || (rank === bestRank && verdictKey(v) < verdictKey(best))) {
        best = v;
        bestRank = rank;
      }
    }
    return best;
  }
}

/** Hooks are observers: a bug in one must not change a verdict. */
function safe<T>(fn: (arg: T) => void, arg: T): void {
  try {
    fn(arg);
  } catch {
    // ignored by design (see SessionHooks)
  }
}

/** A total order on verdicts of one kind (their content), for choices that must not depend on arrival order. */
function verdictKey(v: Verdict): string {
  switch (v.kind) {
    case 'clean':
      return '';
    case 'infected':
      return `${v.name}\0${v.where}\0${v.engine}`;
    case 'banned':
      return `${v.reason}\0${v.where}`;
    case 'limit':
      return `${v.which}\0${v.where}`;
    case 'anomaly':
      return `${v.which}\0${v.where}`;
    case 'unparseable':
      return `${v.reason}\0${v.where}\0${v.detail ?? ''}`;
    case 'error':
      return `${v.errorKind}\0${v.where}\0${v.detail ?? ''}`;
  }
}

/** Joins a nested message's prefix to an inner MIME path. */
function joinPath(prefix: string, p: string): string {
  if (!prefix) return p;
  return p.startsWith('(') ? `${prefix}/${p}` : `${prefix}.${p}`;
}

/** Transfer encodings decoded as identity: the raw bytes are what a reader sees. */
function isIdentity(cte: string): boolean {
  return cte !== 'base64' && cte !== 'quoted-printable';
}

/**
 * What one reading of a message may spend. Each reading has its own (a fork starts with a
 * copy of its parent's), so the readings' outcomes do not depend on the order they are fed
 * in; memory and work stay bounded by readings × limits.
 */
interface ReadingBudget {
  decoded: number;
  parts: number;
  unpack: UnpackBudget;
}

function copyBudget(b: ReadingBudget): ReadingBudget {
  return { decoded: b.decoded, parts: b.parts, unpack: { ...b.unpack } };
}

/**
 * One RFC 5322 message — the top-level one, an attached message/*, the decoded body of a
 * multipart under a decoding CTE, or an entity found in text — read every way
 * MimeReadings finds, one Reading each. `rawBase`: where its first byte sits in the
 * session's raw input (null when it is not visible there: transfer-encoded, or a reading
 * of our own); `outer`: the delimiters open around it.
 * Release gate: it holds back what the most cautious of its readings holds back.
 */
class MessageParser implements ByteSink, Holding {
  private readonly group: MimeReadings;
  readonly readings: Reading[] = [];
  inCount = 0;
  private ended = false;

  constructor(
    private readonly s: MessageSession,
    prefix: string,
    depth: number,
    rawBase: number | null,
    outer: readonly string[],
    budget: ReadingBudget,
    maxReadings: number,
  ) {
    const l = s.policy.limits;
    const root = new Reading(s, this, prefix, depth, budget, maxReadings, rawBase, outer, true);
    // Nested messages spend the same depth budget as multipart nesting.
    this.group = new MimeReadings(root, { ...l, mimeDepth: Math.max(1, l.mimeDepth - depth) }, maxReadings, (n) => s.readings(this, n > 1));
  }

  write(chunk: Uint8Array): void {
    this.inCount += chunk.length;
    if (!this.s.done) this.group.write(chunk);
  }

  end(): void {
    this.ended = true;
    if (!this.s.done) this.group.end();
    this.s.readings(this, false);
  }

  private live(): Reading[] {
    return this.readings.filter((r) => !r.gone);
  }

  safeIn(): number {
    if (this.settled()) return this.inCount;
    let safe = this.inCount;
    for (const r of this.live()) safe = Math.min(safe, r.safeIn());
    return Math.max(0, safe);
  }

  settled(): boolean {
    return this.ended && this.live().every((r) => r.settled());
  }

  /** Where the entity being processed now begins in the most cautious reading (release gate). */
  cutFloor(): number {
    let f = this.inCount;
    for (const r of this.live()) f = Math.min(f, r.cutFloor());
    return f;
  }
}

/** The events of one reading of a message: decode each leaf, scan it, check every name it could have. */
class Reading implements MimeHandler {
  private splitter: SplitterView | null = null;
  private decoder: Decoder | null = null;
  private sink: (ByteSink & Holding) | null = null;
  private alt: { decoder: Decoder; sink: FileNode; out: (b: Uint8Array) => void } | null = null;
  private inHeader = true;
  private headerAt = 0;
  /** The current part: decoded output count → raw position. */
  private map: OffsetMap | null = null;
  /** Ended parts whose results are still pending, with the raw floor they hold. */
  private held: { floor: number; node: Holding }[] = [];
  private readonly out = (b: Uint8Array): void => this.deliver(b, this.sink);

  constructor(
    private readonly s: MessageSession,
    private readonly msg: MessageParser,
    private readonly prefix: string,
    private readonly depth: number,
    private budget: ReadingBudget,
    private readonly maxReadings: number,
    private readonly rawBase: number | null,
    private readonly outer: readonly string[],
    /** The first reading: the one whose structure the release gate reports. */
    private readonly first: boolean,
  ) {
    msg.readings.push(this);
  }

  /** Dropped (merged into another reading, or not a plausible reading after all). */
  get gone(): boolean {
    return this.splitter?.dead ?? false;
  }

  attach(splitter: SplitterView): void {
    this.splitter = splitter;
  }

  // ---- release gate ---------------------------------------------------------------

  safeIn(): number {
    let safe = this.msg.inCount - (this.splitter?.carryBytes ?? 0);
    if (this.inHeader) safe = Math.min(safe, this.headerAt);
    if (this.sink && this.map) safe = Math.min(safe, this.map.inputFor(this.sink.safeIn()));
    // the skip-`=` reading's file has no mapping of its own: hold from the part's start
    if (this.alt && this.map) safe = Math.min(safe, this.map.floor);
    // ended parts hold only until they settle (drop those that did: nothing else prunes
    // them before the message ends, and the gate would stay at the first one)
    if (this.held.length > 0) this.held = this.held.filter((h) => !h.node.settled());
    for (const h of this.held) safe = Math.min(safe, h.floor);
    return safe;
  }

  settled(): boolean {
    if (this.held.length > 0) this.held = this.held.filter((h) => !h.node.settled());
    return this.held.length === 0 && (this.sink === null || this.sink.settled());
  }

  cutFloor(): number {
    let f = this.headerAt;
    for (const h of this.held) if (!h.node.settled()) f = Math.min(f, h.floor);
    return f;
  }

  onBlock(kind: 'header' | 'body', path: string, encoding: string): void {
    const sp = this.splitter!;
    this.inHeader = kind === 'header';
    if (this.inHeader) this.headerAt = sp.offset;
    if (this.rawBase === null || !this.first || !this.s.wantsStructure) return;
    this.s.structure({
      kind,
      offset: this.rawBase + sp.offset,
      path: joinPath(this.prefix, path),
      delimiters: [...this.outer, ...sp.delimiters],
      encoding,
    });
  }

  // ---- parts --------------------------------------------------------------------------

  private deliver(b: Uint8Array, sink: ByteSink | null): void {
    const s = this.s;
    s.stats.decodedBytes += b.length;
    this.budget.decoded += b.length;
    if (this.budget.decoded > s.policy.limits.decodedBytes) {
      s.limit('decoded-bytes', this.prefix || '(message)');
      return;
    }
    if (!s.done && sink) sink.write(b);
  }

  /**
   * A message inside this reading. Nested messages get fewer readings each (a bounded
   * product: 8·4·2·1); `rawBase` only for an attached message sent as-is in the first
   * reading (its structure is visible in the raw bytes).
   */
  private nested(path: string, depth: number, rawBase: number | null): MessageParser {
    return new MessageParser(this.s, path, depth, rawBase, [...this.outer, ...this.splitter!.delimiters], this.budget, Math.max(1, this.maxReadings >> 1));
  }

  onPartStart(part: PartInfo): void {
    const s = this.s;
    const sp = this.splitter!;
    const path = joinPath(this.prefix, part.path);
    s.stats.parts++;
    if (++this.budget.parts > s.policy.limits.mimeParts) {
      s.limit('mime-parts', path);
      return;
    }
    const where = part.filename ? `${path}/${part.filename}` : path;
    // Every name a client could give it (names.ts), not only the one we show, and its
    // declared type (leaf parts). A banned name or type is settled when the file has been
    // scanned to its end: a virus in it wins.
    let banned: Verdict | null = null;
    if (!s.policy.skipBanned) {
      for (const name of part.names ?? (part.filename ? [part.filename] : [])) {
        const reason = bannedNameReason(name, s.policy.bannedExtensions, s.policy.bannedNames);
        if (reason) {
          banned = { kind: 'banned', reason, where: `${path}/${name}` };
          break;
        }
      }
      if (!banned && part.role === 'leaf') {
        const reason = bannedMimeReason(part.contentType, s.policy.bannedMimeTypes);
        if (reason) banned = { kind: 'banned', reason, where };
      }
      // clients would save it under different extensions: worth counting (charset
      // spellings of one name are not)
      if (part.names && new Set(part.names.map(extensionOf)).size > 1) s.anomaly('name-variants', path);
    }
    const decoder = createDecoder(part.transferEncoding);
    this.decoder = decoder;
    this.map = new OffsetMap(sp.offset, DECODER_SLACK[part.transferEncoding] ?? 0);
    const ct = part.contentType;
    const depth = this.depth + part.depth + 1;
    const info: FileInfo = { where, archiveDepth: 0, contentType: ct };
    if (part.filename) info.name = part.filename;
    if (part.role === 'leaf' && part.boundary !== undefined) {
      // A multipart under base64 / quoted-printable / uuencode: another reading splits its
      // raw bytes; this one decodes them and reads the result as that multipart's body too
      // (clients that decode first), besides scanning the decoded bytes as one file.
      const file = new FileNode(s, info, this.budget.unpack, banned);
      if (depth >= s.policy.limits.mimeDepth) {
        s.limit('mime-depth', path);
        this.sink = file;
        return;
      }
      const inner = this.nested(path, depth, null);
      inner.write(syntheticHeader(ct, part.boundary));
      this.sink = new Both(inner, file);
      return;
    }
    if (part.role === 'leaf' && ct.startsWith('message/')) {
      // Every message/* is a message to Python's email (rfc822, global, news, partial,
      // external-body, unknown subtypes) and an attached file to mailparser: both readings.
      if (ct === 'message/partial') s.anomaly('message-partial', path, true);
      if (s.done) return;
      const file = new FileNode(s, info, this.budget.unpack, banned);
      if (depth >= s.policy.limits.mimeDepth) {
        s.limit('mime-depth', path);
        this.sink = file;
        return;
      }
      const base = this.first && this.rawBase !== null && isIdentity(part.transferEncoding) ? this.rawBase + sp.offset : null;
      this.sink = new Both(this.nested(path, depth, base), file);
      return;
    }
    const file = new FileNode(s, info, this.budget.unpack, banned);
    // uuencoded files: found in decoded text (Thunderbird, ripmime), in any part sent
    // as-is or quoted-printable (ripmime scans its text, whatever the type), and under a
    // uuencode CTE (Python decodes those). Not in base64 binary parts: nobody does.
    const uu = ct === '' || ct.startsWith('text/') || part.transferEncoding !== 'base64';
    // ripmime reads text, preamble and epilogue as messages too (a close delimiter is a
    // separator to it): a header block inside them starts an entity we read as well.
    const entity = (part.role !== 'leaf' || ct === '' || ct.startsWith('text/')) && depth < s.policy.limits.mimeDepth;
    this.sink =
      uu || entity
        ? new TeeSink(file, (hold) => {
            const extra: ByteSink[] = [];
            if (uu) extra.push(new UuExtractor((name) => hold(uuFile(s, where, name, this.budget.unpack))));
            if (entity) extra.push(new EmbeddedEntity((at) => hold(this.nested(path, depth, null), at)));
            return extra.length === 1 ? extra[0]! : new Fan(extra);
          })
        : file;
    if (decoder instanceof Base64Decoder) {
      decoder.onDiverge = (altDecoder, rest, dropTail) => {
        // data after a `=` that cut a quantum short: Python reads on through it
        s.anomaly('base64-pad-inside', path);
        const altFile = file.forkHead(dropTail) ?? new FileNode(s, info, this.budget.unpack, null, true);
        const alt = (this.alt = { decoder: altDecoder, sink: altFile, out: (b: Uint8Array) => this.deliver(b, altFile) });
        altDecoder.write(rest, alt.out);
      };
    }
  }

  onPartData(chunk: Uint8Array): void {
    if (this.s.done || !this.decoder) return;
    // an alternative reading born during this write was already given the rest of it
    const alt = this.alt;
    this.decoder.write(chunk, this.out);
    if (alt && !this.s.done) alt.decoder.write(chunk, alt.out);
    if (this.sink && this.map) this.map.add(this.splitter!.offset, this.sink.inCount);
  }

  onPartEnd(): void {
    if (this.decoder && !this.s.done) this.decoder.end(this.out);
    if (this.sink && !this.s.done) {
      this.sink.end();
      if (!this.sink.settled() && this.map) this.held.push({ floor: this.map.inputFor(this.sink.safeIn()), node: this.sink });
    }
    if (this.alt && !this.s.done) {
      this.alt.decoder.end(this.alt.out);
      if (!this.s.done) this.alt.sink.end();
      if (!this.alt.sink.settled() && this.map) this.held.push({ floor: this.map.floor, node: this.alt.sink });
    }
    this.decoder = null;
    this.sink = null;
    this.alt = null;
    this.map = null;
  }

  onLimit(which: LimitName, path: string): void {
    this.s.limit(which, joinPath(this.prefix, path) || '(message)');
  }

  onWarning(code: string, path: string): void {
    this.s.warn(code, joinPath(this.prefix, path) || '(message)');
  }

  onAnomaly(code: string, path: string, verdict: boolean): void {
    this.s.anomaly(code, joinPath(this.prefix, path) || '(message)', verdict);
  }

  onFork(): MimeHandler | null {
    if (this.s.done) return null;
    return new Reading(this.s, this.msg, this.prefix, this.depth, copyBudget(this.budget), this.maxReadings, this.rawBase, this.outer, false);
  }

  onMerge(into: MimeHandler): void {
    // the reading kept goes on for both: it may spend what the busier one spent
    if (into instanceof Reading) {
      const a = into.budget;
      const b = this.budget;
      a.decoded = Math.max(a.decoded, b.decoded);
      a.parts = Math.max(a.parts, b.parts);
      a.unpack.unpackedBytes = Math.max(a.unpack.unpackedBytes, b.unpack.unpackedBytes);
      a.unpack.entries = Math.max(a.unpack.entries, b.unpack.entries);
    }
  }
}

/** The header a decoded multipart body is read under (boundary quoted, `"` and `\` escaped). */
function syntheticHeader(type: string, boundary: string): Uint8Array {
  const q = boundary.replace(/["\\]/g, (c) => '\\' + c);
  return latin1Bytes(`Content-Type: ${type}; boundary="${q}"\r\n\r\n`);
}

/** A file found uuencoded inside a part: named, so banned-name policy applies (settled at its end). */
function uuFile(s: MessageSession, where: string, name: string, budget: UnpackBudget): FileNode {
  const w = name ? `${where}/${name}` : `${where}/(uuencoded)`;
  let banned: Verdict | null = null;
  if (!s.policy.skipBanned && name) {
    // `begin 644 "a.exe"`: some decoders strip the quotes
    for (const n of new Set([name, name.replace(/^["']+|["']+$/g, '')])) {
      const reason = bannedNameReason(n, s.policy.bannedExtensions, s.policy.bannedNames);
      if (reason) {
        banned = { kind: 'banned', reason, where: `${where}/${n}` };
        break;
      }
    }
  }
  const info: FileInfo = { where: w, archiveDepth: 0 };
  if (name) info.name = name;
  return new FileNode(s, info, budget, banned);
}

/**
 * A part read two ways at once (an attached message parsed and scanned as a file; a
 * decoded multipart body parsed and scanned as a file). Release gate: the more cautious.
 */
class Both implements ByteSink, Holding {
  inCount = 0;
  constructor(
    private readonly a: ByteSink & Holding,
    private readonly b: ByteSink & Holding,
  ) {}
  write(chunk: Uint8Array): void {
    this.inCount += chunk.length;
    this.a.write(chunk);
    this.b.write(chunk);
  }
  end(): void {
    this.a.end();
    this.b.end();
  }
  safeIn(): number {
    return Math.min(this.a.safeIn(), this.b.safeIn());
  }
  settled(): boolean {
    return this.a.settled() && this.b.settled();
  }
}

/** Several plain sinks fed the same bytes. */
class Fan implements ByteSink {
  constructor(private readonly sinks: readonly ByteSink[]) {}
  write(chunk: Uint8Array): void {
    for (const x of this.sinks) x.write(chunk);
  }
  end(): void {
    for (const x of this.sinks) x.end();
  }
}

const DASH_BYTE = 0x2d;
const EMPTY_BYTES = new Uint8Array(0);
const ONTENT = latin1Bytes('ontent');
const ONTENT_UPPER = latin1Bytes('ONTENT');

function isAt(buf: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word[k]) return false;
  return true;
}

/**
 * Text that holds a MIME header block is read as an entity too: ripmime unpacks every text
 * part (and the preamble and epilogue) as a message of its own, so a part hidden behind a
 * delimiter no strict reader sees, or behind a close delimiter, is one it extracts. The
 * trigger is a line starting with `Content-` (or `CONTENT-`); the entity is read from that
 * line to the end of the text. Cost for other text: one native search for `-` per write.
 * State between writes: at most TAIL bytes that may still become the trigger.
 */
class EmbeddedEntity implements ByteSink {
  private static readonly TAIL = 8;
  private entity: ByteSink | null = null;
  /** The last bytes of the previous write (a `\nConten` split across writes). */
  private tail: Uint8Array = EMPTY_BYTES;
  private atStart = true;
  private count = 0;

  /** `open(at)`: the entity's sink; `at` = where in this text it begins. */
  constructor(private readonly open: (at: number) => ByteSink) {}

  write(chunk: Uint8Array): void {
    this.count += chunk.length;
    if (this.entity) return this.entity.write(chunk);
    const buf = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const at = this.find(buf);
    if (at >= 0) {
      this.entity = this.open(this.count - buf.length + at);
      this.entity.write(buf.subarray(at));
      this.tail = EMPTY_BYTES;
      return;
    }
    const keep = Math.min(buf.length, EmbeddedEntity.TAIL);
    this.atStart = this.atStart && buf.length <= keep;
    // only a line start among the last bytes can begin a trigger the next write completes
    let open = this.atStart;
    for (let k = buf.length - keep; k < buf.length && !open; k++) open = buf[k] === 0x0a || buf[k] === 0x0d;
    this.tail = open ? buf.slice(buf.length - keep) : EMPTY_BYTES;
  }

  /**
   * Index of a `Content-` / `CONTENT-` (first letter either case) that starts a line in
   * buf, or -1. Searched by its `-`: a rare byte in text, so the native search runs at
   * memchr speed (a needle starting with a common letter does not).
   */
  private find(buf: Buffer): number {
    for (let k = buf.indexOf(DASH_BYTE, 7); k >= 0; k = buf.indexOf(DASH_BYTE, k + 1)) {
      const c = k - 7;
      if ((buf[c] === 0x43 || buf[c] === 0x63) && (c === 0 ? this.atStart : buf[c - 1] === 0x0a || buf[c - 1] === 0x0d) && (isAt(buf, c + 1, ONTENT) || isAt(buf, c + 1, ONTENT_UPPER))) return c;
    }
    return -1;
  }

  end(): void {
    this.entity?.end();
  }
}

/** Register a sink found inside a text part (held from `at`, default: this write's start). */
type Hold = <T extends ByteSink & Holding>(n: T, at?: number) => T;

/**
 * A text part: the file itself, and the readers of its text (uuencoded files, an entity
 * found in it). Release gate: what they hold is held from where it began until settled.
 */
class TeeSink implements ByteSink, Holding {
  inCount = 0;
  private ended = false;
  private writeStart = 0;
  private held: { at: number; node: Holding }[] = [];
  private readonly b: ByteSink;

  constructor(
    private readonly a: FileNode,
    makeB: (hold: Hold) => ByteSink,
  ) {
    const hold: Hold = (n, at) => {
      this.held.push({ at: Math.min(at ?? this.writeStart, this.writeStart), node: n });
      return n;
    };
    this.b = makeB(hold);
  }

  write(chunk: Uint8Array): void {
    this.writeStart = this.inCount;
    this.inCount += chunk.length;
    this.a.write(chunk);
    this.b.write(chunk);
  }

  end(): void {
    this.ended = true;
    this.a.end();
    this.b.end();
  }

  safeIn(): number {
    if (this.settled()) return this.inCount;
    let safe = this.a.safeIn();
    for (const u of this.held) safe = Math.min(safe, u.at);
    return safe;
  }

  settled(): boolean {
    if (this.held.length > 0) this.held = this.held.filter((u) => !u.node.settled());
    return this.ended && this.held.length === 0 && this.a.settled();
  }
}

/**
 * One file: a decoded MIME leaf or an archive member. Holds back HEAD_BYTES to sniff
 * its real type (names lie), then streams to every per-file scanner and, if it is an
 * archive we unpack, to an unpacker whose members are FileNodes one level deeper.
 * A file not sniffed as zip is also read for a zip inside it (clients open zips from
 * the end of a file, whatever is in front): an embedded-mode zip unpacker.
 * clamd sees top-level files only (archives whole), never members: it would unpack again.
 */
/** One unpacker that yields members (the format's, or the embedded-zip search), for the release gate. */
interface MemberSource {
  /** Input it may have taken without emitting what that yields (release-gate.ts UNPACK_LAG). */
  lag: number;
  member: FileNode | null;
  /** The current member's output count → this file's input position. */
  map: OffsetMap | null;
}

/** A file's sniffing head before its first bytes (allocated only if they come in pieces). */
const NO_HEAD = new Uint8Array(0);

class FileNode implements ByteSink, Holding {
  private head: Uint8Array | null = NO_HEAD;
  private headLen = 0;
  private streams: { stream: ScanStream; engine: string; keeps: boolean }[] = [];
  private unpacker: Unpacker | null = null;
  // Release gate: bytes in, bytes scanned, how far back evidence reaches (Infinity = the
  // whole file, for engines that answer only at its end), results still pending, and the
  // member sources of `unpacker` and `zipSearch`.
  inCount = 0;
  private fed = 0;
  private reach = 0;
  private ended = false;
  private pendingResults = 0;
  /** end() has issued everything of this file (its scanners ended, its unpackers ended). */
  private issued = false;
  private writeStart = 0;
  private readonly sources: MemberSource[] = [];
  /** A zip may sit anywhere in a file (self-extractor stubs, junk in front, polyglots): read for it. */
  private zipSearch: Unpacker | null = null;
  /** At the depth limit we don't unpack, but a zip a client would open still trips the limit. */
  private eocd: EocdWatch | null = null;
  /**
   * The unpacker's limit or corruption verdict, offered at this file's end: its own
   * scanners still read the rest of the raw bytes first (nothing after the damage was
   * unpacked, so they are the only reading of it), which keeps the outcome independent of
   * where the chunks happen to end.
   */
  private stopped: (() => void) | null = null;
  private ending = false;
  /**
   * Streams that skip what the members read (ScanStream.writeUnpacked) read an archive
   * only as far as its unpacker has decided each byte's fate (Unpacker.decided); the rest
   * (fewer than MAX_UNDECIDED bytes at the end of the input: a partial inflate slice) waits
   * here, copied, until a later write decides it, or is read as it is at the file's end.
   */
  private deferring = false;
  private undecided: Uint8Array | null = null;
  private undecidedLen = 0;

  /**
   * `banned`: this file's name is banned. It is offered only after the file was scanned to
   * its end (its own scanners' results included), so a virus in it wins over the name.
   */
  constructor(
    private readonly s: MessageSession,
    private readonly info: FileInfo,
    private readonly budget: UnpackBudget,
    private banned: Verdict | null = null,
    /** Read from the middle (another decoding of a file under way): no type sniff, no unpacking. */
    private readonly fragment = false,
  ) {
    s.stats.files++;
  }

  /**
   * Another reading of this file from here on (the base64 skip-`=` reading): a new node
   * with the same held-back head minus its last `drop` bytes, or null once scanning has
   * started (the head is gone: the caller reads the rest as a fragment).
   */
  forkHead(drop: number): FileNode | null {
    if (!this.head || drop > this.headLen) return null;
    const f = new FileNode(this.s, { ...this.info }, this.budget, this.banned);
    f.head = new Uint8Array(HEAD_BYTES);
    f.head.set(this.head.subarray(0, this.headLen - drop));
    f.headLen = this.headLen - drop;
    f.inCount = f.headLen;
    return f;
  }

  write(chunk: Uint8Array): void {
    this.inCount += chunk.length;
    if (this.s.done) return;
    let head = this.head;
    if (head) {
      if (this.headLen === 0 && chunk.length >= HEAD_BYTES) {
        this.start(chunk);
        return;
      }
      if (head === NO_HEAD) head = this.head = new Uint8Array(HEAD_BYTES);
      const n = Math.min(chunk.length, HEAD_BYTES - this.headLen);
      head.set(chunk.subarray(0, n), this.headLen);
      this.headLen += n;
      if (this.headLen < HEAD_BYTES) return;
      this.start(head);
      if (n < chunk.length) this.feed(chunk.subarray(n));
      return;
    }
    this.feed(chunk);
  }

  end(): void {
    this.ended = true;
    if (this.s.done) return;
    if (this.head) this.start(this.head.subarray(0, this.headLen));
    if (this.s.done) return;
    if (this.undecidedLen > 0) {
      // Still undecided at the end (the last stream's final partial slice): read as it is.
      this.readDecided(this.undecided!.subarray(0, this.undecidedLen), false);
      this.undecidedLen = 0;
      if (this.s.done) return;
    }
    this.undecided = null;
    for (const { stream, engine } of this.streams) {
      this.pendingResults++;
      this.s.track(stream, stream.end(), this.info.where, engine, () => {
        this.pendingResults--;
        this.offerBanned();
      });
    }
    this.streams = [];
    // The scanners have read everything: a stop seen while writing counts now, and what the
    // unpackers find from here on (truncation, directory checks) counts as it is found.
    this.ending = true;
    if (this.stopped && !this.s.done) this.stopped();
    this.stopped = null;
    this.unpacker?.end();
    this.zipSearch?.end();
    if (this.eocd && opensAsZip(this.eocd.candidate())) this.s.limit('archive-depth', this.info.where);
    this.issued = true;
    this.offerBanned();
  }

  /**
   * A banned name or type counts once this file was scanned to its end and its own
   * scanners answered (all of it issued, no result pending): a virus found in it wins.
   * Synchronous with the last result, so the release gate never sees the file settled
   * before its banned verdict is offered.
   */
  private offerBanned(): void {
    if (!this.issued || this.pendingResults > 0 || !this.banned) return;
    const v = this.banned;
    this.banned = null;
    if (!this.s.done) this.s.offer(v);
  }


  safeIn(): number {
    if (this.settled()) return this.inCount;
    if (this.head !== null) return 0; // the type sniff has not run yet
    let safe: number;
    if (this.ended && this.pendingResults === 0) safe = this.fed;
    else safe = Number.isFinite(this.reach) ? this.fed - this.undecidedLen - this.reach : 0;
    for (const src of this.sources) if (src.member && src.map) safe = Math.min(safe, src.map.inputFor(src.member.safeIn()));
    return Math.max(0, safe);
  }

  settled(): boolean {
    return this.ended && this.pendingResults === 0 && this.sources.every((src) => src.member === null || src.member.settled());
  }

  /** Sniff, apply type policy, open scanners and maybe an unpacker, then feed the held-back head. */
  private start(first: Uint8Array): void {
    const s = this.s;
    const { info } = this;
    this.head = null;
    const inArchive = info.archiveDepth > 0;
    const format = this.fragment ? null : sniffArchive(first);
    if (!this.fragment && !s.policy.skipBanned && (!inArchive || s.policy.checkBannedInArchives) && !this.banned && s.policy.bannedTypes.size > 0) {
      const reason = bannedTypeReason(sniffType(first, format), s.policy.bannedTypes);
      // Settled at the end of this file, like a banned name (see the constructor).
      if (reason) this.banned = { kind: 'banned', reason, where: info.where };
    }
    const atDepthLimit = info.archiveDepth >= s.policy.limits.archiveDepth;
    if (format) {
      if (atDepthLimit) {
        s.limit('archive-depth', info.where);
        if (s.done) return;
      } else {
        s.stats.archives++;
        this.unpacker = createUnpacker(format, this.memberHandler(this.source(UNPACK_LAG[format] ?? Infinity)), this.budget);
        info.unpacked = true;
      }
    }
    if (format !== 'zip' && !this.fragment) {
      if (atDepthLimit) this.eocd = new EocdWatch();
      else this.zipSearch = createEmbeddedZipUnpacker(this.memberHandler(this.source(UNPACK_LAG.zip!)), this.budget);
    }
    // A zip's end (central directory, end record, a comment with an archive in it) can
    // still change the verdict when its last member is long done: its last ZIP_TAIL bytes
    // stay held until the end has been read.
    if (format === 'zip' || this.zipSearch || this.eocd) this.reach = ZIP_TAIL;
    for (const sc of s.perFile) {
      // clamd gets whole top-level files and unpacks archives itself (it knows more
      // formats and methods than we do); members are for the built-in engine and policy.
      if (sc.name === 'clamd' && info.archiveDepth > 0) continue;
      this.streams.push({ stream: s.openStream(sc, info), engine: sc.name, keeps: sc.keepsChunks === true });
      this.reach = Math.max(this.reach, sc.reach ?? Infinity);
    }
    this.deferring = this.unpacker?.unpackedRanges !== undefined && this.streams.some((x) => x.stream.writeUnpacked !== undefined);
    if (first.length > 0) this.feed(first);
  }

  /**
   * The unpacker goes first: it tells which bytes its members carry (deflate data it
   * inflated, stored data it passed on), and scanners that read the members need not read
   * those twice (ScanStream.writeUnpacked). So members are scanned before their archive's
   * own bytes, and those scanners read the archive only as far as the unpacker has decided.
   */
  private feed(chunk: Uint8Array): void {
    const s = this.s;
    this.writeStart = this.fed;
    this.fed += chunk.length;
    const u = this.unpacker;
    if (u) {
      u.write(chunk);
      s.stats.unpackedBytes = Math.max(s.stats.unpackedBytes, this.budget.unpackedBytes);
      if (s.done) return;
    }
    const where = this.info.where;
    for (const { stream, engine, keeps } of this.streams) {
      if (this.deferring && stream.writeUnpacked) continue;
      // Chunks are borrowed (decoders and inflate reuse their buffers): a keeper gets a copy.
      s.feed(stream, keeps ? new Uint8Array(chunk) : chunk, where, engine);
      if (s.done) return;
    }
    if (this.deferring) {
      this.feedDecided(chunk, u!.decided ?? this.fed, u!.unpackedRanges!());
      if (s.done) return;
    }
    this.zipSearch?.write(chunk);
    this.eocd?.write(chunk);
    s.stats.unpackedBytes = Math.max(s.stats.unpackedBytes, this.budget.unpackedBytes);
    // Input below fed − lag has yielded all its output: at most member.inCount bytes.
    for (const src of this.sources) if (src.member && src.map) src.map.add(this.fed - src.lag, src.member.inCount);
  }

  /**
   * Input positions [from, to) — the bytes held undecided, then `chunk` — go to the
   * skipping streams now: `ranges` through writeUnpacked, the rest through write(); the
   * bytes from `to` on are held for a later write.
   */
  private feedDecided(chunk: Uint8Array, decided: number, ranges: readonly number[]): void {
    const chunkAt = this.fed - chunk.length;
    const from = chunkAt - this.undecidedLen;
    // Never behind what was read, never past the input, never more held than an unpacker leaves undecided.
    const to = Math.min(this.fed, Math.max(decided, from, this.fed - MAX_UNDECIDED));
    let p = from;
    for (let i = 0; i < ranges.length && !this.s.done; i += 2) {
      const a = Math.max(ranges[i]!, p);
      const b = Math.min(ranges[i + 1]!, to);
      if (b <= a) continue;
      if (a > p) this.readSpan(chunk, from, p, a, false);
      if (!this.s.done) this.readSpan(chunk, from, a, b, true);
      p = b;
    }
    if (p < to && !this.s.done) this.readSpan(chunk, from, p, to, false);
    if (this.s.done) return;
    const n = this.fed - to;
    if (n > 0) {
      const h = (this.undecided ??= new Uint8Array(MAX_UNDECIDED));
      if (to >= chunkAt) h.set(chunk.subarray(to - chunkAt));
      else {
        // Some held bytes are still undecided: move them to the front (only when some were read), append the chunk.
        if (to > from) h.copyWithin(0, to - from, this.undecidedLen);
        h.set(chunk, chunkAt - to);
      }
    }
    this.undecidedLen = n;
  }

  /** Input positions [a, b): from the held bytes (which begin at `from`) and/or from `chunk`. */
  private readSpan(chunk: Uint8Array, from: number, a: number, b: number, unpacked: boolean): void {
    const chunkAt = this.fed - chunk.length;
    if (a < chunkAt) this.readDecided(this.undecided!.subarray(a - from, Math.min(b, chunkAt) - from), unpacked);
    if (b > chunkAt && !this.s.done) this.readDecided(chunk.subarray(Math.max(a, chunkAt) - chunkAt, b - chunkAt), unpacked);
  }

  /** Bytes for the skipping streams (see `deferring`); `unpacked`: a member reads them. */
  private readDecided(bytes: Uint8Array, unpacked: boolean): void {
    for (const { stream, engine, keeps } of this.streams) {
      if (!stream.writeUnpacked) continue;
      this.s.feed(stream, keeps ? new Uint8Array(bytes) : bytes, this.info.where, engine, unpacked);
      if (this.s.done) return;
    }
  }

  private source(lag: number): MemberSource {
    const src: MemberSource = { lag, member: null, map: null };
    this.sources.push(src);
    return src;
  }

  /** An unpacker's limit or corruption: offered at once while ending, else when the scanners are done. */
  private unpackerStopped(offer: () => void): void {
    if (this.ending) offer();
    else this.stopped ??= offer;
  }

  private memberHandler(src: MemberSource): UnpackHandler {
    const s = this.s;
    const parent = this.info;
    const at = (member: string | undefined): string => (member === undefined ? parent.where : `${parent.where}!${member || '(data)'}`);
    /** Every name a client may give the member goes through the banned-name check. False once the verdict is final. */
    /** The first banned reason among a member's names, as a verdict for its FileNode to settle at its end. */
    const bannedAmong = (where: string, names: readonly string[]): Verdict | null => {
      if (s.policy.skipBanned || !s.policy.checkBannedInArchives) return null;
      for (const n of names) {
        const reason = n ? bannedNameReason(n, s.policy.bannedExtensions, s.policy.bannedNames) : null;
        if (reason) return { kind: 'banned', reason, where };
      }
      return null;
    };
    const namesPass = (where: string, names: readonly string[]): boolean => {
      if (s.policy.skipBanned || !s.policy.checkBannedInArchives) return true;
      for (const n of names) {
        const reason = n ? bannedNameReason(n, s.policy.bannedExtensions, s.policy.bannedNames) : null;
        if (reason) s.offer({ kind: 'banned', reason, where });
        if (s.done) return false;
      }
      return true;
    };
    return {
      onEntry: (meta: EntryMeta): ByteSink | null => {
        if (s.done) return null;
        const name = meta.name || '(data)';
        const where = at(meta.name);
        // Settled when the member was scanned to its end: a virus in it wins over its name.
        const node = new FileNode(s, { where, name, archiveDepth: parent.archiveDepth + 1 }, this.budget, bannedAmong(where, [meta.name, ...(meta.altNames ?? [])]));
        // Its data follows a header that ended inside the current write: nothing of it
        // lies below where this write began.
        src.member = node;
        src.map = new OffsetMap(this.writeStart);
        return node;
      },
      onLimit: (which: LimitName) => this.unpackerStopped(() => s.limit(which, parent.where)),
      onEncrypted: (meta: EntryMeta) => {
        if (namesPass(at(meta.name), [meta.name, ...(meta.altNames ?? [])])) s.encryptedEntry(at(meta.name));
      },
      // What follows the damage was not scanned: never accept that silently
      // (actions.unparseable decides, reject by default: a retry cannot help).
      onCorrupt: (detail: string) => {
        s.warn(`archive-corrupt:${detail.slice(0, 40)}`, parent.where);
        this.unpackerStopped(() => s.unparseable('corrupt archive', parent.where, detail));
      },
      onAnomaly: (code: string, verdict: boolean, member?: string) => s.anomaly(code, at(member), verdict),
      onAltName: (member: string, altName: string) => void namesPass(at(member), [altName]),
    };
  }
}
