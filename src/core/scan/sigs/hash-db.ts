/**
 * hash-db.ts — whole-file hash signatures (.hdb/.hsb) and allow-lists (.fp/.sfp).
 *
 * Line format (ClamAV "File hash signatures"): `HashString:FileSize:Name[:MinFL[:MaxFL]]`,
 * FileSize may be `*` (any size; ClamAV wants MinFL ≥ 73 for that, we accept it
 * regardless). The algorithm is told by the hash length: 32 hex = MD5, 40 = SHA1,
 * 64 = SHA256 — accepted in any of the four file types, as ClamAV does for .hsb/.sfp.
 * Allow-lists use the same syntax; a matching file is clean whatever else matched.
 *
 * StreamHasher hashes incrementally (node:crypto) only the algorithms a db needs,
 * so a db without hash signatures costs nothing per byte.
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
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(sig: HashSig): void {
    let m = this.maps.get(sig.algo);
    if (!m) this.maps.set(sig.algo, (m = new Map()));
    const e: Entry = { size: sig.size, name: sig.name };
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

  /** Name of the first signature matching digest and size, or null. */
  lookup(algo: HashAlgo, hex: string, size: number): string | null {
    const got = this.maps.get(algo)?.get(hex);
    if (got === undefined) return null;
    for (const e of Array.isArray(got) ? got : [got]) if (e.size === -1 || e.size === size) return e.name;
    return null;
  }
}

/** Incremental hashes of one stream, for the given algorithms only. */
export class StreamHasher {
  private readonly hashes: [HashAlgo, Hash][];
  private size = 0;

  constructor(algos: readonly HashAlgo[]) {
    this.hashes = algos.map((a) => [a, createHash(a)]);
  }

  get active(): boolean {
    return this.hashes.length > 0;
  }

  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    for (const [, h] of this.hashes) h.update(chunk);
  }

  /** Finish: hex digests by algorithm, and the byte count. Call once. */
  finish(): { size: number; digests: Map<HashAlgo, string> } {
    return { size: this.size, digests: new Map(this.hashes.map(([a, h]) => [a, h.digest('hex')])) };
  }
}
