/**
 * types.ts — the shared vocabulary of the streaming core.
 *
 * Everything in src/core speaks these types; the SMTP proxy and the milter see
 * only Verdict, Envelope and the Session API re-exported from src/core/index.ts.
 * Nothing here knows about SMTP or milter.
 */

/** Which bounded resource tripped. Each is a named limit with a defined outcome (policy). */
export type LimitName =
  | 'header-line' // one header line (unfolded) longer than limits.headerLineBytes
  | 'header-bytes' // a header block larger than limits.headerBytes
  | 'header-fields' // more header fields than limits.headerFields
  | 'boundary-length'
  | 'mime-depth' // multipart / message/rfc822 nesting
  | 'mime-parts'
  | 'decoded-bytes' // decoded bytes per message
  | 'unpacked-bytes' // decompressed bytes per message
  | 'ratio' // expansion ratio of one compressed stream
  | 'archive-depth'
  | 'archive-entries'
  | 'scan-bytes' // a scanner's byte cap (clamd StreamMaxLength)
  | 'scan-time'
  | 'message-bytes';

/** Why a message could not be scanned. Always maps to a tempfail by default. */
export type ErrorKind =
  | 'scanner-unavailable' // could not connect / no healthy endpoint
  | 'scanner-timeout'
  | 'scanner-protocol' // reply we do not understand (never read as clean)
  | 'scanner-size-limit' // clamd "INSTREAM size limit exceeded"
  | 'scanner-error' // clamd "... ERROR"
  | 'encrypted' // encrypted archive, when policy action is tempfail
  | 'aborted'
  | 'internal'; // a broken invariant: a bug, logged as such

/**
 * Structural anomalies that cannot be read every way a client might (bounded), so they
 * get a named verdict of their own instead of a guess. Anomalies that *are* read every
 * way are only recorded (SessionStats.anomalies), never a verdict. Open-ended: the
 * parsers name them; docs list them in the README threat-model table.
 */
export type AnomalyName = string;

/** `where` is the MIME path plus archive member path, e.g. `2.1/invoice.zip!docs/a.exe`. */
export type Verdict =
  | { kind: 'clean' }
  | { kind: 'infected'; name: string; where: string; engine: string }
  | { kind: 'banned'; reason: string; where: string }
  | { kind: 'limit'; which: LimitName; where: string }
  /** Ambiguous structure we will not guess about, e.g. `message-partial`, `zip-directory-mismatch`. */
  | { kind: 'anomaly'; which: AnomalyName; where: string }
  /** Deterministically unreadable input (corrupt archive, truncated stream): a retry cannot help. */
  | { kind: 'unparseable'; reason: string; where: string; detail?: string }
  | { kind: 'error'; errorKind: ErrorKind; where: string; detail?: string };

export type VerdictKind = Verdict['kind'];

/** What an engine says about one stream of bytes. */
export type ScanResult =
  | { kind: 'clean' }
  | { kind: 'infected'; name: string }
  | { kind: 'error'; errorKind: ErrorKind; detail?: string };

/** Envelope facts the core may use for policy and logs. All optional. */
export interface Envelope {
  sender?: string;
  recipients?: readonly string[];
  clientAddress?: string;
  clientName?: string;
  helo?: string;
  authenticated?: string;
  queueId?: string;
  /** Where the MTA received the message (policy by service): our listen port (proxy). */
  localPort?: number;
  /** The MTA's name for the receiving service: milter `{daemon_name}` (Sendmail "MTA"/"MSA", Postfix milter_macro_daemon_name). */
  daemonName?: string;
  /** The MTA's address that received the connection: milter `{if_addr}` (Sendmail) or `{daemon_addr}` (Postfix). */
  localAddress?: string;
}

/** A synchronous push sink for bytes. `chunk` is borrowed: valid until write() returns (chunk-ownership.ts). */
export interface ByteSink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Description of one "file" the core scans: a decoded MIME leaf, a preamble/epilogue, or an archive member. */
export interface FileInfo {
  /** Full where-path, e.g. `2.1/invoice.zip!docs/a.exe`. */
  where: string;
  /** Declared or archive-member name, if any (already decoded from RFC 2047/2231). */
  name?: string;
  /** Declared MIME type, lower case, if any. */
  contentType?: string;
  /** Archive nesting depth: 0 for MIME leaves. */
  archiveDepth: number;
  /** The core unpacks this archive: bytes its members carry may come through ScanStream.writeUnpacked(). */
  unpacked?: boolean;
}
