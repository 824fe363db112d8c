import { startClamd, TESTFILES } from '/work/main/test/helpers/clamd.ts';
import { ClamdClient } from '/work/main/src/core/scan/clamd-client.ts';
import { readFileSync, readdirSync } from 'node:fs';
const t0 = Date.now();
const c = await startClamd({ streamMaxLength: '1M' });
console.log('started in', Date.now() - t0, 'ms', c.tcp, c.unix);
try {
  const cl = new ClamdClient({ endpoints: [c.tcp] });
  console.log(await cl.version());
  for (const f of readdirSync(TESTFILES)) {
    const s = cl.openStream(); s.write(readFileSync(TESTFILES + '/' + f)); console.log(f, JSON.stringify(await s.end()));
  }
  const s = cl.openStream(); console.log('empty', JSON.stringify(await s.end()));
  cl.close();
} finally { await c.stop(); }
