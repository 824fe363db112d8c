/**
 * mail-build.ts — byte-exact building blocks for hostile mails (latin-1 strings, so any
 * byte 0..255 can be written, NUL and bare CR included).
 *
 * Input: header lines and bodies as strings; output: latin-1 strings joined with the
 * line end the caller picks (CRLF by default). No validation: these blocks exist to
 * write what a well-behaved mailer never would.
 */
export const CRLF = '\r\n';
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

export const latin1 = (b: Uint8Array | string): string => (typeof b === 'string' ? b : Buffer.from(b).toString('latin1'));

/** base64 in 76-character lines. */
export function b64(data: Uint8Array | string, eol = CRLF, width = 76): string {
  const s = Buffer.from(latin1(data), 'latin1').toString('base64');
  const out: string[] = [];
  for (let i = 0; i < s.length; i += width) out.push(s.slice(i, i + width));
  return out.join(eol);
}

/** Quoted-printable with every byte escaped (=XX), soft line breaks every `width` escapes. */
export function qpAll(data: string, lower = false, width = 20): string {
  const out: string[] = [];
  let line = '';
  for (let i = 0; i < data.length; i++) {
    let h = data.charCodeAt(i).toString(16).padStart(2, '0');
    h = lower ? h : h.toUpperCase();
    line += '=' + h;
    if ((i + 1) % width === 0) {
      out.push(line + '=');
      line = '';
    }
  }
  out.push(line);
  return out.join(CRLF);
}

/** Classic uuencode body lines (no begin/end). */
export function uuLines(data: string): string[] {
  const enc = (n: number) => String.fromCharCode(n === 0 ? 0x60 : n + 0x20);
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += 45) {
    const chunk = data.slice(i, i + 45);
    let l = enc(chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const a = chunk.charCodeAt(j), b = chunk.charCodeAt(j + 1) || 0, c = chunk.charCodeAt(j + 2) || 0;
      l += enc(a >> 2) + enc(((a << 4) | (b >> 4)) & 63) + enc(((b << 2) | (c >> 6)) & 63) + enc(c & 63);
    }
    lines.push(l);
  }
  lines.push('`');
  return lines;
}

export function uuencode(data: string, beginLine: string, eol = CRLF): string {
  return [beginLine, ...uuLines(data), 'end'].join(eol);
}

/** Top-level headers every case gets (deterministic). */
export function envelopeHeaders(id: string): string[] {
  return [
    'From: Sender <sender@example.com>',
    'To: rcpt@example.net',
    `Subject: case ${id.replace(/[^\x20-\x7e]/g, '?')}`,
    `Message-ID: <${id.replace(/[^A-Za-z0-9.-]/g, '.')}@hostile.example>`,
    'Date: Mon, 01 Jan 2024 00:00:00 +0000',
  ];
}

export function block(headers: string[], body: string, eol = CRLF): string {
  return headers.join(eol) + eol + eol + body;
}

export interface MultipartOpts {
  preamble?: string;
  epilogue?: string;
  /** Write the closing delimiter (default true). */
  close?: boolean;
  eol?: string;
}

/** A multipart body: preamble, `--b` + part for each part, `--b--`, epilogue. */
export function multipartBody(boundary: string, parts: string[], o: MultipartOpts = {}): string {
  const eol = o.eol ?? CRLF;
  let s = (o.preamble ?? 'This is a multi-part message in MIME format.') + eol;
  for (const p of parts) s += `--${boundary}${eol}${p}${eol}`;
  if (o.close !== false) s += `--${boundary}--${eol}`;
  if (o.epilogue) s += o.epilogue + eol;
  return s;
}

export const textPart = (text = 'Please find the document attached.', eol = CRLF): string =>
  block(['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit'], text, eol);

/** An attachment part: base64 by default; `headers` replace the generated ones when given. */
export function attachmentPart(name: string | null, content: string, o: { type?: string; cte?: string; headers?: string[]; eol?: string } = {}): string {
  const eol = o.eol ?? CRLF;
  const cte = o.cte ?? 'base64';
  const type = o.type ?? 'application/octet-stream';
  const h = o.headers ?? [
    `Content-Type: ${type}${name !== null ? `; name="${name}"` : ''}`,
    `Content-Transfer-Encoding: ${cte}`,
    ...(name !== null ? [`Content-Disposition: attachment; filename="${name}"`] : []),
  ];
  const body = cte.trim().toLowerCase() === 'base64' ? b64(content, eol) : content;
  return block(h, body, eol);
}

/** A whole message: envelope headers + MIME-Version + the given headers, then body. */
export function message(id: string, headers: string[], body: string, o: { eol?: string; envelope?: boolean } = {}): string {
  const eol = o.eol ?? CRLF;
  const top = [...(o.envelope === false ? [] : envelopeHeaders(id)), 'MIME-Version: 1.0', ...headers];
  return block(top, body, eol);
}

/** The usual multipart/mixed mail: a text part and the given parts. */
export function mixed(id: string, parts: string[], o: MultipartOpts & { boundary?: string; extraHeaders?: string[] } = {}): string {
  const b = o.boundary ?? 'b1-hostile';
  return message(id, [...(o.extraHeaders ?? []), `Content-Type: multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), ...parts], o), { eol: o.eol ?? CRLF });
}
