/**
 * The release gate's promise, checked against independent decoders: whatever the
 * chunking, the raw prefix a front may deliver (`gate.releasable`) never lets a client
 * decode the infected bytes — through base64 (with junk between the characters),
 * quoted-printable with soft breaks everywhere, zip (stored and deflated), gzip, an
 * attached message, uuencode — and a file named by a hash signature is never delivered
 * whole. The oracle is not our code: Node's base64 and zlib (inflate with sync flush,
 * so it yields everything a prefix allows), and a QP/uu decoder written here.
 * Clean messages are released completely once the scan has ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as Z, gzipSync, inflateRawSync, gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createEngine, type Engine } from '../../src/core/index.js';
import { EICAR_BYTES, pseudoRandom, zip } from '../helpers/mail-build.js';
import { TMP_BASE } from '../helpers/paths.js';

type Enc = '7bit' | 'base64' | 'base64-junk' | 'qp';
type Wrap = 'none' | 'zip-stored' | 'zip-deflate' | 'gzip';

interface Case {
  msg: Buffer;
  /** Member/file bytes a client can decode from the raw prefix [0, n). */
  decodable(n: number): number;
  /** The offset in the file (member) where the evidence begins; a prefix may yield at most this many bytes. */
  evidenceAt: number;
  /** Raw offsets of the attachment's (encoded) body. */
  bodyStart: number;
  bodyEnd: number;
}

function words(n: number, seed: number): Buffer {
  const w = ['alpha', 'beta', 'gamma', 'delta', 'mail', 'stream', 'filter', 'report'];
  let s = '';
  let x = seed || 1;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += w[x % w.length] + (x % 11 === 0 ? '\r\n' : ' ');
  }
  return Buffer.from(s.slice(0, n), 'latin1');
}

const B64 = /[A-Za-z0-9+/]/;

function encode(data: Buffer, enc: Enc, seed: number): string {
  if (enc === '7bit') return data.toString('latin1');
  if (enc === 'qp') {
    // Soft line breaks after a third of the characters: the encoded span grows, unevenly.
    let out = '';
    let x = seed || 1;
    for (const b of data) {
      const c = b === 0x3d || b < 0x20 || b > 0x7e ? '=' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
      out += c;
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      if (x % 3 === 0) out += '=\r\n';
    }
    return out;
  }
  const s = data.toString('base64');
  let out = '';
  let x = seed || 1;
  for (let i = 0; i < s.length; i++) {
    out += s[i];
    if (enc === 'base64-junk') {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      // whitespace and non-alphabet junk, sometimes a lot of it, between the characters
      if (x % 5 === 0) out += ' *'.repeat(1 + (x % 40));
    }
    if ((i + 1) % 76 === 0) out += '\r\n';
  }
  return out;
}

function decodePrefix(text: string, enc: Enc): Buffer {
  if (enc === '7bit') return Buffer.from(text, 'latin1');
  if (enc === 'qp') {
    const out: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c !== '=') {
        out.push(c.charCodeAt(0));
        continue;
      }
      if (text[i + 1] === '\r' && text[i + 2] === '\n') {
        i += 2;
        continue;
      }
      const h = text.slice(i + 1, i + 3);
      if (/^[0-9A-F]{2}$/.test(h)) {
        out.push(parseInt(h, 16));
        i += 2;
      } else out.push(0x3d); // a lenient reader keeps a cut escape literally
    }
    return Buffer.from(out);
  }
  const chars = [...text].filter((c) => B64.test(c)).join('');
  return Buffer.from(chars, 'base64'); // decodes partial quanta too: an eager reader
}

function unwrap(decoded: Buffer, wrap: Wrap): number {
  if (wrap === 'none') return decoded.length;
  if (wrap === 'gzip') {
    if (decoded.length < 10) return 0;
    try {
      return gunzipSync(decoded, { finishFlush: Z.Z_SYNC_FLUSH }).length;
    } catch {
      return 0;
    }
  }
  if (decoded.length < 30) return 0;
  const dataAt = 30 + decoded.readUInt16LE(26) + decoded.readUInt16LE(28);
  if (decoded.length <= dataAt) return 0;
  const data = decoded.subarray(dataAt);
  if (wrap === 'zip-stored') return data.length;
  try {
    return inflateRawSync(data, { finishFlush: Z.Z_SYNC_FLUSH }).length;
  } catch {
    return 0;
  }
}

/** A message whose attachment holds `file` (evidence at `evidenceAt`), encoded and wrapped as asked. */
function build(file: Buffer, evidenceAt: number, enc: Enc, wrap: Wrap, nested: boolean, seed: number, before: number): Case {
  const name = 'member.bin';
  const payload = wrap === 'none' ? file : wrap === 'gzip' ? gzipSync(file) : Buffer.from(zip({ [name]: file }, wrap === 'zip-deflate' ? 6 : 0));
  const cte = enc === 'qp' ? 'quoted-printable' : enc === 'base64-junk' ? 'base64' : enc;
  const text = words(before, seed);
  const head =
    'Content-Type: application/octet-stream; name="att.bin"\r\n' +
    `Content-Transfer-Encoding: ${cte}\r\n\r\n`;
  const partPrefix = `--inner\r\nContent-Type: text/plain\r\n\r\n${text.toString('latin1')}\r\n--inner\r\n` + head;
  const body = encode(payload, enc, seed);
  const partSuffix = '\r\n--inner--\r\n';
  let msgText: string;
  let bodyStart: number;
  const top = 'From: a@example.com\r\nTo: b@example.net\r\nSubject: gate\r\n';
  if (nested) {
    const inner = 'Subject: attached\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n' + partPrefix + body + partSuffix;
    const outerHead = top + 'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n';
    msgText = outerHead + inner + '\r\n--outer--\r\n';
    bodyStart = outerHead.length + inner.indexOf(head) + head.length;
  } else {
    const h = top + 'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n';
    msgText = h + partPrefix + body + partSuffix;
    bodyStart = h.length + partPrefix.length;
  }
  const msg = Buffer.from(msgText, 'latin1');
  const bodyEnd = bodyStart + body.length;
  return {
    msg,
    evidenceAt,
    bodyStart,
    bodyEnd,
    decodable(n) {
      if (n <= bodyStart) return 0;
      const t = msg.subarray(bodyStart, Math.min(n, bodyEnd)).toString('latin1');
      return unwrap(decodePrefix(t, enc), wrap);
    },
  };
}

async function run(engine: Engine, msg: Buffer, sizes: number[]): Promise<{ kind: string; released: number; afterEnd: number }> {
  const s = engine.begin();
  let i = 0;
  let k = 0;
  let released = 0;
  while (i < msg.length) {
    const n = sizes[k++ % sizes.length]!;
    await s.push(msg.subarray(i, i + n));
    i += n;
    // A front reads the gate after every push, as the POP3 relay does.
    released = Math.max(released, s.gate.releasable);
    if (s.verdict) break;
  }
  const v = await s.end();
  return { kind: v.kind, released: Math.max(released, s.gate.releasable), afterEnd: s.gate.releasable };
}

const chunking = fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 17, max: 30_000 })), { minLength: 1, maxLength: 12 });

test('a detected signature is never deliverable: every encoding, archive, nesting and chunking', async () => {
  const engine = await createEngine();
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Enc>('7bit', 'base64', 'base64-junk', 'qp'),
      fc.constantFrom<Wrap>('none', 'zip-stored', 'zip-deflate', 'gzip'),
      fc.boolean(),
      fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 60_000, max: 200_000 })),
      fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 1, max: 1 << 30 }),
      chunking,
      async (enc, wrap, nested, pre, post, seed, sizes) => {
        // 7bit and QP carry text; base64 carries binary filler (a mix, so deflate works)
        const filler = (n: number, sd: number) => (enc === '7bit' || enc === 'qp' ? words(n, sd) : Buffer.concat([words(n >> 1, sd), Buffer.from(pseudoRandom(n - (n >> 1), sd))]));
        const file = Buffer.concat([filler(pre, seed), EICAR_BYTES, filler(post, seed + 1)]);
        const c = build(file, pre, enc, wrap, nested, seed, 200);
        const r = await run(engine, c.msg, sizes);
        assert.equal(r.kind, 'infected', `${enc}/${wrap}${nested ? '/nested' : ''}: EICAR must be found`);
        const got = c.decodable(r.released);
        assert.ok(got <= c.evidenceAt, `${enc}/${wrap}${nested ? '/nested' : ''}: released ${r.released} of ${c.msg.length} raw bytes yield ${got} file bytes; EICAR starts at ${c.evidenceAt}`);
      },
    ),
    { numRuns: 120, seed: 0x5eed },
  );
});

test('byte by byte around the longest signature: the gate never runs ahead of a decoder holding a partial quantum', async () => {
  // A checkpoint at every raw offset lets the gate pick exactly the positions where the
  // base64 decoder holds 2-3 sextets; with a signature as long as the engine's reach there
  // is no margin left, so only the decoder slack keeps those bytes back.
  const dir = mkdtempSync(join(TMP_BASE, 'gate-'));
  try {
    for (const L of [69, 70]) {
      const sig = Buffer.alloc(L);
      for (let i = 0; i < L; i++) sig[i] = 0x41 + ((i * 7) % 26);
      writeFileSync(join(dir, 's.ndb'), `Long.Test:0:*:${sig.toString('hex')}\n`);
      const engine = await createEngine({ signatures: [join(dir, 's.ndb')] });
      for (const pre of [1500, 1501, 1502]) {
        for (const enc of ['base64', 'qp', '7bit'] as Enc[]) {
          const file = Buffer.concat([words(pre, 3), sig, words(300, 4)]);
          const c = build(file, pre, enc, 'none', false, 11, 50);
          const r = await run(engine, c.msg, [1]);
          assert.equal(r.kind, 'infected');
          const got = c.decodable(r.released);
          assert.ok(got <= pre, `L=${L} ${enc} pre=${pre}: ${got} file bytes deliverable, signature at ${pre}`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a verdict that is not accepted stops the gate too (infected → tempfail by policy)', async () => {
  const engine = await createEngine({ actions: { infected: 'tempfail' } });
  for (const enc of ['base64', '7bit'] as Enc[]) {
    const file = Buffer.concat([words(5000, 3), EICAR_BYTES, words(200_000, 4)]);
    const c = build(file, 5000, enc, 'none', false, 11, 50);
    for (const sizes of [[4096], [1 << 20]]) {
      const r = await run(engine, c.msg, sizes);
      assert.equal(r.kind, 'infected');
      assert.ok(c.decodable(r.released) <= 5000, `${enc} ${sizes}: released past the signature while its verdict was pending`);
      assert.ok(r.afterEnd <= r.released + 0, 'and it stays there after the end');
    }
  }
});

test('clean messages are released completely once scanned, and the gate moves while they stream', async () => {
  const engine = await createEngine();
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Enc>('7bit', 'base64', 'base64-junk', 'qp'),
      fc.constantFrom<Wrap>('none', 'zip-deflate', 'gzip'),
      fc.boolean(),
      fc.integer({ min: 0, max: 150_000 }),
      fc.integer({ min: 1, max: 1 << 30 }),
      chunking,
      async (enc, wrap, nested, n, seed, sizes) => {
        const file = enc === '7bit' || enc === 'qp' ? words(n, seed) : Buffer.from(pseudoRandom(n, seed));
        const c = build(file, 0, enc, wrap, nested, seed, 500);
        const r = await run(engine, c.msg, sizes);
        assert.equal(r.kind, 'clean');
        assert.equal(r.afterEnd, c.msg.length, 'everything is releasable after a clean end');
      },
    ),
    { numRuns: 60, seed: 0xc1ea },
  );
  // And the gate does not wait for the end: a large base64 file is released while it streams,
  // all but the held tail (64 KiB of zip end record a client could still need, in base64).
  const big = build(Buffer.from(pseudoRandom(600_000, 7)), 0, 'base64', 'none', false, 7, 100);
  const s = engine.begin();
  const upTo = big.msg.length - 50_000;
  for (let i = 0; i < upTo; i += 8192) await s.push(big.msg.subarray(i, Math.min(upTo, i + 8192)));
  const mid = s.gate.releasable;
  assert.ok(mid > upTo - 100_000 && mid < upTo, `released ${mid} of ${upTo} pushed (${big.msg.length} in all)`);
  await s.end();
});

test('a file named by a hash signature is never released whole before its verdict', async () => {
  const dir = mkdtempSync(join(TMP_BASE, 'gate-'));
  try {
    const files = [Buffer.from(pseudoRandom(700, 3)), Buffer.from(pseudoRandom(90_000, 4))];
    writeFileSync(join(dir, 'h.hdb'), files.map((f, i) => `${createHash('md5').update(f).digest('hex')}:${f.length}:Hash.Test.${i}`).join('\n') + '\n');
    const engine = await createEngine({ signatures: [join(dir, 'h.hdb')] });
    for (const f of files) {
      for (const enc of ['7bit', 'base64', 'qp'] as Enc[]) {
        const c = build(f, f.length - 1, enc, 'none', false, 5, 100);
        // Pushes that end exactly at the file's last byte (or one off) are the dangerous ones:
        // the file is complete but its end (the delimiter) not yet seen.
        const at = [c.bodyEnd - 1, c.bodyEnd, c.bodyEnd + 1].map((n) => [n, 1 << 20]);
        for (const sizes of [[1], [333], [4096, 7], [1 << 20], ...at]) {
          if (sizes[0] === 1 && f.length > 1000) continue;
          const r = await run(engine, c.msg, sizes);
          assert.equal(r.kind, 'infected');
          const got = c.decodable(r.released);
          assert.ok(got < f.length, `${enc} ${sizes}: ${got} of ${f.length} bytes deliverable`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a zip's end record is held until the zip has been read to its end (also a zip behind other data)", async () => {
  const engine = await createEngine();
  const z = Buffer.from(zip({ 'a.txt': words(20_000, 1), 'b.bin': pseudoRandom(200_000, 2) }));
  // The last one is not a zip at all: a zip could still be found from its end (clients
  // search for the end record), so every file keeps its last ZIP_TAIL bytes until it ends.
  for (const file of [z, Buffer.concat([Buffer.from('%PDF-1.4 ' + 'x'.repeat(5000)), z]), Buffer.from(pseudoRandom(200_000, 5))]) {
    for (const enc of ['base64', '7bit'] as Enc[]) {
      const c = build(file, 0, enc, 'none', false, 3, 100);
      for (const size of [8192]) {
        const s = engine.begin();
        let released = 0;
        // everything but the closing delimiter: the file is complete, its end not yet seen
        for (let i = 0; i < c.bodyEnd; i += size) {
          await s.push(c.msg.subarray(i, Math.min(c.bodyEnd, i + size)));
          released = Math.max(released, s.gate.releasable);
        }
        const got = c.decodable(released);
        assert.ok(got > 0 && got <= file.length - 65_557, `${enc} ${size}: ${got} of ${file.length} bytes deliverable before the end`);
        await s.push(c.msg.subarray(c.bodyEnd));
        assert.equal((await s.end()).kind, 'clean');
        assert.equal(s.gate.releasable, c.msg.length);
      }
    }
  }
});

test('a uuencoded file in a text part is held until it has been scanned', async () => {
  const engine = await createEngine();
  const data = Buffer.concat([words(3000, 9), EICAR_BYTES, words(100, 10)]);
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += 45) {
    const chunk = data.subarray(i, i + 45);
    let l = String.fromCharCode(0x20 + chunk.length);
    for (let k = 0; k < chunk.length; k += 3) {
      const a = chunk[k]!, b = chunk[k + 1] ?? 0, c = chunk[k + 2] ?? 0;
      for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) l += String.fromCharCode(v === 0 ? 0x60 : 0x20 + v);
    }
    lines.push(l);
  }
  const text = `Hello\r\n\r\nbegin 644 e.txt\r\n${lines.join('\r\n')}\r\n\`\r\nend\r\nbye\r\n`;
  const msg = Buffer.from(`Subject: uu\r\nContent-Type: text/plain\r\n\r\n${text}`, 'latin1');
  const beginAt = msg.indexOf('begin 644');
  for (const size of [1, 100, 5000, msg.length]) {
    const r = await run(engine, msg, [size]);
    assert.equal(r.kind, 'infected');
    // The whole text part is one file too (EICAR is not in its text form), so only the uu
    // block's hold keeps the release before the block: nothing of the uu data goes out.
    assert.ok(r.released <= beginAt + 'begin 644 e.txt\r\n'.length, `released ${r.released}, uu block at ${beginAt}`);
  }
});
