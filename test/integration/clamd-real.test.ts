/**
 * clamd-real.test.ts — ClamdClient / ClamdScanner against a REAL clamd (test/helpers/clamd.ts):
 * EICAR, clean data, clam.exe bare and inside the containers of clamav-testfiles (clamd
 * unpacks them), TCP and UNIX socket, StreamMaxLength overflow (clamd's early reply and
 * our own cap), whole raw messages, concurrency, failover, clamd killed mid-stream
 * (→ error, never clean), PING/VERSION. Fails (never skips) when clamd is not installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { ClamdClient, type ClamdClientOptions, type ClamdStream } from '../../src/core/scan/clamd-client.js';
import { ClamdScanner } from '../../src/core/scan/clamd-scanner.js';
import type { ScanResult } from '../../src/core/types.js';
import { CLAM_EXE, EICAR, TESTFILES, startClamd, type RealClamd } from '../helpers/clamd.js';

const MiB = 1024 * 1024;
const EICAR_NAME = 'Eicar-Test-Signature.UNOFFICIAL';
const CLAM_NAME = /^ClamAV-Test-File(-Body)?\.UNOFFICIAL$/;

let clamd: RealClamd;
const clients: ClamdClient[] = [];

function client(endpoint: string | string[], o: Partial<ClamdClientOptions> = {}): ClamdClient {
  const c = new ClamdClient({ endpoints: Array.isArray(endpoint) ? endpoint : [endpoint], maxStreamBytes: MiB, ...o });
  clients.push(c);
  return c;
}

async function scan(c: ClamdClient, data: Uint8Array, piece = 64 * 1024): Promise<ScanResult> {
  const s = c.openStream();
  for (let i = 0; i < data.length; i += piece) {
    s.write(data.subarray(i, i + piece));
    if (s.needsDrain) await s.drain();
  }
  return s.end();
}

async function pour(s: ClamdStream, total: number, fill = 0x20): Promise<void> {
  const piece = Buffer.alloc(64 * 1024, fill);
  for (let sent = 0; sent < total && !s.result; sent += piece.length) {
    s.write(piece);
    if (s.needsDrain) await s.drain();
  }
}

const errKind = (r: ScanResult) => (r.kind === 'error' ? r.errorKind : r.kind);

before(async () => {
  clamd = await startClamd({ streamMaxLength: '1M' });
});

after(async () => {
  for (const c of clients) c.close();
  await clamd?.stop();
});

describe('commands', () => {
  test('PING and VERSION over TCP and the UNIX socket', async () => {
    for (const ep of [clamd.tcp, clamd.unix]) {
      const c = client(ep);
      await c.ping();
      assert.match(await c.version(), /^ClamAV 1\.\d+\.\d+/);
    }
  });
});

describe('detections', () => {
  test('EICAR over TCP and over the UNIX socket', async () => {
    for (const ep of [clamd.tcp, clamd.unix]) {
      assert.deepEqual(await scan(client(ep), Buffer.concat([Buffer.from('prefix '), EICAR, Buffer.from(' suffix')])), { kind: 'infected', name: EICAR_NAME });
    }
  });

  test('EICAR split across many tiny frames is reassembled', async () => {
    const c = client(clamd.tcp, { chunkBytes: 7 });
    const s = c.openStream();
    for (let i = 0; i < EICAR.length; i += 5) {
      s.write(EICAR.subarray(i, i + 5));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await s.end(), { kind: 'infected', name: EICAR_NAME });
  });

  test('clean text, clean binary and an empty stream are clean', async () => {
    const c = client(clamd.unix);
    assert.deepEqual(await scan(c, Buffer.from('Hello, this is a perfectly ordinary mail body.\r\n'.repeat(1000))), { kind: 'clean' });
    const bin = Buffer.alloc(300_000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919) & 0xff;
    assert.deepEqual(await scan(c, bin), { kind: 'clean' });
    assert.deepEqual(await c.openStream().end(), { kind: 'clean' });
  });

  test('clam.exe is found', async () => {
    const r = await scan(client(clamd.tcp), await readFile(CLAM_EXE));
    assert.equal(r.kind, 'infected');
    assert.match((r as { name: string }).name, CLAM_NAME);
  });

  const containers = [
    'clam.zip', 'clam.tar.gz', 'clam.7z', 'clam.arj', 'clam.cab', 'clam.bz2.zip', 'clam.exe.bz2', 'clam.newc.cpio',
    'clam.chm', 'clam.pdf', 'clam.tnef', 'clam.exe.binhex', 'clam.exe.rtf', 'clam-upx.exe', 'clam.mail',
    'clam.exe.mbox.base64', 'clam.exe.mbox.uu', 'clam.ole.doc',
  ];
  for (const name of containers) {
    test(`clam.exe inside ${name} is found (clamd unpacks)`, async () => {
      const data = await readFile(join(TESTFILES, name));
      const r = await scan(client(clamd.unix, { chunkBytes: 1000 }), data, 333);
      assert.equal(r.kind, 'infected', `${name}: ${JSON.stringify(r)}`);
      assert.match((r as { name: string }).name, CLAM_NAME);
    });
  }

  test('zip built here: clean members → clean, EICAR member → infected (control for the container tests)', async () => {
    const c = client(clamd.tcp);
    const clean = zipSync({ 'a.txt': Buffer.from('nothing to see here\n'.repeat(50)), 'b/c.bin': Buffer.alloc(5000, 3) });
    assert.deepEqual(await scan(c, clean), { kind: 'clean' });
    const bad = zipSync({ 'a.txt': Buffer.from('hello'), 'deep/eicar.com': EICAR });
    assert.deepEqual(await scan(c, bad), { kind: 'infected', name: EICAR_NAME });
  });

  test('whole-message mode: clamd decodes a raw MIME message with a base64 EICAR attachment', async () => {
    const b64 = EICAR.toString('base64');
    const msg = Buffer.from(
      'From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\nMIME-Version: 1.0\r\n' +
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n' +
        '--XX\r\nContent-Type: application/octet-stream; name="e.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        b64 + '\r\n--XX--\r\n',
    );
    assert.equal(msg.includes(EICAR), false, 'EICAR must only be present encoded');
    const sc = new ClamdScanner({ client: client(clamd.tcp), mode: 'whole-message' });
    const s = sc.open({ where: '', archiveDepth: 0 });
    assert.equal(s.write(msg), null);
    assert.deepEqual(await s.end(), { kind: 'infected', name: EICAR_NAME });
  });
});

describe('StreamMaxLength (clamd 1M)', () => {
  test('our cap above clamd\'s: clamd\'s early "size limit exceeded" is caught while we write', async () => {
    const c = client(clamd.tcp, { maxStreamBytes: 64 * MiB, idleTimeoutMs: 20_000 });
    const s = c.openStream();
    const t0 = Date.now();
    await pour(s, 32 * MiB);
    const r = await s.end();
    assert.equal(errKind(r), 'scanner-size-limit', JSON.stringify(r));
    assert.match((r as { detail: string }).detail, /INSTREAM size limit exceeded/);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.ok(s.stats.bytesSent < 32 * MiB, `sent ${s.stats.bytesSent}`);
  });

  test('our cap = clamd\'s: EICAR in the head of an oversized stream → infected', async () => {
    const s = client(clamd.unix).openStream();
    s.write(EICAR);
    await pour(s, 3 * MiB);
    assert.deepEqual(await s.end(), { kind: 'infected', name: EICAR_NAME });
    assert.equal(s.stats.bytesSent, MiB);
    assert.ok(s.stats.bytesDropped > 0);
  });

  test('our cap = clamd\'s: a clean oversized stream → scanner-size-limit, never clean', async () => {
    const s = client(clamd.tcp).openStream();
    await pour(s, 3 * MiB);
    const r = await s.end();
    assert.equal(errKind(r), 'scanner-size-limit', JSON.stringify(r));
    assert.equal(s.stats.bytesSent, MiB);
  });

  test('exactly StreamMaxLength bytes is accepted by clamd and by us', async () => {
    const s = client(clamd.tcp).openStream();
    await pour(s, MiB);
    assert.deepEqual(await s.end(), { kind: 'clean' });
    assert.equal(s.stats.bytesSent, MiB);
    assert.equal(s.stats.bytesDropped, 0);
  });
});

describe('connection reuse (IDSESSION)', () => {
  test('over TCP one session carries many scans, each with its own correct result; unix connects per scan', async () => {
    const tcp = client(clamd.tcp, { keepaliveMs: 5000 });
    const kinds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await scan(tcp, i % 4 === 3 ? EICAR : Buffer.from(`clean payload ${i}`));
      kinds.push(r.kind === 'infected' ? `infected:${r.name}` : r.kind);
    }
    kinds.forEach((k, i) => assert.equal(k, i % 4 === 3 ? `infected:${EICAR_NAME}` : 'clean', `scan ${i}`));
    const st = tcp.endpointStatus()[0]!;
    assert.equal(st.connects, 1, 'one connection for 20 sequential scans');
    assert.equal(st.reused, 19);
    assert.equal(st.idleConnections, 1);
    // A size-limit reply ends clamd's session: the connection is not reused after it.
    const over = client(clamd.tcp, { keepaliveMs: 5000, maxStreamBytes: 4 * MiB });
    const s = over.openStream();
    await pour(s, 2 * MiB);
    assert.equal(errKind(await s.end()), 'scanner-size-limit');
    assert.equal(over.endpointStatus()[0]!.idleConnections, 0);
    assert.deepEqual(await scan(over, EICAR), { kind: 'infected', name: EICAR_NAME });
    const unix = client(clamd.unix, { keepaliveMs: 5000 });
    for (let i = 0; i < 3; i++) assert.deepEqual(await scan(unix, Buffer.from('x')), { kind: 'clean' });
    assert.equal(unix.endpointStatus()[0]!.connects, 3);
  });
});

describe('concurrency and failover', () => {
  test('12 parallel streams with maxConcurrent 3 all get their own correct result', async () => {
    const c = client(clamd.unix, { maxConcurrent: 3 });
    const jobs = Array.from({ length: 12 }, (_, i) =>
      scan(c, i % 2 ? Buffer.concat([Buffer.alloc(50_000, 0x61 + i), EICAR]) : Buffer.alloc(50_000, 0x61 + i), 4096),
    );
    const rs = await Promise.all(jobs);
    rs.forEach((r, i) => assert.deepEqual(r, i % 2 ? { kind: 'infected', name: EICAR_NAME } : { kind: 'clean' }, `job ${i}`));
    assert.equal(c.inFlight, 0);
  });

  test('a dead first endpoint fails over to the live clamd and is marked down', async () => {
    const c = client([`unix:${join(clamd.dir, 'nothing-here.sock')}`, clamd.tcp]);
    assert.deepEqual(await scan(c, EICAR), { kind: 'infected', name: EICAR_NAME });
    assert.deepEqual(await scan(c, Buffer.from('clean')), { kind: 'clean' });
    const st = c.endpointStatus();
    assert.equal(st[0]!.up, false);
    assert.equal(st[1]!.up, true);
  });
});

describe('clamd dies', () => {
  test('clamd killed mid-stream → error (never clean); afterwards → scanner-unavailable', async () => {
    const victim = await startClamd({ streamMaxLength: '64M' });
    try {
      const c = client(victim.tcp, { maxStreamBytes: 64 * MiB, idleTimeoutMs: 5000 });
      const s = c.openStream();
      await pour(s, 512 * 1024);
      const t0 = Date.now();
      while (s.stats.bytesSent === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      assert.ok(s.stats.bytesSent > 0, 'stream never connected');
      assert.equal(s.result, null);
      victim.kill();
      await new Promise((r) => setTimeout(r, 100));
      await pour(s, 4 * MiB);
      const r = await s.end();
      assert.equal(r.kind, 'error', JSON.stringify(r));
      assert.ok(['scanner-unavailable', 'scanner-protocol'].includes(errKind(r)), JSON.stringify(r));
      const r2 = await scan(c, Buffer.from('after death'));
      assert.equal(errKind(r2), 'scanner-unavailable');
      await assert.rejects(c.ping());
    } finally {
      await victim.stop();
    }
  });
});
