/**
 * The zip unpacker read against real clients: for each archive, what Python's zipfile,
 * Info-ZIP unzip and libarchive bsdtar (streaming) extract must either be among what we
 * scanned (same bytes, same names) or the archive must end in a rejecting event (a
 * verdict anomaly, corrupt, a limit). Benign archives from real writers must pass with
 * nothing rejected. Odd structures (central directory that disagrees, hidden local
 * headers, junk in front, archives in the comment) each get the outcome they should.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { sniffArchive } from '../../src/core/unpack/sniff.js';
import { extracted, oracle, type Views } from '../helpers/archive-oracle.js';
import { TMP_BASE } from '../helpers/paths.js';
import { crc32 } from '../../src/core/unpack/crc32.js';
import { budget, pseudoRandom, split, unicodePathExtra, unpack, whole, ZipWriter, type ZipSpec } from '../helpers/unpack-harness.js';

const CLAM = '/usr/share/clamav-testfiles/';
const text = pseudoRandom(40_000, 5, true);
const rnd = pseudoRandom(3_000, 6);
const small = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$-not-really-eicar-but-a-payload');
const b = (s: string) => Buffer.from(s, 'latin1');

type Outcome = 'pass' | `anomaly:${string}` | 'corrupt';
interface Case {
  label: string;
  bytes: Uint8Array;
  /** What we must answer. */
  want: Outcome;
  /** Anomalies recorded (no verdict) we expect to see. */
  notes?: string[];
  /** Names (or alternative names) we must announce. */
  names?: string[];
  /** A client must extract something here (the case is not vacuous). */
  clientsExtract?: boolean;
}

const run = (bytes: Uint8Array, chunks = whole(bytes)) => unpack(sniffArchive(bytes.subarray(0, 1024)) === 'zip' ? 'zip' : 'zip-embedded', chunks, budget(), true);
type T = ReturnType<typeof run>;
/** Contents one level down, as the session's member sniffing sees them (bzip2 entries of method 12). */
const innerShas = (t: T): string[] =>
  t.data.filter((d) => sniffArchive(d.subarray(0, 1024)) === 'bzip2').flatMap((d) => unpack('bzip2', [d]).entries.map((e) => e.sha256));
const outcome = (t: T): Outcome => {
  if (t.corrupt.length) return 'corrupt';
  const v = t.anomalies.find((a) => a.split('@')[0]!.endsWith('!'));
  if (v) return `anomaly:${v.split('@')[0]!.slice(0, -1)}`;
  return t.limits.length ? 'corrupt' : 'pass';
};
const last = (n: string) => n.replace(/\0.*$/s, '').split(/[/\\]/).pop()!;

/** What some client extracts that we did not scan (by content, then by name). */
function missed(t: T, v: Views): string[] {
  const shas = new Set([...t.entries.map((e) => e.sha256), ...innerShas(t)]);
  const names = new Set([...t.entries.map((e) => last(e.name)), ...t.altNames.map((a) => last(a.split(' -> ')[1]!))]);
  const out: string[] = [];
  for (const m of extracted(v)) {
    if (t.encrypted.some((n) => last(n) === last(m.name))) continue; // encrypted: policy decides, content unknown
    if (!shas.has(m.sha256)) out.push(`${m.by}: ${m.name} content`);
    else if (!names.has(last(m.name))) out.push(`${m.by}: ${m.name} name`);
  }
  return out;
}

// ------------------------------------------------------------------ builders

function zipOf(specs: ZipSpec[], opts: Parameters<ZipWriter['finish']>[0] = {}, junk?: Uint8Array, adjusted = false): Uint8Array {
  const w = new ZipWriter(junk && !adjusted ? junk.length : 0);
  if (junk) w.raw(junk);
  for (const s of specs) w.entry(s);
  return w.finish(opts);
}

/** A stored entry whose data hides a second local header; the CD lists both. */
function hiddenInStored(): Uint8Array {
  const w = new ZipWriter();
  const inner = ZipWriter.localBytes({ name: 'hidden.exe', data: small, method: 8 });
  const cover = Buffer.concat([b('cover text '), inner.bytes, b(' more cover')]);
  const at = w.entry({ name: 'cover.txt', data: cover, method: 0 });
  const hiddenAt = at + 30 + 'cover.txt'.length + 'cover text '.length;
  w.centralRecord({ ...inner.fields, offset: hiddenAt });
  return w.finish();
}

/** The CD points at a local header inside the junk in front (never walked). */
function centralOnlyInJunk(): Uint8Array {
  const inner = ZipWriter.localBytes({ name: 'junkdwelling.exe', data: small, method: 0 });
  const junk = Buffer.concat([b('JUNK'), inner.bytes]);
  const w = new ZipWriter(0);
  w.raw(junk);
  w.entry({ name: 'ok.txt', data: text });
  w.centralRecord({ ...inner.fields, offset: 4 });
  return w.finish();
}

function pythonZip(streaming: boolean): Uint8Array {
  const py = `
import io, sys, zipfile
data = sys.stdin.buffer.read()
class W(io.RawIOBase):
    def __init__(s): s.b = bytearray()
    def writable(s): return True
    def write(s, d): s.b += d; return len(d)
buf = W() if ${streaming ? 'True' : 'False'} else io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    z.comment = b'python zipfile'
    z.writestr(zipfile.ZipInfo('stored.bin'), data[:3000], zipfile.ZIP_STORED)
    z.writestr('deflated.txt', data, zipfile.ZIP_DEFLATED)
    z.writestr('bz2.txt', data[:5000], zipfile.ZIP_BZIP2)
    z.writestr('dir/', b'')
sys.stdout.buffer.write(bytes(buf.b) if ${streaming ? 'True' : 'False'} else buf.getvalue())
`;
  return execFileSync('python3', ['-c', py], { input: Buffer.concat([text, rnd]) });
}

function infoZip(): Uint8Array {
  // zip writing to a pipe cannot seek back: data descriptors, ZIP64 fields.
  mkdirSync(TMP_BASE, { recursive: true });
  const dir = mkdtempSync(join(TMP_BASE, 'infozip-'));
  try {
    writeFileSync(join(dir, 'text.txt'), text);
    writeFileSync(join(dir, 'rnd.bin'), rnd);
    return execFileSync('sh', ['-c', 'cd "$1" && zip -q - text.txt rnd.bin | cat', 'sh', dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: Case[] = [
  // ---- benign: real writers, and the benign variants clients accept
  { label: 'fflate zipSync', bytes: zipSync({ 'a.txt': text, 'b.bin': [rnd, { level: 0 }], 'd/': new Uint8Array(0) }), want: 'pass', clientsExtract: true },
  { label: 'python zipfile (seekable)', bytes: pythonZip(false), want: 'pass', clientsExtract: true },
  { label: 'python zipfile (unseekable: data descriptors)', bytes: pythonZip(true), want: 'pass', clientsExtract: true },
  { label: 'Info-ZIP zip via pipes', bytes: infoZip(), want: 'pass', clientsExtract: true },
  ...['clam.zip', 'clam.bz2.zip'].map((f): Case => ({ label: f, bytes: readFileSync(CLAM + f), want: 'pass', clientsExtract: true })),
  // Implode (6) and Deflate64 (9): unzip extracts them, we can only scan the raw bytes.
  ...['clam.impl.zip', 'clam.d64.zip'].map((f): Case => ({ label: f, bytes: readFileSync(CLAM + f), want: 'anomaly:zip-unsupported-method', clientsExtract: true })),
  { label: 'LZMA entry (method 14)', bytes: zipOf([{ name: 'l.bin', data: small, method: 14 }]), want: 'anomaly:zip-unsupported-method' },
  {
    label: 'raw and encrypted entries with data descriptors',
    bytes: zipOf([
      { name: 'bz.bin', data: new Uint8Array(0), compressed: readFileSync(CLAM + 'clam.exe.bz2'), crc: crc32(readFileSync(CLAM + 'clam.exe')), usize: 544, method: 12, descriptor: 'unsigned' },
      { name: 'enc.bin', data: rnd, method: 0, flags: 1, descriptor: 'signed' },
      { name: 'after.txt', data: text },
    ]),
    want: 'pass',
  },
  {
    label: 'stored entries with unsigned data descriptors',
    bytes: zipOf([
      { name: 'u1.bin', data: rnd, method: 0, descriptor: 'unsigned' },
      { name: 'u2.txt', data: text.subarray(0, 999), method: 0, descriptor: 'unsigned' },
      { name: 'empty', data: new Uint8Array(0), method: 0, descriptor: 'unsigned' },
      { name: 'last.bin', data: small, method: 0, descriptor: 'unsigned' },
    ]),
    want: 'pass',
    clientsExtract: true,
  },
  {
    label: 'an APK signing block between the entries and the directory',
    bytes: (() => {
      const w = new ZipWriter();
      w.entry({ name: 'AndroidManifest.xml', data: text.subarray(0, 5000) });
      w.entry({ name: 'classes.dex', data: rnd, method: 0 });
      const block = Buffer.concat([Buffer.alloc(8, 0x40), pseudoRandom(600, 12).map((x) => (x === 0x50 ? 0x51 : x)), Buffer.alloc(8, 0x40), b('APK Sig Block 42')]);
      w.raw(block);
      return w.finish();
    })(),
    want: 'pass',
    notes: ['zip-data-between-records'],
    clientsExtract: true,
  },
  {
    label: 'a local header in data between records, listed in the directory',
    bytes: (() => {
      const w = new ZipWriter();
      w.entry({ name: 'a.txt', data: text.subarray(0, 3000) });
      w.raw(b('padding '));
      w.entry({ name: 'between.exe', data: small });
      return w.finish();
    })(),
    want: 'pass',
    notes: ['zip-data-between-records'],
    names: ['between.exe'],
    clientsExtract: true,
  },
  { label: 'ZIP64 end records', bytes: zipOf([{ name: 'a.txt', data: text }, { name: 'z.bin', data: rnd, zip64: true }], { zip64: true }), want: 'pass', clientsExtract: true },
  { label: 'comment', bytes: zipOf([{ name: 'a.txt', data: text }], { comment: b('a plain comment') }), want: 'pass', clientsExtract: true },
  { label: 'junk in front, offsets not adjusted (self-extractor)', bytes: zipOf([{ name: 'sfx.exe', data: small }, { name: 'b.txt', data: text }], {}, b('#!/bin/sh\necho not a zip\nexit 0\n'.repeat(40))), want: 'pass', notes: ['zip-embedded-archive'], clientsExtract: true },
  { label: 'junk in front, offsets adjusted (zip -A)', bytes: zipOf([{ name: 'sfx.exe', data: small }], {}, pseudoRandom(7000, 9).map((x) => (x === 0x50 ? 0x51 : x)), true), want: 'pass', notes: ['zip-embedded-archive'], clientsExtract: true },
  {
    label: 'junk in front with decoy signatures (implausible headers and names)',
    bytes: zipOf([{ name: 'real.exe', data: small }], {}, Buffer.concat([
      b('xx PK\x03\x04 decoy'), new Uint8Array(200),
      // plausible fixed part, but a name of control bytes that reaches over the real header
      b('PK\x03\x04\x14\x00\x00\x00\x08\x00'), new Uint8Array(16), b('\x00\x04\x00\x00'), new Uint8Array(30).fill(7),
    ])),
    want: 'pass',
    notes: ['zip-embedded-archive'],
    clientsExtract: true,
  },
  { label: 'NUL in a name', bytes: zipOf([{ name: '', nameBytes: b('invoice.exe\0.txt'), data: small }]), want: 'pass', names: ['invoice.exe', 'invoice.exe\0.txt'], clientsExtract: true },
  {
    label: 'Unicode Path extra (0x7075) with another name',
    bytes: zipOf([{ name: 'report.txt', data: small, extra: unicodePathExtra('report.exe', b('report.txt')), cd: { extra: unicodePathExtra('report.exe', b('report.txt')) } }]),
    want: 'pass',
    names: ['report.exe'],
    clientsExtract: true,
  },
  {
    label: 'Unicode Path extra only in the central directory',
    bytes: zipOf([{ name: 'notes.txt', data: small, cd: { extra: unicodePathExtra('notes.scr', b('notes.txt')) } }]),
    want: 'pass',
    names: ['notes.scr'],
    clientsExtract: true,
  },
  { label: 'a local-only entry (not in the CD)', bytes: zipOf([{ name: 'a.txt', data: text }, { name: 'ghost.exe', data: small, cd: false }]), want: 'pass', notes: ['zip-local-only-entry'] },
  {
    label: 'a second archive in the comment',
    bytes: (() => {
      const inner = zipOf([{ name: 'in-comment.exe', data: small }]);
      return zipOf([{ name: 'outer.txt', data: text }], { comment: inner });
    })(),
    want: 'pass',
    notes: ['zip-embedded-archive'],
    clientsExtract: true,
  },
  {
    label: 'two archives concatenated',
    bytes: Buffer.concat([zipOf([{ name: 'first.txt', data: text }]), zipOf([{ name: 'second.exe', data: small }])]),
    want: 'pass',
    notes: ['zip-embedded-archive'],
    clientsExtract: true,
  },
  // ---- hostile: the central directory tells another story
  { label: 'local header hidden in stored data', bytes: hiddenInStored(), want: 'anomaly:zip-directory-mismatch', clientsExtract: true },
  // The junk's local header is found by searching and walked: every reading was scanned.
  { label: 'CD entry pointing into junk in front', bytes: centralOnlyInJunk(), want: 'pass', notes: ['zip-embedded-archive'], clientsExtract: true },
  {
    label: 'CD entry pointing into the comment',
    bytes: (() => {
      const inner = ZipWriter.localBytes({ name: 'in-comment.exe', data: small, method: 0 });
      const w = new ZipWriter();
      w.entry({ name: 'a.txt', data: text });
      // The comment starts 22 bytes after the directory: it ends where two records end.
      const cdLen = 46 + 5 + 46 + 'in-comment.exe'.length;
      w.centralRecord({ ...inner.fields, offset: w.pos + cdLen + 22 });
      return w.finish({ comment: inner.bytes });
    })(),
    want: 'anomaly:zip-directory-mismatch',
    clientsExtract: true,
  },
  { label: 'CD name differs', bytes: zipOf([{ name: 'harmless.txt', data: small, cd: { nameBytes: b('harmful.exe') } }]), want: 'anomaly:zip-directory-mismatch', clientsExtract: true },
  { label: 'CD method differs', bytes: zipOf([{ name: 'm.txt', data: small, method: 0, cd: { method: 8 } }]), want: 'anomaly:zip-directory-mismatch' },
  { label: 'encrypted locally, plain in the CD', bytes: zipOf([{ name: 'p.exe', data: small, method: 0, flags: 1, cd: { flags: 0 } }]), want: 'anomaly:zip-directory-mismatch', clientsExtract: true },
  { label: 'CD sizes differ', bytes: zipOf([{ name: 's.bin', data: rnd, method: 0, cd: { csize: 100, usize: 100 } }]), want: 'anomaly:zip-directory-mismatch', clientsExtract: true },
  { label: 'CD CRC differs', bytes: zipOf([{ name: 'c.bin', data: rnd, method: 0, cd: { crc: 12345 } }]), want: 'anomaly:zip-directory-mismatch' },
  { label: 'end record count differs', bytes: zipOf([{ name: 'a', data: small }, { name: 'b', data: text }], { count: 1 }), want: 'anomaly:zip-directory-mismatch', clientsExtract: true },
  {
    label: 'a decoy end record after the real one',
    bytes: (() => {
      const z = zipOf([{ name: 'a.txt', data: text }]);
      // A record a client prefers (the last one): its directory starts inside our entry's data.
      const fake = Buffer.alloc(22);
      fake.writeUInt32LE(0x06054b50, 0);
      fake.writeUInt16LE(1, 8);
      fake.writeUInt16LE(1, 10);
      fake.writeUInt32LE(z.length - 100, 12);
      fake.writeUInt32LE(50, 16);
      return Buffer.concat([z, b('trailer '), fake]);
    })(),
    want: 'anomaly:zip-hidden-archive',
  },
  {
    label: 'junk in front, archive swallowed by a decoy entry',
    bytes: (() => {
      const real = zipOf([{ name: 'swallowed.exe', data: small }]);
      // A plausible stored header whose size covers the whole real archive.
      const decoy = ZipWriter.localBytes({ name: 'decoy.txt', data: new Uint8Array(0), method: 0, csize: real.length + 10, usize: real.length + 10 });
      return Buffer.concat([b('junk'), decoy.bytes.subarray(0, decoy.headerLen), real, new Uint8Array(10)]);
    })(),
    want: 'anomaly:zip-hidden-archive',
    clientsExtract: true,
  },
];

describe('zip unpacker against central-directory and streaming clients', () => {
  const views = oracle(Object.fromEntries(cases.map((c) => [c.label, c.bytes])));

  for (const c of cases) {
    it(c.label, () => {
      const v = views[c.label]!;
      const t = run(c.bytes);
      assert.equal(outcome(t), c.want, `events: ${t.events.join(' | ')}`);
      if (c.clientsExtract) assert.ok(extracted(v).length > 0, `no client extracts anything: ${JSON.stringify(v)}`);
      if (c.want === 'pass') assert.deepEqual(missed(t, v), [], JSON.stringify(v));
      for (const n of c.notes ?? []) assert.ok(t.anomalies.includes(n) || t.anomalies.some((a) => a.startsWith(n + '@')), `${n} not in ${t.anomalies}`);
      for (const n of c.names ?? []) assert.ok(t.entries.some((e) => e.name === n) || t.altNames.some((a) => a.endsWith(' -> ' + n)), `${JSON.stringify(n)} not announced: ${t.events.join(' | ')}`);
      // Chunking never changes the reading.
      assert.deepEqual(run(c.bytes, split(c.bytes, 1)).events, t.events, '1-byte chunks');
      assert.deepEqual(run(c.bytes, split(c.bytes, 97)).events, t.events, '97-byte chunks');
    });
  }

  it('a hostile case is rejected because clients read it another way (the oracle agrees it is extractable)', () => {
    // The hidden entry: Python extracts it by the central directory, the streaming reader does not.
    const v = views['local header hidden in stored data']!;
    assert.ok(v.zipfile!.members.some((m) => m.name === 'hidden.exe' && m.sha256), JSON.stringify(v.zipfile));
    const enc = views['encrypted locally, plain in the CD']!;
    assert.ok(enc.zipfile!.members.some((m) => m.name === 'p.exe' && m.sha256), JSON.stringify(enc.zipfile));
  });
});
