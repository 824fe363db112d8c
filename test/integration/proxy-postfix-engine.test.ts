/**
 * proxy-postfix-engine.test.ts — the proxy with the REAL core engine (createEngine) behind
 * a real Postfix: EICAR, a banned attachment, clam.exe inside a zip, and a clean
 * multipart message that must pass. These depend on the engine (MIME decoding, archive
 * unpacking, banned-name policy), not only on the proxy; they are kept apart from
 * proxy-postfix.test.ts so the engine's progress does not hide proxy regressions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../src/core/index.js';
import { startProxy, type ProxyHandle } from '../../src/smtp/proxy-server.js';
import { createLogger } from '../../src/log/logger.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { sendMessage } from '../helpers/smtp-client.js';

const CLAM_EXE = '/usr/share/clamav-testfiles/clam.exe';
const CLAM_ZIP = '/usr/share/clamav-testfiles/clam.zip';
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

let pf: PostfixInstance;
let sink: Sink;
let proxy: ProxyHandle | null = null;
let sigDir: string;
let seq = 0;

async function useEngine(opts: Parameters<typeof createEngine>[0]): Promise<void> {
  if (proxy) await proxy.close();
  proxy = null;
  proxy = await startProxy({
    listen: `127.0.0.1:${pf.filterPort}`,
    forward: `127.0.0.1:${pf.reinjectPort}`,
    engine: await createEngine(opts),
    logger: createLogger({ level: 'warn' }),
    hostname: 'filter.midstream.test',
  });
}

before(async () => {
  sigDir = mkdtempSync(join(tmpdir(), 'midstream-sigs-'));
  const exe = readFileSync(CLAM_EXE);
  // A hash signature for clam.exe (FACTS.md: a custom .hdb line md5:size:Name).
  writeFileSync(join(sigDir, 'clam.hdb'), `${createHash('md5').update(exe).digest('hex')}:${exe.length}:Clam.Test.Exe\n`);
  sink = await startSink();
  pf = await startPostfix({ sinkPort: sink.port });
  await useEngine({});
});

after(async () => {
  if (proxy) await proxy.close().catch(() => {});
  if (pf) await pf.stop();
  if (sink) await sink.close();
  if (sigDir) rmSync(sigDir, { recursive: true, force: true });
});

function b64lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
}

function multipart(attachName: string, contentType: string, data: Buffer): { marker: string; text: string } {
  const marker = `eng-${process.pid}-${++seq}`;
  const text =
    `From: sender@example.org\r\nTo: rcpt@example.net\r\nSubject: ${marker}\r\nDate: Sat, 22 Nov 2025 12:00:00 +0000\r\n` +
    `Message-ID: <${marker}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b-${marker}"\r\n\r\n` +
    `--b-${marker}\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n` +
    `--b-${marker}\r\nContent-Type: ${contentType}; name="${attachName}"\r\nContent-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename="${attachName}"\r\n\r\n${b64lines(data)}--b-${marker}--\r\n`;
  return { marker, text };
}

async function assertNothingDelivered(marker: string): Promise<void> {
  const s = multipart('notes.txt', 'text/plain', Buffer.from('sentinel\r\n'));
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: s.text });
  assert.equal(r.final.code, 250, r.final.text);
  await sink.waitFor((m) => !!m.data?.includes(`Subject: ${s.marker}\r\n`), 30_000);
  assert.equal(sink.messages.filter((m) => m.data?.includes(`Subject: ${marker}\r\n`)).length, 0, `${marker} must not be delivered`);
}

test('clean multipart message with a text attachment passes the real engine', async () => {
  const m = multipart('notes.txt', 'text/plain', Buffer.from('just text\r\n'.repeat(100)));
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: m.text });
  assert.equal(r.final.code, 250, r.final.text);
  await sink.waitFor((x) => !!x.data?.includes(`Subject: ${m.marker}\r\n`));
});

test('EICAR in a base64 attachment: 550 5.7.1, nothing delivered', async () => {
  const m = multipart('eicar.com.txt', 'application/octet-stream', Buffer.from(EICAR, 'latin1'));
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: m.text });
  assert.equal(r.final.code, 550, r.final.text);
  assert.match(r.final.text, /^550 5\.7\.1 Message rejected: virus found: .*eicar/i);
  await assertNothingDelivered(m.marker);
});

test('banned attachment name (invoice.pdf.exe): 550 5.7.1, nothing delivered', async () => {
  const m = multipart('invoice.pdf.exe', 'application/octet-stream', Buffer.from('harmless bytes, banned name\r\n'));
  const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: m.text });
  assert.equal(r.final.code, 550, r.final.text);
  assert.match(r.final.text, /^550 5\.7\.1 Message rejected: .*banned/i);
  await assertNothingDelivered(m.marker);
});

test('clam.exe inside a zip, found by a custom .hdb signature: 550 5.7.1, nothing delivered', async () => {
  await useEngine({ signatures: [join(sigDir, 'clam.hdb')], bannedTypes: [], checkBannedInArchives: false });
  try {
    const m = multipart('archive.zip', 'application/zip', readFileSync(CLAM_ZIP));
    const r = await sendMessage(pf.smtpPort, { from: 'sender@example.org', to: ['rcpt@example.net'], message: m.text });
    assert.equal(r.final.code, 550, r.final.text);
    assert.match(r.final.text, /^550 5\.7\.1 Message rejected: virus found: Clam\.Test\.Exe/);
    await assertNothingDelivered(m.marker);
  } finally {
    await useEngine({});
  }
});
