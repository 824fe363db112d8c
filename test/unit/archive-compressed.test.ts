/**
 * An archive the core unpacks is not body-matched twice: the bytes its unpacker hands to
 * a decompressor are matched decompressed, in the members, and skipped by floating body
 * signatures at the archive level (BodyMatcher.skip), and so are stored data the members
 * read as they are; hash signatures, EOF- and offset-anchored signatures still read every
 * byte of the archive, and every byte no member carries (headers, directories, what
 * follows damage) is read as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { PatternSetBuilder } from '../../src/core/scan/sigs/matcher.js';
import { parseNdbLine } from '../../src/core/scan/sigs/ndb-parse.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import { MessageSession } from '../../src/core/session.js';
import { createEngine, type Verdict } from '../../src/core/index.js';
import { EICAR, multipartMessage, pseudoRandom } from '../helpers/mail-build.js';
import { buildZip, cutAt, pseudoRandom as textLike } from '../helpers/unpack-harness.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function matcher(lines: string[]) {
  const b = new PatternSetBuilder();
  lines.forEach((l, i) => {
    const r = parseNdbLine(l, 't.ndb', i + 1);
    assert.ok(r.ok);
    b.add(r.sig);
  });
  return b.build().createMatcher();
}

test('BodyMatcher.skip: no form reads skipped bytes; offsets and gaps still count them', () => {
  const a = Buffer.from('0123456789abcdef');
  const z = Buffer.from('ZYXWVUTSRQPONMLK');
  // A form straddling the skipped region never matches, wherever the chunks end.
  const m1 = matcher([`Straddle:0:*:${hex(a.subarray(8))}${hex(z.subarray(0, 8))}`]);
  assert.equal(m1.write(a), null);
  m1.skip(a.length + z.length); // pretend the same bytes again, unread
  assert.equal(m1.write(z), null);
  // Two segments around a skip: the `*` gap spans it.
  const m2 = matcher([`Around:0:*:${hex(a)}*${hex(z)}`]);
  assert.equal(m2.write(a), null);
  m2.skip(100_000);
  assert.equal(m2.write(z), 'Around');
  // A bounded gap counts the skipped bytes: {0-50} is too short for 100 skipped bytes.
  const m3 = matcher([`Bounded:0:*:${hex(a)}{0-50}${hex(z)}`]);
  m3.write(a);
  m3.skip(100);
  assert.equal(m3.write(z), null);
  // An absolute offset counts them too: `z` at offset 16 + 1000.
  const m4 = matcher([`At:0:1016:${hex(z)}`]);
  m4.write(a);
  m4.skip(1000);
  assert.equal(m4.write(z), 'At');
});

test('an anchored set stops sampling once every signature is out of reach', () => {
  const m = matcher([`Head:0:0,10:${hex(Buffer.from('PK\x03\x04'))}`]);
  assert.equal(m.exhausted, false);
  m.write(pseudoRandom(100, 1));
  assert.equal(m.exhausted, true);
  assert.equal(matcher([`Any:0:*:${hex(Buffer.from('abcdefgh'))}`]).exhausted, false);
});

/** A message with one attachment, scanned by the built-in engine with `ndb` + `hdb` lines. */
async function scan(att: Uint8Array, name: string, ndb: string[], hdb: string[] = [], cuts: number[] = []): Promise<Verdict> {
  const db = SignatureDb.fromSources([
    { kind: 'ndb', label: 't.ndb', text: ndb.join('\n') + '\n' },
    { kind: 'hash', label: 't.hdb', text: hdb.join('\n') + '\n' },
  ]);
  const policy = (await createEngine({})).policy;
  const s = new MessageSession(policy, [new BuiltinScanner(db)]);
  const msg = multipartMessage([{ filename: name, content: att }]);
  for (const c of cutAt(msg, cuts.map((x) => x % msg.length))) await s.push(c);
  return s.end();
}

const payload = Buffer.from(textLike(60_000, 4, true)); // compresses: deflate data unlike its content
const gz = gzipSync(payload);
// 20 bytes of deflate data in a whole inflate slice (the final partial slice of a stream still
// open at the input's end is only decided there, so it is read as it is: see unpack-base.ts).
const DEFLATED_AT = 4000;
const inCompressed = gz.subarray(DEFLATED_AT, DEFLATED_AT + 20);
assert.equal(payload.indexOf(inCompressed), -1);
assert.ok(gz.length > 10 + 8192, 'the stream has a whole slice');

test('floating body signatures do not read a gzip\'s deflate data; members and hashes do', async () => {
  for (const cuts of [[], [700, 701, 9000], [1, 2, 3, 4000, 4001]]) {
    assert.deepEqual(await scan(gz, 'a.gz', [`Deflated:0:*:${hex(inCompressed)}`], [], cuts), { kind: 'clean' }, 'compressed bytes skipped');
    const inMember = payload.subarray(10_000, 10_024);
    const v = await scan(gz, 'a.gz', [`Member:0:*:${hex(inMember)}`], [], cuts);
    assert.equal(v.kind === 'infected' && v.where, '2/a.gz!(data)');
    const md5 = createHash('md5').update(gz).digest('hex');
    const h = await scan(gz, 'a.gz', [], [`${md5}:${gz.length}:Whole.Gz`], cuts);
    assert.equal(h.kind === 'infected' && `${h.name} ${h.where}`, 'Whole.Gz 2/a.gz', 'the archive itself is hashed');
  }
});

test('signatures anchored at an offset or at EOF read the compressed bytes too', async () => {
  const at = DEFLATED_AT;
  const v = await scan(gz, 'a.gz', [`Anchored:0:${at}:${hex(inCompressed)}`], [], [at - 3, at + 7]);
  assert.equal(v.kind === 'infected' && `${v.name} ${v.where}`, 'Anchored 2/a.gz');
  const e = await scan(gz, 'a.gz', [`Tail:0:EOF-${gz.length - at}:${hex(inCompressed)}`]);
  assert.equal(e.kind === 'infected' && `${e.name} ${e.where}`, 'Tail 2/a.gz');
});

test('zip: headers are read at the archive level; deflate and stored data only in the members', async () => {
  const z = buildZip([{ name: 'name-in-header.txt', data: payload }, { name: 'stored.bin', data: pseudoRandom(5000, 8), method: 0 }]);
  const header = Buffer.from('name-in-header.txt');
  const v = await scan(z, 'b.zip', [`Header:0:*:${hex(header)}`]);
  assert.equal(v.kind === 'infected' && `${v.name} ${v.where}`, 'Header 2/b.zip');
  const inside = deflateRawSync(payload).subarray(2000, 2020);
  assert.ok(Buffer.from(z).indexOf(inside) > 0);
  assert.deepEqual(await scan(z, 'b.zip', [`Deflated:0:*:${hex(inside)}`]), { kind: 'clean' });
  // Stored data reaches the member as it is: read there only, so the member names it whatever the chunking.
  const stored = pseudoRandom(5000, 8).subarray(100, 120);
  for (const cuts of [[], [900], [1, 2, 3, 4000, 4001, 4002]]) {
    const s = await scan(z, 'b.zip', [`Stored:0:*:${hex(stored)}`], [], cuts);
    assert.equal(s.kind === 'infected' && s.where, '2/b.zip!stored.bin');
  }
});

test('what follows damage is read in full: the unpacker stopped, so nothing is skipped there', async () => {
  // A deflate entry with a lying CRC, then EICAR in plain bytes (a second "entry" never parsed).
  const bad = buildZip([{ name: 'a.txt', data: payload, crc: 1 }]);
  const z = Buffer.concat([bad.subarray(0, 200), Buffer.from(`junk ${EICAR} junk`), bad.subarray(200)]);
  const v = await scan(z, 'c.zip', []);
  assert.equal(v.kind, 'infected', JSON.stringify(v));
  // The corruption is still reported when nothing else is found (at the archive's end).
  const w = await scan(bad, 'd.zip', []);
  assert.equal(w.kind, 'unparseable');
});
