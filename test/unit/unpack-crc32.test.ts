/**
 * unpack-crc32.test.ts — our incremental CRC-32 (table loop below 64 bytes, node:zlib's native
 * call above) against an independent oracle: the expected values below were computed once by
 * CPython's zlib.crc32 (a separate build of zlib, not Node's) over the same deterministic bytes,
 * for every length 0..130 (across the 64-byte switch) and larger ones, plus the standard check
 * value. Running checksums continued over random chunkings must equal the whole one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from '../../src/core/unpack/crc32.js';

/** The bytes the oracle saw: s = (s * 1103515245 + 12345) mod 2^31 from s = 1, byte = (s >> 16) & 0xff. */
function lcgBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = ((Math.imul(s, 1103515245) + 12345) >>> 0) & 0x7fffffff;
    out[i] = (s >>> 16) & 0xff;
  }
  return out;
}

// python3: [zlib.crc32(d[:n]) for n in range(131)], d = lcgBytes(200000)
const PREFIX = [
  0x00000000, 0xa0058808, 0x6bc43e0c, 0x4160d42e, 0xd4f53a46, 0xac67660a, 0x18144a61, 0xa6ab295d,
  0xed114279, 0x9730a2ba, 0xadffd294, 0x901d8833, 0x7b2e5c56, 0x09c20807, 0x586ee469, 0x31398a7b,
  0x66386830, 0x83bad7df, 0x9f333402, 0x6d4dbdaf, 0xf56de39a, 0x40250cf5, 0xa19edc02, 0xac120dec,
  0x93aa87e0, 0xa14d5389, 0xe2165d37, 0x19814a5c, 0xa2719a48, 0x9ca41d43, 0xde2850a8, 0x25be9080,
  0x2d283b6d, 0xa1f3d135, 0x06182cbe, 0x7a6328f4, 0xaf7f1214, 0xa0aaf71a, 0xb212cbaf, 0x3508d041,
  0x5be4ccbd, 0x48e6b8f7, 0x9d95fb67, 0x1a482bf6, 0x2d17cdd6, 0x05222aae, 0xd207cda7, 0xa7ba4bdc,
  0xa1794345, 0xb213181b, 0xb6db5455, 0xe06c583a, 0xea3a4111, 0x2a8a7ba5, 0x4d978153, 0xdd4f8138,
  0x43bbcc9b, 0xbf9cb0aa, 0x1f6a75ae, 0x1c7c6167, 0x881b4cf7, 0x8c540dcf, 0x545d6954, 0x08360a34,
  0x3c04b8ab, 0xd4885e2a, 0xe6b8be2f, 0x27eb9364, 0x90979c72, 0x122814bc, 0x4daf233c, 0xd1f9a2a2,
  0xd5bed236, 0x7b6bff0c, 0x7ca8ee38, 0xfea7d9e8, 0x762d8c39, 0x0214d4f6, 0xc46c341c, 0xf5c4c213,
  0xc72d0606, 0x16a48833, 0xefccded2, 0x6d3d4245, 0x84dc16ec, 0x4054bd00, 0xf82d90a4, 0x7e463b5d,
  0x7bc007e5, 0x67a9e0bb, 0xfebcd8e6, 0x6b9a875c, 0x5bba5eea, 0xeb5ae611, 0x373c0b66, 0x848617a5,
  0x91ef80f0, 0x592db8e7, 0x5d3e5cca, 0xd1e933dd, 0xa3628337, 0xef7918d9, 0x32387f8b, 0x2d3fbd82,
  0x5f27ddc5, 0xd0305b5a, 0x39dce9e9, 0x4b3262de, 0x0829653f, 0x11064849, 0x3470b5c4, 0xca81d84f,
  0xca7f2922, 0x08a82874, 0xa00d2020, 0x9ecbf2f3, 0x0c27baba, 0x26da7d66, 0xbe22a01d, 0x52d9aae6,
  0xcae77150, 0x401a8667, 0x84f13128, 0x788c52e3, 0x6b1cb7d6, 0x9adbc571, 0x3a20e07b, 0x68e8f968,
  0x640c2a49, 0x89b84dba, 0xa63a855a,
];
// python3: {n: zlib.crc32(d[:n])}
const LARGER: [number, number][] = [
  [255, 0xf5c338ac], [256, 0x8144bf85], [511, 0x2c093d16], [512, 0x0f239a79], [1000, 0x1f52fd1c],
  [4096, 0x4641a512], [65535, 0x5df083a8], [65536, 0x12e573a3], [65537, 0x81a399ce], [200000, 0x8a23e57d],
];
const data = lcgBytes(200000);
const WHOLE = 0x8a23e57d;

test('the standard check value and a continued "hello world"', () => {
  const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
  assert.equal(crc32(ascii('123456789')), 0xcbf43926);
  assert.equal(crc32(ascii('world'), crc32(ascii('hello '))), 0x0d4a1185);
  assert.equal(crc32(new Uint8Array(0), 0x12345678), 0x12345678);
});

test('every prefix length 0..130 (both sides of the 64-byte switch) and larger ones match the oracle', () => {
  assert.equal(PREFIX.length, 131);
  PREFIX.forEach((want, n) => assert.equal(crc32(data.subarray(0, n)), want, `length ${n}`));
  for (const [n, want] of LARGER) assert.equal(crc32(data.subarray(0, n)), want, `length ${n}`);
});

test('continuing from a nonzero value, below and above the switch', () => {
  // python3: zlib.crc32(d[100:300], 0x12345678), zlib.crc32(d[100:110], 0xdeadbeef)
  assert.equal(crc32(data.subarray(100, 300), 0x12345678), 0x4eb40b97);
  assert.equal(crc32(data.subarray(100, 110), 0xdeadbeef), 0x89f1b98c);
});

test('running checksums over fixed and random chunkings equal the oracle whole value', () => {
  for (const piece of [1, 7, 63, 64, 65, 200, 1000, 65536]) {
    let v = 0;
    for (let i = 0; i < data.length; i += piece) v = crc32(data.subarray(i, i + piece), v);
    assert.equal(v, WHOLE, `pieces of ${piece}`);
  }
  // Seeded splits mixing empty, tiny, threshold-sized and large pieces; each seed is reported.
  for (let seed = 1; seed <= 30; seed++) {
    let s = seed;
    const next = (m: number): number => {
      s = ((Math.imul(s, 1664525) + 1013904223) >>> 0);
      return s % m;
    };
    let v = 0;
    let i = 0;
    while (i < data.length) {
      const kind = next(4);
      const len = kind === 0 ? next(64) : kind === 1 ? 60 + next(10) : kind === 2 ? next(400) : next(20000);
      v = crc32(data.subarray(i, i + len), v);
      i += len;
    }
    assert.equal(v, WHOLE, `seed ${seed}`);
  }
});
