/**
 * Archives through the whole core (MIME → decode → sniff → unpack → built-in engine →
 * policy): the verdict a message gets for each archive class, whatever the chunking,
 * and the anomalies recorded on the way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { createEngine, type Engine, type Verdict } from '../../src/core/index.js';
import { chunks, EICAR_BYTES, multipartMessage } from '../helpers/mail-build.js';
import { TMP_BASE } from '../helpers/paths.js';
import { buildTar, paxMember, pseudoRandom, tarHeader, unicodePathExtra, ZipWriter } from '../helpers/unpack-harness.js';

const engineP = createEngine({ builtin: true });
const text = pseudoRandom(20_000, 3, true);
const b = (s: string) => Buffer.from(s, 'latin1');

/** Scan whole and in a few chunkings; the verdict (and anomalies) must not change. */
async function scan(e: Engine, attachment: Uint8Array, filename = 'file.bin'): Promise<{ v: Verdict; anomalies: string[] }> {
  const msg = multipartMessage([{ filename, contentType: 'application/octet-stream', content: attachment }]);
  let first: { v: Verdict; anomalies: string[] } | null = null;
  for (const n of [msg.length, 1, 77, 4096]) {
    const s = e.begin();
    for (const c of chunks(msg, n)) await s.push(c);
    const r = { v: await s.end(), anomalies: [...s.stats.anomalies].sort() };
    // A rejecting verdict latches and stops processing at a chunk-dependent point: only
    // the verdict must agree then; with none, every anomaly is seen whatever the chunking.
    if (first) assert.deepEqual(r.v.kind === 'clean' ? r : r.v, first.v.kind === 'clean' ? first : first.v, `chunk size ${n}`);
    else first = r;
  }
  return first!;
}

const zipOf = (build: (w: ZipWriter) => void, base = 0): Uint8Array => {
  const w = new ZipWriter(base);
  build(w);
  return w.finish();
};

test('benign zips, tars and gzips are clean', async () => {
  const e = await engineP;
  for (const a of [
    zipSync({ 'a.txt': text, 'b/': new Uint8Array(0) }),
    zipOf((w) => w.entry({ name: 'u.txt', data: text, method: 0, descriptor: 'unsigned' })),
    gzipSync(text),
    buildTar([{ name: 'x.txt', data: text }]),
  ]) {
    const r = await scan(e, a);
    assert.deepEqual(r.v, { kind: 'clean' });
  }
});

test('EICAR in a zip behind junk (self-extractor style) is found', async () => {
  const junk = Buffer.concat([b('#!/bin/sh\nexit 0\n'), pseudoRandom(3000, 4, true)]);
  const z = zipOf((w) => {
    w.raw(junk);
    w.entry({ name: 'docs/readme.txt', data: EICAR_BYTES });
  }, junk.length);
  const r = await scan(await engineP, z, 'installer.sh');
  assert.equal(r.v.kind, 'infected');
  assert.equal(r.v.kind === 'infected' && r.v.where, '2/installer.sh!docs/readme.txt');
  assert.ok(r.anomalies.includes('zip-embedded-archive@2/installer.sh'), r.anomalies.join());
});

test('EICAR in a zip inside the comment of another zip is found', async () => {
  const inner = zipOf((w) => w.entry({ name: 'in.txt', data: EICAR_BYTES }));
  const outer = new ZipWriter();
  outer.entry({ name: 'outer.txt', data: text });
  const r = await scan(await engineP, outer.finish({ comment: inner }), 'a.zip');
  assert.equal(r.v.kind, 'infected');
});

test('a local header hidden in stored data, listed in the central directory: read, and an anomaly verdict', async () => {
  const hidden = (payload: Uint8Array) => {
    const w = new ZipWriter();
    const inner = ZipWriter.localBytes({ name: 'hidden.txt', data: payload, method: 8 });
    const at = w.entry({ name: 'cover.txt', data: Buffer.concat([b('cover '), inner.bytes]), method: 0 });
    w.centralRecord({ ...inner.fields, offset: at + 30 + 'cover.txt'.length + 6 });
    return w.finish();
  };
  // The member's own search for zips inside it reads the hidden entry.
  const r1 = await scan(await engineP, hidden(EICAR_BYTES), 'a.zip');
  assert.equal(r1.v.kind === 'infected' && r1.v.where, '2/a.zip!cover.txt!hidden.txt');
  const r2 = await scan(await engineP, hidden(text), 'a.zip');
  assert.deepEqual(r2.v, { kind: 'anomaly', which: 'zip-directory-mismatch', where: '2/a.zip!hidden.txt' });
});

test('zip member names: cut at NUL, and the Unicode Path field, are policy-checked', async () => {
  const e = await engineP;
  const nul = zipOf((w) => w.entry({ name: '', nameBytes: b('invoice.exe\0.txt'), data: text }));
  assert.deepEqual((await scan(e, nul, 'a.zip')).v, { kind: 'banned', reason: 'banned file name .exe', where: '2/a.zip!invoice.exe' });
  const up = zipOf((w) => w.entry({ name: 'notes.txt', data: text, cd: { extra: unicodePathExtra('notes.scr', b('notes.txt')) } }));
  assert.deepEqual((await scan(e, up, 'a.zip')).v, { kind: 'banned', reason: 'banned file name .scr', where: '2/a.zip!notes.txt' });
});

test('a gzip with reserved flag bits is read (and EICAR in it found)', async () => {
  const gz = Buffer.from(gzipSync(EICAR_BYTES));
  gz[3] = 0x20;
  const r = await scan(await engineP, gz, 'a.gz');
  assert.equal(r.v.kind, 'infected');
  assert.ok(r.anomalies.includes('gzip-reserved-flags@2/a.gz'), r.anomalies.join());
});

test('an unsupported zip method gets the anomaly verdict, not clean', async () => {
  const z = zipOf((w) => w.entry({ name: 'l.bin', data: text, method: 14 }));
  assert.deepEqual((await scan(await engineP, z, 'a.zip')).v, { kind: 'anomaly', which: 'zip-unsupported-method', where: '2/a.zip!l.bin' });
});


test('tar: v7, data-carrying types, links carrying a tar, global pax names, link names', async () => {
  const e = await engineP;
  // EICAR gzipped: found only by unpacking the tar (a tar's own bytes hold stored members as they are).
  const gzEicar = gzipSync(EICAR_BYTES);
  const v7 = buildTar([{ name: 'a.txt', data: text, format: 'v7' }, { name: 'eicar.gz', data: gzEicar, format: 'v7' }]);
  assert.match(JSON.stringify((await scan(e, v7, 'old.tar')).v), /"infected".*2\/old.tar!eicar.gz/);
  const typeV = buildTar([{ name: 'label.gz', type: 'V', format: 'gnu', data: gzEicar }]);
  assert.match(JSON.stringify((await scan(e, typeV, 'v.tar')).v), /"infected".*2\/v.tar!label.gz/);
  // Python reads the hard link's data as the next headers: a tar inside, read one level down.
  const carrier = buildTar([{ name: 'r.txt', data: text }, { name: 'c.txt', type: '1', linkname: 'r.txt', data: buildTar([{ name: 'inner.gz', data: gzEicar }], false) }]);
  const rc = await scan(e, carrier, 'l.tar');
  assert.match(JSON.stringify(rc.v), /"infected".*2\/l.tar!c.txt!inner.gz/);
  const glob = buildTar([paxMember({ path: 'payload.exe' }, 'g'), { name: 'readme.txt', data: text }]);
  assert.deepEqual((await scan(e, glob, 'g.tar')).v, { kind: 'banned', reason: 'banned file name .exe', where: '2/g.tar!readme.txt' });
  const link = buildTar([{ name: 'readme.txt', data: text }, { name: 'run.exe', type: '2', linkname: 'readme.txt' }]);
  assert.deepEqual((await scan(e, link, 's.tar')).v, { kind: 'banned', reason: 'banned file name .exe', where: '2/s.tar!run.exe' });
});

test('a sparse tar member is scanned as the rebuilt file (holes and all)', async () => {
  const region = pseudoRandom(300, 77);
  const rebuilt = Buffer.concat([new Uint8Array(4096), region, new Uint8Array(8192 - 4096 - 300)]);
  mkdirSync(TMP_BASE, { recursive: true });
  const dir = mkdtempSync(join(TMP_BASE, 'sparse-'));
  try {
    const hdb = join(dir, 'sparse.hdb');
    writeFileSync(hdb, `${createHash('md5').update(rebuilt).digest('hex')}:${rebuilt.length}:Test.Sparse.Rebuilt\n`);
    const e = await createEngine({ builtin: true, signatures: [hdb] });
    const sparse = Buffer.concat([
      tarHeader({
        name: 'holes.bin', type: 'S', format: 'gnu', size: region.length,
        patch: (h) => {
          h.set(b('00000010000\0'), 386); // one region at 4096…
          h.set(b(region.length.toString(8).padStart(11, '0') + '\0'), 398);
          h.set(b('00000020000\0'), 483); // …of a file of 8192 bytes
        },
      }),
      region, new Uint8Array(512 - region.length), new Uint8Array(1024),
    ]);
    const r = await scan(e, sparse, 'sp.tar');
    assert.equal(r.v.kind, 'infected');
    assert.equal(r.v.kind === 'infected' && r.v.where, '2/sp.tar!holes.bin');
    await e.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
