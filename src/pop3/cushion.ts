/**
 * cushion.ts — the wire bytes of one RETR/TOP body that are held back from the client,
 * addressed by content offset (the un-dot-stuffed message bytes the core sees).
 *
 * Input: Pieces from the response reader (`add`), in order. Output: `take(upTo)` returns
 * the exact wire bytes (stuffing dots included) for content [released, upTo), without
 * copying the bodies; a piece straddling `upTo` is split, its dot going out with the
 * first half.
 * Tracks what a cut needs: whether the delivered content ends at a line start.
 * Limits: holds whatever it is given; the relay bounds it (hold_bytes). Errors: none.
 */
import type { Piece } from './response-reader.js';

const DOT = Uint8Array.of(0x2e);
const LF = 0x0a;

export class Cushion {
  private q: Piece[] = [];
  private head = 0;
  /** Content offset of the first held byte = content delivered so far. */
  released = 0;
  /** Content offset after the last held byte = content received so far. */
  received = 0;
  /** Wire bytes delivered (content plus stuffing dots). */
  wireOut = 0;
  /** The delivered content ends with LF (or nothing was delivered). */
  atLineStart = true;

  add(p: Piece): void {
    if (p.bytes.length === 0 && !p.dot) return;
    this.q.push(p);
    this.received += p.bytes.length;
  }

  /** Content bytes held. */
  get held(): number {
    return this.received - this.released;
  }

  /** Wire bytes for content up to `upTo` (clamped to what was received), in order. */
  take(upTo: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const limit = Math.min(upTo, this.received);
    while (this.head < this.q.length && this.released < limit) {
      const p = this.q[this.head]!;
      const room = limit - this.released;
      if (p.bytes.length <= room) {
        if (p.dot) out.push(DOT);
        if (p.bytes.length > 0) out.push(p.bytes);
        this.head++;
        this.note(p.bytes, p.dot);
        this.released += p.bytes.length;
      } else {
        const first = p.bytes.subarray(0, room);
        if (p.dot) out.push(DOT);
        out.push(first);
        this.note(first, p.dot);
        this.q[this.head] = { bytes: p.bytes.subarray(room), dot: false };
        this.released += room;
      }
    }
    // Dot-only pieces at the boundary (content 0) go out with the bytes they precede.
    if (this.head > 1024 || this.head === this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  private note(bytes: Uint8Array, dot: boolean): void {
    this.wireOut += bytes.length + (dot ? 1 : 0);
    if (bytes.length > 0) this.atLineStart = bytes[bytes.length - 1] === LF;
    else if (dot) this.atLineStart = false;
  }

  /** Forget what is held (after a cut). */
  drop(): void {
    this.q = [];
    this.head = 0;
    this.released = this.received;
  }
}
