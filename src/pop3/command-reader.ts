/**
 * command-reader.ts — splits the client's byte stream into command lines.
 *
 * Input: client socket chunks (`push`), pulled as events with `next()`; the caller
 * handles each line (possibly asynchronously) before pulling the next, so pipelined
 * commands wait in the reader, not in a queue of ours. Output: `line` (without its line
 * ending; CRLF or a bare LF ends a line, a lone CR does not) or `too-long`.
 * Limits: a line longer than `maxLine` is discarded up to its LF and reported once as
 * `too-long`; the carry is at most `maxLine` bytes. `maxLine` can change between lines
 * (SASL responses may be longer than commands).
 * Errors: none thrown for peer input.
 */
const LF = 0x0a;
const CR = 0x0d;

export type CommandEvent = { type: 'line'; line: Buffer } | { type: 'too-long' };

export class CommandReader {
  private chunks: Buffer[] = [];
  private carry: Buffer[] = [];
  private carryLen = 0;
  private skipping = false;

  constructor(public maxLine = 8192) {}

  push(chunk: Buffer): void {
    if (chunk.length > 0) this.chunks.push(chunk);
  }

  /** Forget everything buffered (after STLS: what came in the clear is discarded). */
  reset(): void {
    this.chunks = [];
    this.carry = [];
    this.carryLen = 0;
    this.skipping = false;
  }

  /** Bytes waiting (unread chunks plus the partial line). */
  get buffered(): number {
    let n = this.carryLen;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  next(): CommandEvent | null {
    while (this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const j = c.indexOf(LF);
      if (j < 0) {
        this.chunks.shift();
        if (this.skipping) continue;
        this.carry.push(c);
        this.carryLen += c.length;
        if (this.carryLen > this.maxLine) return this.overflow();
        continue;
      }
      const rest = c.subarray(j + 1);
      if (rest.length > 0) this.chunks[0] = rest;
      else this.chunks.shift();
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      this.carry.push(c.subarray(0, j));
      this.carryLen += j;
      if (this.carryLen > this.maxLine + 1) {
        this.carry = [];
        this.carryLen = 0;
        return { type: 'too-long' };
      }
      let line = this.carry.length === 1 ? Buffer.from(this.carry[0]!) : Buffer.concat(this.carry);
      this.carry = [];
      this.carryLen = 0;
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      return { type: 'line', line };
    }
    return null;
  }

  private overflow(): CommandEvent {
    this.carry = [];
    this.carryLen = 0;
    this.skipping = true;
    return { type: 'too-long' };
  }
}
