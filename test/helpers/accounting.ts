/**
 * accounting.ts — "no mail lost, no mail duplicated, nothing infected delivered":
 * send tracked messages through a real MTA + midstream and audit what the recording
 * sink got against what each client was told.
 *
 * Each message carries a unique Message-ID (`<ID@accounting.test>`). The ledger records
 * the kind sent (clean / eicar / banned) and the client's outcome: accepted (2xx after
 * the final dot), rejected (5xx), tempfailed (4xx), or disconnected (the client left at
 * a given SMTP stage, so it never saw a final reply). audit() then checks, per message:
 *   accepted    ⇒ delivered exactly once, original bytes intact below added header lines
 *   rejected    ⇒ never delivered          tempfailed ⇒ never delivered
 *   disconnected before the dot ⇒ never delivered
 *   disconnected after the dot  ⇒ delivered exactly once iff the MTA sent a 250 for it
 *                                  (oracle: Postfix's proxy-accept lines), else never
 * plus the expected verdict per kind (clean → 2xx, eicar/banned → 5xx, unless the
 * scenario expects a tempfail) and "every delivered message is one we sent".
 * Limits: messages are small (a few KiB, with dot-lines and 8-bit bytes); the sink must
 * store data. Gaps: the 250-oracle reads the Postfix proxy maillog only (milter mode has
 * no per-message accept line; there a client gone after the dot is not used).
 */
import { createHash } from 'node:crypto';
import type { Sink, SinkMessage } from './sink.js';
import { TestSmtpClient, dotStuff } from './smtp-client.js';

export type Kind = 'clean' | 'eicar' | 'banned';
export type Stage = 'connect' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'mid-data' | 'after-dot';
export type Outcome = 'accepted' | 'rejected' | 'tempfailed' | 'disconnected' | 'refused';

export interface Entry {
  id: string;
  kind: Kind;
  message: Buffer;
  /** Where the client leaves (undefined: a full transaction). */
  disconnectAt?: Stage;
  outcome?: Outcome;
  /** The final reply (or the failing one) as text. */
  reply?: string;
  /** Expected outcome if not the kind's default (e.g. 'tempfailed' for a fault). */
  expect?: Outcome;
}

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

function b64(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
}

/** Deterministic filler with dot-lines and 8-bit bytes so stuffing and transparency are exercised. */
function filler(id: string, lines: number): string {
  let s = '';
  for (let i = 0; i < lines; i++) {
    if (i % 17 === 3) s += `.${id} dot line ${i}\r\n`;
    else if (i % 23 === 5) s += `..double ${i}\r\n`;
    else if (i % 29 === 7) s += `8-bit caf\u00e9 ${i}\r\n`;
    else s += `${id} line ${i} ${'abcdefghijklmnopqrstuvwxyz'.slice(i % 26)}\r\n`;
  }
  return s;
}

/** One message of `kind` with Message-ID <id@accounting.test>; `lines` of filler in the text part. */
export function buildMail(kind: Kind, id: string, lines = 40): Buffer {
  const b = `acct-${id}`;
  let attach = '';
  if (kind === 'eicar') {
    attach = `--${b}\r\nContent-Type: application/octet-stream; name="report.txt"\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="report.txt"\r\n\r\n${b64(Buffer.from(EICAR, 'latin1'))}`;
  } else if (kind === 'banned') {
    attach = `--${b}\r\nContent-Type: application/octet-stream; name="invoice.pdf.exe"\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="invoice.pdf.exe"\r\n\r\n${b64(Buffer.from(`harmless bytes ${id}\r\n`))}`;
  } else {
    attach = `--${b}\r\nContent-Type: text/plain; name="notes.txt"\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="notes.txt"\r\n\r\n${b64(Buffer.from(`just notes ${id}\r\n`.repeat(5)))}`;
  }
  const text =
    `From: Sender <sender@accounting.test>\r\nTo: rcpt@example.net\r\nSubject: accounting ${kind} ${id}\r\n` +
    `Date: Sat, 22 Nov 2025 12:00:00 +0000\r\nMessage-ID: <${id}@accounting.test>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
    `--${b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${filler(id, lines)}` +
    attach + `--${b}--\r\n`;
  return Buffer.from(text, 'latin1');
}

export function messageIdOf(data: Buffer | null): string | null {
  if (!data) return null;
  const end = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end < 0 ? Math.min(data.length, 65536) : end).toString('latin1');
  const m = /^Message-ID:\s*<([^>]+)@accounting\.test>/im.exec(head);
  return m ? m[1]! : null;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Only whole header lines precede the original bytes (what MTAs add on the way). */
export function onlyHeadersAdded(got: Buffer, original: Buffer): string | null {
  if (got.length < original.length) return `delivered ${got.length} bytes < sent ${original.length}`;
  if (sha(got.subarray(got.length - original.length)) !== sha(original)) return 'original bytes altered';
  const prefix = got.subarray(0, got.length - original.length).toString('latin1');
  if (!/^(?:[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*$/.test(prefix)) return `non-header bytes added: ${JSON.stringify(prefix.slice(0, 200))}`;
  return null;
}

export function outcomeOf(code: number): Outcome {
  if (code >= 200 && code < 300) return 'accepted';
  if (code >= 400 && code < 500) return 'tempfailed';
  return 'rejected';
}

/**
 * Send one tracked message, leaving at `e.disconnectAt` if set. Never throws for SMTP
 * outcomes; records them in the entry. A refused MAIL/RCPT/DATA is 'refused' (or
 * tempfailed/rejected by its code).
 */
export async function sendTracked(port: number, e: Entry, o: { rcpt?: string; replyTimeoutMs?: number } = {}): Promise<Entry> {
  const leave = (c: TestSmtpClient): Entry => {
    c.destroy();
    e.outcome = 'disconnected';
    return e;
  };
  let c: TestSmtpClient;
  try {
    c = await TestSmtpClient.connect(port);
  } catch (err) {
    e.outcome = 'refused';
    e.reply = String(err);
    return e;
  }
  try {
    if (e.disconnectAt === 'connect') return leave(c);
    const g = await c.read();
    if (g.code !== 220) return fail(g.code, g.text);
    await c.cmd('EHLO accounting-client.example');
    if (e.disconnectAt === 'ehlo') return leave(c);
    const mail = await c.cmd('MAIL FROM:<sender@accounting.test>');
    if (mail.code !== 250) return fail(mail.code, mail.text);
    if (e.disconnectAt === 'mail') return leave(c);
    const rcpt = await c.cmd(`RCPT TO:<${o.rcpt ?? 'rcpt@example.net'}>`);
    if (rcpt.code !== 250) return fail(rcpt.code, rcpt.text);
    if (e.disconnectAt === 'rcpt') return leave(c);
    const data = await c.cmd('DATA');
    if (data.code !== 354) return fail(data.code, data.text);
    if (e.disconnectAt === 'data') return leave(c);
    const wire = dotStuff(e.message);
    if (e.disconnectAt === 'mid-data') {
      // Everything but the last line and the terminator, then give it time to flow downstream.
      await c.streamData([wire.subarray(0, Math.max(1, wire.length - 40))]);
      await new Promise((r) => setTimeout(r, 200));
      return leave(c);
    }
    await c.streamData([wire]);
    if (e.disconnectAt === 'after-dot') {
      // The dot is on its way; leave before any reply can be read.
      c.socket.end();
      c.destroy();
      e.outcome = 'disconnected';
      return e;
    }
    const fin = await c.read(o.replyTimeoutMs ?? 120_000);
    e.outcome = outcomeOf(fin.code);
    e.reply = fin.text;
    await c.quit();
    return e;
  } catch (err) {
    c.destroy();
    e.outcome = 'disconnected';
    e.reply = `client error: ${(err as Error).message}`;
    return e;
  }

  function fail(code: number, text: string): Entry {
    c.destroy();
    e.outcome = code >= 400 && code < 500 ? 'tempfailed' : code >= 500 ? 'rejected' : 'refused';
    e.reply = text;
    return e;
  }
}

/** Run `fn` over `items` with at most `n` at once. */
export async function runPool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/**
 * Message-IDs (local part) for which Postfix's before-filter smtpd relayed a 2xx from the
 * proxy to its client (`proxy-accept: END-OF-MESSAGE: 250 … queued as QID`), joined with
 * the after-filter cleanup's `QID: message-id=<…>` lines.
 */
export function proxyAcceptedIds(maillog: string): Set<string> {
  const midOf = new Map<string, string>();
  for (const m of maillog.matchAll(/: ([0-9A-F]{6,}): message-id=<([^>]+)@accounting\.test>/g)) midOf.set(m[1]!, m[2]!);
  const out = new Set<string>();
  for (const m of maillog.matchAll(/proxy-accept: END-OF-MESSAGE: 2\d\d [^\n]*?queued as ([0-9A-F]{6,})/g)) {
    const id = midOf.get(m[1]!);
    if (id) out.add(id);
  }
  return out;
}

export interface AuditResult {
  violations: string[];
  counts: Record<string, number>;
  delivered: number;
}

export function expectedOutcome(e: Entry): Outcome | undefined {
  if (e.expect) return e.expect;
  if (e.disconnectAt) return 'disconnected';
  return e.kind === 'clean' ? 'accepted' : 'rejected';
}

/**
 * Check every entry against the sink. `prefix`: only sink messages whose id starts with it
 * are considered (other tests' sentinels are ignored). `accepted250`: ids the MTA
 * answered 2xx for (for clients that left after the dot).
 */
export function audit(entries: Entry[], sink: Sink, o: { prefix: string; accepted250?: Set<string> }): AuditResult {
  const violations: string[] = [];
  const deliveries = new Map<string, SinkMessage[]>();
  let delivered = 0;
  for (const m of sink.messages) {
    const id = messageIdOf(m.data);
    if (id === null || !id.startsWith(o.prefix)) continue;
    delivered++;
    const list = deliveries.get(id) ?? [];
    list.push(m);
    deliveries.set(id, list);
  }
  const byId = new Map(entries.map((e) => [e.id, e]));
  for (const id of deliveries.keys()) if (!byId.has(id)) violations.push(`${id}: delivered but never sent`);
  const counts: Record<string, number> = {};
  for (const e of entries) {
    const key = `${e.kind}${e.disconnectAt ? '@' + e.disconnectAt : ''}:${e.outcome}`;
    counts[key] = (counts[key] ?? 0) + 1;
    const got = deliveries.get(e.id) ?? [];
    const exp = expectedOutcome(e);
    if (exp && e.outcome !== exp) violations.push(`${e.id} (${e.kind}): expected ${exp}, got ${e.outcome}: ${e.reply ?? ''}`);
    let mustDeliver: boolean;
    if (e.outcome === 'accepted') mustDeliver = true;
    else if (e.outcome === 'disconnected' && e.disconnectAt === 'after-dot') mustDeliver = o.accepted250?.has(e.id) ?? false;
    else mustDeliver = false;
    if (mustDeliver) {
      if (got.length !== 1) violations.push(`${e.id} (${e.kind}, ${e.outcome}): delivered ${got.length} times, expected exactly once`);
      else {
        const bad = onlyHeadersAdded(got[0]!.data as Buffer, e.message);
        if (bad) violations.push(`${e.id}: ${bad}`);
      }
    } else if (got.length !== 0) {
      violations.push(`${e.id} (${e.kind}, ${e.outcome}${e.disconnectAt ? ' at ' + e.disconnectAt : ''}): delivered ${got.length} times, expected never`);
    }
    if (e.kind !== 'clean' && got.length > 0) violations.push(`${e.id}: ${e.kind} message delivered`);
  }
  return { violations, counts, delivered };
}

/** Wait until the sink has stopped changing for `quietMs` (bounded by `maxMs`). */
export async function settle(sink: Sink, quietMs = 1500, maxMs = 60_000): Promise<void> {
  const until = Date.now() + maxMs;
  let n = sink.messages.length;
  let since = Date.now();
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    if (sink.messages.length !== n) {
      n = sink.messages.length;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

/** Wait until the sink holds at least one message for each id in `ids` (delivery may lag). */
export async function waitDelivered(sink: Sink, ids: string[], timeoutMs = 60_000): Promise<void> {
  const want = new Set(ids);
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const m of sink.messages) {
      const id = messageIdOf(m.data);
      if (id) want.delete(id);
    }
    if (want.size === 0) return;
    if (Date.now() > until) return; // audit() reports what is missing
    await new Promise((r) => setTimeout(r, 100));
  }
}
