import { startClamd } from '../test/helpers/clamd.ts';
import { ClamdClient } from '../src/core/scan/clamd-client.ts';
const c = await startClamd({ streamMaxLength: '1M' });
try {
  const cl = new ClamdClient({ endpoints: [process.argv[2] === 'unix' ? c.unix : c.tcp], maxStreamBytes: 64 << 20 });
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const s = cl.openStream();
    const piece = Buffer.alloc(65536, 32);
    for (let n = 0; n < 512 && !s.result; n++) { s.write(piece); if (s.needsDrain) await s.drain(); }
    const r = await s.end();
    const k = r.kind === "error" ? r.errorKind + " " + String(r.detail).replace(/127.0.0.1:\d+|midstream-clamd-\w+/g, "X") : r.kind;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  console.log(counts);
  cl.close();
} finally { await c.stop(); }
