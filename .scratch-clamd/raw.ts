import { connect } from 'node:net';
import { startClamd } from '../test/helpers/clamd.ts';
const c = await startClamd({ streamMaxLength: '1M' });
try {
  const res: string[] = [];
  for (let i = 0; i < 20; i++) {
    res.push(await new Promise<string>((resolve) => {
      const log: string[] = [];
      let sent = 0;
      const s = connect({ host: '127.0.0.1', port: c.port, onread: { buffer: Buffer.alloc(8192), callback: (n, b) => { log.push(`data@${sent}:${Buffer.from(b.subarray(0, n)).toString('latin1').replace('\0','')}`); return true; } } });
      s.setNoDelay(true);
      const frame = Buffer.alloc(65540, 32); frame.writeUInt32BE(65536, 0);
      s.on('connect', () => { s.write('zINSTREAM\0'); const tick = () => { if (s.destroyed) return; const ok = s.write(frame); sent += 65536; if (ok) setImmediate(tick); else s.once('drain', tick); }; tick(); });
      s.on('end', () => log.push('end@' + sent));
      s.on('error', (e) => log.push('err ' + (e as any).code + '@' + sent));
      s.on('close', () => resolve(log.join(' ')));
    }));
  }
  console.log(res.join('\n'));
} finally { await c.stop(); }
