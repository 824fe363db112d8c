/**
 * mime-events.ts — what the streaming MIME splitter tells its handler.
 *
 * The splitter (mime-splitter.ts) is a byte-level push state machine: raw RFC 5322
 * bytes in (any chunking), these callbacks out, in document order. It never decodes
 * transfer encodings (decode/ does) and treats message/rfc822 as a leaf: the session
 * feeds the decoded leaf into a nested splitter, so encoded and plain attached
 * messages take one path.
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
  /** Content-Disposition type, lower case ('' when absent). */
  disposition: string;
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
  /** A limit tripped; the splitter keeps going in a degraded but bounded way (or stops emitting). */
  onLimit(which: LimitName, path: string): void;
  /** Something malformed but tolerated (missing final boundary, bad header line…): for logs. */
  onWarning?(code: string, path: string): void;
}
