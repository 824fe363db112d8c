/**
 * mime-events.ts — what the streaming MIME splitter tells its handler.
 *
 * The splitter (mime-splitter.ts) is a byte-level push state machine: raw RFC 5322
 * bytes in (any chunking), these callbacks out, in document order. It never decodes
 * transfer encodings (decode/ does) and treats message/* as a leaf: the session feeds
 * the decoded leaf into a nested splitter, so encoded and plain attached messages take
 * one path.
 *
 * Readings: where mail clients could split the same bytes differently (a junk line in a
 * header block, two Content-Types, a line that only prefix-matches a delimiter, …) the
 * splitter asks its handler for a second handler (onFork) and a copy of the splitter
 * carries on with the other decision, fed the same bytes (mime-readings.ts schedules
 * them). Each handler sees one consistent reading of the message.
 *
 * Paths follow IMAP part numbering: a single-part message's body is "1"; the
 * children of the top multipart are "1", "2", …; of part 2, "2.1", "2.2", ….
 * A multipart's preamble is "<path>/(preamble)" and its epilogue "<path>/(epilogue)"
 * (top level: "(preamble)", "(epilogue)"). They are scanned like leaves.
 */
import type { LimitName } from '../types.js';

export interface PartInfo {
  /** IMAP-style path, see above. */
  path: string;
  /** 'leaf' for a body to scan; 'preamble'/'epilogue' for the text around multipart children. */
  role: 'leaf' | 'preamble' | 'epilogue';
  /** multipart nesting depth of this part (top-level body = 0). */
  depth: number;
  /** Lower-cased `type/subtype`; '' when the part had no (valid) Content-Type. */
  contentType: string;
  /** Lower-cased Content-Transfer-Encoding token ('' when absent). */
  transferEncoding: string;
  /** File name from Content-Disposition filename (RFC 2231) or Content-Type name (RFC 2047), decoded to a JS string. */
  filename?: string;
  /**
   * Every name a client could give this part (every header and parameter source, RFC
   * 2231 assembled each way clients do, cut at NUL, decoded in each plausible charset);
   * `filename` is the first. Bounded (names.ts). Absent when there is no name at all.
   */
  names?: string[];
  /**
   * Set on a leaf that is a multipart under a decoding transfer encoding (base64,
   * quoted-printable, uuencode): the boundary, so the session can also read the decoded
   * bytes as that multipart's body (the splitter reads the raw bytes as one, in another
   * reading).
   */
  boundary?: string;
  /** Content-Disposition type, lower case ('' when absent). */
  disposition: string;
}

/** What a handler may read from its splitter inside a callback (see mime-splitter.ts). */
export interface SplitterView {
  /** Raw input offset of the event being reported. */
  readonly offset: number;
  /** `--` + boundary of the open multiparts, outermost first. */
  readonly delimiters: string[];
  /** Bytes taken in but not yet decided on (release gate). */
  readonly carryBytes: number;
  /** This reading was dropped. */
  readonly dead: boolean;
}

export interface MimeHandler {
  /** A top-level or part header field, unfolded, raw bytes decoded as latin1 (value without leading WSP). */
  onHeader?(path: string, name: string, value: string): void;
  /** Start of a leaf/preamble/epilogue body. */
  onPartStart(part: PartInfo): void;
  /** Raw (still transfer-encoded) body bytes of the current leaf; line endings as received. */
  onPartData(chunk: Uint8Array): void;
  onPartEnd(): void;
  /**
   * Optional: a header block ('header', after a delimiter line) or a body ('body': leaf,
   * preamble or epilogue, also when empty) begins at the splitter's `offset`. `encoding`
   * is the body's lower-cased Content-Transfer-Encoding token ('' for none).
   */
  onBlock?(kind: 'header' | 'body', path: string, encoding: string): void;
  /** The splitter that reports to this handler (a fork's copy calls it on its new handler). */
  attach?(splitter: SplitterView): void;
  /** A limit tripped; the splitter keeps going in a degraded but bounded way (or stops emitting). */
  onLimit(which: LimitName, path: string): void;
  /** Something malformed but tolerated (missing final boundary, bad header line…): for logs. */
  onWarning?(code: string, path: string): void;
  /**
   * A structural anomaly: clients could read the message differently here. `verdict`:
   * it could not be read every way (e.g. too many readings), so policy must decide.
   */
  onAnomaly?(code: string, path: string, verdict: boolean): void;
  /**
   * Another reading starts here (anomaly `code` at `path`): return the handler that gets
   * its events from now on, or null to not read it (the splitter then goes on with its
   * own decision only). Called only by splitters run by MimeReadings.
   */
  onFork?(code: string, path: string): MimeHandler | null;
  /**
   * This reading was dropped: from here on it is in exactly the state of another one,
   * `into`, which reads on for both (nothing of this reading is open at that point).
   */
  onMerge?(into: MimeHandler): void;
}
