/**
 * sized-reads.test.ts — socket reads sized by the front (src/net/sized-reads.ts) on real
 * loopback sockets: the bytes arrive intact and in order, no read is larger than asked,
 * a paused socket takes at most one small read ahead, queued in order, and still sees its
 * peer close (the proxy must notice Postfix giving up while it waits for a verdict).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { MAX_READ, MIN_READ, PAUSED_READ, sizedReads } from '../../src/net/sized-reads.js';

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

test('pause() in the callback: one more small read (≤ PAUSED_READ) is taken, queued; resume() delivers everything in order', async () => {
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
    const ahead = sock.bytesRead - chunks[0]!.length;
    assert.ok(ahead > 0 && ahead <= PAUSED_READ, `paused: one small read (≤ ${PAUSED_READ} bytes) taken ahead (${ahead})`);
    assert.equal(sock.readableLength, ahead, 'and it waits, queued, in the socket');
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

test("a paused socket still sees its peer close when nothing more was sent (a proxy waiting for a verdict must notice Postfix giving up)", async () => {
  const got: Buffer[] = [];
  let ended!: () => void;
  const end = new Promise<void>((r) => (ended = r));
  let sawEnd = false;
  const { server, client } = await pair((s) => {
    sizedReads(
      s,
      (c) => {
        got.push(c);
        s.pause(); // as the proxy does at the final dot, until the verdict
      },
      () => MAX_READ,
    );
    s.on('end', () => {
      sawEnd = true;
      ended();
    });
  });
  try {
    client.write('.\r\n');
    while (got.length === 0) await turns(1);
    client.end();
    await end;
    assert.equal(sawEnd, true);
    assert.equal(Buffer.concat(got).toString(), '.\r\n');
  } finally {
    client.destroy();
    server.close();
  }
});

test("'end' comes only after what was queued while paused was delivered", async () => {
  const order: string[] = [];
  let sock!: Socket;
  let ended!: () => void;
  const end = new Promise<void>((r) => (ended = r));
  const { server, client } = await pair((s) => {
    sock = s;
    sizedReads(
      s,
      (c) => {
        order.push(c.toString());
        if (order.length === 1) s.pause();
      },
      () => MIN_READ,
    );
    s.on('end', () => {
      order.push('END');
      ended();
    });
  });
  try {
    client.write('first');
    while (order.length === 0) await turns(1);
    client.end('second');
    // Wait until the read-ahead took 'second' (queued in the socket while paused).
    while (sock.readableLength === 0) await turns(1);
    await turns(20);
    assert.deepEqual(order, ['first'], "paused: neither 'second' nor 'end' delivered yet");
    sock.resume();
    await end;
    assert.deepEqual(order, ['first', 'second', 'END']);
  } finally {
    client.destroy();
    server.close();
  }
});
