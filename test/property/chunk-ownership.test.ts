/**
 * The chunk-ownership rule (src/core/chunk-ownership.ts), end to end: decoders and the
 * inflater write into scratch buffers they reuse, so every consumer must copy what it
 * keeps. With `ownership.poison` on, a returned scratch buffer is overwritten at once, so
 * any consumer that kept a reference against the rule (matcher carry, FileNode head,
 * unpacker staging and tails, MIME splitter carry, uuencode lines, scanner streams) reads
 * garbage — and the bytes every file delivers, and the verdicts, would change.
 *
 * Checked over random messages (base64 / quoted-printable / uuencoded / nested
 * message/rfc822 parts, gzip / zip / tar / tar.gz archives, EICAR somewhere or nowhere) at
 * random chunkings: poisoned and clean runs give identical per-file digests and verdicts,
 * and a scanner that declares keepsChunks and keeps every chunk by reference still holds
 * exactly the bytes it was given at the end. A scanner that keeps references without
 * declaring it does see them change — the reuse is real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createEngine } from '../../src/core/index.js';
import { MessageSession } from '../../src/core/session.js';
import { ownership } from '../../src/core/chunk-ownership.js';
import type { Scanner, ScanStream } from '../../src/core/scan/scanner.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import type { FileInfo, ScanResult } from '../../src/core/types.js';
import { EICAR, multipartMessage, pseudoRandom, zip, type Attachment } from '../helpers/mail-build.js';
import { buildTar, cutAt } from '../helpers/unpack-harness.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** Records per file: the digest of the bytes as they were written (copied into the hash at once). */
class Recorder implements Scanner {
  readonly name = 'recorder';
  readonly mode = 'per-file' as const;
  files: string[] = [];
  open(file: FileInfo): ScanStream {
    const h = createHash('sha256');
    let n = 0;
    const files = this.files;
    return {
      write(chunk: Uint8Array): ScanResult | null {
        h.update(chunk);
        n += chunk.length;
        return null;
      },
      needsDrain: false,
      drain: () => Promise.resolve(),
      end(): ScanResult {
        files.push(`${file.where} ${n} ${h.digest('hex').slice(0, 16)}`);
        return { kind: 'clean' };
      },
      abort() {},
    };
  }
}

/** Keeps every chunk by reference and digests them only at end(). */
class Keeper implements Scanner {
  readonly name = 'keeper';
  readonly mode = 'per-file' as const;
  files: string[] = [];
  constructor(readonly keepsChunks: boolean) {}
  open(file: FileInfo): ScanStream {
    const kept: Uint8Array[] = [];
    const files = this.files;
    return {
      write(chunk: Uint8Array): ScanResult | null {
        kept.push(chunk);
        return null;
      },
      needsDrain: false,
      drain: () => Promise.resolve(),
      end(): ScanResult {
        const all = Buffer.concat(kept);
        files.push(`${file.where} ${all.length} ${sha(all)}`);
        return { kind: 'clean' };
      },
      abort() {},
    };
  }
}

const enginePromise = createEngine({});
const builtin = new BuiltinScanner(SignatureDb.builtin());

async function run(msg: Uint8Array, chunks: Uint8Array[], poison: boolean, keeperDeclares = true) {
  const engine = await enginePromise;
  const rec = new Recorder();
  const keep = new Keeper(keeperDeclares);
  const s = new MessageSession(engine.policy, [builtin, rec, keep]);
  ownership.poison = poison;
  try {
    for (const c of chunks) await s.push(c);
    const v = await s.end();
    return { verdict: JSON.stringify(v), rec: rec.files.sort(), keep: keep.files.sort(), size: msg.length };
  } finally {
    ownership.poison = false;
  }
}


function uuencode(name: string, data: Uint8Array): string {
  const lines = [`begin 644 ${name}`];
  for (let i = 0; i < data.length; i += 45) {
    const part = data.subarray(i, i + 45);
    let s = String.fromCharCode(32 + part.length);
    for (let k = 0; k < part.length; k += 3) {
      const a = part[k]!, b = part[k + 1] ?? 0, c = part[k + 2] ?? 0;
      for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) s += String.fromCharCode(v === 0 ? 96 : v + 32);
    }
    lines.push(s);
  }
  return lines.concat(['`', 'end', '']).join('\r\n');
}

/** One attachment of a given kind; `payload` may carry EICAR. */
function attachment(kind: number, payload: Uint8Array, i: number): Attachment {
  switch (kind) {
    case 0:
      return { filename: `f${i}.bin`, content: payload };
    case 1:
      return { filename: `f${i}.gz`, content: gzipSync(payload) };
    case 2:
      return { filename: `f${i}.zip`, content: zip({ 'a.txt': payload, 'b/stored.bin': payload.subarray(0, 3000) }, i % 2 ? 0 : 6) };
    case 3:
      return { filename: `f${i}.tgz`, content: gzipSync(buildTar([{ name: 'x.bin', data: payload }, { name: 'y', data: payload.subarray(100, 900) }])) };
    case 4:
      return { filename: `f${i}.txt`, contentType: 'text/plain', encoding: 'quoted-printable', content: Buffer.from(payload).toString('latin1').replace(/[^ -<>-~]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).replace(/.{70}/g, '$&=\r\n') };
    case 5:
      return { contentType: 'text/plain', encoding: '7bit', content: `see below\r\n${uuencode(`u${i}.bin`, payload)}` };
    default: {
      const inner = multipartMessage([{ filename: `inner${i}.bin`, content: payload }, { filename: `inner${i}.gz`, content: gzipSync(payload) }]);
      return { filename: `m${i}.eml`, contentType: 'message/rfc822', content: inner };
    }
  }
}

const messageArb = fc
  .record({
    kinds: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }),
    sizes: fc.array(fc.integer({ min: 0, max: 150_000 }), { minLength: 4, maxLength: 4 }),
    eicarAt: fc.option(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 1, noNaN: true })), { nil: undefined }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map(({ kinds, sizes, eicarAt, seed }) => {
    const atts = kinds.map((k, i) => {
      const payload = pseudoRandom(sizes[i]!, seed + i);
      // Text-like payloads compress, so inflate output spans several scratch buffers.
      for (let j = 0; j < payload.length; j++) if (j % 5) payload[j] = 0x61 + (payload[j]! % 6);
      if (eicarAt && eicarAt[0] === i && payload.length > EICAR.length) {
        payload.set(Buffer.from(EICAR, 'latin1'), Math.floor(eicarAt[1] * (payload.length - EICAR.length)));
      }
      return attachment(k, payload, i);
    });
    return multipartMessage(atts, { boundary: `b${seed}` });
  });

test('poisoned scratch buffers change nothing: every consumer copies what it keeps', async () => {
  await fc.assert(
    fc.asyncProperty(messageArb, fc.array(fc.integer({ min: 1, max: 400_000 }), { maxLength: 12 }), async (msg, cuts) => {
      const ref = await run(msg, [msg], false);
      const poisoned = await run(msg, cutAt(msg, cuts.map((c) => c % msg.length)), true);
      assert.deepEqual(poisoned, ref);
      assert.deepEqual(ref.keep, ref.rec, 'a declared keeper holds exactly the bytes it was given');
      assert.ok(ref.rec.length >= 2);
    }),
    { numRuns: 25 },
  );
});

test('a scanner that keeps references without declaring keepsChunks sees them overwritten', async () => {
  // 300 KB of base64: several scratch buffers' worth, so reuse is certain.
  const msg = multipartMessage([{ filename: 'big.bin', content: pseudoRandom(300_000, 9) }]);
  const ok = await run(msg, [msg], true, true);
  const bad = await run(msg, [msg], true, false);
  const big = (files: string[]) => files.find((f) => f.includes('big.bin'));
  assert.equal(big(ok.keep), big(ok.rec));
  assert.notEqual(big(bad.keep), big(bad.rec));
});
