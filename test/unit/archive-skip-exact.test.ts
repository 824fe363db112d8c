/**
 * Skipping an archive's member bytes at the archive level (floating body signatures do not
 * read what the members read) is exact: a byte is skipped only once it is known to reach a
 * member, and only then. Bytes a decompressor took beyond its stream's end (the rest of its
 * last input slice: a data descriptor, the next local header, a gzip member's header, a
 * comment, trailing junk), the slice that stopped an unpacker (a limit, damage), and data
 * whose entry has no member to read it (a zip directory entry) are read at the archive
 * level like any other byte, whichever chunk they came in. So the verdict never depends
 * on the skipping nor on the chunking: every case is compared with a reference run whose
 * engine has no writeUnpacked (it reads every byte), at several chunkings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { createEngine, type Verdict } from '../../src/core/index.js';
import type { EngineOptions } from '../../src/core/engine.js';
import { MessageSession } from '../../src/core/session.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import type { Scanner } from '../../src/core/scan/scanner.js';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { EICAR_BYTES, multipartMessage } from '../helpers/mail-build.js';
import { ReadsEverything } from '../helpers/reads-everything.js';
import { ZipWriter, cutAt, pseudoRandom, split } from '../helpers/unpack-harness.js';

/** A floating .ndb signature besides EICAR, so both kinds of body signature are exercised. */
const MARK = Buffer.from('<<floating-test-mark:7f3e>>');
const db = SignatureDb.fromSources([{ kind: 'ndb', label: 't.ndb', text: `Test.Floating.Mark:0:*:${MARK.toString('hex')}\n` }]);
const skipping = new BuiltinScanner(db);

const reference = new ReadsEverything(skipping);

/** The attachment is sent as it is (7bit), so `cuts` are offsets into the archive itself. */
async function scan(att: Uint8Array, sc: Scanner, cuts: number[] | number, opts: EngineOptions = {}): Promise<Verdict> {
  const policy = (await createEngine(opts)).policy;
  const s = new MessageSession(policy, [sc]);
  const msg = multipartMessage([{ filename: 'a.bin', content: Buffer.from(att).toString('latin1'), encoding: '7bit' }]);
  const at = msg.indexOf(Buffer.from(att));
  assert.ok(at > 0);
  const chunks = typeof cuts === 'number' ? split(msg, cuts) : cutAt(msg, cuts.map((c) => c + at));
  for (const c of chunks) await s.push(c);
  return s.end();
}

/** The verdict with skipping equals the reference's, at every chunking, and is `expect`. */
async function same(label: string, att: Uint8Array, expect: string, opts: EngineOptions = {}, extraCuts: number[][] = []): Promise<void> {
  const ref = JSON.stringify(await scan(att, reference, [], opts));
  assert.match(ref, new RegExp(expect), `${label}: reference`);
  const chunkings: (number[] | number)[] = [[], 997, 4096, 8191, ...extraCuts];
  for (const c of chunkings) assert.equal(JSON.stringify(await scan(att, skipping, c, opts)), ref, `${label}: chunking ${JSON.stringify(c)}`);
}

const text = pseudoRandom(40_000, 3, true);
const extraField = (payload: Uint8Array) => new Uint8Array([0x99, 0x99, payload.length & 0xff, payload.length >> 8, ...payload]);

test('zip: a local header after a data-descriptor deflate entry is read at the archive level', async () => {
  for (const sig of [EICAR_BYTES, MARK]) {
    const w = new ZipWriter();
    w.entry({ name: 'a.txt', data: text, descriptor: 'signed' });
    const next = w.pos + 30 + 'b.txt'.length + 4; // where the extra field's payload lies
    w.entry({ name: 'b.txt', data: text.subarray(0, 100), extra: extraField(sig) });
    const z = w.finish();
    // Cuts between the deflate end and the signature, and inside the signature.
    await same(`extra field (${sig.length})`, z, 'infected', {}, [[next - 40, next + 3], [next + 10]]);
  }
});

test('zip: the comment, the central directory and bytes after the end record, behind a small deflate entry', async () => {
  const comment = (sig: Uint8Array) => {
    const w = new ZipWriter();
    w.entry({ name: 'a.txt', data: text.subarray(0, 3000), descriptor: 'unsigned' });
    return w.finish({ comment: Buffer.concat([Buffer.from('note: '), sig]) });
  };
  await same('comment EICAR', comment(EICAR_BYTES), 'infected');
  await same('comment mark', comment(MARK), 'Test.Floating.Mark');
  // A name in the central directory only a directory listing shows.
  const w = new ZipWriter();
  w.entry({ name: 'a.txt', data: text.subarray(0, 3000), descriptor: 'signed', cd: { extra: extraField(MARK) } });
  await same('central directory extra', w.finish(), 'Test.Floating.Mark');
  // Appended after the end record.
  const v = new ZipWriter();
  v.entry({ name: 'a.txt', data: text.subarray(0, 5000), descriptor: 'signed' });
  await same('after the end', Buffer.concat([v.finish(), Buffer.from('junk '), EICAR_BYTES]), 'infected');
});

test('gzip: a later member\'s header and trailing junk are read at the archive level', async () => {
  // Member 2 carries EICAR in its FCOMMENT field: no client extracts a comment.
  const second = gzipSync(Buffer.from('hello'));
  const hdr = Buffer.from([0x1f, 0x8b, 8, 16, 0, 0, 0, 0, 0, 3]);
  const multi = Buffer.concat([gzipSync(text), hdr, EICAR_BYTES, Buffer.from([0]), second.subarray(10)]);
  await same('FCOMMENT', multi, 'infected');
  // Junk after the last member (a corrupt gzip: what follows the damage is read in full).
  await same('trailing junk', Buffer.concat([gzipSync(text), Buffer.from(' '), MARK]), 'Test.Floating.Mark');
});

test('the slice that tripped a limit is read at the archive level, also when it began in an earlier chunk', async () => {
  // Stored deflate blocks: the content is visible in the compressed bytes. The unpacked-bytes
  // limit trips inside the slice that holds the signature, before its output reaches the member.
  const data = Buffer.concat([pseudoRandom(60_000, 9), MARK, pseudoRandom(3000, 10)]);
  const w = new ZipWriter();
  w.entry({ name: 'big.bin', data, compressed: deflateRawSync(data, { level: 0 }), usize: data.length });
  const z = w.finish();
  const markAt = Buffer.from(z).indexOf(MARK);
  // The limit trips 100 bytes before the mark; the mark arrives one chunk before its slice ends.
  const limits = { limits: { unpackedBytes: 60_000 - 100 } } as EngineOptions;
  await same('limit', z, 'Test.Floating.Mark', limits, [[markAt + MARK.length + 1], [markAt - 5, markAt + MARK.length + 1]]);
});

test('a zip directory entry has no member: its deflate data is read at the archive level', async () => {
  // "d/" declares 0 bytes but its deflate data yields the mark in a stored block: no member
  // reads that output (the entry is corrupt), so only the archive's own reading sees it.
  const w = new ZipWriter();
  w.entry({ name: 'd/', data: new Uint8Array(0), compressed: deflateRawSync(Buffer.concat([MARK, text.subarray(0, 200)]), { level: 0 }), usize: 0 });
  await same('directory', w.finish(), 'Test.Floating.Mark');
});
