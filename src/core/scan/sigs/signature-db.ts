/**
 * signature-db.ts — the loaded signature database and its per-file matcher.
 *
 * SignatureDb.load(paths) reads .ndb/.hdb/.hsb/.fp/.sfp files, directories and
 * .cvd/.cld containers (sig-loader.ts), compiles body signatures into one shared
 * PatternSet (matcher.ts) and hash signatures into HashSets. EICAR is always built in.
 * createMatcher() gives a Matcher for one file:
 *   - body hits are returned from the write() that delivers the signature's last byte,
 *     unless an allow-list (.fp/.sfp) is loaded: then the hit is held until end(),
 *     because a file whose hash is allow-listed is clean whatever matched;
 *   - EOF-anchored body signatures and hash signatures are decided at end();
 *   - hashes are computed (incrementally) only for algorithms some loaded db uses, and
 *     only while the file is no longer than the largest size they list (hash-db.ts).
 * The first detection latches: later write() calls return it without scanning.
 *
 * Errors: load() throws SignatureFileError (bad config is fatal at startup).
 * Counts: `count` = body + EOF + hash signatures (incl. EICAR), allow-list entries
 *   are in `allowCount`; valid-but-unsupported signatures in `skipped` (by reason);
 *   unsupported files (.ldb, .cdb, .ftm, .info, …) in `unsupportedFilesSkipped`.
 */
import { parseNdbLine, MAX_EOF_DISTANCE, type BodySig, type SkipReason } from './ndb-parse.js';
import { HashSet, StreamHasher, hashNeeds, parseHashLine, type HashAlgo, type HashNeed } from './hash-db.js';
import { PatternSetBuilder, type BodyMatcher, type Matcher, type PatternSet } from './matcher.js';
import { TailBuffer, matchEofSig } from './tail-match.js';
import { loadSources, type SigSource, type SkippedFile } from './sig-loader.js';

export type { Matcher } from './matcher.js';
export { SignatureFileError, SIG_ERROR_CODES } from './sig-errors.js';

export const EICAR_NAME = 'Eicar-Test-Signature';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
/**
 * The 68-byte EICAR string anywhere in a file (ClamAV's own form anchors it at 0). Mail
 * admins paste it into bodies after other text; `*` also matches what our clamd test
 * database (and FACTS.md) use, so both engines agree in the parity tests.
 */
export const EICAR_NDB = `${EICAR_NAME}:0:*:${Buffer.from(EICAR, 'latin1').toString('hex')}`;

export interface DbStats {
  body: number;
  eof: number;
  hash: number;
  allow: number;
  forms: number;
}

export class SignatureDb {
  /** Signatures loaded: body (incl. EOF-anchored) + hash, including built-in EICAR. */
  readonly count: number;
  /** e.g. 'daily-27000+local-1a2b3c4d5e6f', or 'builtin' for EICAR only. */
  readonly version: string;
  readonly allowCount: number;
  /** Valid ClamAV signatures this engine does not implement, by reason. */
  readonly skipped: Readonly<Partial<Record<SkipReason, number>>>;
  readonly skippedTotal: number;
  readonly unsupportedFilesSkipped: number;
  readonly skippedFiles: readonly SkippedFile[];
  readonly stats: DbStats;

  private readonly hashNeeds: HashNeed[];

  private constructor(
    private readonly patterns: PatternSet,
    /** The offset-anchored body signatures again: over an unpacked archive they also read the bytes its members carry. */
    private readonly anchored: PatternSet | null,
    private readonly eofSigs: readonly BodySig[],
    private readonly hashes: HashSet,
    private readonly allow: HashSet,
    skipped: Partial<Record<SkipReason, number>>,
    skippedFiles: SkippedFile[],
    version: string,
  ) {
    this.count = patterns.signatureCount + eofSigs.length + hashes.count;
    this.allowCount = allow.count;
    this.skipped = skipped;
    this.skippedTotal = Object.values(skipped).reduce((a, b) => a + (b ?? 0), 0);
    this.skippedFiles = skippedFiles;
    this.unsupportedFilesSkipped = skippedFiles.filter((f) => f.reason === 'unsupported-type').length;
    this.version = version;
    this.stats = { body: patterns.signatureCount, eof: eofSigs.length, hash: hashes.count, allow: allow.count, forms: patterns.formCount };
    this.hashNeeds = hashNeeds([hashes, allow]);
  }

  /** Load files and directories (see sig-loader.ts). Throws SignatureFileError. */
  static async load(paths: string[]): Promise<SignatureDb> {
    const loaded = await loadSources(paths);
    return SignatureDb.compile(loaded.sources, loaded.skippedFiles, loaded.versionParts.join('+') || 'builtin');
  }

  /** EICAR only. */
  static builtin(): SignatureDb {
    return SignatureDb.compile([], [], 'builtin');
  }

  /** Build from in-memory texts (tests, benchmarks). `label` extension picks the format. */
  static fromSources(sources: SigSource[], version = 'inline'): SignatureDb {
    return SignatureDb.compile(sources, [], version);
  }

  private static compile(sources: SigSource[], skippedFiles: SkippedFile[], version: string): SignatureDb {
    const builder = new PatternSetBuilder();
    const anchored = new PatternSetBuilder();
    let anchoredCount = 0;
    const eofSigs: BodySig[] = [];
    const hashes = new HashSet();
    const allow = new HashSet();
    const skipped: Partial<Record<SkipReason, number>> = {};
    const addBody = (line: string, label: string, lineNo: number) => {
      const r = parseNdbLine(line, label, lineNo);
      if (!r.ok) skipped[r.skip] = (skipped[r.skip] ?? 0) + 1;
      else if (r.sig.offset.kind === 'eof') eofSigs.push(r.sig);
      else {
        builder.add(r.sig);
        if (r.sig.offset.kind === 'abs') {
          anchored.add(r.sig);
          anchoredCount++;
        }
      }
    };
    addBody(EICAR_NDB, '<builtin>', 1);
    for (const src of sources) {
      forEachLine(src.text, (line, lineNo) => {
        if (src.kind === 'ndb') addBody(line, src.label, lineNo);
        else {
          const h = parseHashLine(line, src.label, lineNo);
          if (h === null) skipped.flevel = (skipped.flevel ?? 0) + 1;
          else (src.kind === 'hash' ? hashes : allow).add(h);
        }
      });
    }
    const anchoredSet = anchoredCount > 0 ? anchored.build() : null;
    return new SignatureDb(builder.build(), anchoredSet, eofSigs, hashes, allow, skipped, skippedFiles, version);
  }

  /**
   * How far before the byte that reports a detection its evidence can begin: a body
   * signature's last form (maxFormLen − 1 bytes before its last byte) or an `EOF-n`
   * signature's last n bytes. Infinity with an allow-list loaded: body hits are then
   * held until the end of the file (an allow-listed hash clears them).
   */
  get reach(): number {
    if (this.allow.count > 0) return Infinity;
    let r = Math.max(0, this.patterns.maxFormLen - 1);
    for (const sig of this.eofSigs) if (sig.offset.kind === 'eof') r = Math.max(r, sig.offset.n);
    return r;
  }

  /**
   * A matcher for one file. `unpacked`: the file is an archive the core unpacks, and the
   * bytes it hands to a decompressor come through writeUnpacked() (see DbMatcher).
   */
  createMatcher(opts: { unpacked?: boolean } = {}): Matcher {
    return new DbMatcher(
      this.patterns.createMatcher(),
      opts.unpacked && this.anchored ? this.anchored.createMatcher() : null,
      this.hashNeeds.length ? new StreamHasher(this.hashNeeds) : null,
      this.eofSigs,
      this.hashes,
      this.allow,
    );
  }
}

function forEachLine(text: string, fn: (line: string, lineNo: number) => void): void {
  let lineNo = 0;
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    let line = text.slice(at, nl);
    at = nl + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0 || line.startsWith('#')) continue;
    fn(line, lineNo);
  }
}

/**
 * One file's matcher: body stream + optional hashes + optional EOF tail.
 *
 * The bytes of an archive that its members carry (writeUnpacked: deflate data, stored
 * data) are hashed and kept for EOF-anchored signatures like any others, but floating
 * body signatures do not read them: their content is matched in the members (deflate
 * data decompressed, stored data as it is), and deflate data holds no virus bytes of its own. Signatures anchored at an offset describe the archive's own
 * layout, so they (the `anchored` matcher, until they are out of reach) read every byte.
 */
class DbMatcher implements Matcher {
  private result: string | null = null; // latched, reported
  private heldHit: string | null = null; // body hit held back while an allow-list may clear it
  private ended = false;
  private readonly tail: TailBuffer | null;
  private readonly holdHits: boolean;

  constructor(
    private readonly body: BodyMatcher,
    private readonly anchored: BodyMatcher | null,
    private readonly hasher: StreamHasher | null,
    private readonly eofSigs: readonly BodySig[],
    private readonly hashes: HashSet,
    private readonly allow: HashSet,
  ) {
    let cap = 0;
    for (const s of eofSigs) if (s.offset.kind === 'eof') cap = Math.max(cap, s.offset.n);
    this.tail = eofSigs.length ? new TailBuffer(Math.min(cap, MAX_EOF_DISTANCE)) : null;
    this.holdHits = allow.count > 0;
  }

  write(chunk: Uint8Array): string | null {
    return this.take(chunk, false);
  }

  writeUnpacked(chunk: Uint8Array): string | null {
    return this.take(chunk, true);
  }

  private take(chunk: Uint8Array, unpacked: boolean): string | null {
    if (this.result !== null || this.ended) return this.result;
    this.hasher?.update(chunk);
    this.tail?.push(chunk);
    if (this.heldHit !== null) return null;
    let hit: string | null;
    if (unpacked) this.body.skip(chunk.length);
    else if ((hit = this.body.write(chunk)) !== null) return this.hold(hit);
    if (this.anchored !== null && (hit = this.anchored.write(chunk)) !== null) return this.hold(hit);
    return null;
  }

  private hold(hit: string): string | null {
    if (!this.holdHits) return (this.result = hit);
    this.heldHit = hit;
    return null;
  }

  end(): string | null {
    if (this.ended) return this.result;
    this.ended = true;
    if (this.result !== null) return this.result;
    let size = this.body.offset;
    let digests: Map<HashAlgo, string> | null = null;
    if (this.hasher !== null) {
      const fin = this.hasher.finish();
      size = fin.size;
      digests = fin.digests;
      if (this.allow.count > 0)
        for (const [algo, hex] of digests) if (this.allow.lookup(algo, hex, size) !== null) return (this.result = null);
    }
    if (this.heldHit !== null) return (this.result = this.heldHit);
    if (this.tail !== null) {
      const { bytes, size: total } = this.tail.view();
      for (const s of this.eofSigs) if (matchEofSig(s, bytes, total)) return (this.result = s.name);
    }
    if (digests !== null && this.hashes.count > 0)
      for (const [algo, hex] of digests) {
        const name = this.hashes.lookup(algo, hex, size);
        if (name !== null) return (this.result = name);
      }
    return null;
  }
}
