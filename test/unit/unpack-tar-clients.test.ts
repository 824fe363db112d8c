/**
 * The tar unpacker read against real clients (Python's tarfile, libarchive bsdtar) on
 * archives from real writers (GNU tar in every format, sparse in all four encodings,
 * Python's tarfile) and hand-made odd ones: whatever a client extracts must be among what
 * we scanned — same bytes, same names — unless the archive ends in a rejecting event.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { extracted, oracle, type Views } from '../helpers/archive-oracle.js';
import { TMP_BASE } from '../helpers/paths.js';
import { budget, buildTar, paxMember, pseudoRandom, sha256, split, tarHeader, unpack, whole } from '../helpers/unpack-harness.js';
import { sniffArchive } from '../../src/core/unpack/sniff.js';

const text = pseudoRandom(30_000, 7, true);
const rnd = pseudoRandom(2_000, 8);
const b = (s: string) => Buffer.from(s, 'latin1');
const pad = (d: Uint8Array) => Buffer.concat([d, new Uint8Array((512 - (d.length % 512)) % 512)]);

mkdirSync(TMP_BASE, { recursive: true });
const dir = mkdtempSync(join(TMP_BASE, 'tar-clients-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file on disk: data regions between holes, ending in a hole. */
function sparseFile(path: string, regions: number): Uint8Array {
  const size = regions * 20_000 + 7_000;
  const content = new Uint8Array(size);
  const fd = openSync(path, 'w');
  for (let r = 0; r < regions; r++) {
    const at = r * 20_000 + 5_000;
    const d = pseudoRandom(1_000 + r, 100 + r);
    content.set(d, at);
    writeSync(fd, d, 0, d.length, at);
  }
  writeSync(fd, new Uint8Array(1), 0, 1, size - 1); // the last byte: zero, sets the size
  closeSync(fd);
  return content;
}

function gnuTar(args: string[], files: Record<string, Uint8Array | 'sparse4' | 'sparse30'>): { tar: Uint8Array; contents: Record<string, Uint8Array> } {
  const src = mkdtempSync(join(dir, 'src-'));
  const contents: Record<string, Uint8Array> = {};
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(src, name, '..'), { recursive: true });
    if (data === 'sparse4' || data === 'sparse30') contents[name] = sparseFile(join(src, name), data === 'sparse4' ? 4 : 30);
    else {
      writeFileSync(join(src, name), data);
      contents[name] = data;
    }
  }
  const tar = execFileSync('tar', [...args, '--sort=name', '--owner=0', '--group=0', '--mtime=@0', '-cf', '-', '-C', src, ...Object.keys(files)], { maxBuffer: 64 << 20 });
  return { tar, contents };
}

const pythonTar = (): Uint8Array =>
  execFileSync('python3', ['-c', `
import io, sys, tarfile
data = sys.stdin.buffer.read()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
    for name in ['short.txt', 'dir/' + 'x' * 120 + '.bin']:
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    link = tarfile.TarInfo('alias.scr'); link.type = tarfile.LNKTYPE; link.linkname = 'short.txt'; t.addfile(link)
sys.stdout.buffer.write(buf.getvalue())
`], { input: rnd });

type Outcome = 'pass' | `anomaly:${string}` | 'corrupt';
interface Case {
  label: string;
  bytes: Uint8Array;
  want: Outcome;
  notes?: string[];
  names?: string[];
  /** Contents we must produce (e.g. a rebuilt sparse file), by sha256. */
  contents?: Uint8Array[];
  clientsExtract?: boolean;
}

const run = (bytes: Uint8Array, chunks = whole(bytes)) => unpack('tar', chunks, budget(), true);
type T = ReturnType<typeof run>;
/** Members one level down, as the session's member sniffing reads them (data that is itself a tar). */
const inner = (t: T): T['entries'] => t.data.filter((d) => sniffArchive(d.subarray(0, 1024)) === 'tar').flatMap((d) => unpack('tar', [d]).entries);
const outcome = (t: T): Outcome => {
  if (t.corrupt.length || t.limits.length) return 'corrupt';
  const v = t.anomalies.find((a) => a.split('@')[0]!.endsWith('!'));
  return v ? `anomaly:${v.split('@')[0]!.slice(0, -1)}` : 'pass';
};
const last = (n: string) => n.replace(/\0.*$/s, '').replace(/\/+$/, '').split('/').pop()!;

function missed(t: T, v: Views): string[] {
  const all = [...t.entries, ...inner(t)];
  const shas = new Set(all.map((e) => e.sha256));
  const names = new Set([...all.map((e) => last(e.name)), ...t.altNames.map((a) => last(a.split(' -> ')[1]!))]);
  const out: string[] = [];
  for (const m of extracted(v)) {
    if (!shas.has(m.sha256)) out.push(`${m.by}: ${m.name} content`);
    else if (!names.has(last(m.name))) out.push(`${m.by}: ${m.name} name`);
  }
  return out;
}

const sparse4 = gnuTar(['--format=gnu', '--sparse'], { 'holes.bin': 'sparse4', 'plain.txt': text });
const sparse30 = gnuTar(['--format=gnu', '--sparse'], { 'many.bin': 'sparse30' });
const pax = (v: string) => gnuTar(['--format=pax', `--sparse-version=${v}`], { 'holes.bin': 'sparse4' });

/** An old-GNU sparse header ('S') with the given map, followed by the stored regions. */
function gnuSparse(name: string, map: [number, number][], real: number, stored: Uint8Array): Uint8Array {
  const h = tarHeader({
    name, type: 'S', format: 'gnu', size: stored.length,
    patch: (x) => {
      map.slice(0, 4).forEach(([o, n], k) => {
        x.set(b(o.toString(8).padStart(11, '0') + '\0'), 386 + 24 * k);
        x.set(b(n.toString(8).padStart(11, '0') + '\0'), 398 + 24 * k);
      });
      x.set(b(real.toString(8).padStart(11, '0') + '\0'), 483);
    },
  });
  return Buffer.concat([h, pad(stored), new Uint8Array(1024)]);
}

const cases: Case[] = [
  { label: 'GNU tar --format=v7', bytes: gnuTar(['--format=v7'], { 'a.txt': text, 'b.bin': rnd }).tar, want: 'pass', clientsExtract: true },
  { label: 'GNU tar --format=gnu --sparse (old S)', bytes: sparse4.tar, want: 'pass', contents: [sparse4.contents['holes.bin']!, text], clientsExtract: true },
  { label: 'GNU tar old S with extension blocks', bytes: sparse30.tar, want: 'pass', contents: [sparse30.contents['many.bin']!], clientsExtract: true },
  ...['0.0', '0.1', '1.0'].map((v): Case => {
    const t = pax(v);
    return { label: `GNU tar pax sparse ${v}`, bytes: t.tar, want: 'pass', names: ['holes.bin'], contents: [t.contents['holes.bin']!], clientsExtract: true };
  }),
  { label: 'GNU tar --format=posix, long and non-ASCII names', bytes: gnuTar(['--format=posix'], { ['d'.repeat(120) + '/r\u00e9sum\u00e9.txt']: text }).tar, want: 'pass', clientsExtract: true },
  { label: 'Python tarfile GNU format: long name, hard link', bytes: pythonTar(), want: 'pass', names: ['alias.scr'], clientsExtract: true },
  {
    label: 'two tars concatenated',
    bytes: Buffer.concat([buildTar([{ name: 'first.txt', data: text }]), buildTar([{ name: 'second.exe', data: rnd }])]),
    want: 'pass',
    notes: ['tar-after-end'],
    names: ['second.exe'],
  },
  { label: 'junk after the end blocks', bytes: Buffer.concat([buildTar([{ name: 'a.txt', data: text }]), pseudoRandom(3000, 3), b('tail')]), want: 'pass', clientsExtract: true },
  ...['D', 'N', 'V', 'M'].map((type): Case => ({ label: `type ${type} carrying data`, bytes: buildTar([{ name: `payload-${type}.exe`, type, format: 'gnu', data: rnd }]), want: 'pass', names: [`payload-${type}.exe`], clientsExtract: true })),
  {
    label: 'hard link and symlink with banned names',
    bytes: buildTar([{ name: 'readme.txt', data: text }, { name: 'linked.exe', type: '1', linkname: 'readme.txt' }, { name: 'sym.scr', type: '2', linkname: 'readme.txt' }]),
    want: 'pass',
    names: ['linked.exe', 'sym.scr'],
    clientsExtract: true,
  },
  {
    label: 'hard link carrying data (a tar inside, as Python reads it)',
    bytes: buildTar([{ name: 'readme.txt', data: text }, { name: 'carrier.txt', type: '1', linkname: 'readme.txt', data: buildTar([{ name: 'inner.exe', data: rnd }], false) }]),
    want: 'pass',
    notes: ['tar-data-in-special@carrier.txt'],
    clientsExtract: true,
  },
  { label: 'pax global path', bytes: buildTar([paxMember({ path: 'payload.exe' }, 'g'), { name: 'readme.txt', data: rnd }]), want: 'pass', names: ['payload.exe'], clientsExtract: true },
  { label: 'pax path beside a long name', bytes: buildTar([{ name: '././@LongLink', type: 'L', format: 'gnu', data: b('first.scr\0') }, paxMember({ path: 'second.pif' }), { name: 'third.txt', data: rnd }]), want: 'pass', names: ['first.scr', 'second.pif', 'third.txt'] },
  { label: 'NUL inside a name', bytes: buildTar([{ name: 'invoice.exe\0.txt', data: rnd }]), want: 'pass', names: ['invoice.exe', 'invoice.exe\0.txt'], clientsExtract: true },
  {
    label: 'size field Python and GNU tar read differently',
    bytes: Buffer.concat([tarHeader({ name: 'x.bin', size: 0, patch: (h) => h.set(b('0o3720\0\0\0\0\0\0'), 124) }), pad(rnd), new Uint8Array(1024)]),
    want: 'anomaly:tar-ambiguous-header',
    clientsExtract: true,
  },
  {
    label: 'sparse map out of order',
    bytes: gnuSparse('odd.bin', [[4096, 100], [0, 100]], 8192, rnd.subarray(0, 200)),
    want: 'anomaly:tar-sparse-map',
  },
  {
    label: 'sparse holes at the start and end, regions past the real size cut off',
    bytes: gnuSparse('cut.bin', [[1000, 300], [1500, 700]], 1800, rnd.subarray(0, 1000)),
    want: 'pass',
    contents: [Buffer.concat([new Uint8Array(1000), rnd.subarray(0, 300), new Uint8Array(200), rnd.subarray(300, 600)])],
    clientsExtract: true,
  },
  {
    label: 'v7 header with a bad checksum is not a tar member',
    bytes: Buffer.concat([buildTar([{ name: 'a.txt', data: text, format: 'v7' }], false), tarHeader({ name: 'b.txt', format: 'v7', badChecksum: true })]),
    want: 'corrupt',
  },
];

describe('tar unpacker against Python tarfile and bsdtar', () => {
  const views = oracle(Object.fromEntries(cases.map((c) => [c.label, c.bytes])));

  for (const c of cases) {
    it(c.label, () => {
      const v = views[c.label]!;
      const t = run(c.bytes);
      assert.equal(outcome(t), c.want, `events: ${t.events.join(' | ')}`);
      if (c.clientsExtract) assert.ok(extracted(v).length > 0, `no client extracts anything: ${JSON.stringify(v)}`);
      if (c.want === 'pass') assert.deepEqual(missed(t, v), [], `${JSON.stringify(v)}\n${t.events.join(' | ')}`);
      for (const n of c.notes ?? []) assert.ok(t.anomalies.includes(n), `${n} not in ${t.anomalies}`);
      for (const n of c.names ?? []) assert.ok(t.entries.some((e) => e.name === n) || t.altNames.some((a) => a.endsWith(' -> ' + n)), `${JSON.stringify(n)} not announced: ${t.events.join(' | ')}`);
      for (const d of c.contents ?? []) assert.ok(t.entries.some((e) => e.sha256 === sha256(d)), `content of ${d.length} bytes not produced: ${t.events.join(' | ')}`);
      assert.deepEqual(run(c.bytes, split(c.bytes, 1)).events, t.events, '1-byte chunks');
      assert.deepEqual(run(c.bytes, split(c.bytes, 511)).events, t.events, '511-byte chunks');
    });
  }

  it('the writers made what the cases say (not vacuous)', () => {
    const type = (bytes: Uint8Array, at: number) => String.fromCharCode(bytes[at * 512 + 156]!);
    assert.equal(type(sparse4.tar, 0), 'S');
    assert.equal(sparse30.tar[482], 1, 'old S map continues in extension blocks');
    assert.ok(Buffer.from(pax('1.0').tar).includes('GNU.sparse.major=1'));
    assert.ok(Buffer.from(pax('0.1').tar).includes('GNU.sparse.map='));
    assert.ok(Buffer.from(pax('0.0').tar).includes('GNU.sparse.offset='));
    const v7 = cases[0]!.bytes;
    assert.notEqual(Buffer.from(v7.subarray(257, 262)).toString(), 'ustar');
  });
});

void readFileSync;
void paxMember;
