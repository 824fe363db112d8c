/**
 * mime-readings.ts — runs every reading of one message: the first MimeSplitter and the
 * copies it forks where clients could split the bytes differently (mime-splitter.ts).
 *
 * Input: raw message bytes in any chunking, then end(). Output: each reading's events to
 * its own handler (the first reading's is the one given here; forks get theirs from
 * handler.onFork). Every reading is fed the same bytes; nothing holds the message.
 *
 * Why a scheduler: with one reading, decisions are taken as the bytes come (no cost). Once
 * there are several, the outcome must not depend on how the input was chunked, yet the
 * readings are fed one after the other. So every decision (a fork point, the start of a
 * part) waits until no reading can still reach an earlier stream position, and then the
 * waiting decisions run in (position, birth order) order. That makes the set of readings,
 * the cap below and the merging exact functions of the bytes:
 * - merge: at the start of a part, a reading in exactly the state another reading had at
 *   the same position reads the rest alike: it is dropped (its handler.onMerge names the
 *   reading that reads on for it);
 * - cap: at most maxReadings at once; a fork beyond it is refused and reported as the
 *   anomaly verdict `mime-readings` (a message built to be read too many ways).
 * Memory: per reading its splitter state; a reading waiting for its turn keeps the bytes
 * after its position, at most a delimiter carry of the caller's chunk (copied at the end
 * of write()); the merge log keeps one entry per part start not yet passed by all readings.
 */
import type { Limits } from '../limits.js';
import type { MimeHandler } from './mime-events.js';
import { MimeSplitter, type ReadingHost } from './mime-splitter.js';

/** Default cap on simultaneous readings of one message (and how it shrinks for nested messages). */
export const MAX_READINGS = 8;

function keyLess(a: readonly number[], b: readonly number[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k]! < b[k]!;
  return a.length < b.length;
}

export class MimeReadings implements ReadingHost {
  private readings: MimeSplitter[] = [];
  private offset = 0;
  private ended = false;
  multi = false;
  /** position → state signature → the reading that had it there first (made at the first sync). */
  private seen: Map<number, Map<string, MimeSplitter>> | null = null;
  /** A dropped reading → the one that reads on for it. */
  private heir: Map<MimeSplitter, MimeSplitter> | null = null;

  constructor(
    handler: MimeHandler,
    limits: Limits,
    private readonly maxReadings: number = MAX_READINGS,
    /** Told the number of readings alive whenever it changes, at the event that changes it. */
    private readonly onCount?: (n: number) => void,
  ) {
    this.readings.push(new MimeSplitter(handler, limits, this));
  }

  /** Readings alive (for tests and logs). */
  get count(): number {
    let n = 0;
    for (const r of this.readings) if (!r.dead) n++;
    return n;
  }

  /** Bytes held between writes by all readings (for the boundedness tests). */
  get carryBytes(): number {
    let n = 0;
    for (const r of this.readings) n += r.carryBytes;
    return n;
  }

  write(chunk: Uint8Array): void {
    if (this.ended || chunk.length === 0) return;
    const base = this.offset;
    this.offset += chunk.length;
    for (const r of this.readings) r.input(chunk, base);
    this.schedule();
    for (const r of this.readings) r.retain();
    this.prune();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const r of this.readings) r.startEnding();
    this.schedule();
    if (this.readings.length === 1) this.readings[0]!.finish();
    else for (const r of [...this.readings].sort((a, b) => (keyLess(a.key, b.key) ? -1 : 1))) r.finish();
    this.readings = [];
    this.seen = null;
  }

  // ---- ReadingHost --------------------------------------------------------------------

  canFork(): boolean {
    return this.count < this.maxReadings;
  }

  adopt(child: MimeSplitter): void {
    this.readings.push(child);
    this.multi = true;
    this.onCount?.(this.count);
  }

  died(): void {
    const n = this.count;
    if (n <= 1) this.multi = false;
    this.onCount?.(n);
  }

  sync(r: MimeSplitter, pos: number, sig: string): boolean {
    const seen = (this.seen ??= new Map());
    const heir = (this.heir ??= new Map());
    let at = seen.get(pos);
    if (!at) seen.set(pos, (at = new Map()));
    const first = at.get(sig);
    if (!first || first === r) {
      at.set(sig, r);
      return false;
    }
    let keep = first;
    while (keep.dead && heir.has(keep)) keep = heir.get(keep)!;
    heir.set(r, keep);
    keep.absorb(r);
    r.handler.onMerge?.(keep.handler);
    return true;
  }

  // ---- scheduling ---------------------------------------------------------------------

  private schedule(): void {
    for (;;) {
      // let every reading run until it waits for a decision or has used its input
      for (let k = 0; k < this.readings.length; k++) {
        const r = this.readings[k]!;
        if (!r.dead && !r.parked) r.run();
      }
      if (this.readings.some((r) => r.dead)) this.readings = this.readings.filter((r) => !r.dead);
      let next: MimeSplitter | null = null;
      for (const r of this.readings) {
        if (r.parked && (!next || r.parkPos < next.parkPos || (r.parkPos === next.parkPos && keyLess(r.key, next.key)))) next = r;
      }
      if (!next) return;
      // an earlier decision may still come from a reading that is behind (it waits for bytes)
      // (at the same position too: it may not have seen its decision there yet, e.g. a
      // delimiter candidate that waits for more bytes)
      for (const r of this.readings) {
        if (r === next || r.parked) continue;
        if (r.position < next.parkPos || (r.position === next.parkPos && !r.drained)) return;
      }
      if (next.pendingSync) {
        // every reading starting a part here compares itself before any of them reads on,
        // so the one kept has not run ahead of what it takes over from the ones dropped
        const at = next.parkPos;
        const group = this.readings.filter((r) => r.parked && r.parkPos === at && r.pendingSync);
        group.sort((a, b) => (keyLess(a.key, b.key) ? -1 : 1));
        for (const r of group) r.decideOnly();
      } else next.resume();
    }
  }

  private prune(): void {
    const seen = this.seen;
    if (seen === null || seen.size === 0) return;
    let min = Infinity;
    for (const r of this.readings) min = Math.min(min, r.position);
    for (const pos of seen.keys()) if (pos < min) seen.delete(pos);
  }
}
