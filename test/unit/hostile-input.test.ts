/**
 * hostile-input.test.ts — crafted messages through the real core (createEngine, built-in
 * scanner, default limits unless a smaller one keeps a case fast): decompression bombs,
 * absurd MIME structure, endless lines, broken encodings, lying/truncated/encrypted
 * archives. Each gets a defined verdict (exact kind and limit/reason asserted).
 *
 * Time and memory: each case measures elapsed time and the process RSS growth while the
 * message is pushed, and prints both as test diagnostics. Only generous memory bounds are
 * asserted (a correctness property: memory must not follow what the input claims); time
 * is printed, never asserted (this machine is shared and loaded).
 *
 * Bombs are built cheaply: a deflate stream of zeros is made of one byte-aligned,
 * self-contained block sequence (zlib with Z_FULL_FLUSH over 16 MiB of zeros, ~16 KiB)
 * repeated N times and closed with an empty final block, so a 8 GiB stream costs 8 MiB
 * and no compression time. The bzip2 bomb is one 50-byte stream of 45 MB of zeros
 * (made once with `bzip2 -9`, embedded as hex) concatenated 100 times.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { getEventListeners, setMaxListeners } from 'node:events';
import { createEngine, type Engine, type Verdict } from '../../src/core/index.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { crc32 } from '../../src/core/unpack/crc32.js';
import { buildZip, buildTar } from '../helpers/unpack-harness.js';
import { EICAR, b64lines } from '../helpers/mail-build.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const CHUNK = 64 * KiB;

let engine: Engine;
before(async () => {
  engine = await createEngine({});
});
after(async () => {
  await engine?.close();
});

// ---------------------------------------------------------------- builders

/** 16 MiB of zeros as a byte-aligned deflate block run with no final block (~16 KiB). */
const ZERO_RUN_BYTES = 16 * MiB;
const zeroRun: Buffer = deflateRawSync(Buffer.alloc(ZERO_RUN_BYTES), { level: 9, finishFlush: constants.Z_FULL_FLUSH });
/** An empty final fixed-Huffman block: BFINAL=1, BTYPE=01, end-of-block code. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** A raw deflate stream that inflates to `runs` × 16 MiB of zeros. */
function zeroDeflate(runs: number): Buffer {
  return Buffer.concat([...Array.from({ length: runs }, () => zeroRun), FINAL_BLOCK]);
}

/** gzip member around a raw deflate stream (CRC/ISIZE are what they are: the limit trips first). */
function gzipOf(deflated: Buffer, isize: number, crc = 0): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(isize % 2 ** 32, 4);
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]), deflated, trailer]);
}

/** 45,000,000 zeros, `bzip2 -9`: one 50-byte stream. */
const BZ2_45MB_ZEROS = Buffer.from(
  '425a6839314159265359c901b6c80158ab4020c00010000008200030cc0529a65248526c5492149e2ee48a70a12192036d90',
  'hex',
);

const HEAD = 'From: mallory@example.org\r\nTo: victim@example.net\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n';

/** A message with one base64 attachment, yielded in CHUNK pieces (the base64 is made per slice). */
function* attachmentMessage(filename: string, data: Uint8Array, ct = 'application/octet-stream'): Generator<Uint8Array> {
  yield Buffer.from(
    HEAD + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n' +
      `--b1\r\nContent-Type: ${ct}; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\n` +
      'Content-Transfer-Encoding: base64\r\n\r\n',
    'latin1',
  );
  // 57 input bytes per 76-char line; slices are multiples of 57 so lines stay whole.
  const slice = 57 * 1000;
  for (let i = 0; i < data.length; i += slice) yield Buffer.from(b64lines(data.subarray(i, i + slice)) + '\r\n', 'latin1');
  yield Buffer.from('--b1--\r\n', 'latin1');
}

function* inChunks(b: Uint8Array, size = CHUNK): Generator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

/** Zip-in-zip, 42.zip style: `levels` levels, `copies` entries per level, leaves of `leafRuns` × 16 MiB zeros. */
function nestedZipBomb(levels: number, copies: number, leafRuns: number): { zip: Uint8Array; nominal: number } {
  const leaf = zeroDeflate(leafRuns);
  let nominal = leafRuns * ZERO_RUN_BYTES;
  // An honest leaf (true CRC and size), so a run that gets to its end is not "corrupt".
  const leafCrc = crc32(new Uint8Array(nominal));
  let cur = buildZip(
    Array.from({ length: copies }, (_, i) => ({
      name: `zeros-${i}.bin`, data: new Uint8Array(0), compressed: leaf, crc: leafCrc, usize: nominal,
    })),
  );
  nominal *= copies;
  for (let l = 1; l < levels; l++) {
    const child = cur;
    const packed = deflateRawSync(child, { level: 9 });
    const crc = crc32(child);
    cur = buildZip(
      Array.from({ length: copies }, (_, i) => ({
        name: `level${l}-${i}.zip`, data: new Uint8Array(0), compressed: packed, crc, usize: child.length,
      })),
    );
    nominal *= copies;
  }
  return { zip: cur, nominal };
}

// ---------------------------------------------------------------- measuring

interface Run {
  verdict: Verdict;
  ms: number;
  rssGrowthMiB: number;
  pushed: number;
  warnings: string[];
}

/** Push every chunk through one session, sampling RSS; print time and memory as diagnostics. */
async function run(t: TestContext, chunks: Iterable<Uint8Array>, eng: Engine = engine): Promise<Run> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const t0 = performance.now();
  const s = eng.begin({ sender: 'mallory@example.org' });
  let pushed = 0;
  let n = 0;
  for (const c of chunks) {
    await s.push(c);
    pushed += c.length;
    if ((++n & 7) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const verdict = await s.end();
  peak = Math.max(peak, process.memoryUsage().rss);
  const ms = performance.now() - t0;
  const r: Run = { verdict, ms, rssGrowthMiB: (peak - base) / MiB, pushed, warnings: s.stats.warnings };
  t.diagnostic(
    `input ${(pushed / MiB).toFixed(1)} MiB → ${verdict.kind}${'which' in verdict ? ' ' + verdict.which : ''}` +
      `${'reason' in verdict ? ' ' + verdict.reason : ''} in ${ms.toFixed(0)} ms, rss +${r.rssGrowthMiB.toFixed(1)} MiB`,
  );
  return r;
}

const limitAt = (v: Verdict, which: string) => {
  assert.equal(v.kind, 'limit', JSON.stringify(v));
  assert.equal((v as { which: string }).which, which, JSON.stringify(v));
  return (v as { where: string }).where;
};

// ---------------------------------------------------------------- the builders are honest

test('bomb builders: the zero run and the bzip2 stream really expand as claimed', () => {
  const d = zeroDeflate(2);
  const out = inflateRawSync(d);
  assert.equal(out.length, 2 * ZERO_RUN_BYTES);
  assert.ok(out.every((b) => b === 0));
  assert.ok(zeroRun.length < 32 * KiB, `run is ${zeroRun.length} bytes`);
  // one bzip2 stream: magic, level 9, one block, stream CRC
  assert.equal(BZ2_45MB_ZEROS.subarray(0, 4).toString('latin1'), 'BZh9');
});

// ---------------------------------------------------------------- decompression bombs

test('zip bomb: one entry inflating to 8 GiB of zeros → limit ratio, bounded memory', async (t) => {
  const runs = (8 * GiB) / ZERO_RUN_BYTES;
  const zip = buildZip([{ name: 'zeros.bin', data: new Uint8Array(0), compressed: zeroDeflate(runs), crc: 0, usize: 8 * GiB, zip64: true }]);
  t.diagnostic(`zip ${(zip.length / MiB).toFixed(1)} MiB claims 8 GiB`);
  const r = await run(t, attachmentMessage('bomb.zip', zip));
  assert.equal(limitAt(r.verdict, 'ratio'), '2/bomb.zip');
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('zip bomb with the ratio limit out of the way → limit unpacked-bytes at the per-message cap', async (t) => {
  const eng = await createEngine({ limits: { ratio: 1e9, unpackedBytes: 64 * MiB } });
  try {
    const zip = buildZip([{ name: 'zeros.bin', data: new Uint8Array(0), compressed: zeroDeflate(64), crc: 0, usize: 0x7fffffff }]);
    const r = await run(t, attachmentMessage('bomb.zip', zip), eng);
    assert.equal(limitAt(r.verdict, 'unpacked-bytes'), '2/bomb.zip');
    assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
  } finally {
    await eng.close();
  }
});

test('42.zip style: 5 levels of zip in zip, 16 copies each (64 TiB nominal) → limit ratio in the first leaf', async (t) => {
  const { zip, nominal } = nestedZipBomb(5, 16, 4);
  t.diagnostic(`nested zip ${(zip.length / KiB).toFixed(0)} KiB claims ${(nominal / 2 ** 40).toFixed(0)} TiB`);
  const r = await run(t, attachmentMessage('42.zip', zip));
  const where = limitAt(r.verdict, 'ratio');
  // the trip is reported at the innermost zip: four "!" hops below the attachment
  assert.match(where, /^2\/42\.zip!level4-0\.zip!level3-0\.zip!level2-0\.zip!level1-0\.zip$/);
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('42.zip style with a generous ratio: the shared per-message budget stops it (unpacked-bytes)', async (t) => {
  const eng = await createEngine({ limits: { ratio: 1e9, unpackedBytes: 64 * MiB } });
  try {
    const { zip } = nestedZipBomb(3, 16, 1);
    const r = await run(t, attachmentMessage('42.zip', zip), eng);
    limitAt(r.verdict, 'unpacked-bytes');
    assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
  } finally {
    await eng.close();
  }
});

test('zip nested deeper than archiveDepth (12 levels) → limit archive-depth', async (t) => {
  let cur: Uint8Array = Buffer.from('innocent text\n');
  let name = 'leaf.txt';
  for (let l = 0; l < 12; l++) {
    cur = buildZip([{ name, data: cur, method: 8 }]);
    name = `d${l}.zip`;
  }
  const r = await run(t, attachmentMessage('deep.zip', cur));
  const where = limitAt(r.verdict, 'archive-depth');
  assert.equal(where.split('!').length, 11, where); // the attachment plus archiveDepth (10) hops
});

test('gzip bomb: 8 GiB of zeros in a .gz attachment → limit ratio', async (t) => {
  const runs = (8 * GiB) / ZERO_RUN_BYTES;
  const gz = gzipOf(zeroDeflate(runs), 8 * GiB);
  const r = await run(t, attachmentMessage('bomb.gz', gz, 'application/gzip'));
  assert.equal(limitAt(r.verdict, 'ratio'), '2/bomb.gz');
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('gzip bomb inside a tar inside a gzip (tar.gz of a .gz) → limit ratio', async (t) => {
  const inner = gzipOf(zeroDeflate(64), GiB % 2 ** 32);
  const tar = buildTar([{ name: 'readme.txt', data: Buffer.from('hi\n') }, { name: 'data.gz', data: inner }]);
  const tgz = gzipOf(deflateRawSync(tar), tar.length, crc32(tar));
  const r = await run(t, attachmentMessage('bundle.tgz', tgz, 'application/gzip'));
  // the outer gzip has no FNAME: its member is "(data)", the tar inside it names data.gz
  assert.equal(limitAt(r.verdict, 'ratio'), '2/bundle.tgz!(data)!data.gz');
});

test('bzip2 bomb: 100 concatenated streams, 4.5 GB of zeros from 5 KB → limit ratio', async (t) => {
  const bz = Buffer.concat(Array.from({ length: 100 }, () => BZ2_45MB_ZEROS));
  const r = await run(t, attachmentMessage('bomb.bz2', bz, 'application/x-bzip2'));
  assert.equal(limitAt(r.verdict, 'ratio'), '2/bomb.bz2');
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

// ---------------------------------------------------------------- MIME structure

test('2000-level nested multipart → limit mime-depth', async (t) => {
  const levels = 2000;
  const parts: string[] = [HEAD + 'Content-Type: multipart/mixed; boundary="n0"\r\n\r\n'];
  for (let i = 1; i < levels; i++) parts.push(`--n${i - 1}\r\nContent-Type: multipart/mixed; boundary="n${i}"\r\n\r\n`);
  parts.push(`--n${levels - 1}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n`);
  for (let i = levels - 1; i >= 0; i--) parts.push(`--n${i}--\r\n`);
  const r = await run(t, inChunks(Buffer.from(parts.join(''), 'latin1')));
  const where = limitAt(r.verdict, 'mime-depth');
  assert.equal(where.split('.').length, 100, where); // mimeDepth = 100 levels of "1.1.1…"
  assert.ok(r.rssGrowthMiB < 200);
});

test('2000-level nested message/rfc822 → limit mime-depth', async (t) => {
  const levels = 2000;
  const msg = 'Content-Type: message/rfc822\r\n\r\n'.repeat(levels) + 'Subject: x\r\n\r\nbody\r\n';
  const r = await run(t, inChunks(Buffer.from(HEAD + msg, 'latin1')));
  limitAt(r.verdict, 'mime-depth');
});

test('100k MIME parts → limit mime-parts', async (t) => {
  const parts = 100_000;
  const body = '--p\r\nContent-Type: text/plain\r\n\r\nx\r\n'.repeat(parts);
  const msg = HEAD + 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + body + '--p--\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  // the top-level entity counts as the first part, so child 10000 is part 10001
  assert.equal(limitAt(r.verdict, 'mime-parts'), '10000');
  assert.ok(r.rssGrowthMiB < 200);
});

test('100k MIME parts each with a named attachment after the limit: still one verdict, bounded', async (t) => {
  // banned names after the parts limit are not looked at: the limit verdict latched first
  const body = '--p\r\nContent-Type: application/octet-stream; name="a.exe"\r\n\r\nMZ\r\n'.repeat(100_000);
  const msg = HEAD + 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + body + '--p--\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  // the first part is already banned (a.exe): the earliest outcome wins
  assert.equal(r.verdict.kind, 'banned');
  assert.equal((r.verdict as { where: string }).where, '1/a.exe');
});

test('regression: scan streams leave no abort listeners behind (10k parts made adds quadratic)', () => {
  // Every file of a message opens a built-in scan stream on the session's one AbortSignal.
  // The listener used to stay until the session ended: 10k parts held 10k listeners
  // (and their matchers), and EventTarget's add is linear in them — 10k parts took ~2 s.
  const scanner = new BuiltinScanner(SignatureDb.builtin());
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  for (let i = 0; i < 1000; i++) {
    const s = scanner.open({ where: String(i), archiveDepth: 0 }, ac.signal);
    s.write(Buffer.from('x'));
    assert.deepEqual(s.end(), { kind: 'clean' });
  }
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  // An open stream still hears the abort (it reads the signal at each call; it adds no listener at all).
  const open = scanner.open({ where: 'o', archiveDepth: 0 }, ac.signal);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  ac.abort();
  assert.equal(open.write(Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1')), null, 'nothing scanned after the abort');
  assert.deepEqual(open.end(), { kind: 'error', errorKind: 'aborted' });
});

// ---------------------------------------------------------------- headers and lines

test('a 1 MB header line → limit header-line', async (t) => {
  const msg = HEAD + 'X-Long: ' + 'a'.repeat(1_000_000) + '\r\n\r\nbody\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  limitAt(r.verdict, 'header-line');
  assert.ok(r.rssGrowthMiB < 200);
});

test('a 1 MB folded header (many short continuation lines) → limit header-line', async (t) => {
  const msg = HEAD + 'X-Folded: start' + '\r\n x'.repeat(300_000) + '\r\n\r\nbody\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  limitAt(r.verdict, 'header-line');
});

test('200k header lines → limit header-fields', async (t) => {
  const msg = HEAD + 'X-H: v\r\n'.repeat(200_000) + '\r\nbody\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  limitAt(r.verdict, 'header-fields');
  assert.ok(r.rssGrowthMiB < 200);
});

test('200k header lines in a part header → limit header-fields at that part', async (t) => {
  const msg = HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' + 'X-H: v\r\n'.repeat(200_000) + '\r\nx\r\n--b--\r\n';
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1')));
  assert.equal(limitAt(r.verdict, 'header-fields'), '1');
});

/** 50 MB of one byte with no LF, after `prefix`, in 64 KiB chunks, without holding it. */
function* endless(prefix: string, fill: number, total = 50 * 1000 * 1000): Generator<Uint8Array> {
  yield Buffer.from(prefix, 'latin1');
  const block = Buffer.alloc(CHUNK, fill);
  for (let n = 0; n < total; n += CHUNK) yield block.subarray(0, Math.min(CHUNK, total - n));
}

test('50 MB without a newline in the header block → limit header-bytes', async (t) => {
  const r = await run(t, endless(HEAD + 'X-Endless: ', 0x61));
  limitAt(r.verdict, 'header-bytes');
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('50 MB without a newline in a text body → clean (scanned), bounded memory', async (t) => {
  const r = await run(t, endless(HEAD + '\r\n', 0x61));
  assert.deepEqual(r.verdict, { kind: 'clean' });
  assert.equal(r.pushed, HEAD.length + 2 + 50_000_000);
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('50 MB of "-" without a newline inside a multipart body (boundary lookalike) → clean, bounded', async (t) => {
  const pre = HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\n--';
  const r = await run(t, endless(pre, 0x2d));
  assert.deepEqual(r.verdict, { kind: 'clean' });
  assert.ok(r.rssGrowthMiB < 200, `rss grew ${r.rssGrowthMiB} MiB`);
});

test('50 MB base64 line without a newline carrying EICAR at its end → infected', async (t) => {
  const pre = HEAD + 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const tail = Buffer.from(Buffer.from(EICAR.padEnd(69, ' '), 'latin1').toString('base64'), 'latin1');
  const gen = function* () {
    yield* endless(pre, 0x41, 48 * 1000 * 1000); // "AAAA…" decodes to zeros, 36 MB
    yield tail;
  };
  const r = await run(t, gen());
  // the file starts with zeros: only a pattern anywhere in the stream can find it
  assert.equal(r.verdict.kind, 'infected', JSON.stringify(r.verdict));
});

test('50 MB base64 line of zeros declared as a zip → clean (not an archive), bounded', async (t) => {
  const pre = HEAD + 'Content-Type: application/zip; name="z.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const r = await run(t, endless(pre, 0x41));
  assert.deepEqual(r.verdict, { kind: 'clean' });
  assert.ok(r.rssGrowthMiB < 200);
});

// ---------------------------------------------------------------- broken encodings

test('broken base64 (garbage, misplaced padding, odd quanta) still finds EICAR → infected', async (t) => {
  const b64 = Buffer.from(EICAR, 'latin1').toString('base64');
  // every 5th character followed by junk the decoder must skip; a stray "=" after the payload
  let broken = '';
  for (let i = 0; i < b64.length; i++) broken += b64[i] + (i % 5 === 4 ? '!*\t~' : '');
  const msg = HEAD + 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    broken + '\r\n=====\r\n@@@@\r\nQQ\r\n';
  const r = await run(t, [Buffer.from(msg, 'latin1')]);
  assert.equal(r.verdict.kind, 'infected');
});

test('base64 that is nothing but garbage and padding → clean', async (t) => {
  const junk = '!!!!====$$$$\r\n'.repeat(10_000) + 'A\r\n=\r\n';
  const msg = HEAD + 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: BaSe64\r\n\r\n' + junk;
  const r = await run(t, inChunks(Buffer.from(msg, 'latin1'), 777));
  assert.deepEqual(r.verdict, { kind: 'clean' });
});

test('broken quoted-printable (bad escapes, dangling "=", soft breaks with padding) → defined verdicts', async (t) => {
  // EICAR split by QP soft line breaks (with transport padding) → reassembled → infected
  const half = Math.floor(EICAR.length / 2);
  const qp = EICAR.slice(0, half).replace(/=/g, '=3D') + '=   \r\n' + EICAR.slice(half).replace(/=/g, '=3D') + '\r\n';
  const infected = HEAD + 'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' + qp;
  const r1 = await run(t, inChunks(Buffer.from(infected, 'latin1'), 3));
  assert.equal(r1.verdict.kind, 'infected');
  const garbage = '=ZZ=\r=4=\n=' + ' '.repeat(200) + '\r\n=G0=0=' + '='.repeat(50_000) + '\r\n=';
  const r2 = await run(t, inChunks(Buffer.from(HEAD + 'Content-Transfer-Encoding: quoted-printable\r\n\r\n' + garbage, 'latin1'), 5));
  assert.deepEqual(r2.verdict, { kind: 'clean' });
});

// ---------------------------------------------------------------- archives that lie

const eicarZip = () => buildZip([{ name: 'readme.txt', data: Buffer.from('hello\n') }, { name: 'eicar.com.txt', data: Buffer.from(EICAR, 'latin1') }]);

test('truncated zip: cut inside the second entry\'s header → unparseable (reject), warning logged', async (t) => {
  const z = eicarZip();
  const secondLocal = Buffer.from(z).indexOf(Buffer.from('PK\x03\x04', 'latin1'), 4);
  const r = await run(t, attachmentMessage('cut.zip', z.subarray(0, secondLocal + 10)));
  assert.deepEqual({ ...r.verdict, detail: undefined }, { kind: 'unparseable', reason: 'corrupt archive', where: '2/cut.zip', detail: undefined });
  assert.ok(r.warnings.some((w) => w.startsWith('archive-corrupt') && w.endsWith('@2/cut.zip')), r.warnings.join());
});

test('truncated zip: the EICAR member\'s bytes are all there, the rest is cut → infected', async (t) => {
  // deflated, so only the unpacked member (not the raw zip) can show EICAR
  const z = buildZip([{ name: 'eicar.com.txt', data: Buffer.from(EICAR, 'latin1') }]);
  assert.equal(Buffer.from(z).indexOf(EICAR), -1);
  const cd = Buffer.from(z).indexOf(Buffer.from('PK\x01\x02', 'latin1'));
  const r = await run(t, attachmentMessage('cut.zip', z.subarray(0, cd + 3)));
  assert.equal(r.verdict.kind, 'infected');
  assert.equal((r.verdict as { where: string }).where, '2/cut.zip!eicar.com.txt');
});

test('truncated gzip and bzip2 → unparseable with a warning; truncated tar of EICAR → infected', async (t) => {
  const gz = gzipOf(deflateRawSync(Buffer.from('hello world '.repeat(1000))), 12_000);
  const r1 = await run(t, attachmentMessage('cut.gz', gz.subarray(0, gz.length - 20)));
  assert.equal(r1.verdict.kind, 'unparseable');
  assert.ok(r1.warnings.some((w) => w.startsWith('archive-corrupt')), r1.warnings.join());
  const r2 = await run(t, attachmentMessage('cut.bz2', BZ2_45MB_ZEROS.subarray(0, 30)));
  assert.equal(r2.verdict.kind, 'unparseable');
  assert.ok(r2.warnings.some((w) => w.startsWith('archive-corrupt')), r2.warnings.join());
  const tar = buildTar([{ name: 'eicar.txt', data: Buffer.from(EICAR, 'latin1') }, { name: 'more.bin', data: Buffer.alloc(5000) }]);
  const r3 = await run(t, attachmentMessage('cut.tar', tar.subarray(0, 512 + 512 + 512 + 100)));
  assert.equal(r3.verdict.kind, 'infected');
});

test('zip entry whose declared uncompressed size lies (says 10 bytes, holds EICAR after 100 KB) → infected', async (t) => {
  const data = Buffer.concat([Buffer.alloc(100_000, 0x20), Buffer.from(EICAR, 'latin1')]);
  const z = buildZip([{ name: 'small.txt', data, usize: 10 }]);
  const r = await run(t, attachmentMessage('liar.zip', z));
  assert.equal(r.verdict.kind, 'infected');
});

test('zip entry whose declared compressed size lies (too short) → defined verdicts', async (t) => {
  // stored entry: the declared csize cuts EICAR off inside the zip, but the raw zip
  // bytes are scanned as a file too, so a lying header cannot hide plain bytes
  const z = buildZip([{ name: 'e.txt', data: Buffer.from(EICAR, 'latin1'), method: 0, csize: 20 }]);
  const r = await run(t, attachmentMessage('liar.zip', z));
  assert.equal(r.verdict.kind, 'infected');
  assert.equal((r.verdict as { where: string }).where, '2/liar.zip');
  // deflate entry with a too-short declared csize: inflation stops at the declared end and
  // the entry is corrupt. The member's content past csize is not scanned (a streaming
  // extractor such as Java's ZipInputStream would inflate on and hand EICAR to its caller),
  // so the message must not be accepted: corrupt archives fail closed.
  const z2 = buildZip([{ name: 'e.txt', data: Buffer.from(EICAR, 'latin1'), csize: 3 }]);
  const r2 = await run(t, attachmentMessage('liar2.zip', z2));
  assert.equal(r2.verdict.kind, 'unparseable');
  assert.ok(r2.warnings.some((w) => w.startsWith('archive-corrupt:zip: e.txt: deflate data longer')), r2.warnings.join());
});

test('zip entry claiming 4 GiB (ZIP64) with 5 bytes of data → defined verdict, nothing allocated', async (t) => {
  const z = buildZip([{ name: 'huge.bin', data: Buffer.from('tiny\n'), method: 0, usize: 4 * GiB, csize: 4 * GiB, zip64: true }]);
  const r = await run(t, attachmentMessage('claims.zip', z));
  assert.equal(r.verdict.kind, 'unparseable');
  assert.ok(r.warnings.some((w) => w.startsWith('archive-corrupt')), r.warnings.join());
  assert.ok(r.rssGrowthMiB < 200);
});

test('encrypted zip (traditional PKWARE flag) → banned "encrypted archive" by default', async (t) => {
  const z = buildZip([{ name: 'secret.doc', data: Buffer.from('0123456789abcdef0123'), method: 0, flags: 1 }]);
  const r = await run(t, attachmentMessage('locked.zip', z));
  assert.deepEqual(r.verdict, { kind: 'banned', reason: 'encrypted archive', where: '2/locked.zip!secret.doc' });
});

test('encrypted zip (AES, method 99) nested inside a gzip → banned "encrypted archive"', async (t) => {
  const z = buildZip([{ name: 'aes.bin', data: Buffer.from('ciphertext-ciphertext'), method: 99, flags: 1 }]);
  const gz = gzipOf(deflateRawSync(z), z.length, crc32(z));
  const r = await run(t, attachmentMessage('locked.zip.gz', gz, 'application/gzip'));
  assert.equal(r.verdict.kind, 'banned');
  assert.equal((r.verdict as { reason: string }).reason, 'encrypted archive');
});

test('encrypted archive with the tempfail policy → error encrypted', async (t) => {
  const eng = await createEngine({ encrypted: 'tempfail' });
  try {
    const z = buildZip([{ name: 'secret.doc', data: Buffer.from('0123456789abcdef0123'), method: 0, flags: 1 }]);
    const r = await run(t, attachmentMessage('locked.zip', z), eng);
    assert.deepEqual(r.verdict, { kind: 'error', errorKind: 'encrypted', where: '2/locked.zip!secret.doc' });
  } finally {
    await eng.close();
  }
});
