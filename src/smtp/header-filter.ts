/**
 * header-filter.ts — the proxy's only change to message bytes: the top-level header block,
 * as it streams past. The DATA path hands every chunk to push() and forwards what comes
 * back; once the header block has ended, push() returns its input untouched (no copy).
 *
 * Input: the message as CRLF (or bare-LF) lines in pieces of any size — the client's
 * dot-stuffed wire bytes or the unstuffed content, both work: a stuffed line starts with
 * "." and no header name we act on does. Output: the pieces to forward, where
 *   - fields named in `remove` are dropped with their continuation lines;
 *   - fields named in `rename` get the new name, value and continuation lines kept;
 *   - everything else passes unchanged, as views of the input (no copy).
 * prelude() gives the header lines to write first (ours: X-Virus-Scanned, the ticket of
 * the after-filter milter, proxy.add_header), before any byte of the message.
 * A field name matches case-insensitively, with optional blanks before the colon (the
 * obsolete syntax readers still accept). The header block ends at the first empty line;
 * lines before it that are not fields are kept and filtering goes on (a reader may still
 * take a later forged field as a header).
 * Limits: holds at most MAX_HELD bytes between pushes (a candidate name and the blanks
 * after it); a name followed by more blanks than that is treated as a match (fail safe:
 * the field is dropped/renamed rather than passed). capture() keeps a copy of the original
 * header block up to `captureBytes` (for notices), 0 = none.
 * Errors: none; any byte sequence is filtered. Gaps: only the top-level header block
 * (fields of attached messages are content, scanned but not rewritten).
 */

export interface HeaderFilterOptions {
  /** Header lines written before the message (CRLF-terminated), or null. */
  prelude: Buffer | null;
  /** Field names to drop (any case). */
  remove: readonly string[];
  /** Field names to rename: name (any case) → new name. */
  rename: ReadonlyMap<string, string>;
  /** Copy of the original header block kept for notices, in bytes; 0 = none. */
  captureBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const MAX_BLANKS = 64;

type State =
  | 'line-start' // at the first byte of a header-block line
  | 'cr-start' // a line began with CR: an empty line if LF follows
  | 'name' // collecting a field name we might act on (held)
  | 'blanks' // a full candidate name, then blanks (held)
  | 'keep' // inside a line that passes
  | 'drop' // inside a dropped field (and its continuation lines)
  | 'body'; // after the header block: everything passes

export class HeaderFilter {
  private state: State = 'line-start';
  private held: number[] = [];
  /** Length of the name part of `held` once a candidate name ended. */
  private nameLen = 0;
  /** The field being passed was renamed or dropped: continuation lines follow suit. */
  private lastField: 'keep' | 'drop' = 'keep';
  private readonly targets: Map<string, { drop: boolean; to?: Buffer }>;
  private readonly longest: number;
  private cap: Buffer | null;
  private capLen = 0;
  private capFull = false;

  constructor(private readonly opts: HeaderFilterOptions) {
    this.targets = new Map();
    for (const n of opts.remove) this.targets.set(n.toLowerCase(), { drop: true });
    for (const [n, to] of opts.rename) if (!this.targets.has(n.toLowerCase())) this.targets.set(n.toLowerCase(), { drop: false, to: Buffer.from(to, 'latin1') });
    this.longest = Math.max(0, ...[...this.targets.keys()].map((k) => k.length));
    this.cap = opts.captureBytes > 0 ? Buffer.alloc(Math.min(opts.captureBytes, 1 << 20)) : null;
    if (this.targets.size === 0 && !this.cap) this.state = 'body';
  }

  /** Our header lines, to be written before the first byte of the message. */
  prelude(): readonly Uint8Array[] {
    return this.opts.prelude ? [this.opts.prelude] : [];
  }

  /** Still inside the top-level header block. */
  get inHeader(): boolean {
    return this.state !== 'body';
  }

  /** The original header block as far as captured (latin1), and whether it was cut. */
  captured(): { text: string; truncated: boolean } {
    return { text: this.cap ? this.cap.toString('latin1', 0, this.capLen) : '', truncated: this.capFull };
  }

  /** Filter one chunk's pieces; returns the pieces to forward (the same array once past the header block). */
  push(pieces: readonly Uint8Array[]): readonly Uint8Array[] {
    if (this.state === 'body') return pieces;
    const out: Uint8Array[] = [];
    for (const p of pieces) {
      // piece() may have reached the body (TypeScript keeps the narrowing above: re-read).
      if ((this.state as State) === 'body') out.push(p);
      else this.piece(p, out);
    }
    return out;
  }

  /** Keep p[0..to) of the original header block for notices (bounded). */
  private capture(p: Uint8Array, to: number): void {
    const cap = this.cap;
    if (!cap || this.capFull || to <= 0) return;
    const n = Math.min(to, cap.length - this.capLen);
    cap.set(p.subarray(0, n), this.capLen);
    this.capLen += n;
    if (n < to) this.capFull = true;
  }

  /** One input piece: emit views of it (and, for fields we act on, small buffers of ours) into `out`. */
  private piece(p: Uint8Array, out: Uint8Array[]): void {
    let i = 0;
    /** Start of the current run that passes unchanged (a view of p). */
    let run = 0;
    /** Where this line's candidate name starts in p (0 when it began in an earlier piece: then `held`). */
    let cand = 0;
    const flush = (to: number) => {
      if (to > run) out.push(p.subarray(run, to));
      run = to;
    };
    /** Bytes of the candidate so far: carried ones, then this piece's. */
    const candLen = () => this.held.length + (i - cand);
    const n = p.length;
    while (i < n) {
      switch (this.state) {
        case 'line-start': {
          const c = p[i]!;
          if (c === LF) {
            // Bare-LF empty line: the header block ends here.
            return this.toBody(p, i + 1, run, out);
          }
          if (c === CR) {
            this.state = 'cr-start';
            i++;
            continue;
          }
          if (c === SP || c === HT) {
            // A continuation line follows its field.
            if (this.lastField === 'drop') {
              flush(i);
              this.state = 'drop';
            } else this.state = 'keep';
            continue;
          }
          this.lastField = 'keep';
          if (this.targets.size === 0) {
            this.state = 'keep';
            continue;
          }
          // A candidate: its bytes stay in the run unless we act on the field.
          cand = i;
          this.held = [];
          this.state = 'name';
          continue;
        }
        case 'cr-start': {
          if (p[i] === LF) return this.toBody(p, i + 1, run, out);
          // A line starting with a bare CR: not a field we act on.
          this.lastField = 'keep';
          this.state = 'keep';
          continue;
        }
        case 'name': {
          const c = p[i]!;
          if (c === COLON || c === SP || c === HT) {
            if (this.targets.has(this.candidate(p, cand, i).toLowerCase())) {
              this.nameLen = candLen();
              this.state = 'blanks';
              continue; // the blanks state reads this byte
            }
          } else if (c !== LF && c !== CR && candLen() < this.longest) {
            i++;
            continue;
          }
          // Not a field we act on: carried bytes go out first, this piece's stay in the run.
          this.release(out);
          this.state = 'keep';
          continue;
        }
        case 'blanks': {
          const c = p[i]!;
          if (c === COLON || candLen() - this.nameLen >= MAX_BLANKS) {
            flush(cand);
            this.act(p, cand, i, out);
            if (this.lastField === 'drop') {
              this.state = 'drop';
              continue; // drop reads this byte
            }
            run = i;
            this.state = 'keep';
            continue;
          }
          if (c === SP || c === HT) {
            i++;
            continue;
          }
          // A name, blanks, then no colon: not a field.
          this.release(out);
          this.state = 'keep';
          continue;
        }
        case 'keep': {
          const lf = p.indexOf(LF, i);
          i = lf < 0 ? n : lf + 1;
          if (lf >= 0) this.state = 'line-start';
          continue;
        }
        case 'drop': {
          const lf = p.indexOf(LF, i);
          i = lf < 0 ? n : lf + 1;
          run = i;
          if (lf >= 0) this.state = 'line-start';
          continue;
        }
        case 'body':
          // Unreachable: toBody returns.
          return;
      }
    }
    this.capture(p, n);
    if (this.state === 'name' || this.state === 'blanks') {
      // Undecided at the end of the piece: carry the candidate's bytes (a copy) to the next.
      flush(cand);
      for (let k = cand; k < n; k++) this.held.push(p[k]!);
      return;
    }
    if (this.state !== 'drop') flush(n);
  }

  /** The candidate's text: carried bytes plus p[from..to). */
  private candidate(p: Uint8Array, from: number, to: number): string {
    let t = this.held.length ? latin1(this.held) : '';
    for (let k = from; k < to; k++) t += String.fromCharCode(p[k]!);
    return t;
  }

  /** The empty line ending the header block ends just before `end`: forward the rest of the piece untouched. */
  private toBody(p: Uint8Array, end: number, run: number, out: Uint8Array[]): void {
    this.capture(p, end);
    this.state = 'body';
    if (p.length > run) out.push(run === 0 ? p : p.subarray(run));
  }

  /** Not a field we act on: bytes carried from earlier pieces go out as they were (this piece's are in the run). */
  private release(out: Uint8Array[]): void {
    if (this.held.length > 0) out.push(Buffer.from(this.held));
    this.held = [];
  }

  /** A field we act on (candidate = carried bytes + p[from..to)): drop it, or forward its new name and the blanks. */
  private act(p: Uint8Array, from: number, to: number, out: Uint8Array[]): void {
    const all = Buffer.concat([Buffer.from(this.held), p.subarray(from, to)]);
    const t = this.targets.get(all.toString('latin1', 0, this.nameLen).toLowerCase())!;
    if (t.drop) this.lastField = 'drop';
    else {
      out.push(Buffer.concat([t.to!, all.subarray(this.nameLen)]));
      this.lastField = 'keep';
    }
    this.held = [];
  }
}

function latin1(bytes: readonly number[]): string {
  return String.fromCharCode(...bytes);
}
