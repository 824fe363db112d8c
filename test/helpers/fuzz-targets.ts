/**
 * fuzz-targets.ts — the fuzz/property targets shared by test/property/fuzz-*.test.ts (few
 * runs, fixed seed) and bench/fuzz.ts (many runs or a time budget).
 *
 * Each target is a fast-check property over generated or mutated input; it asserts the
 * component's contract (no throw, a defined outcome, chunking invariance, bounded
 * output/buffering) and counts its cases in `counts` so the bench can report them.
 * Inputs: structured MIME trees, the MIME fixtures, valid archives built here, milter
 * packet streams and SMTP sessions — each then mutated (flip, insert interesting tokens,
 * delete, duplicate, truncate) so the fuzzers reach the odd states, not just random noise.
 */
import { DEFAULT_HEADER_SETTINGS } from '../../src/actions/message-edits.js';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, connect } from 'node:net';
import { BlockList } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { deflateRawSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { Engine, Verdict } from '../../src/core/index.js';
import { createDecoder } from '../../src/core/decode/index.js';
import { UuExtractor } from '../../src/core/decode/uu-extractor.js';
import { createEmbeddedZipUnpacker, createUnpacker } from '../../src/core/unpack/index.js';
import type { ArchiveFormat, UnpackBudget, UnpackHandler } from '../../src/core/unpack/unpack-types.js';
import { MilterDecoder, cstrings, encodeOptneg, encodePacket } from '../../milter/milter-wire.js';
import { MilterSession } from '../../milter/milter-session.js';
import { SMFIC, SMFIR } from '../../milter/milter-codes.js';
import { DataDecoder, SmtpReader, type ReaderEvent } from '../../src/smtp/smtp-reader.js';
import { ProxySession, type ProxyContext } from '../../src/smtp/proxy-session.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';
import { fixture } from './paths.js';
import { postfixReadData } from './postfix-read.js';
import { traceChunks } from './mime-trace.js';
import { buildTar, buildZip, cutAt, paxMember, tarHeader, ZipWriter } from './unpack-harness.js';
import { fakeEngine } from './milter-fake-engine.js';
import { createStubEngine } from './stub-engine.js';
import type { Sink } from './sink.js';

export const FUZZ_SEED = 0x5eed_2026;
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/** Cases run per target (the bench prints these). */
export const counts: Record<string, number> = {};
const count = (name: string) => void (counts[name] = (counts[name] ?? 0) + 1);

const b = (s: string) => Buffer.from(s, 'latin1');
const concat = (parts: Uint8Array[]) => Buffer.concat(parts);

// ---------------------------------------------------------------- mutation

/** Tokens that steer a mutated message into interesting parser states. */
const TOKENS = [
  '\r\n', '\n', '\r', '\r\n\r\n', '--', '\r\n--', '--b1', '--b1--', '\r\n--b1\r\n', '=', '=\r\n', '=3D', '=ZZ',
  'Content-Type: multipart/mixed; boundary="b1"\r\n', 'Content-Type: message/rfc822\r\n',
  'Content-Transfer-Encoding: base64\r\n', 'Content-Transfer-Encoding: quoted-printable\r\n',
  'Content-Disposition: attachment; filename="a.exe"\r\n', 'filename*=utf-8\'\'%41.zip', '=?utf-8?B?YS5leGU=?=',
  'begin 644 x.bin\n', 'begin-base64 644 y\n', 'end\n', '====\n', ' \t', '\0', '\xff', 'PK\x03\x04', '\x1f\x8b\x08',
  'BZh9', 'ustar\0', EICAR,
].map(b);

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; data: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'dup'; at: number; len: number }
  | { op: 'truncate'; at: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    data: fc.oneof(fc.constantFrom(...TOKENS), fc.uint8Array({ minLength: 1, maxLength: 16 })),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

export function mutate(input: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let cur = Buffer.from(input);
  for (const m of ms) {
    const n = cur.length;
    const at = n === 0 ? 0 : m.at % (n + 1);
    switch (m.op) {
      case 'flip':
        if (n > 0) cur[at % n]! ^= 1 << m.bit;
        break;
      case 'insert':
        cur = concat([cur.subarray(0, at), m.data, cur.subarray(at)]);
        break;
      case 'delete':
        cur = concat([cur.subarray(0, at), cur.subarray(at + m.len)]);
        break;
      case 'dup':
        cur = concat([cur.subarray(0, at + m.len), cur.subarray(at, at + m.len), cur.subarray(at + m.len)]);
        break;
      case 'truncate':
        if (n > 16) cur = cur.subarray(0, Math.max(8, at));
        break;
    }
  }
  return cur;
}

const mutations = fc.array(mutationArb, { minLength: 0, maxLength: 8 });
const cuts = fc.array(fc.nat(), { minLength: 0, maxLength: 24 });

// ---------------------------------------------------------------- MIME generator

interface Leaf {
  kind: 'leaf';
  ct: string;
  cte: string;
  filename: string | null;
  body: Uint8Array;
}
interface Multi {
  kind: 'multi';
  sub: string;
  boundary: string;
  preamble: string;
  epilogue: string;
  close: boolean;
  children: Node[];
}
type Node = Leaf | Multi;

const bodyArb = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.constant(b(EICAR)),
  fc.constant(b(`prefix ${EICAR} suffix`)),
  fc.string({ maxLength: 120 }).map(b),
);
const leafArb: fc.Arbitrary<Leaf> = fc.record({
  kind: fc.constant('leaf' as const),
  ct: fc.constantFrom('text/plain', 'application/octet-stream', 'message/rfc822', 'application/zip', 'image/gif', '', 'text/html; charset=utf-8'),
  cte: fc.constantFrom('', '7bit', '8bit', 'base64', 'quoted-printable', 'x-uuencode', 'BASE64', 'bogus'),
  filename: fc.option(fc.constantFrom('a.txt', 'b.exe', 'c.zip', 'd.pdf', '=?utf-8?Q?e=2Eexe?=', 'f g.doc'), { nil: null }),
  body: bodyArb,
});
const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({
      kind: fc.constant('multi' as const),
      sub: fc.constantFrom('mixed', 'alternative', 'digest', 'related'),
      boundary: fc.constantFrom('b1', 'b2', 'inner', '=_x', 'b1b', "'()+_,-./:=?", 'a'.repeat(70)),
      preamble: fc.constantFrom('', 'This is MIME.\r\n', '--b1 not a boundary\r\n'),
      epilogue: fc.constantFrom('', 'epilogue\r\n'),
      close: fc.boolean(),
      children: fc.array(tie('node'), { maxLength: 4 }),
    }),
  ),
})).node;

function encodeBody(leaf: Leaf): string {
  const raw = Buffer.from(leaf.body);
  switch (leaf.cte.toLowerCase()) {
    case 'base64':
      return (raw.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
    case 'quoted-printable':
      return [...raw].map((c) => (c >= 33 && c <= 126 && c !== 61 ? String.fromCharCode(c) : '=' + c.toString(16).toUpperCase().padStart(2, '0'))).join('');
    default:
      return raw.toString('latin1');
  }
}

function serialize(node: Node, top: boolean): string {
  const h: string[] = top ? ['From: a@example.org', 'To: b@example.net', 'Subject: fuzz', 'MIME-Version: 1.0'] : [];
  if (node.kind === 'leaf') {
    if (node.ct) h.push(`Content-Type: ${node.ct}${node.filename ? `; name="${node.filename}"` : ''}`);
    if (node.cte) h.push(`Content-Transfer-Encoding: ${node.cte}`);
    if (node.filename) h.push(`Content-Disposition: attachment; filename="${node.filename}"`);
    return h.join('\r\n') + '\r\n\r\n' + encodeBody(node);
  }
  h.push(`Content-Type: multipart/${node.sub}; boundary="${node.boundary}"`);
  let s = h.join('\r\n') + '\r\n\r\n' + node.preamble;
  for (const c of node.children) s += `\r\n--${node.boundary}\r\n` + serialize(c, false);
  if (node.close) s += `\r\n--${node.boundary}--\r\n` + node.epilogue;
  return s;
}

export const mimeMessageArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(nodeArb, fc.boolean())
  .map(([n, lf]) => {
    const s = serialize(n, true);
    return b(lf ? s.replace(/\r\n/g, '\n') : s);
  });

let fixtureCache: Uint8Array[] | null = null;
export function mimeFixtures(): Uint8Array[] {
  if (!fixtureCache) {
    const dir = fixture('mime');
    fixtureCache = readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().map((f) => readFileSync(`${dir}/${f}`));
  }
  return fixtureCache;
}

// ---------------------------------------------------------------- core (MIME) targets

const KINDS = new Set(['clean', 'infected', 'banned', 'limit', 'anomaly', 'unparseable', 'error']);

export async function verdictOf(engine: Engine, chunks: readonly Uint8Array[]): Promise<Verdict> {
  const s = engine.begin({});
  for (const c of chunks) await s.push(c);
  return s.end();
}

function checkVerdict(v: Verdict): void {
  assert.ok(KINDS.has(v.kind), `verdict kind ${JSON.stringify(v)}`);
  // an internal error is a state machine that threw: always a bug
  assert.ok(!(v.kind === 'error' && v.errorKind === 'internal'), `internal error: ${JSON.stringify(v)}`);
}

/** A message (generated or a mutated fixture) gives the same defined verdict whole and chunked; the splitter trace too. */
export function mimeProperty(engine: Engine, source: 'generated' | 'fixtures') {
  const name = `mime-${source}`;
  const msgArb =
    source === 'generated'
      ? fc.tuple(mimeMessageArb, mutations).map(([m, ms]) => mutate(m, ms))
      : fc.tuple(fc.constantFrom(...mimeFixtures()), fc.array(mutationArb, { minLength: 1, maxLength: 8 })).map(([m, ms]) => mutate(m, ms));
  return fc.asyncProperty(msgArb, cuts, async (msg, cs) => {
    count(name);
    const whole = await verdictOf(engine, [msg]);
    checkVerdict(whole);
    count(`${name}:${whole.kind}`);
    const split = await verdictOf(engine, cutAt(msg, cs));
    assert.deepEqual(split, whole, 'chunking changed the verdict');
    const t1 = traceChunks([msg]);
    assert.equal(traceChunks(cutAt(msg, cs)), t1, 'chunking changed the MIME trace');
  });
}

// ---------------------------------------------------------------- decoders

const codedByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...b('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')) },
  { weight: 2, arbitrary: fc.constantFrom(0x3d, 0x0d, 0x0a, 0x20, 0x09, 0x2d, 0x5f) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const codedInput = fc.array(codedByte, { maxLength: 600 }).map((a) => Uint8Array.from(a));

function decodeAll(cte: string, chunks: readonly Uint8Array[]): Buffer {
  const d = createDecoder(cte);
  const out: Buffer[] = [];
  const push = (x: Uint8Array) => out.push(Buffer.from(x));
  for (const c of chunks) d.write(c, push);
  d.end(push);
  return Buffer.concat(out);
}

/** base64 / QP over arbitrary input: no throw, chunk-invariant, output bounded by input. */
export function decoderProperty() {
  return fc.property(fc.constantFrom('base64', 'quoted-printable'), codedInput, cuts, (cte, input, cs) => {
    count('decoders-random');
    const whole = decodeAll(cte, [input]);
    assert.ok(whole.length <= (cte === 'base64' ? Math.ceil((input.length * 3) / 4) : input.length), `${cte} output ${whole.length} > input ${input.length}`);
    assert.deepEqual(decodeAll(cte, cutAt(input, cs)), whole);
  });
}

/** Valid encodings with junk/soft breaks mixed in decode to the original bytes. */
export function decoderRoundTripProperty() {
  return fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 30 }), cuts, (data, junkAt, cs) => {
    count('decoders-roundtrip');
    let b64 = Buffer.from(data).toString('base64');
    for (const j of junkAt) {
      const k = j % (b64.length + 1);
      b64 = b64.slice(0, k) + ' \r\n\t!*'[j % 6] + b64.slice(k);
    }
    assert.deepEqual(decodeAll('base64', cutAt(b(b64), cs)), Buffer.from(data));
    let qp = '';
    for (let i = 0; i < data.length; i++) {
      qp += '=' + data[i]!.toString(16).padStart(2, i % 2 ? '0' : '0');
      if (junkAt.includes(i)) qp += '=  \r\n';
    }
    assert.deepEqual(decodeAll('quoted-printable', cutAt(b(qp), cs)), Buffer.from(data));
  });
}

/** UuExtractor over text with begin/end blocks: no throw, each file ended once, chunk-invariant. */
export function uuProperty() {
  const line = fc.oneof(
    fc.constantFrom('begin 644 a.bin', 'begin-base64 644 b.bin', 'end', '====', '', 'M86)C9&5F9VAI:FML;6YO<'),
    fc.string({ maxLength: 70 }),
    fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u).toString('latin1')),
  );
  const text = fc.tuple(fc.array(line, { maxLength: 40 }), fc.boolean()).map(([ls, lf]) => b(ls.join(lf ? '\n' : '\r\n')));
  const run = (chunks: readonly Uint8Array[]) => {
    const files: string[] = [];
    const ex = new UuExtractor((name) => {
      const rec = { name, bytes: [] as Buffer[], ended: 0 };
      files.push('');
      const idx = files.length - 1;
      return {
        write(c) {
          assert.equal(rec.ended, 0, 'write after end');
          rec.bytes.push(Buffer.from(c));
        },
        end() {
          rec.ended++;
          assert.equal(rec.ended, 1, 'ended twice');
          files[idx] = `${name}:${Buffer.concat(rec.bytes).toString('hex')}`;
        },
      };
    });
    for (const c of chunks) ex.write(c);
    ex.end();
    for (const f of files) assert.notEqual(f, '', 'a file was never ended');
    return files;
  };
  return fc.property(text, mutations, cuts, (t, ms, cs) => {
    count('decoders-uu');
    const input = mutate(t, ms);
    assert.deepEqual(run(cutAt(input, cs)), run([input]));
  });
}

// ---------------------------------------------------------------- unpackers

export const FUZZ_BUDGET: Readonly<UnpackBudget> = Object.freeze({
  unpackedBytes: 0,
  maxUnpackedBytes: 2 * 1024 * 1024,
  entries: 0,
  maxEntries: 200,
  maxRatio: 250,
  ratioGraceBytes: 256 * 1024,
});

let seeds: { format: FuzzFormat; data: Uint8Array }[] | null = null;
export function archiveSeeds(): { format: FuzzFormat; data: Uint8Array }[] {
  if (seeds) return seeds;
  const text = b('The quick brown fox jumps over the lazy dog. '.repeat(40));
  const zeros = new Uint8Array(300_000);
  seeds = [
    { format: 'zip', data: buildZip([{ name: 'a.txt', data: text }, { name: 'b.bin', data: b(EICAR), method: 0 }]) },
    { format: 'zip', data: buildZip([{ name: 'd/', data: new Uint8Array(0), method: 0 }, { name: 'c.txt', data: text, descriptor: 'signed' }]) },
    { format: 'zip', data: buildZip([{ name: 's.txt', data: text, method: 0, descriptor: 'signed' }, { name: 'z', data: zeros, zip64: true }]) },
    { format: 'zip', data: buildZip([{ name: 'e.bin', data: text, method: 0, flags: 1 }, { name: 'u.txt', data: text, descriptor: 'unsigned' }]) },
    { format: 'gzip', data: gzipSync(text) },
    { format: 'gzip', data: Buffer.concat([gzipSync(text), gzipSync(zeros)]) },
    { format: 'tar', data: buildTar([{ name: 'a.txt', data: text }, { name: 'dir/', type: '5' }, { name: 'b', data: b(EICAR), format: 'gnu' }]) },
    { format: 'tar', data: buildTar([{ name: 'x', data: text, base256: true }, { name: 'l', type: '2', linkname: 'x' }]) },
    { format: 'bzip2', data: readFileSync(fixture('unpack', 'runs.bz2')) },
  ];
  // zips read every way: behind junk, in the comment, unknown sizes, a hidden header
  const inner = buildZip([{ name: 'in.txt', data: text }]);
  const w = new ZipWriter(40);
  w.raw(b('#!/bin/sh\necho junk in front of a zip\n  '));
  w.entry({ name: 'u.bin', data: text, method: 0, descriptor: 'unsigned' });
  w.entry({ name: 'e.bin', data: text, method: 12, descriptor: 'signed' });
  seeds.push({ format: 'zip-embedded', data: w.finish({ comment: inner }) });
  const h = new ZipWriter();
  const hidden = ZipWriter.localBytes({ name: 'h.txt', data: text });
  const at = h.entry({ name: 'c.bin', data: Buffer.concat([b('xx'), hidden.bytes]), method: 0 });
  h.centralRecord({ ...hidden.fields, offset: at + 30 + 5 + 2 });
  seeds.push({ format: 'zip', data: h.finish() });
  // tars: v7, an old GNU sparse member, pax sparse 0.1, a link carrying data, after the end
  const o8 = (v: number) => b(v.toString(8).padStart(11, '0') + '\0');
  const sparse = tarHeader({ name: 's.bin', type: 'S', format: 'gnu', size: 600, patch: (x) => { x.set(o8(100), 386); x.set(o8(600), 398); x.set(o8(5000), 483); } });
  seeds.push({
    format: 'tar',
    data: Buffer.concat([
      buildTar([{ name: 'v7.txt', data: text, format: 'v7' }], false), sparse, text.subarray(0, 600), new Uint8Array(424),
      buildTar([{ name: 'l', type: '1', linkname: 'v7.txt', data: text.subarray(0, 100) }, paxMember({ 'GNU.sparse.map': '0,10,50,20', 'GNU.sparse.size': '99' }), { name: 'q', data: text.subarray(0, 30) }]),
      buildTar([{ name: 'after.txt', data: text.subarray(0, 10) }]),
    ]),
  });
  // a raw deflate seed wrapped as a zip entry of zeros (ratio paths)
  seeds.push({ format: 'zip', data: buildZip([{ name: 'zz', data: new Uint8Array(0), compressed: deflateRawSync(new Uint8Array(2_000_000)), crc: 0, usize: 2_000_000 }]) });
  return seeds;
}

interface UnpackTrace {
  events: string[];
  out: number;
}

/** Run one unpacker and check the handler contract (unpack-base.ts) as it goes. */
/** The unpackers, and the zip reading the session gives files not sniffed as zip. */
export type FuzzFormat = ArchiveFormat | 'zip-embedded';

export function checkedUnpack(format: FuzzFormat, chunks: readonly Uint8Array[], budget: UnpackBudget): UnpackTrace {
  const t: UnpackTrace = { events: [], out: 0 };
  let terminal = 0; // limit/corrupt calls
  let open = 0;
  const make = format === 'zip-embedded' ? (h: UnpackHandler) => createEmbeddedZipUnpacker(h, budget) : (h: UnpackHandler) => createUnpacker(format, h, budget);
  const u = make({
    onEntry(meta) {
      assert.equal(terminal, 0, 'entry after limit/corrupt');
      assert.equal(open, 0, 'entry while another is open');
      open++;
      t.events.push(`entry ${meta.name}`);
      let ended = false;
      let size = 0;
      return {
        write(c) {
          assert.ok(!ended, 'write after end');
          assert.equal(terminal, 0, 'write after limit/corrupt');
          size += c.length;
          t.out += c.length;
        },
        end() {
          assert.ok(!ended, 'sink ended twice');
          ended = true;
          open--;
          t.events.push(`end ${size}`);
        },
      };
    },
    onLimit(which) {
      terminal++;
      assert.equal(terminal, 1, 'second limit/corrupt');
      t.events.push(`limit ${which}`);
    },
    onEncrypted(meta) {
      assert.equal(terminal, 0, 'encrypted after limit/corrupt');
      t.events.push(`encrypted ${meta.name}`);
    },
    onCorrupt(detail) {
      terminal++;
      assert.equal(terminal, 1, 'second limit/corrupt');
      t.events.push(`corrupt ${detail}`);
    },
    onAnomaly(code, verdict, member) {
      assert.equal(terminal, 0, 'anomaly after limit/corrupt');
      t.events.push(`anomaly ${code}${verdict ? '!' : ''} ${member ?? ''}`);
    },
    onAltName(member, alt) {
      assert.equal(terminal, 0, 'name after limit/corrupt');
      t.events.push(`altname ${member} ${alt}`);
    },
  });
  for (const c of chunks) u.write(c);
  u.end();
  u.end(); // idempotent
  u.write(new Uint8Array([1, 2, 3])); // ignored after end
  assert.equal(open, 0, 'a sink was never ended');
  // bounded output: never more than the message budget allows (stored bytes are input bytes)
  const inBytes = chunks.reduce((a, c) => a + c.length, 0);
  assert.ok(t.out <= budget.maxUnpackedBytes + inBytes, `output ${t.out}`);
  assert.ok(budget.unpackedBytes <= budget.maxUnpackedBytes);
  return t;
}

/** Mutated archives: handler contract, bounded output, chunk-invariant trace. */
export function unpackProperty() {
  return fc.property(fc.integer({ min: 0, max: 1000 }), mutations, cuts, fc.boolean(), (si, ms, cs, asOther) => {
    count('unpack');
    const all = archiveSeeds();
    const seed = all[si % all.length]!;
    const input = mutate(seed.data, ms);
    // sometimes feed a format the wrong bytes (sniffing is not the unpacker's job)
    const formats: FuzzFormat[] = ['zip', 'gzip', 'tar', 'bzip2', 'zip-embedded'];
    const format = asOther ? formats[si % formats.length]! : seed.format;
    const whole = checkedUnpack(format, [input], { ...FUZZ_BUDGET });
    const split = checkedUnpack(format, cutAt(input, cs), { ...FUZZ_BUDGET });
    assert.deepEqual(split.events, whole.events, 'chunking changed the unpack trace');
    const stop = whole.events.find((e) => e.startsWith('limit') || e.startsWith('corrupt')) ?? 'end';
    count(`unpack:${stop.split(' ')[0]}`);
  });
}

// ---------------------------------------------------------------- milter

const MAX_PACKET = 4096;
const FINAL_REPLIES = new Set<string>([SMFIR.CONTINUE, SMFIR.REPLYCODE, SMFIR.SKIP, SMFIR.PROGRESS, SMFIR.ADDHEADER, SMFIR.ACCEPT, SMFIR.TEMPFAIL, SMFIR.REJECT, SMFIC.OPTNEG]);

type WireItem = { kind: 'packet'; cmd: number; data: Uint8Array } | { kind: 'raw'; data: Uint8Array } | { kind: 'len'; len: number };
const wireItem: fc.Arbitrary<WireItem> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('packet' as const), cmd: fc.integer({ min: 0, max: 255 }), data: fc.uint8Array({ maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), data: fc.uint8Array({ maxLength: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('len' as const), len: fc.oneof(fc.constant(0), fc.constant(MAX_PACKET), fc.constant(MAX_PACKET + 1), fc.constant(0xffffffff), fc.nat()) }) },
);
function wireBytes(items: readonly WireItem[]): Buffer {
  return Buffer.concat(items.map((it) => {
    if (it.kind === 'packet') return encodePacket(String.fromCharCode(it.cmd), it.data);
    if (it.kind === 'len') {
      const l = Buffer.alloc(4);
      l.writeUInt32BE(it.len >>> 0);
      return l;
    }
    return Buffer.from(it.data);
  }));
}

/** A straightforward reference parser of the same framing, over the whole input. */
function referenceDecode(buf: Buffer, max: number): { packets: string[]; error: string | null } {
  const packets: string[] = [];
  let i = 0;
  while (buf.length - i >= 4) {
    const len = buf.readUInt32BE(i);
    if (len === 0) return { packets, error: 'milter-zero-length' };
    if (len > max) return { packets, error: 'milter-oversize' };
    if (buf.length - i - 4 < len) break;
    packets.push(buf.subarray(i + 4, i + 4 + len).toString('hex'));
    i += 4 + len;
  }
  return { packets, error: null };
}

/** MilterDecoder: any byte stream, any chunking → the reference parse, bounded buffering. */
export function milterWireProperty() {
  return fc.property(fc.array(wireItem, { maxLength: 30 }), cuts, (items, cs) => {
    count('milter-wire');
    const bytes = wireBytes(items);
    const ref = referenceDecode(bytes, MAX_PACKET);
    const d = new MilterDecoder(MAX_PACKET);
    const got: string[] = [];
    let error: string | null = null;
    for (const c of cutAt(bytes, cs)) {
      const r = d.push(c);
      for (const p of r.packets) got.push(Buffer.concat([Buffer.from([p.cmd.charCodeAt(0)]), p.data]).toString('hex'));
      if (r.error) error = r.error.code;
      assert.ok(d.buffered <= MAX_PACKET + 4 + c.length, `buffered ${d.buffered}`);
    }
    assert.deepEqual(got, ref.packets);
    assert.equal(error, ref.error);
  });
}

const milterCmd = fc.oneof(
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.OPTNEG, encodeOptneg(6, 0x1ff, 0x1fffff))) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.nat()).map(([a, p]) => encodePacket(SMFIC.OPTNEG, encodeOptneg(6, a, p))) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.CONNECT, Buffer.concat([cstrings('host'), Buffer.from('4'), Buffer.from([0, 25]), cstrings('192.0.2.1')]))) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.HELO, cstrings('helo.test'))) },
  { weight: 2, arbitrary: fc.constant(encodePacket(SMFIC.MAIL, cstrings('<a@b>', 'SIZE=10'))) },
  { weight: 2, arbitrary: fc.constant(encodePacket(SMFIC.RCPT, cstrings('<c@d>'))) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.DATA)) },
  { weight: 4, arbitrary: fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 60 })).map(([n, v]) => encodePacket(SMFIC.HEADER, cstrings(n, v))) },
  { weight: 2, arbitrary: fc.constant(encodePacket(SMFIC.EOH)) },
  { weight: 4, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constant(b(`x${EICAR}x`)), fc.constant(b('FUZZMARK'))).map((d) => encodePacket(SMFIC.BODY, d)) },
  { weight: 2, arbitrary: fc.constant(encodePacket(SMFIC.BODYEOB)) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.ABORT)) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.QUIT_NC)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('C', 'H', 'M', 'R', 'T', 'L', 'E', 'Z'), fc.string({ maxLength: 10 })).map(([s, v]) => encodePacket(SMFIC.MACRO, Buffer.concat([b(s), cstrings('i', v, '{auth_authen}')]))) },
  { weight: 1, arbitrary: fc.constant(encodePacket(SMFIC.UNKNOWN, cstrings('XYZZY'))) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 20 })).map(([c, d]) => encodePacket(String.fromCharCode(c), d)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((d) => Buffer.from(d)) },
);

/** MilterSession with a fake engine: any command stream → no throw, only well-formed, known replies. */
export function milterSessionProperty() {
  return fc.asyncProperty(fc.array(milterCmd, { maxLength: 40 }), cuts, async (cmds, cs) => {
    count('milter-session');
    const written: Buffer[] = [];
    let closes = 0;
    const bugs: string[] = [];
    const logger: Logger = {
      ...nullLogger,
      error: (event: string, f?: Record<string, unknown>) => void bugs.push(`${event} ${JSON.stringify(f)}`),
    };
    const engine = fakeEngine({ marker: 'FUZZMARK' });
    const s = new MilterSession({
      engine, logger, write: (buf) => void written.push(buf), close: () => void closes++, maxPacket: MAX_PACKET, progressIntervalMs: 60_000,
    });
    for (const c of cutAt(Buffer.concat(cmds), cs)) await s.receive(c);
    s.destroy();
    assert.deepEqual(bugs, []);
    assert.ok(closes <= 1, `closed ${closes} times`);
    const d = new MilterDecoder(1 << 20);
    for (const w of written) {
      const r = d.push(w);
      assert.equal(r.error, undefined);
      for (const p of r.packets) {
        assert.ok(FINAL_REPLIES.has(p.cmd), `unexpected reply ${JSON.stringify(p.cmd)}`);
        if (p.cmd === SMFIR.REPLYCODE) {
          count('milter-session:replycode');
          const text = p.data.subarray(0, p.data.length - 1).toString('latin1');
          assert.match(text, /^[45]\d\d [45]\.\d{1,3}\.\d{1,3} [\x20-\x7e]*$/);
          assert.equal(p.data[p.data.length - 1], 0);
        }
      }
    }
    assert.equal(d.buffered, 0, 'a reply packet was cut');
  });
}

// ---------------------------------------------------------------- SMTP

/** Bare CR or LF anywhere (every CR must start a CRLF, every LF end one)? */
/** An LF not preceded by CR? (Bare CRs are content: forwarded as received.) */
function hasBareLf(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x0a && (i === 0 || buf[i - 1] !== 0x0d)) return true;
  return false;
}

function hasBareCrLf(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0d && buf[i + 1] !== 0x0a) return true;
    if (buf[i] === 0x0a && (i === 0 || buf[i - 1] !== 0x0d)) return true;
  }
  return false;
}

const smtpLine = fc.oneof(
  fc.constantFrom('EHLO me', 'HELO x', 'MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'DATA', 'RSET', 'NOOP', 'QUIT', 'XFORWARD ADDR=1.2.3.4', 'BDAT 10', 'mail from:<>', 'RCPT TO:c@d', 'MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME', '.', '..', '.\r'),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('latin1')),
);
const smtpStream = fc.tuple(fc.array(smtpLine, { maxLength: 30 }), fc.array(fc.constantFrom('\r\n', '\n', '\r', '\r\r\n'), { minLength: 1, maxLength: 30 }))
  .map(([lines, eols]) => b(lines.map((l, i) => l + eols[i % eols.length]).join('')));

/** Drive an SmtpReader like the proxy does (DATA switches to data mode); collect events. */
function readAll(chunks: readonly Uint8Array[], maxLine: number): string[] {
  const r = new SmtpReader({ maxLineBytes: maxLine });
  const ev: string[] = [];
  let data: Buffer[] = [];
  let wire: Buffer[] = [];
  const onEvent = (e: ReaderEvent) => {
    if (e.type === 'command') {
      assert.ok(e.line.length <= maxLine, `command of ${e.line.length} bytes`);
      ev.push(`cmd ${e.line.toString('hex')}`);
      if (e.line.toString('latin1').toUpperCase() === 'DATA') r.startData();
    } else if (e.type === 'data') {
      for (const v of e.view) data.push(Buffer.from(v));
      for (const w of e.wire) wire.push(Buffer.from(w));
    } else if (e.type === 'data-end') {
      const all = Buffer.concat(data);
      const w = Buffer.concat(wire);
      assert.ok(!hasBareLf(all) && !hasBareLf(w), 'bare LF in DATA output');
      // What the after-filter smtpd makes of the wire is exactly what we scanned.
      const pf = postfixReadData(Buffer.concat([w, Buffer.from('.\r\n')]));
      assert.equal(pf.consumed, w.length + 3, 'the downstream would end DATA elsewhere');
      assert.ok(pf.content.equals(all), 'the downstream reads the wire differently from the view');
      ev.push(`data ${all.toString('hex')} wire ${w.toString('hex')}`);
      data = [];
      wire = [];
    } else ev.push(e.type);
  };
  for (const c of chunks) {
    r.push(c);
    for (let e = r.next(); e; e = r.next()) onEvent(e);
  }
  const rest = Buffer.concat(data);
  assert.ok(!hasBareLf(rest), 'bare LF in unfinished DATA output');
  if (rest.length) ev.push(`partial ${rest.toString('hex')}`);
  return ev;
}

/** SmtpReader: random command/DATA streams → no throw, chunk-invariant events, wire and view agree. */
export function smtpReaderProperty() {
  return fc.property(smtpStream, mutations, cuts, fc.constantFrom(16, 64, 4096), (stream, ms, cs, maxLine) => {
    count('smtp-reader');
    const input = mutate(stream, ms);
    assert.deepEqual(readAll(cutAt(input, cs), maxLine), readAll([input], maxLine));
  });
}

/**
 * DataDecoder: arbitrary bytes → no bare LF out, Postfix reads the wire as the view; and a
 * dot-stuffed message of CRLF lines goes on the wire byte for byte.
 */
export function smtpDataProperty() {
  const content = fc.array(fc.oneof(fc.constantFrom('.', '..', '\r', '\n', '\r\n', '.\r\n', 'a', ' '), fc.string({ maxLength: 8 })), { maxLength: 60 }).map((a) => a.join(''));
  return fc.property(content, cuts, (text, cs) => {
    count('smtp-data');
    const raw = b(text);
    const d1 = new DataDecoder();
    const view: Buffer[] = [];
    const wire: Buffer[] = [];
    for (const c of cutAt(raw, cs)) {
      const r = d1.decode(c);
      for (const v of r.view) view.push(Buffer.from(v));
      for (const w of r.wire) wire.push(Buffer.from(w));
      if (r.done) break;
    }
    assert.ok(!hasBareLf(Buffer.concat(view)) && !hasBareLf(Buffer.concat(wire)));
    // a message of CRLF lines (bare CRs inside lines kept), dot-stuffed and terminated, is forwarded unchanged
    const lines = text.split('\n').map((l) => l.replace(/\r+$/, ''));
    if (lines.at(-1) === '') lines.pop();
    const msg = lines.map((l) => l + '\r\n').join('');
    const stuffed = msg.replace(/(^|\n)\./g, '$1..');
    const d2 = new DataDecoder();
    const back: Buffer[] = [];
    const fwd: Buffer[] = [];
    let done = false;
    for (const c of cutAt(b(stuffed + '.\r\n'), cs)) {
      const r = d2.decode(c);
      for (const v of r.view) back.push(Buffer.from(v));
      for (const w of r.wire) fwd.push(Buffer.from(w));
      if (r.done) {
        done = true;
        break;
      }
    }
    assert.ok(done, 'terminator not seen');
    assert.equal(Buffer.concat(back).toString('latin1'), msg);
    assert.equal(Buffer.concat(fwd).toString('latin1'), stuffed);
  });
}

/** An in-process proxy: ProxySession on a loopback listener, stub engine, recording sink downstream. */
export interface ProxyRig {
  port: number;
  sink: Sink;
  bugs: string[];
  close(): Promise<void>;
}

export async function startProxyRig(sink: Sink): Promise<ProxyRig> {
  const bugs: string[] = [];
  const logger: Logger = { ...nullLogger, error: (event: string, f?: Record<string, unknown>) => void bugs.push(`${event} ${JSON.stringify(f)}`) };
  const trusted = new BlockList();
  trusted.addSubnet('127.0.0.0', 8, 'ipv4');
  const ctx: ProxyContext = Object.freeze({
    engine: createStubEngine(),
    logger,
    forward: { kind: 'tcp' as const, host: '127.0.0.1', port: sink.port },
    hostname: 'fuzz.test',
    trusted,
    addHeader: null,
    headerRemove: ['X-Midstream-Ticket', 'X-Virus-Status', 'X-Virus-Scanned'],
    headerRename: new Map<string, string>(),
    headers: DEFAULT_HEADER_SETTINGS,
    tickets: null,
    notifier: null,
    replyBudgetMs: 5000,
    idleTimeoutMs: 5000,
    maxLineBytes: 512,
  });
  const sessions = new Set<Promise<void>>();
  const server: Server = createServer((sock) => {
    const p = new ProxySession(sock, ctx, { id: 'fuzz', peer: sock.remoteAddress ?? 'unix' }).run();
    sessions.add(p);
    void p.finally(() => sessions.delete(p));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    sink,
    bugs,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Send the pieces, then ".", QUIT (ends DATA if open, then the session) without
 * half-closing (the proxy, like a client gone, drops the session at EOF); collect
 * everything the proxy says until it closes.
 */
async function converse(port: number, pieces: readonly Uint8Array[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`proxy did not close within 8 s; got ${Buffer.concat(got).toString('latin1').slice(-300)}`));
    }, 8000);
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    s.on('connect', async () => {
      for (const p of pieces) {
        if (!s.write(p)) await new Promise((r) => s.once('drain', r));
      }
      s.write(b('\r\n.\r\nQUIT\r\n'));
    });
  });
}

const SMTP_REPLY_LINE = /^[2-5]\d\d[ -][\x20-\x7e]*$/;

/** ProxySession: random command/DATA sessions → well-formed replies only, no bug logs, no bare LF delivered. */
export function proxyProperty(rig: ProxyRig) {
  const prefix = fc.constantFrom('', 'EHLO fuzz\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n', 'HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<c@d>\r\nDATA\r\n');
  return fc.asyncProperty(prefix, smtpStream, mutations, cuts, async (pre, stream, ms, cs) => {
    count('smtp-proxy');
    const input = mutate(concat([b(pre), stream]), ms);
    const before = rig.sink.messages.length;
    const out = await converse(rig.port, cutAt(input, cs));
    const text = out.toString('latin1');
    assert.ok(text.endsWith('\r\n'), `reply stream cut: ${JSON.stringify(text.slice(-80))}`);
    for (const line of text.slice(0, -2).split('\r\n')) assert.match(line, SMTP_REPLY_LINE);
    assert.ok(!hasBareCrLf(out), 'bare CR/LF in replies');
    for (const m of rig.sink.messages.slice(before)) {
      count('smtp-proxy:delivered');
      if (m.data) assert.ok(!hasBareLf(m.data), 'bare LF delivered downstream');
    }
    if (text.includes('\r\n354 ')) count('smtp-proxy:data');
    assert.deepEqual(rig.bugs, []);
  });
}
