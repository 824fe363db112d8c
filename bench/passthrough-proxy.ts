// A minimal pass-through "before-queue filter" that scans nothing: the ceiling of the
// Postfix smtpd_proxy_filter layout. Each connection from the front smtpd gets its own
// connection to the after-filter smtpd; bytes flow both ways unchanged (the after-filter's
// greeting, EHLO (incl. XFORWARD) and replies reach Postfix as they are), Nagle off on both
// sides. It follows the SMTP state only to count messages (end of DATA), so its cost is
// the cost of moving the bytes through one more process.
//
//   node --import tsx bench/passthrough-proxy.ts --listen 127.0.0.1:PORT --forward 127.0.0.1:PORT
import { createServer, connect, type Socket } from 'node:net';

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i) || '127.0.0.1', port: Number(s.slice(i + 1)) };
}

export function startPassthrough(listen: { host: string; port: number }, forward: { host: string; port: number }): Promise<{ close(): void; stats(): { connections: number; messages: number } }> {
  let connections = 0, messages = 0;
  const END = Buffer.from('\r\n.\r\n', 'latin1');
  const srv = createServer((client: Socket) => {
    connections++;
    client.setNoDelay(true);
    client.pause();
    const up = connect(forward);
    up.setNoDelay(true);
    const end = () => { client.destroy(); up.destroy(); };
    client.on('error', end); up.on('error', end);
    client.on('close', end); up.on('close', end);
    up.on('connect', () => {
      up.pipe(client);
      // count end-of-data markers (cheap scan; a marker split across chunks is counted via a small carry)
      let carry = Buffer.alloc(0);
      client.on('data', (d: Buffer) => {
        const b = carry.length ? Buffer.concat([carry, d.subarray(0, 8)]) : null;
        if (b && b.indexOf(END) >= 0 && b.indexOf(END) < carry.length) messages++;
        let k = d.indexOf(END);
        while (k >= 0) { messages++; k = d.indexOf(END, k + 1); }
        carry = Buffer.from(d.subarray(Math.max(0, d.length - 4)));
      });
      client.pipe(up);
      client.resume();
    });
  });
  return new Promise((resolve) => srv.listen(listen.port, listen.host, () => resolve({
    close: () => srv.close(),
    stats: () => ({ connections, messages }),
  })));
}

const argv = process.argv.slice(2);
const li = argv.indexOf('--listen'), fi = argv.indexOf('--forward');
if (li >= 0 && fi >= 0) {
  const l = hostPort(argv[li + 1]!), f = hostPort(argv[fi + 1]!);
  startPassthrough(l, f).then(() => process.stdout.write(`passthrough listening on ${l.host}:${l.port} -> ${f.host}:${f.port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}
