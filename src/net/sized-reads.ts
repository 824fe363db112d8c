/**
 * sized-reads.ts — socket reads whose size the front chooses, and that stop at once when
 * the front pauses: how backpressure from the core reaches a client without a connection
 * holding a socket read's worth of bytes it cannot pass on.
 *
 *   const reads = sizedReads(socket, (chunk) => { … }, () => nextReadSize);
 *   if (!reads) socket.on('data', …);          // this Node lacks the hook: plain reads
 *
 * Why: a plain net.Socket reads up to 64 KiB whenever the kernel has data, and pause()
 * stops reading only after one more read has been buffered. A connection whose clamd
 * stream waits for a slot then holds that read (in the socket's buffer) and what one
 * 64 KiB read decodes to (in the stream) — about 110 KiB per waiting connection, and
 * there may be hundreds. Here each read is at most `size()` bytes, asked for just before
 * the read is set up, and pause() stops reading before the next one (what Node does for
 * sockets made with `onread`). The front asks the core how much it can take
 * (Session.room()), so a stream under backpressure gets a few KiB, not a full read.
 *
 * Input: an accepted, connected socket that nothing has read from yet (same tick as the
 * server's 'connection' event); onChunk gets each read as a Buffer of its own (exact
 * size), exactly as a 'data' listener would, and no 'data' events are emitted. EOF,
 * errors, timeouts and pause()/resume() behave as before.
 * Limits: reads are MIN_READ..MAX_READ bytes. All sockets read into one shared buffer
 * (the callback copies each read out before returning), so an idle or paused connection
 * holds no read buffer at all; the copy replaces Node's own reallocation of its 64 KiB
 * read buffer to the read's size.
 * Node internals (as in clamd-conn.ts): this is `net.Socket`'s `onread` option, which
 * only client sockets can be given, applied to an accepted one: the socket's kBuffer /
 * kBufferCb / kBufferGen slots and its handle's useUserBuffer(), present since Node 12.
 * When they are missing, sizedReads() returns false and changes nothing.
 */
import type { Socket } from 'node:net';

export const MIN_READ = 4 * 1024;
export const MAX_READ = 64 * 1024;

const shared = Buffer.allocUnsafeSlow(MAX_READ);
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
    const n = size();
    return view(Number.isFinite(n) ? n : MAX_READ);
  };
  const first = next();
  s[kBuffer] = first;
  s[kBufferCb] = (n: number, buf: Uint8Array): void => {
    const chunk = Buffer.allocUnsafeSlow(n);
    chunk.set(buf.subarray(0, n));
    onChunk(chunk);
  };
  s[kBufferGen] = next;
  handle.useUserBuffer(first);
  return true;
}
