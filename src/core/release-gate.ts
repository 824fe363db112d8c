/**
 * release-gate.ts — for fronts that deliver a message while it is still being scanned
 * (POP3): how far the raw input may be delivered, and where the MIME structure sits so
 * that a message cut short can be closed properly.
 *
 * The guarantee behind `releasable`: no detection still to come can have its evidence
 * in raw bytes below it. Evidence is: the last form of a body signature (the engine's
 * `reach`, e.g. maxFormLen-1 bytes before the byte that completes it, or the last n
 * bytes of an `EOF-n` signature); the end of a file (hash signatures: a file is held
 * back by at least its reach until its end has been scanned); a file's first
 * HEAD_BYTES (the type sniff); the whole file for engines that only answer at its end
 * (clamd, or built-in with an allow-list loaded); the whole message for clamd
 * whole-message mode; an incomplete header block; the last ZIP_TAIL bytes of any file
 * read for zips (a zip is also decided from its end record). A front that cuts the message at or
 * below `releasable` when a rejecting verdict arrives therefore never delivers a
 * complete match, a complete file that a hash names, or any of a file banned by type.
 *
 * How it is computed (session.ts, on demand): every open sink reports `safeIn()`, the
 * offset in its own input below which it holds nothing back; every decoding step maps
 * that to its own input through an OffsetMap of checkpoints (input position after a
 * write → output count after it), so the mapping is exact whatever the encoding does
 * (base64 with junk between the characters, QP soft breaks, deflate blocks that yield
 * nothing): a checkpoint says "input below P can yield at most N output bytes".
 *   - transfer decoders: a checkpoint after each part-data slice; `slack` = output a
 *     decoder can still owe for input it has taken (base64 ≤ 2 bytes, QP ≤ its pending
 *     escape), see DECODER_SLACK;
 *   - archives: a checkpoint after each unpacker write at (input − UNPACK_LAG[format]):
 *     the input an unpacker may have taken without emitting its output (inflate staging
 *     and a stored deflate block; bzip2's block carry);
 *   - nested messages: their own splitter, mapped like any part.
 * Ended files whose results are still pending keep their floor until they settle.
 *
 * Bounds: an OffsetMap keeps ≤ MAX_CHECKPOINTS entries (dropping entries only moves
 * answers down, never up, so it stays safe). What the front holds is its business
 * (bounded by its own configuration); this module holds no message bytes.
 * Gaps: uuencoded blocks inside text are held whole until they end (no inner mapping);
 * UNPACK_LAG is a bound per format, not the unpacker's actual carry, so archives
 * (bzip2 above all: 8.5 MiB) are held longer than strictly needed.
 */

/** Where a header block or a body begins, for cutting a message short. Offsets are raw input offsets. */
export interface StructureEvent {
  /** 'header': a header block begins (the top-level one at offset 0 is not reported); 'body': a body (leaf, preamble or epilogue) begins. */
  kind: 'header' | 'body';
  offset: number;
  /** MIME path of the entity (IMAP numbering, as in verdicts). */
  path: string;
  /** Delimiters (`--` + boundary) of the multiparts open here, outermost first. */
  delimiters: readonly string[];
  /** The body's Content-Transfer-Encoding, lower case ('' for none / header blocks). */
  encoding: string;
}

/**
 * A session's release gate. Structure is reported only where it is visible in the raw
 * bytes: the top-level message and attached messages that are not transfer-encoded.
 */
export interface ReleaseGate {
  /**
   * Raw offset (bytes pushed) below which bytes may be delivered now. Never decreases;
   * frozen once a verdict whose action is not `accept` has come (final or not): at the
   * start of the entity it came from, when everything before it has settled.
   */
  readonly releasable: number;
  /** Every StructureEvent, in input order, from the next push on. */
  onStructure(cb: (e: StructureEvent) => void): void;
}

/** What each sink of the session tree reports (its own input coordinates). */
export interface Holding {
  /** Bytes written to this sink so far. */
  readonly inCount: number;
  /** Input offset below which this sink holds nothing back. */
  safeIn(): number;
  /** Ended, and every result for its bytes is in. */
  settled(): boolean;
}

/** Output a transfer decoder can still owe for input it has taken (base64: 3 pending sextets → 2 bytes; QP: a pending `=` + padding). */
export const DECODER_SLACK: Readonly<Record<string, number>> = Object.freeze({ base64: 2, 'quoted-printable': 72 });

/**
 * Input an unpacker may have taken without emitting what it yields. zip/gzip: one 8 KiB
 * inflate staging slice + fflate's pending input (a stored block of ≤ 64 KiB, a dynamic
 * block header) + descriptor look-behind; tar: none for content (headers carry no
 * content), 1 KiB for safety; bzip2: its block carry (MAX_CARRY 8 MiB + one write piece).
 */
export const UNPACK_LAG: Readonly<Record<string, number>> = Object.freeze({
  gzip: 80 * 1024,
  zip: 80 * 1024,
  tar: 1024,
  bzip2: 8 * 1024 * 1024 + 512 * 1024,
});

/**
 * A zip is decided at its end too (central directory against the local headers, an
 * archive hidden in the comment): its last 64 KiB comment + 22-byte end record (and
 * whatever a client would search for them) stay held until the end has been read, so a
 * cut always takes the end record away and no central-directory reader opens the rest.
 */
export const ZIP_TAIL = 65_535 + 22 + 64;

const MAX_CHECKPOINTS = 2048;

/**
 * Checkpoints (input position, output count) of one decoding step, both non-decreasing.
 * `inputFor(n)`: the largest input position whose output, plus slack, is ≤ n — input
 * below it cannot yield more than n output bytes. `floor` is where the output began.
 */
export class OffsetMap {
  private pos: number[] = [];
  private out: number[] = [];

  constructor(
    readonly floor: number,
    private readonly slack = 0,
  ) {}

  add(position: number, output: number): void {
    const n = this.pos.length;
    if (n > 0 && this.out[n - 1] === output) {
      // same output, later position: the later one answers the same queries better
      if (position > this.pos[n - 1]!) this.pos[n - 1] = position;
      return;
    }
    this.pos.push(position);
    this.out.push(output);
    if (this.pos.length > MAX_CHECKPOINTS) {
      // drop every other entry (oldest first): answers can only move down
      this.pos = this.pos.filter((_, i) => i % 2 === 1);
      this.out = this.out.filter((_, i) => i % 2 === 1);
    }
  }

  inputFor(output: number): number {
    const limit = output - this.slack;
    let lo = 0;
    let hi = this.out.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.out[mid]! <= limit) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? this.floor : Math.max(this.floor, this.pos[best]!);
  }
}
