/**
 * unpack-base.ts — the part every unpacker shares: member sinks, limits, stopping, and
 * which input bytes reach the members.
 *
 * Guarantees to the handler (all unpackers):
 *   - every sink returned by onEntry gets exactly one end(), also when the unpacker
 *     stops early (then its bytes are a prefix of the member);
 *   - at most one of onLimit / onCorrupt is called, once, before the open sink is
 *     ended; afterwards nothing more is emitted and further input is ignored;
 *   - entries (including encrypted and skipped ones) count against budget.entries.
 * And to the session (Unpacker.decided / unpackedRanges), in input positions: a byte is
 * marked as reaching the members only once that is certain — deflate data of a slice the
 * member's decompressor has inflated without a stop (InflateStream.settled: never what it
 * took past its stream's end, never the slice that hit a limit or damage), or stored data
 * handed to an open member sink as it is. Bytes taken but not yet inflated (a partial
 * slice) or not yet passed on (zip's descriptor look-behind) are undecided: `decided`
 * stays below them until a later write settles them. Every decision depends only on the
 * archive's bytes, so the marked set is the same for any chunking.
 * Positions: `drive` knows where each buffer it steps over lies in the input (a tail or a
 * replay taken back is always the bytes just before the current position).
 */
import type { ByteSink, LimitName } from '../types.js';
import type { InflateStream } from './inflate-stream.js';
import { OutputGuard, type RatioScope } from './ratio-guard.js';
import type { EntryMeta, UnpackBudget, UnpackHandler, Unpacker } from './unpack-types.js';

export abstract class UnpackerBase implements Unpacker {
  protected stopped = false;
  protected ended = false;
  protected readonly guard: OutputGuard;
  private sink: ByteSink | null = null;
  private entryOpen = false;
  /** Input bytes written so far (the position after the last one). */
  private written = 0;
  private decidedAt = 0;
  /** Ranges [start, end, …] (input positions) marked during the last write, each ≥ `floor`. */
  private readonly marks: number[] = [];
  /** `decided` before the last write: nothing below it may be marked any more. */
  private floor = 0;
  /** The buffer step() is reading and its first byte's input position. */
  private stepBuf: Uint8Array | null = null;
  private stepAt = 0;
  /** The decompressor of the member being inflated, where its data begins, and how far it is marked. */
  private stream: InflateStream | null = null;
  private streamAt = 0;

  constructor(
    protected readonly handler: UnpackHandler,
    budget: UnpackBudget,
  ) {
    this.guard = new OutputGuard(budget);
  }

  write(chunk: Uint8Array): void {
    this.marks.length = 0;
    this.floor = this.decidedAt;
    this.written += chunk.length;
    if (!this.stopped && !this.ended && chunk.length > 0) this.take(chunk);
    // Once stopped, nothing more reaches the members: every byte is decided.
    this.decidedAt = this.written - (this.stopped || this.ended ? 0 : this.undecided());
  }

  /** See Unpacker.decided. */
  get decided(): number {
    return this.decidedAt;
  }

  unpackedRanges(): readonly number[] {
    return this.marks;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.stopped) this.finish();
  }

  /** Read a chunk (written already counts it): the state machine over it, by default. */
  protected take(chunk: Uint8Array): void {
    this.drive(chunk);
  }

  /** Advance the format's state machine over buf from off; returns the new offset (it may equal off only on a state change). */
  protected abstract step(buf: Uint8Array, off: number): number;

  /**
   * If a decompressor has just finished, move the state machine past it and return the
   * bytes it had taken beyond its end (to be parsed before the rest of the input); else null.
   * Also any other bytes taken that must be parsed again: always the ones just before the
   * current position.
   */
  protected takeTail(): Uint8Array | null {
    return null;
  }

  /**
   * The decompressor step() feeds now, if its output goes to the open member and the
   * format may mark its input (a sniffed archive, not a speculative one); else null.
   */
  protected inflating(): InflateStream | null {
    return null;
  }

  /** Whether stored data handed to the open member may be marked (false in a speculative zip segment). */
  protected marking(): boolean {
    return true;
  }

  /** Member data taken from the end of the input but not passed on yet (zip's descriptor look-behind). */
  protected heldBack(): number {
    return 0;
  }

  /** Input position of buf[i] during step(). */
  protected posOf(i: number): number {
    return this.stepAt + i;
  }

  /**
   * Run the state machine over chunk, re-reading tails first (a stack, no recursion), and
   * mark what the member's decompressor has settled after each step.
   */
  protected drive(chunk: Uint8Array): void {
    const saved: Array<[Uint8Array, number, number]> = [];
    let buf = chunk;
    let off = 0;
    let at = this.written - chunk.length;
    while (!this.stopped) {
      const tail = this.takeTail();
      if (this.stopped) break;
      if (tail) {
        if (off < buf.length) saved.push([buf, off, at]);
        at += off - tail.length;
        buf = tail;
        off = 0;
        continue;
      }
      if (off >= buf.length) {
        const r = saved.pop();
        if (!r) break;
        [buf, off, at] = r;
        continue;
      }
      this.stepBuf = buf;
      this.stepAt = at;
      const inf = this.inflating();
      if (inf !== this.stream) {
        // A new stream's first step starts at its first byte.
        this.stream = inf;
        this.streamAt = at + off;
      }
      // (A member that stops in this step is still the one its settled slices reached.)
      const reads = inf !== null && this.sink !== null;
      off = this.step(buf, off);
      // Settled slices only: a slice that stopped the unpacker never is (so it is read as it is).
      if (reads && inf.settled > 0) this.mark(this.streamAt, this.streamAt + inf.settled);
    }
    this.stepBuf = null;
  }

  /** Bytes taken from the end of the input whose fate is not known yet. */
  private undecided(): number {
    if (this.sink === null) return 0;
    const inf = this.inflating();
    return (inf !== null ? inf.pending : 0) + this.heldBack();
  }

  /** Record [from, to) as reaching the members (only what is above `floor`: earlier bytes were read already). */
  private mark(from: number, to: number): void {
    const c = this.marks;
    if (from < this.floor) from = this.floor;
    const n = c.length;
    if (n > 0 && c[n - 1]! >= from) {
      if (to > c[n - 1]!) c[n - 1] = to;
    } else if (to > from) c.push(from, to);
  }
  /** Input ended: flush, validate completeness, close. */
  protected abstract finish(): void;

  /** Count and announce a member. False when the entry limit tripped (unpacker stopped). */
  protected openEntry(meta: EntryMeta): boolean {
    if (!this.guard.countEntry()) {
      this.trip();
      return false;
    }
    this.sink = this.handler.onEntry(meta);
    this.entryOpen = true;
    return true;
  }

  /** Count a member that has no bytes to scan (a directory). False when the entry limit tripped. */
  protected countOnly(): boolean {
    if (!this.guard.countEntry()) {
      this.trip();
      return false;
    }
    return true;
  }

  /** Announce an encrypted member (counted, never opened). False when the entry limit tripped. */
  protected encryptedEntry(meta: EntryMeta): boolean {
    if (!this.guard.countEntry()) {
      this.trip();
      return false;
    }
    this.handler.onEncrypted(meta);
    return true;
  }

  /** Decompressed bytes for the open member, through the guard. False once stopped. */
  protected emitExpanded(data: Uint8Array, scopes: readonly RatioScope[]): boolean {
    if (this.stopped) return false;
    const take = this.guard.admit(data.length, scopes);
    if (take > 0 && this.sink) this.sink.write(take === data.length ? data : data.subarray(0, take));
    if (take < data.length) {
      this.trip();
      return false;
    }
    return true;
  }

  /**
   * Bytes stored as-is (tar, zip stored/raw): not expansion, so not counted as unpacked.
   * `at`: their input position, when they are not a view of the buffer step() reads.
   */
  protected emitStored(data: Uint8Array, at?: number): void {
    if (this.stopped || !this.sink || !data.length) return;
    this.sink.write(data);
    if (!this.marking()) return;
    // A member reads these exact bytes: the session need not match them in the archive too.
    if (at === undefined) {
      const b = this.stepBuf;
      if (b === null || data.buffer !== b.buffer) return;
      const i = data.byteOffset - b.byteOffset;
      if (i < 0 || i + data.length > b.length) return;
      at = this.stepAt + i;
    }
    this.mark(at, at + data.length);
  }

  protected closeEntry(): void {
    const s = this.sink;
    this.sink = null;
    if (this.entryOpen) {
      this.entryOpen = false;
      s?.end();
    }
  }

  protected get hasOpenEntry(): boolean {
    return this.entryOpen;
  }

  /** Peer data is corrupt/truncated/unsupported: report once and stop. */
  protected corrupt(detail: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.handler.onCorrupt(detail);
    this.closeEntry();
  }

  private trip(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.handler.onLimit(this.guard.tripped as LimitName);
    this.closeEntry();
  }
}
