/**
 * matcher.ts — the streaming multi-pattern matcher for body signatures.
 *
 * PatternSet (built once per db, shared, immutable) holds every segment form in
 * flat typed arrays plus the sampling levels; BodyMatcher (one per scanned file)
 * holds only the stream state.
 *
 * How it works:
 *  - Prefilter by sampling. A level (q, step) looks at every step-th stream position
 *    and takes the q-gram ending there: multiplicative hash → 2-hash Bloom bit table
 *    → on a hit, an open-addressing table keyed by the gram lists (form, offset)
 *    entries. A form is put in the level with the largest step its longest static
 *    run allows (run ≥ step+q-1) and registers the `step` grams of its cheapest such
 *    region, so one sample always lands on it whatever the alignment (a form with no
 *    such run expands its wildcard bytes on the sparsest level that allows it). Levels
 *    are chosen per db by estimated cost (chooseShapes); a db of long static strings is
 *    sampled every 8th byte, one with 4-byte runs every 2nd. All levels sample in one
 *    phase (positions ≡ 3 mod step), so one merged pass over each chunk reads every
 *    4-byte window once and tests it against each level due there.
 *  - Small dbs search instead of sampling (`anchors`): when there are at most
 *    ANCHOR_MAX_FORMS forms and each has a static run of ANCHOR_MIN_RUN bytes (EICAR
 *    alone, the default; a handful of long strings), each form's longest static run is
 *    looked for with Buffer's native indexOf (Boyer-Moore-Horspool over the chunk, plus
 *    one small search across the chunk boundary), which skips most bytes unread: for
 *    EICAR ~20 GB/s against ~2 GB/s for the q4/8 sampler. Every occurrence becomes a
 *    candidate exactly like a sampled gram hit.
 *  - A candidate whose last byte is in the current chunk is verified now (bytes
 *    before the chunk come from a carry of maxFormLen-1 bytes); otherwise it is
 *    parked in `pending` and verified by the write() that delivers its last byte.
 *    Verified segment matches of one write are then applied in order of their last
 *    byte, so a hit is reported from exactly the write() that completes the
 *    signature, and a segment's predecessor is always recorded before it.
 *  - Segments chain by gap constraints. Per (signature, segment) we keep the ends
 *    of verified matches: for an unbounded gap (`*`, `{n-}`) only the earliest end
 *    matters; for a bounded gap a short sorted list of end intervals, pruned by
 *    position. Segment 0 of an absolute-offset signature must start in [min,max].
 *
 *  - skip(n): bytes passed over unread (an archive's compressed data) still count for
 *    offsets and gaps; no form may use them. A set whose signatures are all anchored
 *    and bounded (`reach`) stops sampling once past them.
 *
 * Limits / bounds per stream: carry = maxFormLen-1 bytes (≤ MAX_FORM_LEN); pending
 *   entries ≤ entries per gram × maxFormLen; end-interval lists capped at
 *   MAX_INTERVALS — when exceeded the two closest intervals merge, which can only
 *   over-approximate (a possible false positive, never a miss).
 * EOF-anchored signatures are not handled here (tail-match.ts).
 * Never throws on input bytes.
 */
import type { BodySig, FormCheck, PatternForm } from './ndb-parse.js';

/** The engine-facing matcher: first detection name, or null. */
export interface Matcher {
  write(chunk: Uint8Array): string | null;
  /** Bytes of an archive that went into its decompressor (see signature-db.ts DbMatcher). */
  writeUnpacked?(chunk: Uint8Array): string | null;
  end(): string | null;
}

const MUL = 0x9e3779b1 | 0;
const MUL2 = 0x85ebca77 | 0; // second Bloom hash
const MAX_INTERVALS = 512;
/**
 * Search (native indexOf per form) instead of sampling when a db has at most this many
 * forms, each with a static run of at least ANCHOR_MIN_RUN bytes: one indexOf pass per
 * form per chunk, each much cheaper than a sampling pass when the needle is long
 * (measured on 1 MiB: a 16-byte needle ~4–60 GB/s, a 68-byte one ~20 GB/s, the q4/8
 * sampler ~2 GB/s). Short needles are left to the sampler: below ~7 bytes indexOf is a
 * memchr on the first byte, as slow as the data makes that byte common.
 */
const ANCHOR_MAX_FORMS = 8;
const ANCHOR_MIN_RUN = 12;
/** Longest needle searched for (Boyer-Moore shifts do not grow past a few dozen bytes). */
const ANCHOR_MAX_LEN = 64;
/** Buffer's native search, called on plain Uint8Arrays too (no Buffer view per chunk). */
const indexOf = Buffer.prototype.indexOf as (this: Uint8Array, value: Uint8Array, byteOffset: number) => number;

/** Does a form (values/masks/checks at vals[off..off+len)) match buf at idx? */
export function matchForm(
  vals: Uint8Array,
  masks: Uint8Array,
  off: number,
  len: number,
  checks: readonly FormCheck[] | null,
  buf: Uint8Array,
  idx: number,
): boolean {
  for (let j = 0; j < len; j++) if (((buf[idx + j]! ^ vals[off + j]!) & masks[off + j]!) !== 0) return false;
  if (checks !== null) {
    for (const c of checks) {
      if (c.kind === 'class') {
        const b = buf[idx + c.pos]!;
        if ((c.bits[b >> 3]! & (1 << (b & 7))) === 0) return false;
      } else {
        for (const a of c.alts) {
          let eq = true;
          for (let j = 0; j < c.len; j++)
            if (((buf[idx + c.pos + j]! ^ a.vals[j]!) & a.masks[j]!) !== 0) {
              eq = false;
              break;
            }
          if (eq) return false;
        }
      }
    }
  }
  return true;
}

/** Rough commonness of a byte in real files: anchors avoid 00/FF runs, spaces, NOPs. */
function byteCost(b: number): number {
  if (b === 0x00) return 24;
  if (b === 0xff) return 12;
  if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x90 || b === 0xcc) return 8;
  if ((b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)) return 4;
  if (b >= 0x21 && b <= 0x7e) return 3;
  return 1;
}

/**
 * A sampling level: every `step`-th stream position, the q-gram ending there is
 * looked up. A form assigned to a level registers the `step` q-grams of one static
 * region of length step+q-1, so exactly one sampled position falls on one of them
 * whatever the alignment. Levels are chosen per db to minimise Σ 1/step.
 */
interface Level {
  q: number;
  step: number;
  bits: Int32Array; // filter: bit (hash >>> bitShift) set when some gram may hash there
  bitShift: number;
  keys: Int32Array; // open addressing: gram value
  heads: Int32Array; // first entry with that gram, -1 = empty slot
  slotShift: number;
  slotMask: number;
  entForm: Int32Array;
  entOff: Int32Array; // offset of the gram's last byte within the form
  entNext: Int32Array;
}

/**
 * Candidate levels (q, step), largest step first; a form fits statically when its
 * longest static run R ≥ step + q - 1, or by expansion (see expandedRegion).
 */
const LEVEL_SHAPES: readonly [number, number][] = [
  [4, 8],
  [4, 4],
  [3, 4],
  [4, 2],
  [3, 2],
  [4, 1],
  [3, 1],
  [2, 1],
];

/**
 * Work of one probe (table lookup + bucket walk + verification) relative to one sample,
 * by size of the slot table (keys + heads): once it outgrows the caches every probe is
 * a few memory misses (measured at 100k signatures: ~300 samples' worth).
 */
const probeWeight = (entries: number) => {
  const slotBytes = 2 ** Math.max(4, Math.ceil(Math.log2(Math.max(entries, 1) * 2))) * 8;
  return slotBytes > 2 << 20 ? 400 : slotBytes > 256 << 10 ? 160 : 40;
};
/** Bloom false-hit rate with 2 hashes: ~1.4 % at 16 bits per entry, worse once the table size is capped. */
const bloomFp = (entries: number) => (1 - Math.exp((-2 * entries) / 2 ** bloomLog(entries))) ** 2;
/**
 * Most table entries one form may register at one level by expanding wildcard bytes
 * (a `??` inside one gram = 256 entries, a nibble = 16). Lets the few forms whose static
 * runs are too short for a sparse level (4-byte halves around a `??`) ride on it instead
 * of forcing the whole db down to a dense one.
 */
const EXPAND_CAP = 640;

/**
 * Fixed cost of one more level, even in the merged pass (which shares the load, not the
 * filter test): measured with bench/sigs-bench-style forced shapes, a second level costs
 * about a quarter of a dense level's samples, so synthetic 10k and 100k dbs stay on one level.
 */
const LEVEL_OVERHEAD = 0.25;

const bloomLog = (grams: number) => Math.min(23, Math.max(12, Math.ceil(Math.log2(Math.max(grams, 1) * 16))));

/** Forms with the same fit vector (entries per LEVEL_SHAPES level, 0 = does not fit). */
interface FitGroup {
  count: number;
  fit: number[];
}

/**
 * Pick the subset of LEVEL_SHAPES that fits every form at least estimated cost per
 * byte: Σ over levels of (sample + probeWeight·P(sample hits))/step + loop overhead,
 * where P(hit) ≈ entries / 2^(8q) + Bloom false hits, and a sample costs more once the
 * Bloom table outgrows the caches (measured: at 100k mixed signatures two levels beat
 * one crowded 3-gram level by ~1.6×; at 10k one level wins by ~2×). Each form goes to
 * the fitting level with the largest step, registering `fit[level]` entries there.
 */
function chooseShapes(groups: readonly FitGroup[]): [number, number][] {
  let best: [number, number][] = [];
  let bestCost = Infinity;
  for (let mask = 1; mask < 1 << LEVEL_SHAPES.length; mask++) {
    const idx = LEVEL_SHAPES.map((_, i) => i).filter((i) => mask & (1 << i));
    const grams = new Array<number>(idx.length).fill(0);
    let ok = true;
    for (const g of groups) {
      let li = idx.findIndex((i) => g.fit[i]! > 0);
      if (li < 0) li = idx.findIndex((i) => g.fit[i]! < 0);
      if (li < 0) {
        ok = false;
        break;
      }
      grams[li]! += g.count * Math.abs(g.fit[idx[li]!]!);
    }
    if (!ok) continue;
    let cost = 0;
    idx.forEach((i, k) => {
      const [q, st] = LEVEL_SHAPES[i]!;
      const tableBytes = 2 ** bloomLog(grams[k]!) / 8;
      const sample = 1 + (tableBytes > 262144 ? 2 : tableBytes > 32768 ? 0.5 : 0);
      const pHit = Math.min(1, grams[k]! / 2 ** (8 * q)) + bloomFp(grams[k]!);
      cost += (sample + probeWeight(grams[k]!) * pHit) / st + LEVEL_OVERHEAD;
    });
    if (cost < bestCost) {
      bestCost = cost;
      best = idx.map((i) => LEVEL_SHAPES[i]!);
    }
  }
  return best;
}

/** Build one level from parallel entry arrays (form id, gram-end offset, gram value). */
function buildLevel(q: number, step: number, entForm: Int32Array, entOff: Int32Array, entKey: Int32Array): Level {
  const n = entForm.length;
  // Sized by entries (≥ distinct grams): no intermediate Map, so 100k signatures load in bounded memory.
  const bitLog = bloomLog(n);
  const slotLog = Math.max(4, Math.ceil(Math.log2(Math.max(n, 1) * 2)));
  const lv: Level = {
    q,
    step,
    bits: new Int32Array((1 << bitLog) >>> 5),
    bitShift: 32 - bitLog,
    keys: new Int32Array(1 << slotLog),
    heads: new Int32Array(1 << slotLog).fill(-1),
    slotShift: 32 - slotLog,
    slotMask: (1 << slotLog) - 1,
    entForm,
    entOff,
    entNext: new Int32Array(n).fill(-1),
  };
  for (let e = 0; e < n; e++) {
    const key = entKey[e]!;
    const h = Math.imul(key, MUL) >>> lv.bitShift;
    lv.bits[h >>> 5]! |= 1 << (h & 31);
    const h2 = Math.imul(key, MUL2) >>> lv.bitShift;
    lv.bits[h2 >>> 5]! |= 1 << (h2 & 31);
    let s = Math.imul(key, MUL) >>> lv.slotShift;
    while (lv.heads[s]! >= 0 && lv.keys[s] !== key) s = (s + 1) & lv.slotMask;
    lv.entNext[e] = lv.heads[s]!; // prepend to the gram's list
    lv.keys[s] = key;
    lv.heads[s] = e;
  }
  return lv;
}

function popcount8(x: number): number {
  let c = 0;
  for (; x !== 0; x &= x - 1) c++;
  return c;
}

/**
 * The first position ≥ `from` at which level `lv` samples. All levels share one phase —
 * absolute positions ≡ 3 (mod step) — so the merged pass reads each window once; a form
 * registers `step` consecutive gram ends, which always include one of those. Step-1
 * levels with grams shorter than 4 also sample the positions before 3 (a form at the very
 * start of a file may end its only registered gram there).
 */
function firstSample(lv: { q: number; step: number }, from: number): number {
  const lo = Math.max(from, lv.q - 1);
  if (lv.step === 1) return lo;
  if (lo <= 3) return 3;
  return lo + ((3 - lo) & (lv.step - 1));
}

/** Second Bloom bit, consulted only after the first one is set. */
function bloom2(bits: Int32Array, g: number, sh: number): boolean {
  const h = Math.imul(g, MUL2) >>> sh;
  return (bits[h >>> 5]! & (1 << (h & 31))) !== 0;
}

/** A form searched for by one of its static runs (see ANCHOR_MAX_FORMS). */
interface Anchor {
  needle: Uint8Array;
  /** The forms that contain it, and where it starts within each (one search for all of them). */
  forms: readonly { form: number; at: number }[];
}

/** Compiled, immutable body patterns shared by all matchers of a db. */
export class PatternSet {
  constructor(
    readonly sigNames: readonly string[],
    readonly sigOffMin: Float64Array,
    readonly sigOffMax: Float64Array,
    readonly sigSegCount: Int32Array,
    readonly segSig: Int32Array,
    readonly segIdx: Int32Array,
    readonly segGapMin: Float64Array,
    readonly segGapMax: Float64Array,
    readonly formSeg: Int32Array,
    readonly formOff: Int32Array,
    readonly formLen: Int32Array,
    readonly formChecks: readonly (FormCheck[] | null)[],
    readonly vals: Uint8Array,
    readonly masks: Uint8Array,
    readonly levels: readonly Level[],
    readonly maxFormLen: number,
    /** Last offset at which any signature can still have a byte (Infinity unless all are anchored and bounded). */
    readonly reach: number,
    /** Searched, not sampled (then `levels` is empty): per form, a static run of it and where that run starts in it. */
    readonly anchors: readonly Anchor[] | null = null,
  ) {}

  get signatureCount(): number {
    return this.sigNames.length;
  }
  get formCount(): number {
    return this.formLen.length;
  }
  /** e.g. ['q4/8', 'q3/2'] — sampling levels in use, or ['search'] (for logs and benchmarks). */
  get levelShapes(): string[] {
    return this.anchors ? ['search'] : this.levels.map((l) => `q${l.q}/${l.step}`);
  }

  createMatcher(): BodyMatcher {
    return new BodyMatcher(this);
  }
}

/** Accumulates BodySigs (offset 'any' or 'abs' only) into a PatternSet. */
export class PatternSetBuilder {
  private names: string[] = [];
  private offMin: number[] = [];
  private offMax: number[] = [];
  private segCount: number[] = [];
  private segSig: number[] = [];
  private segIdx: number[] = [];
  private gapMin: number[] = [];
  private gapMax: number[] = [];
  private fSeg: number[] = [];
  private fOff: number[] = [];
  private fLen: number[] = [];
  private fRun: number[] = [];
  /** Per form: start and length of its longest static run (uncapped, for anchors). */
  private fRunAt: number[] = [];
  private fRunLen: number[] = [];
  private fChecks: (FormCheck[] | null)[] = [];
  private vals = new Uint8Array(1 << 16);
  private masks = new Uint8Array(1 << 16);
  private poolLen = 0;
  private maxLen = 1;
  private reach = 0;

  add(sig: BodySig): void {
    if (sig.offset.kind === 'eof') throw new Error('PatternSetBuilder: EOF signatures belong to the tail matcher');
    const sigId = this.names.length;
    this.names.push(sig.name);
    this.offMin.push(sig.offset.kind === 'abs' ? sig.offset.min : 0);
    this.offMax.push(sig.offset.kind === 'abs' ? sig.offset.max : Infinity);
    this.segCount.push(sig.segments.length);
    // How far into a file this signature can reach: its latest start plus its longest extent.
    let r = sig.offset.kind === 'abs' ? sig.offset.max : Infinity;
    for (const seg of sig.segments) r += seg.gapMax + Math.max(...seg.forms.map((f) => f.vals.length));
    this.reach = Math.max(this.reach, r);
    sig.segments.forEach((seg, k) => {
      const segId = this.segSig.length;
      this.segSig.push(sigId);
      this.segIdx.push(k);
      this.gapMin.push(seg.gapMin);
      this.gapMax.push(seg.gapMax);
      for (const f of seg.forms) this.addForm(segId, f);
    });
  }

  private addForm(segId: number, f: PatternForm): void {
    const len = f.vals.length;
    while (this.poolLen + len > this.vals.length) {
      const nv = new Uint8Array(this.vals.length * 2);
      nv.set(this.vals);
      this.vals = nv;
      const nm = new Uint8Array(this.masks.length * 2);
      nm.set(this.masks);
      this.masks = nm;
    }
    this.vals.set(f.vals, this.poolLen);
    this.masks.set(f.masks, this.poolLen);
    let run = 0;
    let best = 0;
    let bestEnd = 0;
    for (let k = 0; k < len; k++) {
      run = f.masks[k] === 0xff ? run + 1 : 0;
      if (run > best) {
        best = run;
        bestEnd = k;
      }
    }
    if (best < 2) throw new Error('form without a 2-byte static run'); // ndb-parse rejects these
    this.fRunAt.push(bestEnd - best + 1);
    this.fRunLen.push(best);
    this.fSeg.push(segId);
    this.fOff.push(this.poolLen);
    this.fLen.push(len);
    this.fRun.push(Math.min(best, 11));
    this.fChecks.push(f.checks);
    this.poolLen += len;
    if (len > this.maxLen) this.maxLen = len;
  }

  /**
   * `shapes` forces the sampling levels, or 'search' the anchored search, whatever the
   * forms (tests); by default search when the db is small enough, else levels by cost.
   */
  build(forced?: [number, number][] | 'search'): PatternSet {
    const n = this.fLen.length;
    if (forced === 'search' || (forced === undefined && n <= ANCHOR_MAX_FORMS && this.fRunLen.every((r) => r >= ANCHOR_MIN_RUN)))
      return this.finish([], this.anchors());
    let shapes: [number, number][];
    if (forced) shapes = forced;
    else {
      const groups = new Map<string, FitGroup>();
      for (let f = 0; f < n; f++) {
        const fit = LEVEL_SHAPES.map(([q, st]) =>
          this.fRun[f]! >= st + q - 1 ? st : -(this.expandedRegion(f, q, st)?.entries ?? 0),
        );
        const key = fit.join(',');
        const g = groups.get(key);
        if (g) g.count++;
        else groups.set(key, { count: 1, fit });
      }
      shapes = chooseShapes([...groups.values()]);
    }
    // Largest step first, so the first fitting level is the cheapest to sample.
    shapes = [...shapes].sort((x, y) => y[1] - x[1] || y[0] - x[0]);
    // Placement per form, counted first so entries go straight into typed arrays.
    const levelOf = new Int8Array(n);
    const startOf = new Int32Array(n);
    const sizes = new Array<number>(shapes.length).fill(0);
    for (let f = 0; f < n; f++) {
      let li = 0;
      let place: { start: number; entries: number } | null = null;
      // A static window on the sparsest level that has one; expanding wildcards only where none has.
      for (; li < shapes.length && place === null; li++) place = this.fit(f, shapes[li]![0], shapes[li]![1], false);
      if (place === null) for (li = 0; li < shapes.length && place === null; li++) place = this.fit(f, shapes[li]![0], shapes[li]![1], true);
      if (place === null) throw new Error(`no sampling level fits a form with a ${this.fRun[f]}-byte static run`);
      li--;
      levelOf[f] = li;
      startOf[f] = place.start;
      sizes[li]! += place.entries;
    }
    const eForm = sizes.map((k) => new Int32Array(k));
    const eOff = sizes.map((k) => new Int32Array(k));
    const eKey = sizes.map((k) => new Int32Array(k));
    const fill = new Array<number>(shapes.length).fill(0);
    let keys: number[] = [];
    for (let f = 0; f < n; f++) {
      const li = levelOf[f]!;
      const [q, st] = shapes[li]!;
      const regionStart = startOf[f]!;
      const off = this.fOff[f]!;
      for (let j = 0; j < st; j++) {
        const gEnd = regionStart + j + q - 1;
        // Every value the gram can take in a matching input (one when fully static).
        keys = [0];
        for (let b = gEnd - q + 1; b <= gEnd; b++) {
          const v = this.vals[off + b]!;
          const m = this.masks[off + b]!;
          const next: number[] = [];
          for (const k of keys) for (let x = 0; x < 256; x++) if (((x ^ v) & m) === 0) next.push((k << 8) | x);
          keys = next;
        }
        for (const key of keys) {
          const at = fill[li]!++;
          eForm[li]![at] = f;
          eOff[li]![at] = gEnd;
          eKey[li]![at] = key | 0;
        }
      }
    }
    return this.finish(shapes.map(([q, st], i) => buildLevel(q, st, eForm[i]!, eOff[i]!, eKey[i]!)), null);
  }

  /** Each form's longest static run (at most ANCHOR_MAX_LEN bytes of it) as its needle. */
  private anchors(): Anchor[] {
    // Forms with the same needle (the built-in EICAR and a db's copy of it) share one search.
    const byNeedle = new Map<string, { needle: Uint8Array; forms: { form: number; at: number }[] }>();
    this.fLen.forEach((_, f) => {
      const at = this.fRunAt[f]!;
      const from = this.fOff[f]! + at;
      const needle = this.vals.slice(from, from + Math.min(this.fRunLen[f]!, ANCHOR_MAX_LEN));
      const key = Buffer.from(needle).toString('latin1');
      const a = byNeedle.get(key);
      if (a) a.forms.push({ form: f, at });
      else byNeedle.set(key, { needle, forms: [{ form: f, at }] });
    });
    return [...byNeedle.values()];
  }

  private finish(levels: Level[], anchors: Anchor[] | null): PatternSet {
    const i32 = (a: number[]) => Int32Array.from(a);
    return new PatternSet(
      this.names,
      Float64Array.from(this.offMin),
      Float64Array.from(this.offMax),
      i32(this.segCount),
      i32(this.segSig),
      i32(this.segIdx),
      Float64Array.from(this.gapMin),
      Float64Array.from(this.gapMax),
      i32(this.fSeg),
      i32(this.fOff),
      i32(this.fLen),
      this.fChecks,
      this.vals.slice(0, this.poolLen),
      this.masks.slice(0, this.poolLen),
      levels,
      this.maxLen,
      this.reach,
      anchors,
    );
  }

  /**
   * Where form f goes on a (q, step) level and how many entries it registers there:
   * the cheapest fully static window of step+q-1 bytes (step entries), else the
   * expandedRegion; null when neither exists.
   */
  private fit(f: number, q: number, step: number, expand: boolean): { start: number; entries: number } | null {
    const width = step + q - 1;
    if (this.fRun[f]! >= width) return { start: this.chooseRegion(f, width), entries: step };
    return expand ? this.expandedRegion(f, q, step) : null;
  }

  /**
   * A window of step+q-1 bytes containing wildcard bytes: each of its `step` grams is
   * registered once per value it can take (2^(wildcard bits) per non-static byte).
   * The window with the fewest entries, if that is ≤ EXPAND_CAP. Any input that
   * matches the form has one of those values at the sampled gram, so no match is lost;
   * the candidate is still verified in full.
   */
  private expandedRegion(f: number, q: number, step: number): { start: number; entries: number } | null {
    const off = this.fOff[f]!;
    const len = this.fLen[f]!;
    const width = step + q - 1;
    let best: { start: number; entries: number } | null = null;
    for (let s = 0; s + width <= len; s++) {
      let entries = 0;
      for (let j = 0; j < step && entries <= EXPAND_CAP; j++) {
        let v = 1;
        for (let b = s + j; b < s + j + q; b++) v *= 1 << popcount8(~this.masks[off + b]! & 0xff);
        entries += v;
      }
      if (entries <= EXPAND_CAP && (best === null || entries < best.entries)) best = { start: s, entries };
    }
    return best;
  }

  /** Start of the cheapest fully static window of `width` bytes in form f. */
  private chooseRegion(f: number, width: number): number {
    const off = this.fOff[f]!;
    const len = this.fLen[f]!;
    let best = -1;
    let bestCost = Infinity;
    let run = 0;
    for (let e = 0; e < len; e++) {
      run = this.masks[off + e] === 0xff ? run + 1 : 0;
      if (run < width) continue;
      let cost = 0;
      for (let j = e - width + 1; j <= e; j++) cost += byteCost(this.vals[off + j]!);
      if (cost < bestCost) {
        bestCost = cost;
        best = e - width + 1;
      }
    }
    if (best < 0) throw new Error('no static region of the level width'); // guaranteed by chooseShapes
    return best;
  }
}

/** Ends of verified matches of one segment, queried by the next segment. */
class EndState {
  earliest = Infinity; // used when the next gap is unbounded
  iv: number[] = []; // sorted, disjoint [a0,b0,a1,b1,…] when the next gap is bounded
}

const NO_LEVELS = new Float64Array(0);

/** Streaming state for one file. write() returns the first detection, latched. */
export class BodyMatcher implements Matcher {
  private pos = 0; // absolute offset of the next byte
  private found: string | null = null;
  private readonly carry: Uint8Array; // the H bytes before the current chunk
  private carryLen = 0;
  private scratch: Uint8Array | null = null;
  /** The anchored search's buffer across a chunk boundary. */
  private edge: Uint8Array | null = null;
  private readonly next: Float64Array; // per level: absolute position of the next sample
  private pendForm: number[] = [];
  private pendStart: number[] = [];
  private hitForm: number[] = []; // verified segment matches of this write, processed in end order
  private hitStart: number[] = [];
  /** Created at the first segment match of a chained signature (most files never have one). */
  private ends: Map<number, EndState> | null = null;
  // current chunk during write()
  private chunk: Uint8Array = new Uint8Array(0);
  private base = 0;
  /** Bytes before this absolute offset were skipped (see skip()): no form may start before it. */
  private validFrom = 0;

  constructor(private readonly set: PatternSet) {
    this.carry = new Uint8Array(Math.max(set.maxFormLen - 1, 3));
    this.next = set.levels.length ? Float64Array.from(set.levels, (l) => firstSample(l, 0)) : NO_LEVELS;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.pos;
  }

  write(chunk: Uint8Array): string | null {
    if (this.found !== null) return this.found;
    const n = chunk.length;
    if (n === 0) return null;
    if (this.pos > this.set.reach) {
      this.pos += n; // every signature is anchored and already out of reach
      return null;
    }
    const base = this.pos;
    this.chunk = chunk;
    this.base = base;
    if (this.pendForm.length > 0) this.runPending(base + n);
    if (this.set.anchors !== null) this.search(this.set.anchors, chunk, base);
    else {
      this.scanHead(chunk, base);
      if (n > 3) this.scanFused(chunk, base);
    }
    if (this.hitForm.length > 0 && this.processHits()) return this.found;
    this.keepCarry(chunk);
    this.pos = base + n;
    return null;
  }

  end(): string | null {
    return this.found;
  }

  /**
   * `n` bytes pass unread (an archive's compressed data, matched decompressed in its
   * members): they count for offsets and gaps, but no form can match bytes it was not
   * shown — carry and parked candidates are dropped, sampling resumes after them.
   */
  skip(n: number): void {
    if (this.found !== null || n <= 0) return;
    this.pos += n;
    this.validFrom = this.pos;
    this.carryLen = 0;
    this.pendForm = [];
    this.pendStart = [];
    const levels = this.set.levels;
    for (let li = 0; li < levels.length; li++) this.next[li] = Math.max(this.next[li]!, firstSample(levels[li]!, this.pos));
  }

  /** True once no signature of the set can match any more (every one is anchored and out of reach). */
  get exhausted(): boolean {
    return this.pos > this.set.reach;
  }

  /**
   * The anchored search (small dbs, no levels): every occurrence of a form's needle that
   * ends in this chunk makes that form a candidate. Occurrences that begin in the carry
   * are found in a small buffer of the carry's last needle−1 bytes and the chunk's first
   * needle−1 (those wholly in the chunk are left to the chunk's own search).
   */
  private search(anchors: readonly Anchor[], c: Uint8Array, base: number): void {
    const n = c.length;
    for (let a = 0; a < anchors.length; a++) {
      const { forms, needle } = anchors[a]!;
      const m = needle.length;
      const k = Math.min(this.carryLen, m - 1);
      if (k > 0) {
        const sc = (this.edge ??= new Uint8Array(2 * (ANCHOR_MAX_LEN - 1)));
        const tail = Math.min(n, m - 1);
        sc.set(this.carry.subarray(this.carryLen - k, this.carryLen), 0);
        sc.set(c.subarray(0, tail), k);
        const view = sc.subarray(0, k + tail);
        for (let j = indexOf.call(view, needle, 0); j >= 0 && j < k; j = indexOf.call(view, needle, j + 1))
          for (const { form, at } of forms) this.candidate(form, base - k + j - at);
      }
      if (n < m) continue;
      for (let j = indexOf.call(c, needle, 0); j >= 0; j = indexOf.call(c, needle, j + 1))
        for (const { form, at } of forms) this.candidate(form, base + j - at);
    }
  }

  /** Form f may start at absolute `start`: verify it now if all its bytes are here, else park it. */
  private candidate(f: number, start: number): void {
    if (start < this.validFrom) return;
    if (start + this.set.formLen[f]! - 1 < this.base + this.chunk.length) {
      if (this.verify(f, start)) {
        this.hitForm.push(f);
        this.hitStart.push(start);
      }
    } else {
      this.pendForm.push(f);
      this.pendStart.push(start);
    }
  }

  /**
   * Samples whose 4-byte window reaches before the chunk (relative position < 3): their
   * grams are read through the carry, level by level (a few per write).
   */
  private scanHead(c: Uint8Array, base: number): void {
    const levels = this.set.levels;
    const n = c.length;
    for (let li = 0; li < levels.length; li++) {
      const lv = levels[li]!;
      let p = this.next[li]! - base;
      for (; p < 3 && p < n; p += lv.step) {
        const g = this.gramAt(base + p, lv.q);
        const h = Math.imul(g, MUL) >>> lv.bitShift;
        if ((lv.bits[h >>> 5]! & (1 << (h & 31))) !== 0 && bloom2(lv.bits, g, lv.bitShift)) this.probe(lv, g, base + p);
      }
      this.next[li] = base + p;
    }
  }

  /**
   * The merged sampling pass over the rest of the chunk: every level samples the same
   * phase (absolute positions ≡ 3 mod its step; steps are powers of two), so one walk at
   * the finest step reads each 4-byte window once — one big-endian 32-bit load, the gram
   * is its low q bytes — and tests it against every level due there: one multiply and one
   * bit test per level and sample. One- and two-level sets (nearly all dbs) get loops of
   * their own; more levels share a generic one.
   */
  private scanFused(c: Uint8Array, base: number): void {
    const levels = this.set.levels;
    const n = c.length;
    const dv = new DataView(c.buffer, c.byteOffset, n);
    const L = levels.length;
    const fine = levels[L - 1]!; // sorted by step, largest first
    // Every level's next sample is ≥ 3 now and in the common phase; the finest is due first.
    let p = (this.next[L - 1]! - base) | 0;
    if (p >= n) return;
    const step = fine.step;
    if (L === 1) {
      const bits = fine.bits;
      const sh = fine.bitShift;
      const gm = fine.q === 4 ? -1 : (1 << (8 * fine.q)) - 1;
      for (; p < n; p += step) {
        const g = dv.getInt32(p - 3) & gm;
        const h = Math.imul(g, MUL) >>> sh;
        if ((bits[h >>> 5]! & (1 << (h & 31))) !== 0 && bloom2(bits, g, sh)) this.probe(fine, g, base + p);
      }
      this.next[0] = base + p;
      return;
    }
    if (L === 2) {
      const coarse = levels[0]!;
      const b0 = coarse.bits;
      const s0 = coarse.bitShift;
      const m0 = coarse.q === 4 ? -1 : (1 << (8 * coarse.q)) - 1;
      const b1 = fine.bits;
      const s1 = fine.bitShift;
      const m1 = fine.q === 4 ? -1 : (1 << (8 * fine.q)) - 1;
      const phase = coarse.step - 1; // (abs − 3) & phase === 0 ⇔ the coarse level samples here
      const off = (base - 3) | 0;
      for (; p < n; p += step) {
        const w = dv.getInt32(p - 3);
        const g1 = w & m1;
        const h1 = Math.imul(g1, MUL) >>> s1;
        if ((b1[h1 >>> 5]! & (1 << (h1 & 31))) !== 0 && bloom2(b1, g1, s1)) this.probe(fine, g1, base + p);
        if (((off + p) & phase) === 0) {
          const g0 = w & m0;
          const h0 = Math.imul(g0, MUL) >>> s0;
          if ((b0[h0 >>> 5]! & (1 << (h0 & 31))) !== 0 && bloom2(b0, g0, s0)) this.probe(coarse, g0, base + p);
        }
      }
    } else {
      for (; p < n; p += step) {
        const w = dv.getInt32(p - 3);
        const at = base + p;
        for (let li = 0; li < L; li++) {
          const lv = levels[li]!;
          if (((at - 3) & (lv.step - 1)) !== 0) continue;
          const g = lv.q === 4 ? w : w & ((1 << (8 * lv.q)) - 1);
          const h = Math.imul(g, MUL) >>> lv.bitShift;
          if ((lv.bits[h >>> 5]! & (1 << (h & 31))) !== 0 && bloom2(lv.bits, g, lv.bitShift)) this.probe(lv, g, at);
        }
      }
    }
    // Next sample of each level: the first position ≥ the chunk end in its phase.
    const end = base + n;
    for (let li = 0; li < L; li++) this.next[li] = firstSample(levels[li]!, end);
  }

  /** The q-gram ending at absolute position `at` (at ≥ q-1), reading the carry as needed. */
  private gramAt(at: number, q: number): number {
    let g = 0;
    for (let a = at - q + 1; a <= at; a++) {
      const rel = a - this.base;
      g = (g << 8) | (rel >= 0 ? this.chunk[rel]! : this.carry[this.carryLen + rel]!);
    }
    return g | 0;
  }

  /** Keep the last H bytes of the stream for grams and forms that straddle chunks. */
  private keepCarry(chunk: Uint8Array): void {
    const H = this.carry.length;
    const n = chunk.length;
    if (n >= H) {
      this.carry.set(chunk.subarray(n - H));
      this.carryLen = H;
    } else {
      const keep = Math.min(this.carryLen, H - n);
      this.carry.copyWithin(0, this.carryLen - keep, this.carryLen);
      this.carry.set(chunk, keep);
      this.carryLen = keep + n;
    }
  }

  /** Gram `key` ended at absolute position `at`: verify or park its candidate forms. */
  private probe(lv: Level, key: number, at: number): void {
    let s = Math.imul(key, MUL) >>> lv.slotShift;
    let e: number;
    for (;;) {
      e = lv.heads[s]!;
      if (e < 0) return;
      if (lv.keys[s] === key) break;
      s = (s + 1) & lv.slotMask;
    }
    const set = this.set;
    const chunkEnd = this.base + this.chunk.length;
    // candidate() inlined: this loop runs for every sampled gram that hits the table.
    for (; e >= 0; e = lv.entNext[e]!) {
      const f = lv.entForm[e]!;
      const start = at - lv.entOff[e]!;
      if (start < this.validFrom) continue;
      const last = start + set.formLen[f]! - 1;
      if (last < chunkEnd) {
        if (this.verify(f, start)) {
          this.hitForm.push(f);
          this.hitStart.push(start);
        }
      } else {
        this.pendForm.push(f);
        this.pendStart.push(start);
      }
    }
  }

  /** Verify parked candidates whose last byte falls before chunkEnd. */
  private runPending(chunkEnd: number): void {
    const pf = this.pendForm;
    const ps = this.pendStart;
    const lens = this.set.formLen;
    let keep = 0;
    for (let i = 0; i < pf.length; i++) {
      const f = pf[i]!;
      const start = ps[i]!;
      if (start + lens[f]! - 1 < chunkEnd) {
        if (this.verify(f, start)) {
          this.hitForm.push(f);
          this.hitStart.push(start);
        }
      } else {
        pf[keep] = f;
        ps[keep] = start;
        keep++;
      }
    }
    pf.length = keep;
    ps.length = keep;
  }

  /**
   * Apply chain and offset rules to this write's verified segment matches in order of
   * their last byte: a segment's predecessor always ends before it starts, so it is
   * recorded first whichever level or pending list found it. True on detection.
   */
  private processHits(): boolean {
    const hf = this.hitForm;
    const hs = this.hitStart;
    const lens = this.set.formLen;
    const order = hf.map((_, i) => i);
    if (order.length > 1) order.sort((a, b) => hs[a]! + lens[hf[a]!]! - (hs[b]! + lens[hf[b]!]!));
    let hit = false;
    for (const i of order) {
      const f = hf[i]!;
      const start = hs[i]!;
      if (this.segMatched(f, start, start + lens[f]! - 1)) {
        hit = true;
        break;
      }
    }
    this.hitForm = [];
    this.hitStart = [];
    if (hit) {
      this.pendForm = [];
      this.pendStart = [];
    }
    return hit;
  }

  /** Full check of form f starting at absolute `start` (its bytes are all available). */
  private verify(f: number, start: number): boolean {
    const set = this.set;
    const len = set.formLen[f]!;
    const rel = start - this.base;
    if (rel >= 0) return matchForm(set.vals, set.masks, set.formOff[f]!, len, set.formChecks[f]!, this.chunk, rel);
    // Straddles the chunk start: assemble carry tail + chunk head (rare path).
    const sc = (this.scratch ??= new Uint8Array(set.maxFormLen));
    const fromCarry = -rel;
    sc.set(this.carry.subarray(this.carryLen - fromCarry, this.carryLen), 0);
    sc.set(this.chunk.subarray(0, len - fromCarry), fromCarry);
    return matchForm(set.vals, set.masks, set.formOff[f]!, len, set.formChecks[f]!, sc, 0);
  }

  /** Segment of form f matched at [start,last]: apply chain and offset rules. True on detection. */
  private segMatched(f: number, start: number, last: number): boolean {
    const set = this.set;
    const seg = set.formSeg[f]!;
    const sig = set.segSig[seg]!;
    const k = set.segIdx[seg]!;
    if (k === 0) {
      if (start < set.sigOffMin[sig]! || start > set.sigOffMax[sig]!) return false;
    } else {
      const prev = this.ends?.get(seg - 1);
      if (prev === undefined) return false;
      const hi = start - 1 - set.segGapMin[seg]!;
      const gapMax = set.segGapMax[seg]!;
      if (gapMax === Infinity) {
        if (!(prev.earliest <= hi)) return false;
      } else if (!hasEndIn(prev.iv, start - 1 - gapMax, hi)) return false;
    }
    if (k === set.sigSegCount[sig]! - 1) {
      this.found = set.sigNames[sig]!;
      return true;
    }
    const ends = (this.ends ??= new Map());
    let st = ends.get(seg);
    if (st === undefined) ends.set(seg, (st = new EndState()));
    const nextMax = set.segGapMax[seg + 1]!;
    if (nextMax === Infinity) {
      if (last < st.earliest) st.earliest = last;
    } else {
      // Ends older than this can no longer satisfy any future start of the next segment.
      const tooOld = this.base - set.maxFormLen - 1 - nextMax;
      addEnd(st.iv, last, tooOld);
    }
    return false;
  }
}

function hasEndIn(iv: number[], lo: number, hi: number): boolean {
  for (let i = 0; i < iv.length; i += 2) if (iv[i]! <= hi && iv[i + 1]! >= lo) return true;
  return false;
}

function addEnd(iv: number[], e: number, tooOld: number): void {
  // Prune from the front first.
  let drop = 0;
  while (drop < iv.length && iv[drop + 1]! < tooOld) drop += 2;
  if (drop > 0) iv.splice(0, drop);
  // Find the insertion point (lists are short and ends arrive nearly in order: scan from the back).
  let i = iv.length;
  while (i > 0 && iv[i - 2]! > e) i -= 2;
  // Now every interval before i starts at or before e.
  if (i > 0 && iv[i - 1]! >= e) return; // inside the previous interval
  if (i > 0 && iv[i - 1]! === e - 1) {
    iv[i - 1] = e;
    if (i < iv.length && iv[i]! === e + 1) {
      iv[i - 1] = iv[i + 1]!;
      iv.splice(i, 2);
    }
    return;
  }
  if (i < iv.length && iv[i]! === e + 1) {
    iv[i] = e;
    return;
  }
  iv.splice(i, 0, e, e);
  if (iv.length > MAX_INTERVALS * 2) {
    // Merge the two closest neighbours: over-approximates, never loses a match.
    let bj = 0;
    let bg = Infinity;
    for (let j = 0; j + 2 < iv.length; j += 2) {
      const g = iv[j + 2]! - iv[j + 1]!;
      if (g < bg) {
        bg = g;
        bj = j;
      }
    }
    iv[bj + 1] = iv[bj + 3]!;
    iv.splice(bj + 2, 2);
  }
}
