/**
 * Throughput of the streaming inflate path against fflate's one-shot inflateSync on the
 * same 1 MB deflate member. Absolute MB/s depend on the machine (and on whatever else
 * runs on it), so the assertion is relative and loose (it catches quadratic or per-byte
 * regressions, not noise); the numbers are printed as a test diagnostic.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { inflateSync } from 'fflate';
import { createUnpacker } from '../src/core/unpack/index.js';
import { budget } from '../test/helpers/unpack-harness.js';

// Real text: TypeScript's compiler source, cut so that its deflate member is ~1 MB.
const tsPath = createRequire(import.meta.url).resolve('typescript/lib/typescript.js');
const source = readFileSync(tsPath).subarray(0, 6 * 1024 * 1024);

function bestOf(n: number, fn: () => number): number {
  let best = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const bytes = fn();
    const mbps = bytes / 1e6 / ((performance.now() - t0) / 1000);
    if (mbps > best) best = mbps;
  }
  return best;
}

describe('unpack throughput', () => {
  it('streaming gzip runs at ≥ 40% of fflate inflateSync (which skips the CRC) on a ~1 MB member', (t) => {
    const gz = gzipSync(source);
    const raw = deflateRawSync(source);
    const ours = () => {
      let out = 0;
      const u = createUnpacker('gzip', {
        onEntry: () => ({ write: (c) => void (out += c.length), end() {} }),
        onLimit: (w) => assert.fail(w),
        onEncrypted: () => assert.fail('encrypted'),
        onCorrupt: (d) => assert.fail(d),
        onAnomaly: () => undefined,
        onAltName: () => undefined,
      }, budget());
      for (let i = 0; i < gz.length; i += 65536) u.write(gz.subarray(i, i + 65536));
      u.end();
      assert.equal(out, source.length);
      return out;
    };
    const oneShot = () => inflateSync(raw).length;
    ours();
    oneShot();
    const a = bestOf(5, ours);
    const b = bestOf(5, oneShot);
    t.diagnostic(`member ${raw.length} B → ${source.length} B: midstream ${a.toFixed(0)} MB/s, fflate inflateSync ${b.toFixed(0)} MB/s`);
    assert.ok(a >= 0.4 * b, `midstream ${a.toFixed(0)} MB/s vs fflate ${b.toFixed(0)} MB/s`);
  });
});
