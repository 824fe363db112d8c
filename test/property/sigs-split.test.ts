/**
 * sigs-split.test.ts — the streaming proof for the built-in matcher.
 *
 * For a set of signatures covering every supported syntax element, random inputs
 * (biased towards the signature's own bytes, sometimes with a planted instance) are
 * fed whole, byte by byte, split at EVERY offset, and split randomly into several
 * chunks. An independent oracle (a JS RegExp built from the signature text by the
 * tiny translator below, not by the engine's parser) gives the earliest end position
 * of any match; the matcher must report from exactly the write() that delivers that
 * byte, never before, and EOF-anchored signatures must be decided identically at end().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SignatureDb } from '../../src/core/scan/sigs/signature-db.js';
import { PatternSetBuilder, type Matcher } from '../../src/core/scan/sigs/matcher.js';
import { parseNdbLine } from '../../src/core/scan/sigs/ndb-parse.js';

// ---------------------------------------------------------------- oracle ----
type Tok =
  | { t: 'byte'; re: string; gen: (r: () => number) => number[]; vals: number[] }
  | { t: 'gap'; min: number; max: number };

const hx = (b: number) => '\\x' + b.toString(16).padStart(2, '0');
const rint = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function byteTok(p: string): { re: string; gen: (r: () => number) => number; vals: number[] } {
  if (p === '??') return { re: '[\\s\\S]', gen: (r) => rint(r, 0, 255), vals: [] };
  if (p[1] === '?') {
    const hi = parseInt(p[0]!, 16) << 4;
    return { re: `[${hx(hi)}-${hx(hi | 15)}]`, gen: (r) => hi | rint(r, 0, 15), vals: [hi] };
  }
  if (p[0] === '?') {
    const lo = parseInt(p[1]!, 16);
    const all = Array.from({ length: 16 }, (_, i) => (i << 4) | lo);
    return { re: `[${all.map(hx).join('')}]`, gen: (r) => all[rint(r, 0, 15)]!, vals: [lo] };
  }
  const v = parseInt(p, 16);
  return { re: hx(v), gen: () => v, vals: [v] };
}

/** Translate hex-signature text into regex source + a generator of matching bytes. */
function translate(hex: string): { re: string; gen: (r: () => number) => number[]; vals: number[] } {
  let re = '';
  const gens: ((r: () => number) => number[])[] = [];
  const vals: number[] = [];
  let i = 0;
  // Gap lengths run one past each bound so that near misses at the boundaries occur too.
  const gapGen = (min: number, max: number) => (r: () => number) =>
    Array.from({ length: rint(r, Math.max(0, min - 1), Math.min(max, min + 6) + 1) }, () => rint(r, 0, 255));
  while (i < hex.length) {
    const c = hex[i]!;
    if (c === '*') {
      re += '[\\s\\S]*?';
      gens.push(gapGen(0, 5));
      i++;
    } else if (c === '{' || c === '[') {
      const close = hex.indexOf(c === '{' ? '}' : ']', i);
      const body = hex.slice(i + 1, close);
      const [a, b] = body.includes('-') ? body.split('-') : [body, body];
      const min = a === '' ? 0 : Number(a);
      const max = b === '' ? Infinity : Number(b);
      re += `[\\s\\S]{${min},${max === Infinity ? '' : max}}`;
      gens.push(gapGen(min, max));
      i = close + 1;
    } else if (c === '(' || c === '!') {
      const neg = c === '!';
      const open = neg ? i + 1 : i;
      const close = hex.indexOf(')', open);
      const alts = hex.slice(open + 1, close).split('|').map((a) => a.match(/../g)!.map(byteTok));
      for (const a of alts) for (const b of a) vals.push(...b.vals);
      const altRe = alts.map((a) => a.map((b) => b.re).join('')).join('|');
      if (!neg) {
        re += `(?:${altRe})`;
        gens.push((r) => alts[rint(r, 0, alts.length - 1)]!.map((b) => b.gen(r)));
      } else {
        const n = alts[0]!.length;
        re += `(?!${altRe})[\\s\\S]{${n}}`;
        const rx = new RegExp(`^(?:${altRe})`);
        gens.push((r) => {
          for (;;) {
            const cand = Array.from({ length: n }, () => rint(r, 0, 255));
            if (!rx.test(Buffer.from(cand).toString('latin1'))) return cand;
          }
        });
      }
      i = close + 1;
    } else {
      const b = byteTok(hex.slice(i, i + 2));
      re += b.re;
      vals.push(...b.vals);
      gens.push((r) => [b.gen(r)]);
      i += 2;
    }
  }
  return { re, gen: (r) => gens.flatMap((g) => g(r)), vals };
}

interface OSig {
  line: string;
  name: string;
  eof: { n: number; shift: number } | null;
  /** Earliest end offset of a match within data, or -1 (non-EOF sigs). */
  earliestEnd(data: Uint8Array): number;
  /** Does the signature match the whole file (EOF sigs). */
  matchesFile(data: Uint8Array): boolean;
  gen: (r: () => number) => number[];
  alphabet: number[];
}

function oracle(line: string): OSig {
  const [name, , off, hex] = line.split(':') as [string, string, string, string];
  const { re, gen, vals } = translate(hex);
  const body = `(?:${re})`;
  let eof: OSig['eof'] = null;
  let rx: RegExp;
  const m = /^EOF-(\d+)(?:,(\d+))?$/.exec(off);
  if (off === '*') rx = new RegExp(body);
  else if (m) {
    eof = { n: Number(m[1]), shift: Number(m[2] ?? 0) };
    rx = new RegExp(body, 'y');
  } else {
    const [a, s] = off.split(',');
    const lo = Number(a);
    rx = new RegExp(`^[\\s\\S]{${lo},${lo + Number(s ?? 0)}}?${body}`);
  }
  const str = (d: Uint8Array) => Buffer.from(d).toString('latin1');
  return {
    line,
    name,
    eof,
    earliestEnd(data) {
      const s = str(data);
      if (!rx.test(s)) return -1;
      for (let L = 1; L <= s.length; L++) if (rx.test(s.slice(0, L))) return L - 1;
      return -1;
    },
    matchesFile(data) {
      if (!eof) return false;
      const s = str(data);
      for (let st = Math.max(0, s.length - eof.n); st <= s.length - eof.n + eof.shift && st < s.length; st++) {
        rx.lastIndex = st;
        if (rx.test(s)) return true;
      }
      return false;
    },
    gen,
    alphabet: [...new Set(vals)],
  };
}

// ------------------------------------------------------------ signatures ----
const LINES = [
  'Static:0:*:deadbeef',
  'AnyByte:0:*:6162??63646566',
  'Nibbles:0:*:41a?4243?44445',
  'Star:0:*:5152*53545556',
  'FixedGap:0:*:7071{2}72737475',
  'UpToGap:0:*:3132{-3}33343536',
  'AtLeastGap:0:*:4a4b{2-}4c4d4e',
  'RangeGap:0:*:6a6b{1-3}6c6d6e',
  'AltSingle:0:*:2122(23|24)2526',
  'AltMulti:0:*:7a7b(7c7d|7e7f)7a7b',
  'AltVarLen:0:*:5a5b(5c|5d5e)5f5a',
  'NegSingle:0:*:4142!(43|44)4546',
  'NegMulti:0:*:4d5a(00|01)!(0000|ffff)5050',
  'AbsOffset:0:3:70717273',
  'AbsRange:0:2,3:60616263',
  'ByteRange:0:*:656668[1-2]67',
  'ChainBounded:0:*:6162{0-2}6162{1-2}6364',
  'Combo:0:*:abcd??ef*efab{3}abef',
  'LongForm:0:*:c1c2c3c4{100}c5c6' /* longer than EICAR: sets the carry size */,
  'SelfOverlap:0:*:61616162{-2}61616162',
  // Long static runs: these land in the sparse sampling levels (every 8th / 4th / 2nd byte).
  'Run12:0:*:5152535455565758595a5b5c',
  'Run8Chain:0:*:7172737475767778{-3}7172737475767778',
  'Run8Alt:0:*:e1e2e3e4e5(01|0203)e6e7',
  'Run6:0:*:909192939495??96',
  'Run11Star:0:*:a0a1a2a3a4a5a6a7a8a9aa*a0a1a2a3a4a5a6a7a8a9aa',
];
const EOF_LINES = ['EofExact:0:EOF-5:30313233', 'EofShift:0:EOF-8,3:3839??3a3b', 'EofMulti:0:EOF-12:4142*4344'];

const ORACLES = LINES.map(oracle);
const EOF_ORACLES = EOF_LINES.map(oracle);

/** Feed `data` cut at `cuts` (sorted offsets); return [index of first non-null write or -1, name]. */
function feed(db: { createMatcher(): Matcher }, data: Uint8Array, cuts: number[]): { at: number; name: string | null; endName: string | null } {
  const m = db.createMatcher();
  let prev = 0;
  const bounds = [...cuts, data.length];
  for (let k = 0; k < bounds.length; k++) {
    const r = m.write(data.subarray(prev, bounds[k]));
    if (r !== null) return { at: k, name: r, endName: m.end() };
    prev = bounds[k]!;
  }
  return { at: -1, name: null, endName: m.end() };
}

/** Expected: the write index holding the earliest end, and the names allowed there. */
function check(db: { createMatcher(): Matcher }, sigs: OSig[], data: Uint8Array, cuts: number[]): void {
  const ends = sigs.map((s) => s.earliestEnd(data));
  const bounds = [...cuts, data.length];
  const hits = ends.filter((e) => e >= 0);
  const got = feed(db, data, cuts);
  const ctx = () => `data=${Buffer.from(data).toString('hex')} cuts=${cuts.join(',')}`;
  if (hits.length === 0) {
    assert.equal(got.name, null, `false positive ${got.name} ${ctx()}`);
    assert.equal(got.endName, null, `false positive at end ${ctx()}`);
    return;
  }
  const first = Math.min(...hits);
  const k = bounds.findIndex((b) => b > first);
  assert.equal(got.at, k, `reported from write #${got.at}, expected #${k} (earliest end ${first}) ${ctx()}`);
  const allowed = sigs.filter((s, i) => ends[i]! >= 0 && ends[i]! < bounds[k]!).map((s) => s.name);
  assert.ok(allowed.includes(got.name!), `name ${got.name} not in ${allowed.join(',')} ${ctx()}`);
  assert.equal(got.endName, got.name, 'end() repeats the latched detection');
}

function allCutsOf(len: number): number[][] {
  const out: number[][] = [[]];
  for (let c = 0; c <= len; c++) out.push([c]);
  out.push(Array.from({ length: Math.max(len - 1, 0) }, (_, i) => i + 1)); // byte by byte
  return out;
}

/** Input arbitrary for one signature: bytes from its alphabet, optionally with a planted match. */
function inputArb(o: OSig) {
  const alpha = [...o.alphabet, 0x00, 0x99];
  // Offset-anchored signatures need short prefixes (absolute) or suffixes (EOF) to hit.
  const abs = !o.eof && !o.line.split(':')[2]!.startsWith('*');
  const bytes = (max: number) => fc.integer({ min: 0, max }).chain((n) => fc.array(fc.constantFrom(...alpha), { minLength: n, maxLength: n }));
  return fc
    .record({
      pre: bytes(abs ? 6 : 40),
      post: bytes(o.eof ? 8 : 20),
      plant: fc.boolean(),
      seed: fc.integer(),
      mutate: fc.option(fc.nat(), { nil: undefined, freq: 1 }),
    })
    .map(({ pre, post, plant, seed, mutate }) => {
      let x = seed | 1;
      const r = () => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) / 2 ** 32;
      };
      const mid = plant ? o.gen(r) : [];
      // A near miss: flip one byte of the planted instance.
      if (mutate !== undefined && mid.length) mid[mutate % mid.length] ^= 1 << (mutate % 8);
      return Uint8Array.from([...pre, ...mid, ...post]);
    });
}

// ----------------------------------------------------------------- tests ----
test('oracle sanity: generated instances match (some gaps deliberately miss), zeros never match', () => {
  for (const o of [...ORACLES, ...EOF_ORACLES]) {
    let x = 7;
    const r = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let hits = 0;
    for (let k = 0; k < 30; k++) {
      const inst = o.gen(r);
      let ok: boolean;
      if (o.eof) {
        if (inst.length > o.eof.n) continue;
        // Place the instance so that it starts exactly n bytes before EOF.
        const pad = new Array(o.eof.n - inst.length).fill(0x99);
        ok = o.matchesFile(Uint8Array.from([...inst, ...pad]));
        if (ok) assert.ok(!o.matchesFile(Uint8Array.from([...inst, ...pad, 0x99])), o.name + ' one byte too early');
      } else if (o.name.startsWith('Abs')) ok = o.earliestEnd(Uint8Array.from([1, 2, 3, ...inst])) >= 0;
      else ok = o.earliestEnd(Uint8Array.from(inst)) >= 0;
      if (ok) hits++;
    }
    assert.ok(hits >= 5, `${o.name}: ${hits}/30 generated instances match`);
    assert.equal(o.earliestEnd(new Uint8Array(30)), -1, o.name + ' on zeros');
  }
});

for (const o of ORACLES) {
  test(`split invariance + report timing: ${o.line}`, () => {
    const db = SignatureDb.fromSources([{ label: 't.ndb', kind: 'ndb', text: o.line }]);
    assert.equal(db.skippedTotal, 0, 'signature is supported');
    let positives = 0;
    fc.assert(
      fc.property(inputArb(o), (data) => {
        if (o.earliestEnd(data) >= 0) positives++;
        for (const cuts of allCutsOf(data.length)) check(db, [o], data, cuts);
      }),
      { numRuns: 200, seed: 4242 },
    );
    assert.ok(positives >= 10, `only ${positives} positive inputs generated`);
  });
}

test('all signatures in one db: earliest detection wins the timing, random multi-way splits', () => {
  const db = SignatureDb.fromSources([{ label: 'all.ndb', kind: 'ndb', text: LINES.join('\n') }]);
  const alpha = [...new Set(ORACLES.flatMap((o) => o.alphabet))];
  // Pieces: random bytes from all signatures' alphabets, or a planted instance of one signature.
  const piece = fc.oneof(
    fc.array(fc.constantFrom(...alpha, 0), { maxLength: 12 }),
    fc.tuple(fc.nat(ORACLES.length - 1), fc.integer()).map(([i, seed]) => {
      let x = seed | 1;
      const r = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
      return ORACLES[i]!.gen(r);
    }),
  );
  const arb = fc
    .tuple(fc.array(piece, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }))
    .map(([pieces, cs]) => {
      const data = Uint8Array.from(pieces.flat());
      const cuts = [...new Set(cs.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      return { data, cuts };
    });
  let positives = 0;
  fc.assert(
    fc.property(arb, ({ data, cuts }) => {
      if (ORACLES.some((o) => o.earliestEnd(data) >= 0)) positives++;
      check(db, ORACLES, data, cuts);
      check(db, ORACLES, data, []);
    }),
    { numRuns: 600, seed: 99 },
  );
  assert.ok(positives >= 20, `only ${positives} positives`);
});

// The merged sampling pass has loops of its own for one, two and more levels; 'search' is
// the anchored search small dbs get (native indexOf of each form's longest static run),
// forced here over every form whatever its run length.
const FORCED: ([number, number][] | 'search')[] = [
  'search',
  [[4, 8], [4, 4], [4, 2], [3, 2], [4, 1], [3, 1], [2, 1]],
  [[4, 8], [2, 1]],
  [[3, 4], [2, 1]],
  [[3, 2], [2, 1]],
  [[2, 1]],
];
for (const all of FORCED) test(`forced ${all === 'search' ? 'anchored search' : `sampling levels ${all.map(([q, st]) => `q${q}/${st}`).join(' ')}`}: same results`, () => {
  const b = new PatternSetBuilder();
  for (const line of LINES) {
    const r = parseNdbLine(line, 'x.ndb', 1);
    assert.ok(r.ok);
    b.add(r.sig);
  }
  const set = b.build(all);
  if (all === 'search') assert.deepEqual(set.levelShapes, ['search']);
  else assert.ok(set.levelShapes.length >= Math.min(all.length, 4), `levels in use: ${set.levelShapes.join(',')}`);
  const alpha = [...new Set(ORACLES.flatMap((o) => o.alphabet))];
  const piece = fc.oneof(
    fc.array(fc.constantFrom(...alpha, 0), { maxLength: 12 }),
    fc.tuple(fc.nat(ORACLES.length - 1), fc.integer()).map(([i, seed]) => {
      let x = seed | 1;
      const r = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
      return ORACLES[i]!.gen(r);
    }),
  );
  let positives = 0;
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 5 }), (pieces) => {
      const data = Uint8Array.from(pieces.flat());
      if (ORACLES.some((o) => o.earliestEnd(data) >= 0)) positives++;
      for (const cuts of allCutsOf(data.length)) check(set, ORACLES, data, cuts);
    }),
    { numRuns: all === 'search' || all.length > 2 ? 150 : 60, seed: 2024 },
  );
  assert.ok(positives >= (all === 'search' || all.length > 2 ? 20 : 8), `only ${positives} positives`);
});

for (const o of EOF_ORACLES) {
  test(`EOF-anchored, decided at end(), split invariant: ${o.line}`, () => {
    const db = SignatureDb.fromSources([{ label: 'e.ndb', kind: 'ndb', text: o.line }]);
    let positives = 0;
    fc.assert(
      fc.property(inputArb(o), (data) => {
        const want = o.matchesFile(data);
        if (want) positives++;
        for (const cuts of allCutsOf(data.length)) {
          const got = feed(db, data, cuts);
          assert.equal(got.at, -1, 'EOF signatures never fire from write()');
          assert.equal(got.endName, want ? o.name : null, `data=${Buffer.from(data).toString('hex')} cuts=${cuts}`);
        }
      }),
      { numRuns: 150, seed: 7 },
    );
    assert.ok(positives >= 5, `only ${positives} positives`);
  });
}
