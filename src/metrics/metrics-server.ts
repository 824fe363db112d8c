/**
 * metrics-server.ts — a tiny node:http server exposing GET /metrics.
 *
 * startMetricsServer("127.0.0.1:9357", metrics) resolves once listening, with the
 * bound address ("host:port", the real port when 0 was asked) and close().
 * A bare ":9357" / "9357" binds loopback (see config/address.ts). Anything but
 * GET or HEAD /metrics is 404. Rendering errors answer 500 and never throw.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '../core/address.js';
import type { Metrics } from './metrics.js';

export interface MetricsServer {
  /** "127.0.0.1:9357" or "[::1]:9357". */
  readonly address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(listen: string, metrics: Metrics): Promise<MetricsServer> {
  if (listen === '') throw new Error('metrics listen address is empty (metrics are off)');
  const hp = parseAddress(listen, 'metrics');
  if (hp.kind !== 'tcp') throw new Error('metrics listen must be a TCP address');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    metrics.render().then(
      (body) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(hp.port, hp.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const a = server.address() as AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}
