/**
 * sized-reads.test.ts — socket reads sized by the front (src/net/sized-reads.ts) on real
 * loopback sockets: the bytes arrive intact and in order, no read is larger than asked,
 * and pause() stops reading before the next read (nothing is read ahead into a buffer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { MAX_READ, MIN_READ, sizedReads } from '../../src/net/sized-reads.js';

/** A server whose first accepted socket is handed to `onConn` in the 'connection' tick; resolves with a client. */
async function pair(onConn: (s: Socket) => void): Promise<{ server: Server; client: Socket }> {
  const server = createServer({ pauseOnConnect: false }, onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const client = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  return { server, client };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

test('every read is at most the size asked for before it; the bytes arrive intact and in order', async () => {
  const data = randomBytes(700_000);
  // Sizes cycle through below-min, in-range, above-max and non-finite requests.
  const asks = [1, 5000, 4096, 70_000, 12_345, Infinity, 9000, NaN, 40_000];
  let k = 0;
  const limits: number[] = [];
  const chunks: Buffer[] = [];
  let installed = false;
  let done!: () => void;
  const ended = new Promise<void>((r) => (done = r));
  const { server, client } = await pair((s) => {
    installed = sizedReads(
      s,
      (c) => {
        const limit = limits[chunks.length]!;
        assert.ok(c.length > 0 && c.length <= limit, `read ${chunks.length}: ${c.length} bytes, asked ≤ ${limit}`);
        chunks.push(c);
      },
      () => {
        const n = asks[k++ % asks.length]!;
        limits.push(Number.isFinite(n) ? Math.max(MIN_READ, Math.min(MAX_READ, n)) : MAX_READ);
        return n;
      },
    );
    s.on('end', () => {
      s.end();
      done();
    });
  });
  try {
    client.end(data);
    await ended;
    assert.equal(installed, true, 'this Node has the internals sized reads need');
    assert.ok(Buffer.concat(chunks).equals(data), 'bytes differ');
    assert.ok(chunks.length > data.length / MAX_READ, `${chunks.length} reads`);
    // Each chunk is a buffer of its own (not a view of the shared read buffer): later reads did not change it.
    assert.ok(chunks.every((c) => c.byteOffset === 0 && c.buffer.byteLength === c.length));
  } finally {
    client.destroy();
    server.close();
  }
});

test('pause() in the callback stops reading before the next read; resume() goes on where it stopped', async () => {
  const data = randomBytes(300_000);
  const chunks: Buffer[] = [];
  let sock!: Socket;
  const { server, client } = await pair((s) => {
    sock = s;
    sizedReads(
      s,
      (c) => {
        chunks.push(c);
        if (chunks.length === 1) s.pause();
      },
      () => MIN_READ,
    );
  });
  try {
    // The client's write completes once the kernel took it all (loopback buffers hold 300 KB).
    await new Promise<void>((r) => client.write(data, () => r()));
    await turns(50);
    assert.equal(chunks.length, 1, 'paused: no further read reached the callback');
    assert.equal(sock.bytesRead, chunks[0]!.length, 'paused: nothing was read ahead into a buffer');
    assert.equal(sock.readableLength, 0);
    const all = new Promise<void>((r) => {
      const check = setInterval(() => {
        if (chunks.reduce((n, c) => n + c.length, 0) >= data.length) {
          clearInterval(check);
          r();
        }
      }, 5);
    });
    sock.resume();
    await all;
    assert.ok(Buffer.concat(chunks).equals(data), 'bytes differ after resume');
  } finally {
    client.destroy();
    server.close();
  }
});
