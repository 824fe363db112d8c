/**
 * postfix-read.ts — a model of how Postfix's smtpd reads DATA, for tests of what we put on
 * the wire: an oracle written from Postfix's documented behaviour, not from our decoder.
 *
 * smtp_get() (global/smtp_stream.c) ends a line at LF (CRLF or bare LF alike) and strips
 * every CR before that LF; smtpd then takes a line "." as the end of data (3.7 with the
 * default smtpd_forbid_bare_newline=no; with "normalize" a bare-LF "." line would not end
 * it, so this model is the stricter test for us: the wire must never contain such a line)
 * and removes one leading dot from every other line. The delivered message is each
 * line + CRLF.
 * Input: the bytes after the DATA command. Output: the stored content and how many input
 * bytes the end of data consumed (-1: none seen).
 */
export function postfixReadData(input: Uint8Array): { content: Buffer; consumed: number } {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lf = input.indexOf(0x0a, pos);
    if (lf < 0) return { content: Buffer.concat(out), consumed: -1 };
    let end = lf;
    while (end > pos && input[end - 1] === 0x0d) end--;
    let line = Buffer.from(input.subarray(pos, end));
    pos = lf + 1;
    if (line.length === 1 && line[0] === 0x2e) return { content: Buffer.concat(out), consumed: pos };
    if (line[0] === 0x2e) line = line.subarray(1);
    out.push(line, Buffer.from('\r\n'));
  }
}
