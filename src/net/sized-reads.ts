/**
 * sized-reads.ts — socket reads whose size the front chooses, and at most one small read
 * ahead while the front pauses: how backpressure from the core reaches a client without a
 * connection holding a socket read's worth of bytes it cannot pass on.
 *
 *   const reads = sizedReads(socket, (chunk) => { … }, () => nextReadSize);
 *   if (!reads) socket.on('data', …);          // this Node lacks the hook: plain reads
 *
 * Why: a plain net.Socket reads up to 64 KiB whenever the kernel has data, and pause()
 * stops reading only after one more read has been buffered. A connection whose clamd
 * stream waits for a slot then holds that read (in the socket's buffer) and what one
 * 64 KiB read decodes to (in the stream) — about 110 KiB per waiting connection, and
 * there may be hundreds. Here each read is at most `size()` bytes, asked for just before
 * the read is set up, and a paused socket reads at most one more of PAUSED_READ bytes.
 * The front asks the core how much it can take (Session.room()), so a stream under
 * backpressure gets a few KiB, not a full read.
 *
 * Input: an accepted, connected socket that nothing has read from yet (same tick as the
 * server's 'connection' event); onChunk gets each read as a Buffer of its own (exact
 * size), exactly as a 'data' listener would (it is also the socket's 'data' listener, for
 * what was read while paused). EOF, errors and timeouts behave as before; pause() lets one
 * more read (≤ PAUSED_READ) or the EOF through, queued in order until resume(), so a
 * paused socket still sees its peer close when the peer sends nothing more (as a plain
 * socket does) and holds at most one small read.
 * Limits: reads are MIN_READ..MAX_READ bytes, PAUSED_READ while paused. All sockets read
 * into one shared buffer (the callback copies each read out before returning), so an idle
 * or paused connection holds no read buffer at all; the copy replaces Node's own
 * reallocation of its 64 KiB read buffer to the read's size.
 * Node internals (as in clamd-conn.ts): this is `net.Socket`'s `onread` option, which
 * only client sockets can be given, applied to an accepted one: the socket's kBuffer /
 * kBufferCb / kBufferGen slots and its handle's useUserBuffer(), present since Node 12;
 * and the readable state's highWaterMark, lowered to 1 so that the stream does not read
 * ahead on its own while paused; pause() is replaced on the socket (see below).
 * When they are missing, sizedReads() returns false and changes nothing.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export const MIN_READ = 4 * 1024;
export const MAX_READ = 64 * 1024;

/** The read a paused socket may still take (see pause() below). */
export const PAUSED_READ = 1024;

const shared = Buffer.allocUnsafeSlow(MAX_READ);
const pausedView = shared.subarray(0, PAUSED_READ);
/** Views of `shared` by size, so asking for the next read allocates nothing. */
const views = new Map<number, Buffer>();

function view(size: number): Buffer {
  const n = Math.max(MIN_READ, Math.min(MAX_READ, Math.floor(size)));
  let v = views.get(n);
  if (!v) {
    // Sizes repeat (room is a difference of a few marks and counters), but bound the map anyway.
    if (views.size > 256) views.clear();
    v = shared.subarray(0, n);
    views.set(n, v);
  }
  return v;
}

interface SocketInternals {
  _handle?: { useUserBuffer?: (b: Uint8Array) => void; reading?: boolean } | null;
  [k: symbol]: unknown;
}

function slot(socket: Socket, name: string): symbol | undefined {
  return Object.getOwnPropertySymbols(socket).find((s) => s.description === name);
}

/**
 * Switch `socket` to sized reads. `size()` is asked after each read for the size of the
 * next one (NaN or Infinity = MAX_READ). Returns false, changing nothing, when this Node
 * does not have the internals it needs.
 */
export function sizedReads(socket: Socket, onChunk: (chunk: Buffer) => void, size: () => number): boolean {
  const s = socket as unknown as SocketInternals;
  const kBuffer = slot(socket, 'kBuffer');
  const kBufferCb = slot(socket, 'kBufferCb');
  const kBufferGen = slot(socket, 'kBufferGen');
  const handle = s._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || s[kBuffer] !== null || !handle || typeof handle.useUserBuffer !== 'function') return false;
  const next = () => {
    // Paused: the one read that may still come only has to show whether the peer closed.
    if (socket.isPaused()) return pausedView;
    const n = size();
    return view(Number.isFinite(n) ? n : MAX_READ);
  };
  const first = next();
  s[kBuffer] = first;
  s[kBufferCb] = (n: number, buf: Uint8Array): boolean => {
    const chunk = Buffer.allocUnsafeSlow(n);
    chunk.set(buf.subarray(0, n));
    if (socket.isPaused() || socket.readableLength > 0) {
      // Paused (or behind what was queued then): queue it in the socket's own buffer, in
      // order, for 'data' after resume(), and stop reading (false: Node's readStop) until
      // then. So a paused socket reads one read ahead, no more.
      socket.push(chunk);
      return false;
    }
    onChunk(chunk);
    return true;
  };
  s[kBufferGen] = next;
  // The stream's buffer only ever holds that one read taken while paused: with the default
  // mark (16 KiB) the stream itself would restart the handle to read up to it.
  const rs = (socket as unknown as { _readableState?: { highWaterMark: number } })._readableState;
  if (rs) rs.highWaterMark = 1;
  socket.on('data', onChunk);
  // Node's pause() on an onread socket stops the handle at once, and then a peer's close
  // is never seen while paused: a proxy waiting for a verdict would not notice that its
  // client (Postfix, at smtpd_proxy_timeout) gave up, and would deliver what the client
  // will send again. Pause the stream only; the next read (≤ PAUSED_READ, queued above) or
  // the EOF still comes, as with a plain socket (which reads up to its highWaterMark ahead).
  socket.pause = function (this: Socket) {
    return Duplex.prototype.pause.call(this) as Socket;
  };
  handle.useUserBuffer(first);
  return true;
}
