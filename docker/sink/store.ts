/**
 * store.ts — the lab sink's message store: every accepted message, newest last.
 *
 * Input: raw message bytes exactly as received in DATA (dot-stuffing already undone) and
 *   the envelope. Output: records with the parsed header fields and the verdict headers
 *   (X-Virus-*, X-Midstream-*) picked out for the web view and the JSON API.
 * Limits: at most `maxMessages` records and `maxBytes` raw bytes in all; the oldest are
 *   dropped first. Header parsing stops at `MAX_FIELDS` fields and caps each value.
 * Errors: none; a message without a header/body separator is all header.
 * Gaps: in memory only (a restart empties it); header values are shown as sent
 *   (RFC 2047 words are not decoded).
 */

export interface HeaderField {
  name: string;
  value: string;
}

export interface StoredMessage {
  id: number;
  receivedAt: string;
  from: string;
  to: string[];
  helo: string;
  remoteAddress: string;
  size: number;
  headers: HeaderField[];
  /** Header fields a virus filter added: X-Virus-*, X-Midstream-*. */
  verdict: HeaderField[];
  subject: string;
  raw: Buffer;
}

export interface StoreLimits {
  maxMessages: number;
  maxBytes: number;
}

const MAX_FIELDS = 500;
const MAX_VALUE = 4096;
const VERDICT = /^x-(virus|midstream)-?/i;

/** Split the header block into unfolded fields (a dozen lines; no library needed for this). */
export function parseHeaders(raw: Buffer): HeaderField[] {
  let end = raw.indexOf('\r\n\r\n');
  if (end < 0) end = raw.indexOf('\n\n');
  const text = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
  const out: HeaderField[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length > 0) {
      const last = out[out.length - 1]!;
      if (last.value.length < MAX_VALUE) last.value = (last.value + ' ' + line.trim()).slice(0, MAX_VALUE);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    if (out.length >= MAX_FIELDS) break;
    out.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim().slice(0, MAX_VALUE) });
  }
  return out;
}

export class MailStore {
  private readonly messages: StoredMessage[] = [];
  private bytes = 0;
  private nextId = 1;

  /** `onAdd` sees each record as it is stored (the sink logs a line). */
  constructor(
    private readonly limits: StoreLimits,
    private readonly onAdd?: (m: StoredMessage) => void,
  ) {}

  add(m: { from: string; to: string[]; helo: string; remoteAddress: string; raw: Buffer }): StoredMessage {
    const headers = parseHeaders(m.raw);
    const rec: StoredMessage = {
      id: this.nextId++,
      receivedAt: new Date().toISOString(),
      from: m.from,
      to: m.to,
      helo: m.helo,
      remoteAddress: m.remoteAddress,
      size: m.raw.length,
      headers,
      verdict: headers.filter((h) => VERDICT.test(h.name)),
      subject: headers.find((h) => h.name.toLowerCase() === 'subject')?.value ?? '',
      raw: m.raw,
    };
    this.messages.push(rec);
    this.bytes += rec.size;
    while (this.messages.length > this.limits.maxMessages || (this.bytes > this.limits.maxBytes && this.messages.length > 1)) {
      this.bytes -= this.messages.shift()!.size;
    }
    this.onAdd?.(rec);
    return rec;
  }

  /** Newest first. */
  list(): StoredMessage[] {
    return [...this.messages].reverse();
  }

  get(id: number): StoredMessage | undefined {
    return this.messages.find((m) => m.id === id);
  }

  clear(): void {
    this.messages.length = 0;
    this.bytes = 0;
  }

  get count(): number {
    return this.messages.length;
  }
}
