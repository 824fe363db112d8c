/**
 * milter-wire.ts — milter packet framing: a push decoder and reply encoders.
 *
 * Wire format (both directions): uint32 big-endian length (command byte + data),
 * one command byte, data. Input: arbitrary socket chunks via `MilterDecoder.push`.
 * Output: whole packets `{cmd, data}`; `data` may be a view into the caller's
 * chunk (Node never reuses socket buffers) or a fresh concatenation.
 *
 * Limits: a length of 0 (no command byte) or above `maxPacket` (default 1 MiB + 1)
 * is a peer fault; the decoder latches a typed error and yields nothing more.
 * Memory: we never allocate what the peer claims — partial packets are held as
 * the received chunks and joined only once all their bytes are here, so a peer
 * can make us hold at most `maxPacket + 4` bytes per connection (plus one chunk).
 * Errors: returned as values (`DecodeResult.error`), never thrown.
 */
import { Buffer } from 'node:buffer';
import { MILTER_MAX_PACKET } from './milter-codes.js';

export interface Packet {
  /** One-character command or reply code. */
  cmd: string;
  data: Buffer;
}

export type WireErrorCode = 'milter-zero-length' | 'milter-oversize';

export interface WireError {
  code: WireErrorCode;
  /** The length the peer announced. */
  length: number;
}

export interface DecodeResult {
  packets: Packet[];
  /** Set once the stream is unusable; the connection must be dropped. */
  error?: WireError;
}

export class MilterDecoder {
  private parts: Buffer[] = [];
  private have = 0;
  /** Length of the packet body being collected, or -1 while waiting for a length field. */
  private need = -1;
  private failed: WireError | undefined;

  constructor(private readonly maxPacket = MILTER_MAX_PACKET) {}

  /** Bytes held for an incomplete packet (for tests of the memory bound). */
  get buffered(): number {
    return this.have;
  }

  get error(): WireError | undefined {
    return this.failed;
  }

  push(chunk: Uint8Array): DecodeResult {
    if (this.failed) return { packets: [], error: this.failed };
    const packets: Packet[] = [];
    if (chunk.length > 0) {
      this.parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.have += chunk.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.have < 4) break;
        const len = this.take(4).readUInt32BE(0);
        if (len === 0 || len > this.maxPacket) {
          this.failed = { code: len === 0 ? 'milter-zero-length' : 'milter-oversize', length: len };
          this.parts = [];
          this.have = 0;
          return { packets, error: this.failed };
        }
        this.need = len;
      }
      if (this.have < this.need) break;
      const body = this.take(this.need);
      this.need = -1;
      packets.push({ cmd: String.fromCharCode(body[0]!), data: body.subarray(1) });
    }
    return { packets };
  }

  /** Remove and return the first n buffered bytes (n ≤ have); copies only when they span chunks. */
  private take(n: number): Buffer {
    const first = this.parts[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const p = this.parts[0]!;
        const k = Math.min(p.length, n - off);
        p.copy(out, off, 0, k);
        off += k;
        if (k === p.length) this.parts.shift();
        else this.parts[0] = p.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }
}

// ---- encoding -------------------------------------------------------------------

/** One packet: length + command + data. */
export function encodePacket(cmd: string, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out.writeUInt32BE(data.length + 1, 0);
  out[4] = cmd.charCodeAt(0);
  out.set(data, 5);
  return out;
}

/** Several packets joined, so a reply batch goes out in one write (no Nagle/delayed-ACK stalls). */
export function encodeBatch(packets: readonly Packet[]): Buffer {
  return Buffer.concat(packets.map((p) => encodePacket(p.cmd, p.data)));
}

/** NUL-terminated strings, concatenated (latin1 keeps arbitrary bytes 1:1). */
export function cstrings(...parts: (string | Uint8Array)[]): Buffer {
  const bufs: Buffer[] = [];
  for (const p of parts) {
    bufs.push(typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p), Buffer.from([0]));
  }
  return Buffer.concat(bufs);
}

/** OPTNEG payload: version, actions, protocol (uint32 each). */
export function encodeOptneg(version: number, actions: number, protocol: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(version >>> 0, 0);
  b.writeUInt32BE(actions >>> 0, 4);
  b.writeUInt32BE(protocol >>> 0, 8);
  return b;
}

// ---- decoding helpers -----------------------------------------------------------

/**
 * Split a packet's data into its NUL-terminated fields. A trailing field without
 * a NUL is kept (peers are sloppy); an empty trailing remainder is not a field.
 */
export function splitNul(data: Uint8Array): Buffer[] {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
  const out: Buffer[] = [];
  let start = 0;
  for (;;) {
    const i = buf.indexOf(0, start);
    if (i < 0) {
      if (start < buf.length) out.push(buf.subarray(start));
      return out;
    }
    out.push(buf.subarray(start, i));
    start = i + 1;
  }
}

/** splitNul decoded as latin1 strings (envelope fields, macro names and values). */
export function splitNulStrings(data: Uint8Array): string[] {
  return splitNul(data).map((b) => b.toString('latin1'));
}

export interface OptnegFields {
  version: number;
  actions: number;
  protocol: number;
}

/** Parse an OPTNEG payload; null when it is shorter than 12 bytes. Extra bytes are ignored. */
export function parseOptneg(data: Uint8Array): OptnegFields | null {
  if (data.length < 12) return null;
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  return { version: b.readUInt32BE(0), actions: b.readUInt32BE(4), protocol: b.readUInt32BE(8) };
}

export interface ConnectInfo {
  hostname: string;
  /** 'U' unknown, 'L' unix, '4' IPv4, '6' IPv6 (or whatever the peer sent). */
  family: string;
  port?: number;
  address?: string;
}

/**
 * Parse CONNECT: hostname\0 family [port(uint16) address\0]. Defensive: a short
 * packet yields what is there; IPv6 'IPv6:' prefixes and [brackets] are removed.
 */
export function parseConnect(data: Uint8Array): ConnectInfo {
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  const nul = b.indexOf(0);
  const hostname = (nul < 0 ? b : b.subarray(0, nul)).toString('latin1');
  if (nul < 0 || nul + 1 >= b.length) return { hostname, family: 'U' };
  const family = String.fromCharCode(b[nul + 1]!);
  if (family === 'U' || b.length < nul + 4) return { hostname, family };
  const port = b.readUInt16BE(nul + 2);
  let address = splitNulStrings(b.subarray(nul + 4))[0] ?? '';
  if (address.toLowerCase().startsWith('ipv6:')) address = address.slice(5);
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return { hostname, family, port, address };
}
