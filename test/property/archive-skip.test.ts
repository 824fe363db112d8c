/**
 * Archive-level skipping changes no verdict. For random zip, gzip, tar and tar.gz archives
 * with a signature planted in a random place — inside a member (deflated, stored, with or
 * without data descriptors), in the structure no member reads (local and central extra
 * fields, gzip FEXTRA/FNAME/FCOMMENT, tar header fields and padding, pax records, data
 * between zip records, the zip comment) or after the archive's end — the verdict of the
 * built-in engine, which skips what the members read, equals that of the same engine
 * reading every byte (ReadsEverything), whole and at random chunkings; also when an
 * unpacked-bytes limit stops the unpacker somewhere. The reference must find the plant
 * (the case is real), and only where a detection was found may differ (a member or the
 * archive itself, whichever reads the bytes first).
 *
 * And for a signature written over random bytes of such an archive — straddling records,
 * inside compressed data, damaging it — the verdict with skipping does not depend on the
 * chunking (the skipped set is a function of the bytes alone), and it never finds what
 * the reference does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createEngine, type Verdict } from '../../src/core/index.js';
import { MessageSession } from '../../src/core/session.js';
import { BuiltinScanner } from '../../src/core/scan/builtin-scanner.js';
import type { Scanner } from '../../src/core/scan/scanner.js';
import { SignatureDb, EICAR_NAME } from '../../src/core/scan/sigs/signature-db.js';
import { crc32 } from '../../src/core/unpack/crc32.js';
import { EICAR_BYTES, multipartMessage } from '../helpers/mail-build.js';
import { ReadsEverything } from '../helpers/reads-everything.js';
import { ZipWriter, buildTar, cutAt, paxMember, pseudoRandom, type TarSpec } from '../helpers/unpack-harness.js';

const MARK = Buffer.from('<<floating-test-mark:7f3e>>');
const GAP_A = Buffer.from('{{gap-sig-head}}');
const GAP_B = Buffer.from('{{gap-sig-tail}}');
const SIGS = [
  { name: EICAR_NAME, bytes: (_f: number) => EICAR_BYTES },
  { name: 'Test.Floating.Mark', bytes: (_f: number) => MARK },
  // Two segments with a bounded gap, planted with 0–40 filler bytes between them.
  { name: 'Test.Gap', bytes: (f: number) => Buffer.concat([GAP_A, Buffer.alloc(Math.floor(f * 40), 0x2e), GAP_B]) },
];
const db = SignatureDb.fromSources([
  { kind: 'ndb', label: 't.ndb', text: `Test.Floating.Mark:0:*:${MARK.toString('hex')}\nTest.Gap:0:*:${GAP_A.toString('hex')}{0-40}${GAP_B.toString('hex')}\n` },
]);
const skipping = new BuiltinScanner(db);
const reference = new ReadsEverything(skipping);
const policyP = createEngine({}).then((e) => e.policy);

async function scan(att: Uint8Array, sc: Scanner, cuts: number[], unpackedBytes?: number): Promise<Verdict> {
  const base = await policyP;
  const policy = unpackedBytes === undefined ? base : { ...base, limits: { ...base.limits, unpackedBytes } };
  const s = new MessageSession(policy, [sc]);
  const msg = multipartMessage([{ filename: 'a.bin', content: att }]);
  for (const c of cutAt(msg, cuts.map((x) => x % msg.length))) await s.push(c);
  return s.end();
}
/** The verdict without where-paths: a member or the archive may be first to read the same bytes. */
const norm = (v: Verdict): string => JSON.stringify({ ...v, where: undefined });

// ------------------------------------------------------------------- archives

const METHODS = ['deflate', 'deflate-signed', 'deflate-unsigned', 'stored', 'stored-signed', 'stored-level0'] as const;
type Method = (typeof METHODS)[number];
const FORMATS = ['zip', 'gzip', 'tar', 'tgz'] as const;
const REGIONS = ['content', 'header', 'between', 'after', 'other'] as const;

interface Plan {
  format: (typeof FORMATS)[number];
  members: { size: number; text: boolean; method: Method }[];
  region: (typeof REGIONS)[number];
  /** Which member / field the plant goes to, and where inside it (0–1). */
  pick: number;
  frac: number;
  sig: number;
  seed: number;
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  format: fc.constantFrom(...FORMATS),
  members: fc.array(fc.record({ size: fc.integer({ min: 0, max: 30_000 }), text: fc.boolean(), method: fc.constantFrom(...METHODS) }), { minLength: 1, maxLength: 4 }),
  region: fc.constantFrom(...REGIONS),
  pick: fc.nat(),
  frac: fc.double({ min: 0, max: 1, noNaN: true }),
  sig: fc.nat({ max: SIGS.length - 1 }),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

const content = (p: Plan, i: number): Buffer => Buffer.from(pseudoRandom(p.members[i]!.size, p.seed + i, p.members[i]!.text));
const insert = (b: Uint8Array, at: number, x: Uint8Array): Buffer => Buffer.concat([b.subarray(0, at), x, b.subarray(at)]);
const extraField = (x: Uint8Array) => Buffer.concat([Buffer.from([0x99, 0x99, x.length & 0xff, x.length >> 8]), x]);

/** The archive with the plant where the plan says (none when `plant` is empty). */
function build(p: Plan, plant: Uint8Array = SIGS[p.sig]!.bytes(p.frac)): Uint8Array {
  if (plant.length === 0) p = { ...p, region: 'content' };
  const n = p.members.length;
  const target = p.pick % n;
  const datas = p.members.map((_, i) => {
    const d = content(p, i);
    return p.region === 'content' && i === target ? insert(d, Math.floor(p.frac * d.length), plant) : d;
  });
  switch (p.format) {
    case 'zip': {
      const w = new ZipWriter();
      datas.forEach((data, i) => {
        const m = p.members[i]!.method;
        if (p.region === 'between' && i === target && i > 0) w.raw(Buffer.concat([Buffer.from('padding '), plant, Buffer.from(' padding')]));
        const desc = m.endsWith('signed') ? (m.includes('unsigned') ? 'unsigned' : 'signed') : 'none';
        const stored = m.startsWith('stored');
        w.entry({
          name: `m${i}.bin`,
          data,
          method: stored && m !== 'stored-level0' ? 0 : 8,
          ...(m === 'stored-level0' ? { compressed: deflateRawSync(data, { level: 0 }) } : {}),
          descriptor: desc,
          ...(p.region === 'header' && i === target ? { extra: extraField(plant) } : {}),
          ...(p.region === 'other' && i === target ? { cd: { extra: extraField(plant) } } : {}),
        });
      });
      const comment = p.region === 'between' && target === 0 ? Buffer.concat([Buffer.from('comment '), plant]) : undefined;
      const z = w.finish(comment ? { comment } : {});
      return p.region === 'after' ? Buffer.concat([z, Buffer.from('\r\n'), plant]) : z;
    }
    case 'gzip': {
      const members = datas.map((data, i) => {
        const here = i === target;
        const field = here && p.region === 'header' ? ['extra', 'name', 'comment'][Math.min(2, Math.floor(p.frac * 3))] : null;
        const flg = (field === 'extra' ? 4 : 0) | (field === 'name' || (here && p.region === 'other') ? 8 : 0) | (field === 'comment' ? 16 : 0);
        const parts: Uint8Array[] = [Buffer.from([0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 3])];
        if (field === 'extra') parts.push(Buffer.from([plant.length & 0xff, plant.length >> 8]), plant);
        if (flg & 8) parts.push(Buffer.from(`n${i}.`), plant, Buffer.from([0]));
        if (field === 'comment') parts.push(plant, Buffer.from([0]));
        const crc = Buffer.alloc(8);
        crc.writeUInt32LE(crc32(data), 0);
        crc.writeUInt32LE(data.length, 4);
        parts.push(deflateRawSync(data, { level: p.members[i]!.method === 'stored-level0' ? 0 : 6 }), crc);
        return Buffer.concat(parts);
      });
      const g = Buffer.concat(members);
      // After the end: zero padding is allowed, anything else is corrupt (read in full either way).
      return p.region === 'after' || p.region === 'between' ? Buffer.concat([g, p.region === 'between' ? Buffer.alloc(40) : Buffer.alloc(0), plant]) : g;
    }
    case 'tar':
    case 'tgz': {
      const specs: TarSpec[] = [];
      datas.forEach((data, i) => {
        const here = i === target;
        if (here && p.region === 'other') specs.push(paxMember({ comment: `note ${Buffer.from(plant).toString('latin1')}` }));
        specs.push({ name: here && p.region === 'header' ? `h/${Buffer.from(plant).toString('latin1')}` : `m${i}.bin`, data });
      });
      let t: Uint8Array = buildTar(specs);
      let after = p.region === 'after';
      if (p.region === 'between') {
        after = true; // unless the padding is long enough:
        // Over the zero padding after the target member's data (tar readers ignore it), if it is long enough.
        let at = 0;
        for (let i = 0; i < specs.length; i++) {
          const len = specs[i]!.data?.length ?? 0;
          at += 512 + len;
          const pad = (512 - (len % 512)) % 512;
          if (specs[i]!.name === `m${target}.bin` && pad >= plant.length) {
            t = Buffer.from(t);
            t.set(plant, at);
            after = false;
            break;
          }
          at += pad;
        }
      }
      if (after) t = Buffer.concat([t, plant, Buffer.alloc(512 - plant.length)]);
      return p.format === 'tgz' ? gzipSync(t) : t;
    }
  }
}

const cutsArb = fc.array(fc.integer({ min: 1, max: 200_000 }), { maxLength: 14 });

test('the verdict with skipping equals the verdict reading every byte (plants wholly in one place)', async () => {
  await fc.assert(
    fc.asyncProperty(planArb, cutsArb, async (plan, cuts) => {
      const att = build(plan);
      const ref = await scan(att, reference, []);
      assert.equal(ref.kind === 'infected' && ref.name, SIGS[plan.sig]!.name, `the reference must find the plant: ${JSON.stringify(ref)}`);
      assert.equal(norm(await scan(att, skipping, [])), norm(ref), 'whole');
      assert.equal(norm(await scan(att, skipping, cuts)), norm(ref), `cuts ${JSON.stringify(cuts)}`);
    }),
    { numRuns: 70 },
  );
});

test('also when an unpacked-bytes limit stops the unpacker (plants outside the members)', async () => {
  // Whatever follows the slice that tripped the limit is read as it is, in either run. (A
  // plant in a member's content could straddle the point where the limit cut its output:
  // the member sees a prefix, and its start was skipped at the archive level.)
  await fc.assert(
    fc.asyncProperty(planArb, fc.double({ min: 0, max: 1, noNaN: true }), cutsArb, async (plan, limitAt, cuts) => {
      if (plan.region === 'content') plan = { ...plan, region: 'header' };
      const att = build(plan);
      const total = plan.members.reduce((n, m) => n + m.size, 0);
      const limit = 1 + Math.floor(limitAt * total);
      const ref = norm(await scan(att, reference, [], limit));
      assert.equal(norm(await scan(att, skipping, [], limit)), ref, 'whole');
      assert.equal(norm(await scan(att, skipping, cuts, limit)), ref, `cuts ${JSON.stringify(cuts)}`);
    }),
    { numRuns: 40 },
  );
});

test('a signature over random bytes: chunking changes nothing, and skipping never finds more', async () => {
  await fc.assert(
    fc.asyncProperty(planArb, fc.double({ min: 0, max: 1, noNaN: true }), cutsArb, async (plan, where, cuts) => {
      const clean = build(plan, new Uint8Array(0));
      const at = Math.floor(where * Math.max(0, clean.length - MARK.length));
      const att = Buffer.from(clean);
      att.set(MARK.subarray(0, att.length - at), at); // (cut short over a tiny archive)
      const whole = norm(await scan(att, skipping, []));
      assert.equal(norm(await scan(att, skipping, cuts)), whole, `cuts ${JSON.stringify(cuts)}`);
      const ref = await scan(att, reference, []);
      if (JSON.parse(whole).kind === 'infected') assert.equal(ref.kind, 'infected', `skipping found ${whole}, the reference ${JSON.stringify(ref)}`);
    }),
    { numRuns: 40 },
  );
});
