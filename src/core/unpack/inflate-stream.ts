/**
 * inflate-stream.ts — raw DEFLATE decoding at native speed, synchronously, with bounded output.
 *
 * Input: compressed bytes in any chunking (push), then flush() at the known end of the
 * compressed data or of the input. Output: onData(piece) with pieces of at most OUT_BYTES,
 * in order; onData returning false stops everything (a limit tripped).
 *
 * Engine: node:zlib's own inflate (zlib in C), driven synchronously through the handle
 * that every zlib stream wraps. Chosen by benchmark (bench/inflate-eval.ts, RESULTS-core.md):
 * 5× fflate on text and ~15× on stored blocks, and 4× cheaper to start per stream; the
 * threadpool (zlib's async API) reaches only fflate's speed in 8 KiB steps and would break
 * the synchronous push model; fast-zlib wraps the same handle but concatenates every
 * result; zlib-sync needs a node-gyp build at install and cannot tell where a stream ends.
 *
 * Private internals (STYLE item 19): Node has no public synchronous streaming inflate, so
 * we use the handle of a public `zlib.createInflateRaw()` object: `_handle.writeSync(flush,
 * in, inOff, inLen, out, outOff, outLen)`, the `_writeState` pair [availOut, availIn] it
 * fills, and `_handle.onerror(message, errno)`, which it calls synchronously on a zlib
 * error. These have been stable since Node 10 (lib/zlib.js's own processChunkSync uses
 * them). Node cannot be pinned to an exact version beyond package.json's engines (≥ 20),
 * so selfCheck() below verifies every behaviour we rely on at import — if Node changes
 * them, importing this module throws (fail closed at startup) instead of mis-parsing
 * archives at run time.
 *
 * Bounds and chunk invariance: input is fed in slices of SLICE_BYTES aligned to the
 * stream's own offsets (a staging buffer carries partial slices), and each slice is
 * inflated into a fixed OUT_BYTES buffer, one piece at a time. So the sequence of
 * (onSlice, onData) calls — hence every ratio and size decision the caller makes — is
 * independent of how the caller chunked its input, and one piece is ≤ OUT_BYTES however
 * explosive the data (no output is ever held beyond one piece).
 *
 * Where the stream ends: zlib stops consuming input at the end of the final block. A
 * slice that is not fully consumed while output room remains means the stream ended;
 * its unconsumed bytes become `tail` (taken by push(), but not deflate data). A stream
 * that ends exactly at a slice boundary is noticed when the next slice brings nothing
 * zlib wants, or at flush(), which asks zlib with Z_FINISH and no input (zlib answers
 * Z_BUF_ERROR — harmless, state unchanged — when the stream is not complete).
 *
 * What is decided (for the archive-level skip, unpack-base.ts): `settled` counts the input
 * bytes of whole slices inflated without a stop, up to the stream's end — their output has
 * all been handed to onData; `pending` the bytes taken but not yet inflated (staged). A
 * slice that stopped (corrupt data, onData false) is never settled. Both are functions of
 * the stream's own offsets, never of the caller's chunking.
 *
 * Chunk ownership (chunk-ownership.ts): onData's piece is borrowed — a scratch buffer,
 * overwritten by the next piece.
 * Memory per stream: zlib state (~7 KiB) + its 32 KiB window, and a SLICE_BYTES staging
 * buffer once a partial slice must wait; output goes through a scratch buffer lent only
 * while a slice is inflated. A stream that finished (or stopped at a limit) hands its zlib
 * handle back, reset, to a process-wide pool of at most POOL_MAX: creating a zlib stream
 * object costs ~3.5 µs and a stream's worth of garbage, which was a tenth of the CPU of
 * a mail with 20 small attachments (an archive member each); a handle that saw an error
 * is closed, never reused.
 * Errors: corrupt deflate data → InflateError (the caller reports onCorrupt).
 */
import * as zlib from 'node:zlib';
import { SCRATCH_BYTES, giveScratch, takeScratch } from '../chunk-ownership.js';

/** Compressed bytes per slice: the granularity of the caller's ratio checks. */
export const SLICE_BYTES = 8192;
/** Largest output piece handed to onData (a scratch buffer, borrowed only during each feed). */
export const OUT_BYTES = SCRATCH_BYTES;

const Z_NO_FLUSH = zlib.constants.Z_NO_FLUSH;
const Z_FINISH = zlib.constants.Z_FINISH;
const Z_BUF_ERROR = zlib.constants.Z_BUF_ERROR;
const EMPTY = new Uint8Array(0);

export class InflateError extends Error {
  readonly code = 'INFLATE_CORRUPT';
}

/** The private surface of a zlib stream we rely on (checked by selfCheck). */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  close(): void;
  onerror: (message: string, errno: number) => void;
}
interface ZlibInternals {
  _handle: ZlibHandle | null;
  _writeState: Uint32Array;
}
interface ResettableHandle extends ZlibHandle {
  reset(): void;
}

/** A zlib handle, the [availOut, availIn] pair it fills, and the last error it reported. */
interface Engine {
  handle: ResettableHandle;
  state: Uint32Array;
  error: { message: string; errno: number } | null;
}

/** Reset handles ready for the next stream (per process, like the scratch buffers). */
const POOL_MAX = 8;
const pool: Engine[] = [];

function takeEngine(): Engine {
  const pooled = pool.pop();
  if (pooled) return pooled;
  // chunkSize is the public stream's own output buffer, which we never use: keep it minimal.
  const z = zlib.createInflateRaw({ chunkSize: zlib.constants.Z_MIN_CHUNK }) as unknown as ZlibInternals;
  const e: Engine = { handle: z._handle! as ResettableHandle, state: z._writeState, error: null };
  e.handle.onerror = (message, errno) => {
    e.error = { message, errno };
  };
  return e;
}

/** Hand a handle back: reset into the pool when it is healthy and there is room, else closed. */
function giveEngine(e: Engine): void {
  if (e.error === null && pool.length < POOL_MAX) {
    e.handle.reset();
    pool.push(e);
  } else e.handle.close();
}

export class InflateStream {
  /** The deflate stream's final block has been decoded. */
  done = false;
  /** After `done`: bytes that were taken by push() but lie after the deflate stream. */
  tail: Uint8Array = EMPTY;
  /** Input bytes inflated in whole slices without a stop (up to the stream's end): their output was all emitted. */
  settled = 0;
  private engine: Engine | null;
  private readonly state: Uint32Array;
  private stage: Uint8Array | null = null;
  private staged = 0;
  private halted = false;

  /**
   * @param onData receives each output piece (borrowed); return false to stop (limit tripped).
   * @param onSlice told the size of each compressed slice before it is inflated.
   */
  constructor(
    private readonly onData: (out: Uint8Array) => boolean,
    private readonly onSlice: (n: number) => void,
  ) {
    this.engine = takeEngine();
    this.state = this.engine.state;
  }

  /** Bytes taken by push() but not inflated yet (a partial slice waiting for the rest). */
  get pending(): number {
    return this.staged;
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
      const stage = (this.stage ??= new Uint8Array(SLICE_BYTES));
      const n = Math.min(SLICE_BYTES - this.staged, input.length - off);
      stage.set(input.subarray(off, off + n), this.staged);
      this.staged += n;
      off += n;
      if (this.staged === SLICE_BYTES) {
        this.staged = 0;
        this.feed(stage);
      }
    }
    return off;
  }

  /** Feed a partial slice (the known end of the compressed data, or end of input), then settle `done`. */
  flush(): void {
    if (this.done || this.halted) return;
    if (this.staged > 0) {
      const n = this.staged;
      this.staged = 0;
      this.feed(this.stage!.subarray(0, n));
      if (this.done || this.halted) return;
    }
    // Everything so far was consumed: ask whether the final block is complete.
    const out = takeScratch();
    const eng = this.engine!;
    try {
      eng.error = null;
      eng.handle.writeSync(Z_FINISH, EMPTY, 0, 0, out, 0, out.length);
      const err = eng.error as { message: string; errno: number } | null;
      if (err === null) {
        // Z_STREAM_END: complete (all output was taken by earlier feeds; emit any, defensively).
        const have = out.length - this.state[0]!;
        if (have > 0 && !this.emit(out.subarray(0, have))) return;
        this.finish(EMPTY);
      } else if (err.errno !== Z_BUF_ERROR) {
        this.fail(err.message);
      } else eng.error = null;
      // Z_BUF_ERROR: incomplete (truncated); zlib's state is unchanged, `done` stays false.
    } finally {
      giveScratch(out);
    }
  }

  /** Inflate one slice completely (all of it consumed, or the stream ended inside it). */
  private feed(slice: Uint8Array): void {
    this.onSlice(slice.length);
    const eng = this.engine!;
    const h = eng.handle;
    const st = this.state;
    const out = takeScratch();
    try {
      let inOff = 0;
      let avail = slice.length;
      for (;;) {
        h.writeSync(Z_NO_FLUSH, slice, inOff, avail, out, 0, out.length);
        if (eng.error !== null) this.fail(eng.error.message);
        const room = st[0]!;
        const left = st[1]!;
        inOff += avail - left;
        avail = left;
        const have = out.length - room;
        if (have > 0 && !this.emit(out.subarray(0, have))) return;
        if (room === 0) continue; // output full: more may be pending even without input
        // Output room left: zlib consumed all it could. Input left over means the final block ended.
        this.settled += inOff;
        if (avail > 0) this.finish(slice.subarray(inOff));
        return;
      }
    } finally {
      giveScratch(out);
    }
  }

  private emit(piece: Uint8Array): boolean {
    if (this.onData(piece)) return true;
    this.halted = true;
    this.release();
    return false;
  }

  private finish(rest: Uint8Array): void {
    this.done = true;
    // A copy (never Buffer#slice, which is a view): `rest` is the caller's chunk or our stage.
    this.tail = rest.length ? new Uint8Array(rest) : EMPTY;
    this.release();
  }

  private fail(message: string): never {
    this.halted = true;
    this.release();
    throw new InflateError(message || 'invalid deflate data');
  }

  /** Hand the zlib handle back (pooled, or closed: its memory is freed now rather than at the next GC). */
  private release(): void {
    if (this.engine) giveEngine(this.engine);
    this.engine = null;
    this.stage = null;
  }
}

/** Verify the zlib internals we rely on, once, at load: split input, tails, the end probe, corruption. */
function selfCheck(): void {
  const fail = (why: string): never => {
    throw new Error(`inflate-stream: node:zlib internals changed (${why}); cannot inflate synchronously`);
  };
  const sum = (d: Uint8Array, acc: number) => {
    for (let i = 0; i < d.length; i++) acc = (Math.imul(acc, 31) + d[i]!) | 0;
    return acc;
  };
  const run = (input: Uint8Array, cuts: number[]) => {
    let out = 0;
    let check = 0;
    const s = new InflateStream(
      (d) => {
        out += d.length;
        check = sum(d, check);
        return true;
      },
      () => undefined,
    );
    let taken = 0;
    let at = 0;
    for (const c of [...cuts, input.length]) {
      taken += s.push(input.subarray(at, c));
      at = c;
    }
    s.flush();
    return { s, out, check, taken };
  };
  const cat = (a: Uint8Array, b: Uint8Array) => {
    const r = new Uint8Array(a.length + b.length);
    r.set(a);
    r.set(b, a.length);
    return r;
  };
  // 1. Compressed data (several output pieces) and 3 foreign bytes, pushed in odd pieces.
  const payload = new Uint8Array(300_000).map((_, i) => (i % 251) ^ (i >> 11));
  const def = zlib.deflateRawSync(payload);
  const a = run(cat(def, new Uint8Array([0xaa, 0xbb, 0xcc])), [1, 5000, 5001, def.length - 2]);
  if (!a.s.done || a.out !== payload.length || a.check !== sum(payload, 0)) fail('output');
  if (a.taken !== def.length + 3 || a.s.tail.length !== 3 || a.s.tail[0] !== 0xaa || a.s.tail[2] !== 0xcc) fail('tail');
  // 2. One stored block ending exactly at a slice boundary (5-byte header + data = 2 slices).
  const len = 2 * SLICE_BYTES - 5;
  const stored = new Uint8Array(2 * SLICE_BYTES);
  stored.set([1, len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff]);
  for (let i = 5; i < stored.length; i++) stored[i] = i & 0xff;
  const b = run(stored, []); // settled by flush()'s Z_FINISH probe
  if (!b.s.done || b.out !== len || b.s.tail.length !== 0) fail('end at a slice boundary');
  const c = run(cat(stored, new Uint8Array(SLICE_BYTES).fill(7)), [3]); // settled by the next slice
  if (!c.s.done || c.out !== len || c.s.tail.length !== SLICE_BYTES || c.s.tail[0] !== 7) fail('end noticed by the next slice');
  const d = run(stored.subarray(0, stored.length - 1), []);
  if (d.s.done || d.out !== len - 1) fail('a truncated stream reported complete');
  // 2b. Handles come back reset: a stream stopped in the middle (onData false) and the
  // next stream, which gets that handle from the pool, still inflates from the start.
  const stop = new InflateStream(() => false, () => undefined);
  stop.push(def.subarray(0, SLICE_BYTES));
  const again = run(def, [SLICE_BYTES + 1]);
  if (!again.s.done || again.out !== payload.length || again.check !== sum(payload, 0)) fail('a pooled handle was not reset');
  // 3. Corrupt data throws InflateError.
  let threw = false;
  try {
    run(new Uint8Array([0xff, 0xff, 0xff, 0xff]), []);
  } catch (e) {
    threw = e instanceof InflateError;
  }
  if (!threw) fail('corrupt data not reported');
}
selfCheck();
