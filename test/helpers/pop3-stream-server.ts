/**
 * pop3-stream-server.ts — a minimal POP3 server that *generates* one large message as it
 * sends it (nothing stored), for the memory tests of `midstream pop3` (a 100 MB message
 * in the tests, 1 GB in bench/pop3-large.ts). A stand-in beside the real thing: every
 * protocol test runs against Dovecot (test/integration/pop3-dovecot.test.ts); Dovecot
 * would need the gigabyte on disk.
 *
 * Speaks: greeting, USER, PASS, STAT, RETR 1 (the generated message), QUIT. The message:
 * a multipart/mixed with one base64 attachment of `size` bytes (a 1 MiB pseudo-random
 * block repeated), dot-stuffing never needed (base64 lines do not start with "."). The
 * SHA-256 of the message content is known up front (`sha256`), so a client can prove it
 * got every byte. Backpressure: it writes only as fast as the socket drains.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { pseudoRandom } from './mail-build.js';

const BLOCK = Buffer.from(pseudoRandom(57 * 18396, 42)); // 1 MiB-ish, a multiple of 57 (one base64 line = 57 bytes)
const BOUNDARY = 'big-boundary-0001';

export interface StreamServer {
  port: number;
  /** Content bytes of the message (un-stuffed) and its SHA-256. */
  size: number;
  sha256: string;
  close(): Promise<void>;
}

function* messageChunks(attachmentBytes: number): Generator<Buffer> {
  yield Buffer.from(
    `From: big@example.com\r\nTo: u@example.net\r\nSubject: big\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="${BOUNDARY}"\r\n\r\n--${BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nA big one.\r\n` +
      `--${BOUNDARY}\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    'latin1',
  );
  const lines = BLOCK.toString('base64').match(/.{1,76}/g)!.join('\r\n') + '\r\n';
  const encodedBlock = Buffer.from(lines, 'latin1');
  let left = attachmentBytes;
  while (left >= BLOCK.length) {
    yield encodedBlock;
    left -= BLOCK.length;
  }
  if (left > 0) yield Buffer.from(BLOCK.subarray(0, left).toString('base64').match(/.{1,76}/g)!.join('\r\n') + '\r\n', 'latin1');
  yield Buffer.from(`--${BOUNDARY}--\r\n`, 'latin1');
}

export async function startStreamServer(attachmentBytes: number): Promise<StreamServer> {
  const h = createHash('sha256');
  let size = 0;
  for (const c of messageChunks(attachmentBytes)) {
    h.update(c);
    size += c.length;
  }
  const sha256 = h.digest('hex');
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write('+OK stream server ready\r\n');
    let buf = '';
    let busy = false;
    const send = async () => {
      s.write(`+OK ${size} octets\r\n`);
      for (const c of messageChunks(attachmentBytes)) {
        if (s.destroyed) return;
        if (!s.write(c)) await new Promise<void>((r) => s.once('drain', r));
      }
      s.write('.\r\n');
    };
    s.on('data', async (d: Buffer) => {
      buf += d.toString('latin1');
      if (busy) return;
      busy = true;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'RETR') await send();
        else if (verb === 'STAT') s.write(`+OK 1 ${size}\r\n`);
        else if (verb === 'QUIT') {
          s.end('+OK bye\r\n');
          break;
        } else s.write('+OK\r\n');
      }
      busy = false;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    size,
    sha256,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
