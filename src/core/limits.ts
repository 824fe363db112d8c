/**
 * limits.ts — every bounded resource of the core, with its default.
 *
 * A tripped limit becomes a `limit` verdict naming it (see types.ts LimitName);
 * nothing is ever skipped because it is large. All values are configurable.
 */
export interface Limits {
  /** One header line, unfolded (bytes). */
  headerLineBytes: number;
  /** One header block (bytes). */
  headerBytes: number;
  /** Header fields per header block. */
  headerFields: number;
  /** Longest boundary we track (RFC 2046 says 70; we allow slack). */
  boundaryBytes: number;
  /** multipart + message/rfc822 nesting. */
  mimeDepth: number;
  /** MIME parts per message. */
  mimeParts: number;
  /** Decoded (transfer-decoded) bytes per message. */
  decodedBytes: number;
  /** Decompressed bytes per message, all archives together. */
  unpackedBytes: number;
  /** Output/input ratio of one compressed stream, checked after `ratioGraceBytes` of output. */
  ratio: number;
  ratioGraceBytes: number;
  /** Archive nesting depth (an archive inside an attachment is depth 1). */
  archiveDepth: number;
  /** Entries per archive (and per message for all archives). */
  archiveEntries: number;
  /** Raw message bytes (0 = no limit; Postfix enforces message_size_limit before us). */
  messageBytes: number;
  /** Wall-clock budget for scanning one message (ms), from begin() to verdict. */
  scanTimeMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  headerLineBytes: 64 * 1024,
  headerBytes: 1024 * 1024,
  headerFields: 10_000,
  boundaryBytes: 256,
  mimeDepth: 100,
  mimeParts: 10_000,
  decodedBytes: 1024 * 1024 * 1024,
  unpackedBytes: 512 * 1024 * 1024,
  ratio: 250,
  ratioGraceBytes: 1024 * 1024,
  archiveDepth: 10,
  archiveEntries: 10_000,
  messageBytes: 0,
  scanTimeMs: 90_000,
});
