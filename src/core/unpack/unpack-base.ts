/**
 * unpack-base.ts — the part every unpacker shares: member sinks, limits, stopping.
 *
 * Guarantees to the handler (all unpackers):
 *   - every sink returned by onEntry gets exactly one end(), also when the unpacker
 *     stops early (then its bytes are a prefix of the member);
 *   - at most one of onLimit / onCorrupt is called, once, before the open sink is
 *     ended; afterwards nothing more is emitted and further input is ignored;
 *   - entries (including encrypted and skipped ones) count against budget.entries.
 * And to the session: after write(chunk), unpackedIn(chunk) lists the ranges of that
 * chunk whose content reaches the members — handed to a decompressor, or passed on as
 * stored data (see Unpacker.unpackedIn).
 */
import type { ByteSink, LimitName } from '../types.js';
import { OutputGuard, type RatioScope } from './ratio-guard.js';
import type { EntryMeta, UnpackBudget, UnpackHandler, Unpacker } from './unpack-types.js';

const NONE: readonly number[] = [];

export abstract class UnpackerBase implements Unpacker {
  protected stopped = false;
  protected ended = false;
  protected readonly guard: OutputGuard;
  private sink: ByteSink | null = null;
  private entryOpen = false;
  /** Ranges [start, end, …] of `rangesOf` (the last chunk driven) that went into a decompressor. */
  private readonly ranges: number[] = [];
  private rangesOf: Uint8Array | null = null;
  /** The chunk being driven: stored data handed on from it is recorded too. */
  private input: Uint8Array | null = null;

  constructor(
    protected readonly handler: UnpackHandler,
    budget: UnpackBudget,
  ) {
    this.guard = new OutputGuard(budget);
  }

  write(chunk: Uint8Array): void {
    if (this.stopped || this.ended || chunk.length === 0) return;
    this.drive(chunk);
  }

  unpackedIn(chunk: Uint8Array): readonly number[] {
    return chunk === this.rangesOf ? this.ranges : NONE;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.stopped) this.finish();
  }

  /** Advance the format's state machine over buf from off; returns the new offset (it may equal off only on a state change). */
  protected abstract step(buf: Uint8Array, off: number): number;

  /**
   * If a decompressor has just finished, move the state machine past it and return the
   * bytes it had taken beyond its end (to be parsed before the rest of the input); else null.
   */
  protected takeTail(): Uint8Array | null {
    return null;
  }

  /** True while step() hands its input to a decompressor (the deflate data of a member). */
  protected compressing(): boolean {
    return false;
  }

  /**
   * Run the state machine over chunk, re-reading decompressor tails first (a stack, no recursion).
   * Steps over `chunk` itself (not tails) in a compressing state are recorded (unpackedIn).
   */
  protected drive(chunk: Uint8Array): void {
    const input = chunk;
    this.rangesOf = chunk;
    this.ranges.length = 0;
    this.input = chunk;
    const saved: Array<[Uint8Array, number]> = [];
    let buf = chunk;
    let off = 0;
    while (!this.stopped) {
      const tail = this.takeTail();
      if (this.stopped) return;
      if (tail) {
        // The tail's bytes were taken by the last step but lie after the stream: not compressed.
        if (buf === input) this.unmarkUnpacked(tail.length, off);
        if (off < buf.length) saved.push([buf, off]);
        buf = tail;
        off = 0;
        continue;
      }
      if (off >= buf.length) {
        const r = saved.pop();
        if (!r) return;
        [buf, off] = r;
        continue;
      }
      const mark = buf === input && this.compressing();
      const from = off;
      off = this.step(buf, off);
      // A step that stopped the unpacker (damage, a limit) may not have decoded its input: unmarked.
      if (mark && off > from && !this.stopped) this.markUnpacked(from, off);
    }
  }

  /** Take back the last `n` bytes before `end` (as far as they were recorded in this chunk). */
  private unmarkUnpacked(n: number, end: number): void {
    const c = this.ranges;
    if (c.length === 0 || c[c.length - 1] !== end) return;
    const start = c[c.length - 2]!;
    if (end - n > start) c[c.length - 1] = end - n;
    else c.length -= 2;
  }

  private markUnpacked(from: number, to: number): void {
    const c = this.ranges;
    if (c.length > 0 && c[c.length - 1] === from) c[c.length - 1] = to;
    else if (c.length === 0 || c[c.length - 1]! < from) c.push(from, to);
    // (an overlapping or earlier range cannot happen in one forward pass; ignored if it did)
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

  /** Bytes stored as-is (tar, zip stored/raw): not expansion, so not counted as unpacked. */
  protected emitStored(data: Uint8Array): void {
    if (this.stopped || !this.sink || !data.length) return;
    this.sink.write(data);
    // A member reads these exact bytes: the session need not match them in the archive too.
    const inp = this.input;
    if (inp !== null && data.buffer === inp.buffer) {
      const from = data.byteOffset - inp.byteOffset;
      if (from >= 0 && from + data.length <= inp.length) this.markUnpacked(from, from + data.length);
    }
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
