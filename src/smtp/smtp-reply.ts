/**
 * smtp-reply.ts — SMTP reply parsing and formatting shared by the proxy's two sides.
 *
 * ReplyParser: bytes from a server in, complete replies out (multi-line `250-…` joined
 * into one SmtpReply). Lines are kept as latin1 strings so relaying them is
 * byte-preserving; control characters become '?' (as Postfix's smtpd does), so a reply
 * can never carry a CR or LF into our client-side output.
 * Limits: a line is capped at MAX_REPLY_LINE bytes (rest dropped), a reply at
 * MAX_REPLY_LINES lines; a peer exceeding the line count gets a protocol error.
 * Errors: `feed` returns an error string for garbage (no 3-digit code); callers treat the
 * peer as broken.
 */

export interface SmtpReply {
  /** Three-digit reply code of the last line. */
  code: number;
  /** Full reply lines as received, without CRLF, e.g. ['250-mx', '250 PIPELINING']. */
  lines: string[];
}

export const MAX_REPLY_LINE = 2048;
export const MAX_REPLY_LINES = 100;

/** The reply as it goes on the wire: every line CRLF-terminated, ready for one write. */
export function formatReply(r: SmtpReply): string {
  return r.lines.join('\r\n') + '\r\n';
}

/** Text after "NNN " / "NNN-" of every line, joined with a space (for logs and queue ids). */
export function replyText(r: SmtpReply): string {
  return r.lines.map((l) => l.slice(4)).join(' ');
}

/** "queued as ABC123" in a final 250 reply (Postfix: `250 2.0.0 Ok: queued as 4Xy…`). */
export function queueIdOf(r: SmtpReply): string | undefined {
  const m = /queued as ([0-9A-Za-z]+)/.exec(replyText(r));
  return m ? m[1] : undefined;
}

/** One-line reply from parts; callers pass already safe text. */
export function reply(code: number, enhanced: string, text: string): string {
  return `${code} ${enhanced} ${text}\r\n`;
}

function cleanLine(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    out += c < 0x20 || c === 0x7f ? '?' : raw[i];
  }
  return out;
}

export class ReplyParser {
  private partial = '';
  private partialDropped = false;
  private lines: string[] = [];

  /** Feed bytes; returns completed replies, or an error description for a broken peer. */
  feed(chunk: Uint8Array): { replies: SmtpReply[]; error?: string } {
    const replies: SmtpReply[] = [];
    let text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('latin1');
    for (;;) {
      const lf = text.indexOf('\n');
      if (lf < 0) {
        if (!this.partialDropped) {
          this.partial += text;
          if (this.partial.length > MAX_REPLY_LINE) {
            this.partial = this.partial.slice(0, MAX_REPLY_LINE);
            this.partialDropped = true;
          }
        }
        return { replies };
      }
      let line = this.partialDropped ? this.partial : (this.partial + text.slice(0, lf)).slice(0, MAX_REPLY_LINE + 1);
      text = text.slice(lf + 1);
      this.partial = '';
      this.partialDropped = false;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      line = cleanLine(line.slice(0, MAX_REPLY_LINE));
      const m = /^([2-5]\d\d)([ -]|$)/.exec(line);
      if (!m) return { replies, error: `bad reply line ${JSON.stringify(line.slice(0, 80))}` };
      this.lines.push(line);
      if (this.lines.length > MAX_REPLY_LINES) return { replies, error: 'reply has too many lines' };
      if (m[2] !== '-') {
        const code = Number(m[1]);
        // RFC 5321 4.2.1: all lines carry the same code; normalise so a relayed reply is coherent.
        const lines = this.lines.map((l, i) => (i === this.lines.length - 1 ? l : m[1] + '-' + l.slice(4)));
        replies.push({ code, lines });
        this.lines = [];
      }
    }
  }
}
