/**
 * actions-fixture.ts — one policy for the issue #13 end-to-end tests, the same through the
 * proxy (real Postfix before-queue), the milter on real Postfix and the milter on real
 * Sendmail: recipient domains pick the action (quarantine.test, tag.test, discard.test,
 * anything else: reject with the template), a sender domain (partner.test: tag) and a full
 * recipient address (vip@example.net: discard) too; virus_lovers, sender_block,
 * sender_allow, a name glob, a declared MIME type, notices to admin@notice.test. Plus the messages those tests send
 * and what they look for in delivered mail.
 */
import assert from 'node:assert/strict';
import { VERSION } from '../../src/version.js';
import type { Sink, SinkMessage } from './sink.js';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
export const SCANNED = `X-Virus-Scanned: midstream ${VERSION} on filter.test`;

/** The [headers]/[reply]/[policy]/[notify]/[[rules]] part of the config; `rules` are front-specific extras (first). */
export function actionsConfig(notifyRelayPort: number, rules = ''): string {
  return `
[headers]
hostname = "filter.test"
subject_prefix = "***VIRUS*** "

[reply]
infected = "550 5.7.1 Virus found: %v"

[policy]
virus_lovers = ["abuse@lovers.test"]
sender_block = ["spammer.test"]
sender_allow = ["ci@trusted.test"]
banned_names = ["*.docm"]

[notify]
relay = "127.0.0.1:${notifyRelayPort}"
admin = ["admin@notice.test"]
on = ["infected", "quarantine", "discard"]
max_per_minute = 600
timeout = "10s"
${rules}
[[rules]]
name = "partner"
match = { sender = ["partner.test"] }
actions = { infected = "tag" }

[[rules]]
name = "vip"
match = { recipient = ["vip@example.net"] }
actions = { infected = "discard" }

[[rules]]
name = "quarantine"
match = { recipient_domain = ["quarantine.test"] }
actions = { infected = "quarantine", banned = "quarantine" }

[[rules]]
name = "tag"
match = { recipient_domain = ["tag.test"] }
actions = { infected = "tag" }

[[rules]]
name = "discard"
match = { recipient_domain = ["discard.test"] }
actions = { infected = "discard" }
`;
}

let n = 0;
/** A message with a unique marker (Message-ID and Subject), a forged X-Virus-Status: Clean, and `body`. */
export function mail(body: string, o: { subject?: string; extraHeaders?: string } = {}): { marker: string; text: string } {
  const marker = `m${process.pid}x${++n}`;
  const text =
    `From: sender@example.org\r\nTo: rcpt@example.net\r\nSubject: ${o.subject ?? marker}\r\nMessage-ID: <${marker}@example.org>\r\n` +
    `X-Virus-Status: Clean\r\nX-Virus-Scanned: by a friendly forger\r\n${o.extraHeaders ?? ''}\r\n${body}`;
  return { marker, text };
}

/** A multipart message with one attachment. */
export function withAttachment(name: string, contentType: string, content: string, subject?: string): { marker: string; text: string } {
  const b64 = Buffer.from(content, 'latin1').toString('base64').replace(/.{76}/g, '$&\r\n');
  return mail(
    `--BB\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--BB\r\nContent-Type: ${contentType}; name="${name}"\r\n` +
      `Content-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--BB--\r\n`,
    { extraHeaders: 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BB"\r\n', ...(subject ? { subject } : {}) },
  );
}

/** The header block of delivered mail, and the values of one field in it. */
export function headerOf(data: Buffer | null): string {
  const s = data?.toString('latin1') ?? '';
  const at = s.indexOf('\r\n\r\n');
  return at < 0 ? s : s.slice(0, at + 2);
}

export function fieldValues(head: string, name: string): string[] {
  const out: string[] = [];
  for (const m of head.replace(/\r\n[ \t]/g, ' ').matchAll(new RegExp(`^${name}:[ \\t]*(.*)$`, 'gim'))) out.push(m[1]!.replace(/\r$/, ''));
  return out;
}

/** Delivered mail in the sink (notices to admin@notice.test are not mail), waiting for a marker,
 * and non-delivery: a clean probe sent afterwards arrives, so a marker still absent was never
 * delivered. `sink` is a getter: the tests start their sink in before(). */
export function deliveryChecks(sink: () => Sink, send: (to: string, text: string) => Promise<{ final: { code: number } }>) {
  const isMail = (m: SinkMessage) => !m.rcpt.includes('admin@notice.test');
  const delivered = (marker: string, timeoutMs = 30_000) =>
    sink().waitFor((m) => isMail(m) && (m.data?.toString('latin1') ?? '').includes(`<${marker}@example.org>`), timeoutMs);
  const neverDelivered = async (marker: string) => {
    const probe = mail('probe\r\n');
    assert.equal((await send('x@example.net', probe.text)).final.code, 250);
    await delivered(probe.marker);
    assert.ok(!sink().messages.some((m) => isMail(m) && (m.data?.toString('latin1') ?? '').includes(marker)), `${marker} must not be delivered`);
  };
  return { isMail, delivered, neverDelivered };
}

/** A forged X-Virus-Status: Clean never arrives, and ours is the only X-Virus-Scanned. */
export function assertNoForgery(head: string): void {
  assert.ok(!fieldValues(head, 'X-Virus-Status').includes('Clean'), 'the forged X-Virus-Status: Clean is gone');
  assert.deepEqual(fieldValues(head, 'X-Virus-Scanned'), [SCANNED.slice('X-Virus-Scanned: '.length)], 'only our X-Virus-Scanned');
}

/** Rule types by sender and by full recipient address, and sender_allow, through any front. */
export async function ruleTypes(
  send: (to: string, text: string, from?: string) => Promise<{ final: { code: number; text: string } }>,
  delivered: (marker: string) => Promise<{ data: Buffer | null }>,
  neverDelivered: (marker: string) => Promise<void>,
  check: { equal(a: unknown, b: unknown, m?: string): void; deepEqual(a: unknown, b: unknown, m?: string): void },
): Promise<void> {
  const p = mail(`${EICAR}\r\n`);
  check.equal((await send('x@example.net', p.text, 'someone@partner.test')).final.code, 250, 'sender rule: tagged');
  check.deepEqual(fieldValues(headerOf((await delivered(p.marker)).data), 'X-Virus-Status'), ['Infected (Eicar-Test-Signature)']);
  const v = mail(`${EICAR}\r\n`);
  check.equal((await send('vip@example.net', v.text)).final.code, 250, 'recipient address rule: discarded');
  await neverDelivered(v.marker);
  check.equal((await send('other@example.net', mail(`${EICAR}\r\n`).text)).final.code, 550, 'same domain, other address: the default');
  const a = withAttachment('setup.exe', 'application/octet-stream', 'a build artefact');
  check.equal((await send('x@example.net', a.text, 'ci@trusted.test')).final.code, 250, 'sender_allow: banned checks skipped');
  await delivered(a.marker);
  check.equal((await send('x@example.net', withAttachment('setup.exe', 'application/octet-stream', 'x').text, 'ci@untrusted.test')).final.code, 550);
}
