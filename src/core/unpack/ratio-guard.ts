/**
 * ratio-guard.ts — the output accounting every decompressing unpacker shares.
 *
 * Decompressed bytes are admitted before they reach a member sink: `admit(n, scopes)`
 * returns how many of `n` bytes may pass without exceeding
 *   - budget.maxUnpackedBytes (per message, all archives)  → limit 'unpacked-bytes'
 *   - maxRatio × compressed input of each scope, once a scope's output is past
 *     ratioGraceBytes                                        → limit 'ratio'
 * and commits the counters. A short answer means a limit tripped (`tripped`).
 * Clamping to the exact allowance (rather than checking after the fact) makes the
 * emitted prefix independent of input chunking. Compressed input is counted only
 * at deterministic points (slices fed to a decompressor), never per write().
 * Only decompressor output is counted: tar members and zip stored entries are
 * bytes of the (already counted) input, not expansion.
 */
import type { LimitName } from '../types.js';
import type { UnpackBudget } from './unpack-types.js';

/** One compressed stream (a gzip stream, a zip entry, a whole zip, a bzip2 stream). */
export interface RatioScope {
  inBytes: number;
  outBytes: number;
}

export const newScope = (): RatioScope => ({ inBytes: 0, outBytes: 0 });

export class OutputGuard {
  tripped: LimitName | null = null;
  constructor(private readonly budget: UnpackBudget) {}

  /** How many of `n` output bytes may be emitted; counts them. Less than n ⇒ `tripped` is set. */
  admit(n: number, scopes: readonly RatioScope[]): number {
    if (this.tripped) return 0;
    const b = this.budget;
    let allowed = Math.max(0, b.maxUnpackedBytes - b.unpackedBytes);
    let which: LimitName = 'unpacked-bytes';
    for (const s of scopes) {
      const cap = Math.max(b.ratioGraceBytes, Math.floor(b.maxRatio * s.inBytes));
      const room = Math.max(0, cap - s.outBytes);
      if (room < allowed) {
        allowed = room;
        which = 'ratio';
      }
    }
    const take = Math.min(n, allowed);
    b.unpackedBytes += take;
    for (const s of scopes) s.outBytes += take;
    if (take < n) this.tripped = which;
    return take;
  }

  /** Count one archive entry; false (and `tripped`) once the per-message entry limit is passed. */
  countEntry(): boolean {
    if (this.tripped) return false;
    this.budget.entries++;
    if (this.budget.entries > this.budget.maxEntries) {
      this.tripped = 'archive-entries';
      return false;
    }
    return true;
  }
}
