/**
 * tail-match.ts — EOF-anchored body signatures (`EOF-n[,shift]`), decided at end().
 *
 * Such a signature starts in [size-n, size-n+shift], so all its bytes lie in the
 * last n bytes of the file. TailBuffer keeps the last `capacity` bytes (capacity =
 * the largest n loaded, ≤ MAX_EOF_DISTANCE); at end() matchEofSig() searches the
 * tail with a memoised depth-first walk over segments and gaps.
 * Cost at end(): O(segments × tail × forms × form length) worst case, per signature.
 */
import type { BodySig } from './ndb-parse.js';
import { matchForm } from './matcher.js';

/** The last `capacity` bytes of a stream. */
export class TailBuffer {
  private readonly buf: Uint8Array;
  private len = 0;
  private total = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  push(chunk: Uint8Array): void {
    const cap = this.buf.length;
    this.total += chunk.length;
    if (cap === 0) return;
    const n = chunk.length;
    if (n >= cap) {
      this.buf.set(chunk.subarray(n - cap));
      this.len = cap;
    } else {
      const keep = Math.min(this.len, cap - n);
      this.buf.copyWithin(0, this.len - keep, this.len);
      this.buf.set(chunk, keep);
      this.len = keep + n;
    }
  }

  /** Bytes held (the file's last `bytes.length` bytes) and the file size. */
  view(): { bytes: Uint8Array; size: number } {
    return { bytes: this.buf.subarray(0, this.len), size: this.total };
  }
}

/** Does EOF-anchored `sig` match a file of `size` bytes whose tail is `tail`? */
export function matchEofSig(sig: BodySig, tail: Uint8Array, size: number): boolean {
  if (sig.offset.kind !== 'eof') return false;
  const tailBase = size - tail.length; // absolute offset of tail[0]
  const lo = Math.max(size - sig.offset.n, 0, tailBase);
  const hi = Math.min(size - sig.offset.n + sig.offset.shift, size - 1);
  const K = sig.segments.length;
  const tried = new Set<number>(); // k * (tail.length + 1) + rel start: already explored, failed

  const trySeg = (k: number, sLo: number, sHi: number): boolean => {
    const seg = sig.segments[k]!;
    const top = Math.min(sHi, size - 1);
    for (let s = Math.max(sLo, tailBase); s <= top; s++) {
      const memo = k * (tail.length + 1) + (s - tailBase);
      if (tried.has(memo)) continue;
      tried.add(memo);
      for (const f of seg.forms) {
        const len = f.vals.length;
        if (s + len > size) continue;
        if (!matchForm(f.vals, f.masks, 0, len, f.checks, tail, s - tailBase)) continue;
        if (k === K - 1) return true;
        const next = sig.segments[k + 1]!;
        const e = s + len - 1;
        if (trySeg(k + 1, e + 1 + next.gapMin, e + 1 + Math.min(next.gapMax, size))) return true;
      }
    }
    return false;
  };
  return lo <= hi && trySeg(0, lo, hi);
}
