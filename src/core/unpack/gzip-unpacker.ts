/**
 * gzip-unpacker.ts — push state machine for gzip (RFC 1952), including multi-member.
 *
 * Input: the gzip bytes, any chunking. Output: one entry (concatenated members are one
 * stream, as gunzip treats them), named from the first member's FNAME ('' if none).
 * Header fields FEXTRA/FNAME/FCOMMENT/FHCRC are parsed and skipped; only FNAME's first
 * MAX_NAME_BYTES are kept. Reserved FLG bits are ignored as Python's gzip does (zlib
 * refuses them; the content is what a client extracts either way): anomaly
 * `gzip-reserved-flags`, recorded only. Each member's CRC-32 and ISIZE are verified.
 * Limits: unpacked-bytes and ratio (the whole gzip stream is one ratio scope),
 * archive-entries (the single entry counts). Carry: ≤ 10 header bytes + ≤ 1 KiB name
 * + the inflate staging slice.
 * Errors (onCorrupt): bad magic/method, corrupt deflate, CRC/size
 * mismatch, truncation, non-zero trailing data (zero padding is tolerated).
 * Gaps: FHCRC is not verified; FNAME is decoded as latin-1 (RFC 1952 says ISO 8859-1).
 */
import { crc32 } from './crc32.js';
import { InflateError, InflateStream } from './inflate-stream.js';
import { newScope } from './ratio-guard.js';
import { UnpackerBase } from './unpack-base.js';
import type { UnpackBudget, UnpackHandler } from './unpack-types.js';

const MAX_NAME_BYTES = 1024;
const FLG = { FTEXT: 1, FHCRC: 2, FEXTRA: 4, FNAME: 8, FCOMMENT: 16, RESERVED: 0xe0 } as const;

const enum S {
  Header, // 10 fixed bytes
  ExtraLen,
  Extra,
  Name,
  Comment,
  HeaderCrc,
  Data,
  Trailer,
  Between, // after a member: another member, zero padding, or the end
  ZeroPad,
}

export class GzipUnpacker extends UnpackerBase {
  private state = S.Header;
  private readonly hdr = new Uint8Array(10);
  private have = 0;
  private need = 10;
  private flags = 0;
  private skip = 0;
  private readonly nameBuf = new Uint8Array(MAX_NAME_BYTES);
  private nameLen = 0;
  private members = 0;
  private inflate: InflateStream | null = null;
  private crc = 0;
  private size = 0;
  private readonly scope = newScope();

  constructor(handler: UnpackHandler, budget: UnpackBudget) {
    super(handler, budget);
  }

  protected override inflating(): InflateStream | null {
    return this.state === S.Data ? this.inflate : null;
  }

  protected override takeTail(): Uint8Array | null {
    if (this.state !== S.Data || !this.inflate?.done) return null;
    const tail = this.inflate.tail;
    this.inflate = null;
    this.expect(S.Trailer, 8);
    return tail;
  }

  /** Advance the state machine over buf from i; returns the new offset. */
  protected step(buf: Uint8Array, i: number): number {
    switch (this.state) {
      case S.Header:
      case S.ExtraLen:
      case S.HeaderCrc:
      case S.Trailer: {
        const n = Math.min(this.need - this.have, buf.length - i);
        this.hdr.set(buf.subarray(i, i + n), this.have);
        this.have += n;
        if (this.have === this.need) this.fixedDone();
        return i + n;
      }
      case S.Extra: {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n;
        if (this.skip === 0) this.afterExtra();
        return i + n;
      }
      case S.Name:
      case S.Comment: {
        let j = i;
        while (j < buf.length && buf[j] !== 0) j++;
        if (this.state === S.Name) {
          const n = Math.min(j - i, MAX_NAME_BYTES - this.nameLen);
          if (this.members === 0 && n > 0) this.nameBuf.set(buf.subarray(i, i + n), this.nameLen);
          this.nameLen += n;
        }
        if (j < buf.length) {
          if (this.state === S.Name) this.afterName();
          else this.afterComment();
          return j + 1;
        }
        return j;
      }
      case S.Data: {
        const inf = this.inflate!;
        try {
          return i + inf.push(buf.subarray(i));
        } catch (e) {
          if (e instanceof InflateError) this.corrupt('gzip: ' + e.message);
          else throw e;
          return buf.length;
        }
      }
      case S.Between: {
        if (buf[i] === 0x1f) {
          this.expect(S.Header, 10);
          return i;
        }
        if (buf[i] === 0) {
          this.state = S.ZeroPad;
          return i;
        }
        this.corrupt('gzip: trailing data after member');
        return buf.length;
      }
      case S.ZeroPad: {
        for (let j = i; j < buf.length; j++)
          if (buf[j] !== 0) {
            this.corrupt('gzip: trailing data after zero padding');
            return buf.length;
          }
        return buf.length;
      }
    }
  }

  private expect(state: S, n: number): void {
    this.state = state;
    this.have = 0;
    this.need = n;
  }

  private fixedDone(): void {
    const h = this.hdr;
    switch (this.state) {
      case S.Header:
        if (h[0] !== 0x1f || h[1] !== 0x8b) return this.corrupt('gzip: bad magic');
        if (h[2] !== 8) return this.corrupt('gzip: unsupported method ' + h[2]);
        this.flags = h[3]!;
        if (this.flags & FLG.RESERVED) this.handler.onAnomaly('gzip-reserved-flags', false);
        if (this.flags & FLG.FEXTRA) return this.expect(S.ExtraLen, 2);
        return this.afterExtra();
      case S.ExtraLen:
        this.skip = h[0]! | (h[1]! << 8);
        if (this.skip === 0) return this.afterExtra();
        this.state = S.Extra;
        return;
      case S.HeaderCrc:
        return this.startData();
      case S.Trailer: {
        const crc = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        const isize = (h[4]! | (h[5]! << 8) | (h[6]! << 16) | (h[7]! << 24)) >>> 0;
        if (crc !== this.crc) return this.corrupt('gzip: CRC mismatch');
        if (isize !== this.size % 0x100000000) return this.corrupt('gzip: ISIZE mismatch');
        this.members++;
        this.state = S.Between;
        return;
      }
    }
  }

  private afterExtra(): void {
    if (this.flags & FLG.FNAME) {
      this.state = S.Name;
      return;
    }
    this.afterName();
  }

  private afterName(): void {
    if (this.flags & FLG.FCOMMENT) {
      this.state = S.Comment;
      return;
    }
    this.afterComment();
  }

  private afterComment(): void {
    if (this.flags & FLG.FHCRC) return this.expect(S.HeaderCrc, 2);
    this.startData();
  }

  private startData(): void {
    if (this.members === 0) {
      const name = Buffer.from(this.nameBuf.subarray(0, Math.min(this.nameLen, MAX_NAME_BYTES))).toString('latin1');
      if (!this.openEntry({ name, encrypted: false })) return;
    }
    this.crc = 0;
    this.size = 0;
    this.state = S.Data;
    this.inflate = new InflateStream(
      (out) => {
        this.crc = crc32(out, this.crc);
        this.size += out.length;
        return this.emitExpanded(out, [this.scope]);
      },
      (n) => {
        this.scope.inBytes += n;
      },
    );
  }

  protected finish(): void {
    // Each pass flushes one member's partial slice; its tail may hold further members.
    while (this.state === S.Data && this.inflate) {
      const inf = this.inflate;
      try {
        inf.flush();
      } catch (e) {
        if (e instanceof InflateError) return this.corrupt('gzip: ' + e.message);
        throw e;
      }
      if (!inf.done) break;
      this.drive(new Uint8Array(0)); // parse whatever followed the deflate end
      if (this.stopped) return;
    }
    if (this.state !== S.Between && this.state !== S.ZeroPad) return this.corrupt('gzip: truncated');
    this.closeEntry();
  }
}
