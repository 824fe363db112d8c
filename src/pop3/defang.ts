/**
 * defang.ts — what replaces the rest of a message cut short: a text notice, then the
 * MIME structure closed properly, so the client gets a well-formed message with the
 * infected part truncated (no client can decode the infected file from it).
 *
 * Input: where the cut falls — the last StructureEvent at or before the cut (header
 * block or body, the delimiters open there), whether the delivered bytes end at a line
 * start — and the notice text. Output: the bytes to send after the delivered ones
 * (content bytes; none of its lines starts with "." so no stuffing is needed), ending
 * with CRLF so the POP3 terminator can follow.
 *
 * Shapes:
 *   inside a multipart body  → [CRLF] --inner CRLF <notice part> CRLF --inner-- CRLF
 *                              then --outer-- CRLF for every enclosing multipart
 *   at a part's header start → <notice part> CRLF --inner-- CRLF, enclosing closes
 *   single-part body         → [CRLF] CRLF <notice text> CRLF
 *   nothing delivered        → a minimal header block, then the notice text
 * A header block cut in the middle (only when hold_exceeded = "stream" forced it out)
 * is ended with an empty line first, so the truncated part keeps an empty body.
 * Gaps: in a single-part message whose body is base64, the notice lands inside the
 * base64 text (decoders skip or garble it); the part is still truncated.
 */
import type { StructureEvent, Verdict } from '../core/index.js';
import { sanitize } from '../core/index.js';

export interface CutPoint {
  /** The structure at the cut: the last event at or before it (top-level header block: offset 0, no delimiters). */
  at: StructureEvent;
  /** Content offset of the cut. */
  offset: number;
  /** The delivered bytes end with LF (or nothing was delivered). */
  atLineStart: boolean;
}

/** One line of plain text for the notice (printable ASCII, capped). */
export function noticeText(reason: string): string {
  return `midstream removed the rest of this message: ${sanitize(reason, 300)}`;
}

/** What a rejecting verdict says, without the SMTP prefix. */
export function verdictReason(v: Verdict): string {
  switch (v.kind) {
    case 'infected':
      return `virus found: ${sanitize(v.name)} (in ${sanitize(v.where)})`;
    case 'banned':
      return `${sanitize(v.reason)} (in ${sanitize(v.where)})`;
    case 'limit':
      return `it exceeds the ${v.which} limit (at ${sanitize(v.where)})`;
    case 'anomaly':
      return `ambiguous message structure: ${sanitize(v.which, 40)} (at ${sanitize(v.where)})`;
    case 'unparseable':
      return `${sanitize(v.reason, 60)} cannot be read (in ${sanitize(v.where)})`;
    case 'error':
      return 'it could not be scanned';
    case 'clean':
      return 'clean';
  }
}

/** The X-Virus-Status value for a verdict (null: delivered before the verdict was known). */
export function virusStatus(v: Verdict | null): string {
  if (v === null) return 'Unknown (scanned while delivered)';
  switch (v.kind) {
    case 'clean':
      return 'Clean';
    case 'infected':
      return `Infected (${sanitize(v.name, 100)})`;
    case 'banned':
      return `Banned (${sanitize(v.reason, 100)})`;
    case 'limit':
      return `Rejected (limit ${v.which})`;
    case 'anomaly':
      return `Rejected (anomaly ${sanitize(v.which, 40)})`;
    case 'unparseable':
      return `Rejected (unparseable)`;
    case 'error':
      return 'Not scanned (error)';
  }
}

function noticePart(text: string, status: string | null): string {
  return (
    'Content-Type: text/plain; charset=us-ascii\r\n' +
    'Content-Disposition: inline; filename="midstream-notice.txt"\r\n' +
    (status ? `X-Virus-Status: ${status}\r\n` : '') +
    '\r\n' +
    text +
    '\r\n'
  );
}

/**
 * The bytes that end a message cut at `cut`. `status`: an X-Virus-Status value for the
 * notice part (null = none).
 */
export function closingBytes(cut: CutPoint, text: string, status: string | null): Buffer {
  const { at } = cut;
  const delims = at.delimiters;
  let out = cut.atLineStart ? '' : '\r\n';
  const atHeaderStart = at.kind === 'header' && cut.offset === at.offset;
  if (at.kind === 'header' && !atHeaderStart) out += '\r\n'; // end a header block delivered in part
  if (delims.length === 0) {
    if (atHeaderStart) {
      // Nothing of the message was delivered.
      out += 'Subject: message removed by midstream\r\n' + 'MIME-Version: 1.0\r\n' + noticePart(text, status);
    } else out += '\r\n' + text + '\r\n';
    return Buffer.from(out, 'latin1');
  }
  const inner = delims[delims.length - 1]!;
  if (!atHeaderStart) out += `${inner}\r\n`;
  out += noticePart(text, status);
  for (let k = delims.length - 1; k >= 0; k--) out += `${delims[k]}--\r\n`;
  return Buffer.from(out, 'latin1');
}
