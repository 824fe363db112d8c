/**
 * midstream-run.ts — midstream's verdict on a case, whole and split at random chunk sizes.
 *
 * Input: an Engine and raw bytes; a seeded PRNG picks the splits (1..4096 bytes, with
 * some 1-byte runs). Output: the whole-message verdict, whether every split gave the
 * identical verdict (deepEqual), and the first differing split's verdict if not.
 * `rejects(verdict, actions)` is the harness's notion of "midstream refused it": a
 * non-clean verdict whose configured action is reject.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Engine, Verdict, Actions, SessionStats } from '../../src/core/index.js';
import { prng } from './hostile-gen.js';

export interface MidstreamResult {
  verdict: Verdict;
  stats: SessionStats;
  invariant: boolean;
  /** The first split verdict that differed, with its chunk sizes' seed. */
  differing?: { verdict: Verdict; splitSeed: number };
}

export async function verdictOf(engine: Engine, chunks: Iterable<Uint8Array>): Promise<{ verdict: Verdict; stats: SessionStats }> {
  const s = engine.begin();
  for (const c of chunks) await s.push(c);
  const verdict = await s.end();
  return { verdict, stats: s.stats };
}

/** Random split of `data`: sizes 1..4096, skewed small, with occasional byte-by-byte stretches. */
export function randomSplit(data: Uint8Array, rnd: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < data.length) {
    const r = rnd();
    const n = r < 0.15 ? 1 : r < 0.5 ? 1 + Math.floor(rnd() * 16) : 1 + Math.floor(rnd() * 4096);
    out.push(data.subarray(i, Math.min(data.length, i + n)));
    i += n;
  }
  return out;
}

export async function runMidstream(engine: Engine, raw: Uint8Array, rnd: () => number, splits = 2): Promise<MidstreamResult> {
  const whole = await verdictOf(engine, [raw]);
  const res: MidstreamResult = { verdict: whole.verdict, stats: whole.stats, invariant: true };
  for (let k = 0; k < splits; k++) {
    const splitSeed = Math.floor(rnd() * 2 ** 31);
    const v = (await verdictOf(engine, randomSplit(raw, prng(splitSeed)))).verdict;
    if (!isDeepStrictEqual(v, whole.verdict)) {
      res.invariant = false;
      res.differing = { verdict: v, splitSeed };
      break;
    }
  }
  return res;
}

export function rejects(v: Verdict, actions: Readonly<Actions>): boolean {
  return v.kind !== 'clean' && actions[v.kind] === 'reject';
}

export function tempfails(v: Verdict, actions: Readonly<Actions>): boolean {
  return v.kind !== 'clean' && actions[v.kind] === 'tempfail';
}

export function describe(v: Verdict): string {
  switch (v.kind) {
    case 'clean': return 'clean';
    case 'infected': return `infected ${v.name} (${v.where})`;
    case 'banned': return `banned ${v.reason} (${v.where})`;
    case 'limit': return `limit ${v.which} (${v.where})`;
    case 'anomaly': return `anomaly ${v.which} (${v.where})`;
    case 'unparseable': return `unparseable ${v.reason} (${v.where})`;
    case 'error': return `error ${v.errorKind} (${v.where})`;
  }
}
