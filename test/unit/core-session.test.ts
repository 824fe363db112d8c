/**
 * The whole core pipeline on composed messages: verdict kind, name and where-path,
 * and the same verdict whatever the chunking (whole, 1 byte, odd sizes, random splits).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createEngine, type Engine, type Verdict } from '../../src/core/index.js';
import {
  EICAR, EICAR_BYTES, multipartMessage, plainMessage, zip, gzip, chunks, pseudoRandom, b64lines,
} from '../helpers/mail-build.js';

const CLAM_EXE = readFileSync('/usr/share/clamav-testfiles/clam.exe');

async function scan(engine: Engine, msg: Uint8Array, size = msg.length): Promise<Verdict> {
  const s = engine.begin();
  for (const c of chunks(msg, Math.max(1, size))) await s.push(c);
  return s.end();
}

async function scanSplits(engine: Engine, msg: Uint8Array): Promise<Verdict> {
  const whole = await scan(engine, msg);
  const sizes = msg.length > 20_000 ? [7, 333, 4096] : [1, 2, 3, 7, 64, 1000, 4096];
  for (const n of sizes) {
    assert.deepEqual(await scan(engine, msg, n), whole, `chunk size ${n} changed the verdict`);
  }
  // random splits
  let seed = msg.length;
  for (let r = 0; r < 3; r++) {
    const s = engine.begin();
    let i = 0;
    while (i < msg.length) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = 1 + (seed % 2000);
      await s.push(msg.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(await s.end(), whole, 'random split changed the verdict');
  }
  return whole;
}

const engineP = createEngine({ builtin: true });

test('clean plain and multipart messages are clean', async () => {
  const e = await engineP;
  assert.deepEqual(await scanSplits(e, plainMessage('hello world')), { kind: 'clean' });
  const m = multipartMessage([{ filename: 'report.pdf', contentType: 'application/pdf', content: pseudoRandom(5000) }]);
  assert.deepEqual(await scanSplits(e, m), { kind: 'clean' });
});

test('EICAR in a plain body is found at part 1', async () => {
  const v = await scanSplits(await engineP, plainMessage(`text before\r\n${EICAR}\r\nafter`));
  assert.equal(v.kind, 'infected');
  assert.equal(v.kind === 'infected' && v.name, 'Eicar-Test-Signature');
  assert.equal(v.kind === 'infected' && v.where, '1');
});

test('EICAR base64 attachment names its MIME path and file name', async () => {
  const v = await scanSplits(await engineP, multipartMessage([{ filename: 'eicar.txt', contentType: 'text/plain', content: EICAR }]));
  assert.deepEqual(v, { kind: 'infected', name: 'Eicar-Test-Signature', where: '2/eicar.txt', engine: 'builtin' });
});

test('EICAR quoted-printable attachment is decoded before scanning', async () => {
  const qp = EICAR.replace(/=/g, '=3D').slice(0, 40) + '=\r\n' + EICAR.replace(/=/g, '=3D').slice(40);
  const v = await scanSplits(await engineP, multipartMessage([{ filename: 'e.txt', contentType: 'text/plain', content: qp, encoding: 'quoted-printable' }]));
  assert.equal(v.kind, 'infected');
  assert.equal(v.kind === 'infected' && v.where, '2/e.txt');
});

test('EICAR inside a zip inside a gzip is found with the member path', async () => {
  const z = zip({ 'docs/readme.txt': 'nothing here', 'docs/eicar.txt': EICAR });
  const v1 = await scanSplits(await engineP, multipartMessage([{ filename: 'invoice.zip', contentType: 'application/zip', content: z }]));
  assert.deepEqual(v1, { kind: 'infected', name: 'Eicar-Test-Signature', where: '2/invoice.zip!docs/eicar.txt', engine: 'builtin' });
  const v2 = await scanSplits(await engineP, multipartMessage([{ filename: 'a.tgz', content: gzip(z) }]));
  assert.equal(v2.kind, 'infected');
  assert.match(v2.kind === 'infected' ? v2.where : '', /^2\/a\.tgz!.*!docs\/eicar\.txt$/);
});

test('uuencoded EICAR inside a text body is extracted and found', async () => {
  const uu = uuencode('eicar.txt', EICAR_BYTES);
  const v = await scanSplits(await engineP, plainMessage(`Hi,\r\n\r\n${uu}\r\nbye`));
  assert.equal(v.kind, 'infected');
  assert.equal(v.kind === 'infected' && v.where, '1/eicar.txt');
});

test('attached message/rfc822 is parsed recursively with IMAP-style paths', async () => {
  const inner = multipartMessage([{ filename: 'eicar.com.txt', contentType: 'text/plain', content: EICAR }], { boundary: 'inner-b' });
  const outer = multipartMessage([{ contentType: 'message/rfc822', content: inner, encoding: '7bit' }], { boundary: 'outer-b' });
  const v = await scanSplits(await engineP, outer);
  assert.deepEqual(v, { kind: 'infected', name: 'Eicar-Test-Signature', where: '2.2/eicar.com.txt', engine: 'builtin' });
  // the same attached message in base64 takes the same path
  const outer64 = multipartMessage([{ contentType: 'message/rfc822', content: inner }], { boundary: 'outer-b' });
  assert.deepEqual(await scanSplits(await engineP, outer64), v);
});

test('banned names: double extension, trailing dots, case, inside archives', async () => {
  const e = await engineP;
  const cases: [string, Uint8Array, string][] = [
    ['invoice.pdf.exe', multipartMessage([{ filename: 'invoice.pdf.exe', content: 'harmless' }]), '2/invoice.pdf.exe'],
    ['RUN.ExE. .', multipartMessage([{ filename: 'RUN.ExE. .', content: 'harmless' }]), '2/RUN.ExE. .'],
    ['script.js', multipartMessage([{ filename: 'script.js', content: 'alert(1)' }]), '2/script.js'],
    ['in zip', multipartMessage([{ filename: 'b.zip', content: zip({ 'docs/run.exe': 'x' }) }]), '2/b.zip!docs/run.exe'],
  ];
  for (const [label, msg, where] of cases) {
    const v = await scanSplits(e, msg);
    assert.equal(v.kind, 'banned', label);
    assert.equal(v.kind === 'banned' && v.where, where, label);
  }
  assert.equal((await scan(e, multipartMessage([{ filename: 'notes.txt', content: 'x' }]))).kind, 'clean');
});

test('banned type by magic: a PE executable named report.pdf', async () => {
  const v = await scanSplits(await engineP, multipartMessage([{ filename: 'report.pdf', content: CLAM_EXE }]));
  assert.equal(v.kind, 'banned');
  assert.match(v.kind === 'banned' ? v.reason : '', /pe/);
  assert.equal(v.kind === 'banned' && v.where, '2/report.pdf');
});

test('skipBanned (trusted sender) still finds viruses', async () => {
  const e = await engineP;
  const s = e.begin({}, { policy: { skipBanned: true } });
  await s.push(multipartMessage([{ filename: 'tool.exe', content: CLAM_EXE }]));
  assert.equal((await s.end()).kind, 'clean');
  const s2 = e.begin({}, { policy: { skipBanned: true } });
  await s2.push(multipartMessage([{ filename: 'tool.exe', content: EICAR }]));
  assert.equal((await s2.end()).kind, 'infected');
});

test('encrypted zip member: banned by default, tempfail when configured', async () => {
  const z = Buffer.from(zip({ 'secret.txt': 'attack at dawn' }, 0));
  // Set the "encrypted" general-purpose flag in the local and central headers.
  for (let i = 0; i + 4 <= z.length; i++) {
    if (z[i] === 0x50 && z[i + 1] === 0x4b && z[i + 2] === 3 && z[i + 3] === 4) z[i + 6] |= 1;
    if (z[i] === 0x50 && z[i + 1] === 0x4b && z[i + 2] === 1 && z[i + 3] === 2) z[i + 8] |= 1;
  }
  const msg = multipartMessage([{ filename: 'secret.zip', content: z }]);
  const v = await scanSplits(await engineP, msg);
  assert.deepEqual(v, { kind: 'banned', reason: 'encrypted archive', where: '2/secret.zip!secret.txt' });
  const e2 = await createEngine({ encrypted: 'tempfail' });
  const v2 = await scan(e2, msg);
  assert.equal(v2.kind, 'error');
  assert.equal(v2.kind === 'error' && v2.errorKind, 'encrypted');
});

test('limits: MIME depth, decompression bomb, part count', async () => {
  const e = await createEngine({ limits: { mimeDepth: 20, mimeParts: 50, unpackedBytes: 8 * 1024 * 1024 } });
  // 40 nested multiparts
  let body = 'innermost';
  for (let i = 0; i < 40; i++) {
    body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}\r\n--b${i}--\r\n`;
  }
  const deep = Buffer.from(`From: a@b\r\nSubject: deep\r\nMIME-Version: 1.0\r\n${body}`, 'latin1');
  const vd = await scanSplits(e, deep);
  assert.equal(vd.kind, 'limit');
  assert.equal(vd.kind === 'limit' && vd.which, 'mime-depth');

  const bomb = gzip(new Uint8Array(64 * 1024 * 1024));
  const vb = await scan(e, multipartMessage([{ filename: 'zeros.gz', content: bomb }]), 65536);
  assert.equal(vb.kind, 'limit');
  assert.ok(vb.kind === 'limit' && ['ratio', 'unpacked-bytes'].includes(vb.which), JSON.stringify(vb));

  const many = multipartMessage(Array.from({ length: 80 }, (_, i) => ({ filename: `f${i}.txt`, content: 'x' })));
  const vm = await scan(e, many);
  assert.equal(vm.kind, 'limit');
  assert.equal(vm.kind === 'limit' && vm.which, 'mime-parts');
});

test('an early verdict fires before the rest of a large message is pushed', async () => {
  const e = await engineP;
  const big = multipartMessage([
    { filename: 'e.txt', contentType: 'text/plain', content: EICAR },
    { filename: 'big.bin', content: pseudoRandom(3 * 1024 * 1024) },
  ]);
  const s = e.begin();
  let firedAt = -1;
  let pushed = 0;
  s.onFinal(() => { if (firedAt < 0) firedAt = pushed; });
  const eicarEnd = big.indexOf(Buffer.from(b64lines(EICAR_BYTES), 'latin1')) + b64lines(EICAR_BYTES).length;
  assert.ok(eicarEnd > 100);
  for (const c of chunks(big, 8192)) {
    pushed += c.length;
    await s.push(c);
  }
  const v = await s.end();
  assert.equal(v.kind, 'infected');
  assert.ok(firedAt > 0 && firedAt <= eicarEnd + 64 * 1024, `verdict known after ${firedAt} bytes, signature ends at ${eicarEnd}`);
  assert.equal(s.stats.bytes, big.length, 'the rest is still counted');
});

function uuencode(name: string, data: Uint8Array): string {
  const enc = (n: number) => String.fromCharCode(n === 0 ? 0x60 : n + 32);
  const lines = [`begin 644 ${name}`];
  for (let i = 0; i < data.length; i += 45) {
    const slice = data.subarray(i, i + 45);
    let line = enc(slice.length);
    for (let j = 0; j < slice.length; j += 3) {
      const a = slice[j] ?? 0, b = slice[j + 1] ?? 0, c = slice[j + 2] ?? 0;
      line += enc(a >> 2) + enc(((a & 3) << 4) | (b >> 4)) + enc(((b & 15) << 2) | (c >> 6)) + enc(c & 63);
    }
    lines.push(line);
  }
  lines.push('`', 'end');
  return lines.join('\r\n');
}

test('anomalies: recorded once each and counted; an ambiguous one is a named verdict under actions.anomaly', async () => {
  const { MessageSession } = await import('../../src/core/session.js');
  const seen: string[] = [];
  const eng = await createEngine({ onAnomaly: (c) => seen.push(c) });
  const policy = eng.policy;
  const s = new MessageSession(policy, [], {}, { anomaly: (c) => seen.push(c) });
  s.anomaly('duplicate-content-type', '1');
  s.anomaly('duplicate-content-type', '1');
  assert.equal(s.verdict, null, 'an anomaly read every way is not a verdict');
  s.anomaly('message-partial', '2', true);
  assert.deepEqual(s.verdict, { kind: 'anomaly', which: 'message-partial', where: '2' });
  assert.deepEqual(s.stats.anomalies, ['duplicate-content-type@1', 'message-partial@2']);
  assert.deepEqual(seen, ['duplicate-content-type', 'duplicate-content-type', 'message-partial']);
  const lax = new MessageSession({ ...policy, actions: { ...policy.actions, anomaly: 'tempfail' } }, [], {});
  lax.anomaly('zip-directory-mismatch', '2/a.zip', true);
  assert.equal(lax.verdict, null, 'a tempfail action does not latch');
  assert.deepEqual(await lax.end(), { kind: 'anomaly', which: 'zip-directory-mismatch', where: '2/a.zip' });
});
