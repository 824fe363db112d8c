import { SignatureDb } from '/work/main/src/core/scan/sigs/signature-db.js';
import { randomFillSync } from 'node:crypto';
let seed = 0x12345678;
const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
const ri = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const hexBytes = (n: number) => Array.from({ length: n }, () => ri(0, 255).toString(16).padStart(2, '0')).join('');
function synthSig(i: number): string {
  const p = rnd(); let body: string;
  if (p < 0.7) body = hexBytes(ri(8, 32));
  else if (p < 0.82) body = hexBytes(ri(4, 10)) + (rnd() < 0.5 ? '??' : hexBytes(1)[0] + '?') + hexBytes(ri(4, 10));
  else if (p < 0.92) body = hexBytes(ri(6, 12)) + (rnd() < 0.5 ? '*' : `{${ri(0, 10)}-${ri(11, 200)}}`) + hexBytes(ri(6, 12));
  else body = hexBytes(ri(5, 10)) + `(${hexBytes(1)}|${hexBytes(1)}|${hexBytes(2)})` + hexBytes(ri(5, 10));
  return `Bench.Synthetic.${i}:0:*:${body}`;
}
const N = Number(process.argv[2] ?? 10000);
const lines = []; for (let i = 0; i < N; i++) lines.push(synthSig(i));
const db = SignatureDb.fromSources([{ kind: 'ndb', label: 'x.ndb', text: lines.join('\n') } as any]);
console.log((db as any).patterns.levelShapes, (db as any).patterns.levels.map((l: any) => [l.entForm.length, l.bits.length * 32]));
const one = randomFillSync(new Uint8Array(1 << 20));
let best = 0;
for (let r = 0; r < 200; r++) {
  const m = db.createMatcher(); const t0 = performance.now();
  for (let i = 0; i < one.length; i += 65536) m.write(one.subarray(i, i + 65536));
  const mbps = 1 / ((performance.now() - t0) / 1000); if (mbps > best) best = mbps;
}
console.log('best MB/s', best.toFixed(0));
