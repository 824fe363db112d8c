/**
 * crc32.ts — CRC-32 (IEEE, reflected; the gzip/zip checksum), incremental.
 *
 * Uses node:zlib's native crc32 (Node >= 20.15) and falls back to a table
 * implementation on older runtimes, so the hot path runs at native speed.
 * `crc32(data, prev)` continues a running checksum; start with 0.
 * Measured (Node 20.20; figures in bench/RESULTS-core.md): native ~5 GB/s at
 * 64 KiB and ~1.9 GB/s at 512 B, but a call costs ~50–170 ns, so below SMALL bytes the table
 * loop (~450 MB/s, ~30 ns for 8 bytes) wins; Node's bundled zlib has no carry-less-multiply
 * path (its crc32 is the portable braided loop), so ~5 GB/s is the ceiling here.
 */
import * as zlib from 'node:zlib';

type Crc32Fn = (data: Uint8Array, value?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32Fn }).crc32;

let table: Uint32Array | null = null;

function tableCrc32(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Below this many bytes the table loop beats the native call's fixed cost. */
const SMALL = 64;

export const crc32: Crc32Fn = native ? (d, v = 0) => (d.length < SMALL ? tableCrc32(d, v) : native(d, v) >>> 0) : tableCrc32;
