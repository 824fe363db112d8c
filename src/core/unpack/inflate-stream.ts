/**
 * inflate-stream.ts — raw DEFLATE decoding on top of fflate's Inflate, with bounded pushes.
 *
 * fflate cannot push back: one push() inflates everything its input allows, and a
 * deflate stream expands at most ~1032:1. So input is fed in slices of SLICE_BYTES,
 * aligned to the stream's own offsets (a small staging buffer carries partial slices),
 * which bounds the output of one push to ~1032 × SLICE_BYTES + 128 KiB (fflate's
 * per-symbol headroom) and makes the push sequence — hence every limit decision —
 * independent of how the caller chunked its input.
 *
 * Where the deflate stream ends is not part of fflate's public API; gzip members and
 * zip entries with data descriptors need it. We read two internal fields (state
 * `s.f`/`s.l`/`s.p`, pending input `p`) of fflate 0.8 and verify that reading at
 * module load with a known stream: if fflate changes, importing this module throws
 * (fail closed at startup) instead of mis-parsing archives at run time.
 *
 * Errors: corrupt deflate data → InflateError (the caller reports onCorrupt).
 */
import { Inflate, deflateSync } from 'fflate';

/** Compressed bytes per push: 8 KiB ⇒ ≤ ~8.4 MiB output per push (deflate's 1032:1 worst case). */
export const SLICE_BYTES = 8192;

export class InflateError extends Error {
  readonly code = 'INFLATE_CORRUPT';
}

interface FflateInternals {
  s: { f?: number; l?: unknown; p?: number };
  p: Uint8Array;
}

export class InflateStream {
  /** The deflate stream's final block has been decoded. */
  done = false;
  /** After `done`: bytes that were taken by push() but lie after the deflate stream. */
  tail: Uint8Array = new Uint8Array(0);
  private readonly inf: Inflate;
  private readonly stage = new Uint8Array(SLICE_BYTES);
  private staged = 0;
  private halted = false;
  private sinkError: unknown = null;

  /**
   * @param onData receives each output chunk; return false to stop (limit tripped).
   * @param onSlice told the size of each compressed slice before it is inflated.
   */
  constructor(
    private readonly onData: (out: Uint8Array) => boolean,
    private readonly onSlice: (n: number) => void,
  ) {
    this.inf = new Inflate((out: Uint8Array) => {
      if (this.halted || out.length === 0) return;
      try {
        if (!this.onData(out)) this.halted = true;
      } catch (e) {
        this.halted = true;
        this.sinkError = e ?? new Error('sink threw');
      }
    });
  }

  /** Take bytes from `input`; returns how many were taken (all, unless done/halted first). */
  push(input: Uint8Array): number {
    let off = 0;
    while (off < input.length && !this.done && !this.halted) {
      if (this.staged === 0 && input.length - off >= SLICE_BYTES) {
        this.feed(input.subarray(off, off + SLICE_BYTES));
        off += SLICE_BYTES;
        continue;
      }
      const n = Math.min(SLICE_BYTES - this.staged, input.length - off);
      this.stage.set(input.subarray(off, off + n), this.staged);
      this.staged += n;
      off += n;
      if (this.staged === SLICE_BYTES) {
        this.staged = 0;
        this.feed(this.stage);
      }
    }
    return off;
  }

  /** Feed a partial slice (the known end of the compressed data, or end of input). */
  flush(): void {
    if (this.staged > 0 && !this.done && !this.halted) {
      const n = this.staged;
      this.staged = 0;
      this.feed(this.stage.subarray(0, n));
    }
  }

  private feed(slice: Uint8Array): void {
    this.onSlice(slice.length);
    try {
      this.inf.push(slice, false);
    } catch (e) {
      if (this.sinkError === null) throw new InflateError((e as Error)?.message ?? 'invalid deflate data');
    }
    if (this.sinkError !== null) throw this.sinkError;
    const st = (this.inf as unknown as FflateInternals).s;
    if (st.f && !st.l) {
      this.done = true;
      const p = (this.inf as unknown as FflateInternals).p;
      // fflate keeps the pending input from byte floor(bitpos/8); a partial byte belongs to the stream.
      this.tail = p.slice(st.p ? 1 : 0);
    }
  }
}

/** Verify the fflate internals we rely on, once, at load. */
function selfCheck(): void {
  const payload = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
  const def = deflateSync(payload);
  const input = new Uint8Array(def.length + 3);
  input.set(def);
  input.set([0xaa, 0xbb, 0xcc], def.length);
  let out = 0;
  const s = new InflateStream((d) => ((out += d.length), true), () => undefined);
  const taken = s.push(input);
  s.flush();
  const t = s.tail;
  if (!s.done || taken !== input.length || out !== payload.length || t.length !== 3 || t[0] !== 0xaa || t[2] !== 0xcc)
    throw new Error('inflate-stream: fflate internals changed; cannot locate the end of a deflate stream');
}
selfCheck();
