/**
 * unpack-types.ts — the contract between the session and the archive unpackers.
 *
 * An unpacker is a push state machine for one compressed/archived stream: bytes in
 * (any chunking), members out as ByteSinks the handler supplies. It never holds a
 * whole member; inflate output comes in bounded pieces, checked as it comes.
 * Nesting is not its job: the handler's member sinks sniff and unpack recursively.
 */
import type { ByteSink, LimitName } from '../types.js';

export type ArchiveFormat = 'gzip' | 'zip' | 'tar' | 'bzip2';

export interface EntryMeta {
  /** Member name as a C client sees it (cut at NUL); for gzip the FNAME field or ''. */
  name: string;
  /**
   * Other names clients may give this member (the name with its NUL and what follows,
   * zip Unicode-path fields, tar long-name/pax/global/sparse names). Every one is
   * policy-checked like `name`; `name` is the one shown in where-paths.
   */
  altNames?: string[];
  /** Declared uncompressed size if the format states it (never trusted for allocation). */
  declaredSize?: number;
  encrypted: boolean;
}

/** Shared per-message counters; unpackers add to them and check the limits. */
export interface UnpackBudget {
  unpackedBytes: number; // running total for the message
  maxUnpackedBytes: number;
  entries: number; // running total for the message
  maxEntries: number;
  maxRatio: number;
  ratioGraceBytes: number;
}

export interface UnpackHandler {
  /** A member starts. Return a sink for its bytes, or null to discard them (still counted). */
  onEntry(meta: EntryMeta): ByteSink | null;
  /** A limit tripped (unpacked-bytes, ratio, archive-entries): the unpacker stops emitting. */
  onLimit(which: LimitName): void;
  /** Encrypted member: policy decides. Its (encrypted) bytes are not passed to a sink. */
  onEncrypted(meta: EntryMeta): void;
  /** Corrupt/truncated/unsupported data; the unpacker stops. `detail` is for logs. */
  onCorrupt(detail: string): void;
  /**
   * A structural anomaly (a stable code, e.g. `zip-directory-mismatch`). `verdict`: it could
   * not be read every way a client might, so policy decides (the session's anomaly verdict);
   * otherwise it was read every way and is only recorded. `member`: the entry it concerns.
   * The unpacker goes on either way.
   */
  onAnomaly(code: string, verdict: boolean, member?: string): void;
  /** A further name a client may give an entry announced earlier (zip central directory). */
  onAltName(member: string, altName: string): void;
}

export interface Unpacker extends ByteSink {
  /**
   * After write(): the input position (bytes since the archive's first) below which every
   * byte's fate is known. The bytes above it — fewer than MAX_UNDECIDED (index.ts), at the end of the
   * input — were taken but not yet inflated or passed on; a later write decides them.
   */
  readonly decided?: number;
  /**
   * After write(): ranges [start, end, start, end, …] of input positions, in order, whose
   * content reached a member — deflate data of a sniffed archive that the member's
   * decompressor inflated (never bytes after a stream's end, never a slice that hit a
   * limit or damage), and stored data handed to a member as it is — decided by this
   * write: each lies within [decided before the write, decided). The session need not
   * body-match them in the archive too. Reused by the next write.
   */
  unpackedRanges?(): readonly number[];
}
