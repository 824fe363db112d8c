/**
 * hash-db.ts — whole-file hash signatures (.hdb/.hsb) and allow-lists (.fp/.sfp).
 *
 * Line format (ClamAV "File hash signatures"): `HashString:FileSize:Name[:MinFL[:MaxFL]]`,
 * FileSize may be `*` (any size; ClamAV wants MinFL ≥ 73 for that, we accept it
 * regardless). The algorithm is told by the hash length: 32 hex = MD5, 40 = SHA1,
 * 64 = SHA256 — accepted in any of the four file types, as ClamAV does for .hsb/.sfp.
 * Allow-lists use the same syntax; a matching file is clean whatever else matched.
 *
 * StreamHasher hashes (node:crypto) only the algorithms a db needs, each only while the
 * file is no longer than the largest size a signature of that algorithm names (`*` = no
 * bound), and gives a digest only for a size some signature names: a file that grew past
 * every listed size cannot match, so its remaining bytes are not hashed. Algorithms whose
 * sizes are all small (≤ HOLD_BYTES) copy the file's first bytes and hash them at the end,
 * only for a listed size. A db without hash signatures costs nothing per byte; one with a
 * few small-file hashes (clam.exe, 544 bytes) costs a copy of a few hundred bytes per file
 * instead of hashing every byte of every file and archive member.
 * Errors: malformed lines throw SignatureFileError(SIG_SYNTAX).
 */
import { createHash, type Hash } from 'node:crypto';
import { ENGINE_FLEVEL } from './ndb-parse.js';
import { SIG_ERROR_CODES, SignatureFileError } from './sig-errors.js';

export type HashAlgo = 'md5' | 'sha1' | 'sha256';
const ALGO_BY_LEN: Record<number, HashAlgo> = { 32: 'md5', 40: 'sha1', 64: 'sha256' };

export interface HashSig {
  algo: HashAlgo;
  hex: string; // lower case
  size: number; // -1 = any size
  name: string;
}

/** Parse one hash line; null when FLEVEL excludes it. */
export function parseHashLine(line: string, file: string, lineNo: number): HashSig | null {
  const fail = (reason: string): never => {
    throw new SignatureFileError(SIG_ERROR_CODES.syntax, file, lineNo, reason);
  };
  const f = line.split(':');
  if (f.length < 3 || f.length > 5) fail(`expected 3 to 5 ':'-separated fields, got ${f.length}`);
  const [hash, size, name, minFl, maxFl] = f as [string, string, string, string?, string?];
  const algo = ALGO_BY_LEN[hash.length];
  if (!algo || !/^[0-9a-fA-F]+$/.test(hash)) fail(`bad hash '${hash.slice(0, 70)}' (need 32, 40 or 64 hex digits)`);
  if (size !== '*' && !/^[0-9]{1,15}$/.test(size)) fail(`bad file size '${size}'`);
  if (name.length === 0) fail('empty signature name');
  for (const fl of [minFl, maxFl]) if (fl !== undefined && fl !== '' && !/^[0-9]+$/.test(fl)) fail(`bad FLEVEL '${fl}'`);
  if (minFl && Number(minFl) > ENGINE_FLEVEL) return null;
  if (maxFl && Number(maxFl) < ENGINE_FLEVEL) return null;
  return { algo: algo!, hex: hash.toLowerCase(), size: size === '*' ? -1 : Number(size), name };
}

interface Entry {
  size: number;
  name: string;
}

/** A set of hash signatures keyed by algorithm and digest. */
export class HashSet {
  private readonly maps = new Map<HashAlgo, Map<string, Entry | Entry[]>>();
  /** Per algorithm: the file sizes its signatures name (null once one says `*`: any size). */
  private readonly sizeSets = new Map<HashAlgo, Set<number> | null>();
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(sig: HashSig): void {
    let m = this.maps.get(sig.algo);
    if (!m) this.maps.set(sig.algo, (m = new Map()));
    const e: Entry = { size: sig.size, name: sig.name };
    const sizes = this.sizeSets.get(sig.algo);
    if (sig.size === -1) this.sizeSets.set(sig.algo, null);
    else if (sizes === undefined) this.sizeSets.set(sig.algo, new Set([sig.size]));
    else sizes?.add(sig.size);
    const prev = m.get(sig.hex);
    if (prev === undefined) m.set(sig.hex, e);
    else if (Array.isArray(prev)) prev.push(e);
    else m.set(sig.hex, [prev, e]);
    this.n++;
  }

  /** Algorithms with at least one signature. */
  algos(): HashAlgo[] {
    return [...this.maps.keys()];
  }

  /** The file sizes signatures of `algo` name; null: some match any size (undefined: none). */
  sizes(algo: HashAlgo): ReadonlySet<number> | null | undefined {
    return this.sizeSets.get(algo);
  }

  /** Name of the first signature matching digest and size, or null. */
  lookup(algo: HashAlgo, hex: string, size: number): string | null {
    const got = this.maps.get(algo)?.get(hex);
    if (got === undefined) return null;
    for (const e of Array.isArray(got) ? got : [got]) if (e.size === -1 || e.size === size) return e.name;
    return null;
  }
}

/** An algorithm to hash a stream with: the file sizes worth a digest (null = any) and the largest. */
export interface HashNeed {
  algo: HashAlgo;
  sizes: ReadonlySet<number> | null;
  maxSize: number;
}

/** What `sets` need hashed: every algorithm they use, with the sizes their signatures name. */
export function hashNeeds(sets: readonly HashSet[]): HashNeed[] {
  const out = new Map<HashAlgo, Set<number> | null>();
  for (const set of sets)
    for (const a of set.algos()) {
      const s = set.sizes(a)!;
      if (s === null || out.get(a) === null) out.set(a, null);
      else {
        const acc = out.get(a) ?? new Set<number>();
        for (const x of s) acc.add(x);
        out.set(a, acc);
      }
    }
  const largest = (xs: ReadonlySet<number>) => {
    let m = -1; // a loop, not Math.max(...xs): real databases list more sizes than a call takes arguments
    for (const x of xs) if (x > m) m = x;
    return m;
  };
  return [...out].map(([algo, sizes]) => ({ algo, sizes, maxSize: sizes === null ? Infinity : largest(sizes) }));
}

/**
 * Files no longer than this are not hashed as they stream: an algorithm whose signatures
 * all name sizes up to HOLD_BYTES gets the file's first bytes copied instead, and a digest
 * at the end only when the file's size is one its signatures name. Most files are then
 * never hashed at all (with clam.exe's 544 bytes, only 544-byte files are).
 */
export const HOLD_BYTES = 4096;

/**
 * Incremental hashes of one stream, for the given algorithms only, and only as far as they
 * can matter: an algorithm's hash is abandoned once the stream is longer than its maxSize
 * (no signature could match such a file; hashing is the costliest thing done per byte),
 * algorithms bounded by HOLD_BYTES hold the bytes and hash at the end, and finish() gives a
 * digest only for a size some signature names.
 */
export class StreamHasher {
  private readonly hashes: (Hash | null)[];
  private readonly dropped: boolean[];
  private size = 0;
  /** Incremental hashes still running. */
  private running = 0;
  /** The smallest maxSize among the running hashes: past it, one of them is abandoned. */
  private bound = Infinity;
  /** The largest maxSize among the held algorithms (-1: none held). */
  private readonly holdMax: number;
  private held: Uint8Array | null = null;

  constructor(private readonly needs: readonly HashNeed[]) {
    this.hashes = needs.map(() => null);
    this.dropped = needs.map((n) => n.maxSize <= HOLD_BYTES);
    let holdMax = -1;
    for (const n of needs) {
      if (n.maxSize <= HOLD_BYTES) holdMax = Math.max(holdMax, n.maxSize);
      else {
        this.running++;
        this.bound = Math.min(this.bound, n.maxSize);
      }
    }
    this.holdMax = holdMax;
  }

  /** Some digest may still come out of this stream. */
  get active(): boolean {
    return this.running > 0 || this.size <= this.holdMax;
  }

  update(chunk: Uint8Array): void {
    const before = this.size;
    const size = (this.size += chunk.length);
    if (before <= this.holdMax) {
      // A copy: chunks are borrowed (chunk-ownership.ts).
      if (size <= this.holdMax) (this.held ??= new Uint8Array(this.holdMax)).set(chunk, before);
      else this.held = null;
    }
    if (this.running === 0) return;
    if (size > this.bound) this.outgrow();
    const { needs, hashes, dropped } = this;
    for (let i = 0; i < needs.length; i++) if (!dropped[i]) (hashes[i] ??= createHash(needs[i]!.algo)).update(chunk);
  }

  /** Finish: hex digests by algorithm, for the algorithms whose signatures name this size; and the byte count. Call once. */
  finish(): { size: number; digests: Map<HashAlgo, string> } {
    const digests = new Map<HashAlgo, string>();
    const size = this.size;
    for (let i = 0; i < this.needs.length; i++) {
      const n = this.needs[i]!;
      if (size > n.maxSize || (n.sizes !== null && !n.sizes.has(size))) continue;
      let h: Hash;
      if (n.maxSize <= HOLD_BYTES) h = createHash(n.algo).update(this.held ? this.held.subarray(0, size) : new Uint8Array(0));
      else h = this.hashes[i] ?? createHash(n.algo); // an empty stream never called update()
      digests.set(n.algo, h.digest('hex'));
    }
    return { size, digests };
  }

  private outgrow(): void {
    let bound = Infinity;
    for (let i = 0; i < this.needs.length; i++) {
      if (this.dropped[i]) continue;
      const max = this.needs[i]!.maxSize;
      if (this.size > max) {
        this.dropped[i] = true;
        this.hashes[i] = null;
        this.running--;
      } else bound = Math.min(bound, max);
    }
    this.bound = bound;
  }
}
