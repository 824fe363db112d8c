/**
 * test/helpers/fake-clamd.ts — an in-process fake clamd for fault-injection unit tests.
 * It sits BESIDE the real-clamd tests (test/integration/clamd-real.test.ts), never
 * instead of them: it only plays the failures a real clamd is hard to provoke.
 *
 * Speaks the z-protocol: reads `zCOMMAND\0`; for INSTREAM parses length-prefixed frames
 * and records each session (command, frame lengths, payload, terminator seen). Then it
 * acts per its current behaviour: reply with given raw text (OK / FOUND / ERROR /
 * "INSTREAM size limit exceeded. ERROR" / garbage / NUL only), close without a reply,
 * reset (RST), stall (read everything, never answer), or never read at all.
 * `afterBytes` makes it act as soon as that many payload bytes arrived (an early reply).
 * PING/VERSION are answered unless `commands: 'stall'`.
 * Listens on 127.0.0.1:0 or on a given UNIX path. close() destroys every connection.
 * Limits: stores at most 64 MiB of payload per session (tests stay far below).
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeBehaviour {
  action: 'reply' | 'close' | 'reset' | 'stall' | 'never-read';
  /** Raw reply bytes for 'reply' (include the NUL yourself). */
  reply?: string;
  /** Act once this many payload bytes arrived, without waiting for the terminator. */
  afterBytes?: number;
  /** Wait this long before acting (after the trigger). */
  delayMs?: number;
  /** VERSION reply (default 'ClamAV 1.4.6/1/fake'). */
  version?: string;
  /** 'stall' makes PING/VERSION hang too. Default 'answer'. */
  commands?: 'answer' | 'stall';
}

export const FAKE = {
  ok: { action: 'reply', reply: 'stream: OK\0' },
  found: (name = 'Fake.Virus') => ({ action: 'reply', reply: `stream: ${name} FOUND\0` }) as FakeBehaviour,
  error: { action: 'reply', reply: 'stream: Can\'t allocate memory ERROR\0' },
  sizeLimit: { action: 'reply', reply: 'INSTREAM size limit exceeded. ERROR\0' },
  garbage: { action: 'reply', reply: 'HELLO WORLD\0' },
  nulOnly: { action: 'reply', reply: '\0' },
  empty: { action: 'close' },
  reset: { action: 'reset' },
  stall: { action: 'stall' },
  neverRead: { action: 'never-read', commands: 'stall' },
} satisfies Record<string, FakeBehaviour | ((n?: string) => FakeBehaviour)>;

export interface FakeSession {
  command: string;
  frames: number[];
  payload: Buffer;
  terminated: boolean;
  /** The fake saw bytes after the terminator, or a malformed command. */
  protocolError?: string;
}

export interface FakeClamd {
  address: string;
  port?: number;
  sessions: FakeSession[];
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections currently open, and the most seen at once. */
  readonly open: number;
  readonly maxOpen: number;
  /** Most sessions at once between accept and the fake's answer (what a client's limiter bounds). */
  readonly maxActive: number;
  behaviour: FakeBehaviour;
  close(): Promise<void>;
}

const MAX_STORE = 64 * 1024 * 1024;

export async function startFakeClamd(behaviour: FakeBehaviour = FAKE.ok as FakeBehaviour, opts: { unixPath?: string } = {}): Promise<FakeClamd> {
  const sockets = new Set<Socket>();
  let connections = 0;
  let maxOpen = 0;
  let active = 0;
  let maxActive = 0;
  const fake: FakeClamd = {
    address: '',
    sessions: [],
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    get maxOpen() {
      return maxOpen;
    },
    get maxActive() {
      return maxActive;
    },
    behaviour,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };

  const server: Server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    maxOpen = Math.max(maxOpen, sockets.size);
    active++;
    maxActive = Math.max(maxActive, active);
    let inactive = false;
    const leave = () => {
      if (!inactive) active--;
      inactive = true;
    };
    sock.on('close', leave);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    const b = fake.behaviour;
    const session: FakeSession = { command: '', frames: [], payload: Buffer.alloc(0), terminated: false };
    fake.sessions.push(session);
    if (b.action === 'never-read') {
      sock.pause();
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    let state: 'command' | 'len' | 'data' | 'done' = 'command';
    let need = 0;
    let acted = false;
    const payloadParts: Buffer[] = [];
    let stored = 0;
    let total = 0;

    const act = () => {
      if (acted) return;
      acted = true;
      session.payload = Buffer.concat(payloadParts);
      const go = () => {
        if (b.action !== 'stall') leave();
        if (sock.destroyed) return;
        switch (b.action) {
          case 'reply':
            sock.end(b.reply ?? '');
            break;
          case 'close':
            sock.end();
            break;
          case 'reset':
            sock.resetAndDestroy();
            break;
          case 'stall':
            break;
        }
      };
      if (b.delayMs) setTimeout(go, b.delayMs);
      else go();
    };

    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (state === 'command') {
          const nul = buf.indexOf(0);
          if (nul < 0) {
            if (buf.length > 64) {
              session.protocolError = 'command too long';
              sock.end('UNKNOWN COMMAND\0');
              state = 'done';
            }
            return;
          }
          session.command = buf.subarray(0, nul).toString('latin1');
          buf = buf.subarray(nul + 1);
          if (session.command === 'zINSTREAM') {
            state = 'len';
            continue;
          }
          state = 'done';
          if (b.commands === 'stall') return;
          if (session.command === 'zPING') sock.end('PONG\0');
          else if (session.command === 'zVERSION') sock.end(`${b.version ?? 'ClamAV 1.4.6/1/fake'}\0`);
          else {
            session.protocolError = 'unknown command ' + session.command;
            sock.end('UNKNOWN COMMAND\0');
          }
          return;
        }
        if (state === 'len') {
          if (buf.length < 4) return;
          need = buf.readUInt32BE(0);
          buf = buf.subarray(4);
          session.frames.push(need);
          if (need === 0) {
            session.terminated = true;
            state = 'done';
            act();
            continue;
          }
          state = 'data';
          continue;
        }
        if (state === 'data') {
          if (buf.length === 0) return;
          const take = Math.min(need, buf.length);
          const part = buf.subarray(0, take);
          if (stored < MAX_STORE) {
            payloadParts.push(Buffer.from(part));
            stored += take;
          }
          total += take;
          buf = buf.subarray(take);
          need -= take;
          if (need === 0) state = 'len';
          if (b.afterBytes !== undefined && total >= b.afterBytes) {
            state = 'done';
            act();
            return;
          }
          continue;
        }
        // done: anything more after the terminator is a client bug (unless we acted early).
        if (buf.length && session.terminated) session.protocolError = `${buf.length} bytes after the terminator`;
        buf = Buffer.alloc(0);
        return;
      }
    });
    sock.on('end', () => {
      if (!acted) session.payload = Buffer.concat(payloadParts);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (opts.unixPath) server.listen(opts.unixPath, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address();
  if (opts.unixPath) fake.address = `unix:${opts.unixPath}`;
  else if (a && typeof a === 'object') {
    fake.port = a.port;
    fake.address = `tcp:127.0.0.1:${a.port}`;
  }
  return fake;
}
