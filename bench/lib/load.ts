// SMTP load generator: N concurrent sessions sending prepared messages to 127.0.0.1:port,
// measuring throughput, the wait after the final dot, and every reply.
import { connect, type Socket } from 'node:net';
import { headerFor, type Workload } from './messages.js';
import { sleep } from './proc.js';

export interface MsgResult { id: string; code: number; waitMs: number; bytes: number; virus: boolean; reply: string }

export interface LoadResult {
  results: MsgResult[];
  elapsedMs: number;
  /** sessions that failed outside a transaction (connect refused, greeting 4xx, drops) */
  sessionErrors: string[];
}

class ReplyReader {
  private buf = '';
  private waiting: ((r: { code: number; text: string }) => void) | null = null;
  private failed: ((e: Error) => void) | null = null;
  private queue: { code: number; text: string }[] = [];
  private error: Error | null = null;

  constructor(readonly sock: Socket) {
    sock.on('data', (d) => this.onData(d.toString('latin1')));
    const fail = (e: Error) => { this.error = e; this.failed?.(e); this.waiting = null; this.failed = null; };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  private onData(s: string): void {
    this.buf += s;
    for (;;) {
      // a complete reply ends with a line "NNN text\r\n" (space after the code)
      const m = /(^|\n)(\d{3}) [^\n]*\n/.exec(this.buf);
      if (!m) return;
      const end = m.index + m[0].length;
      const text = this.buf.slice(0, end);
      this.buf = this.buf.slice(end);
      const r = { code: Number(m[2]), text: text.trim() };
      if (this.waiting) { const w = this.waiting; this.waiting = null; this.failed = null; w(r); } else this.queue.push(r);
    }
  }

  next(timeoutMs = 300000): Promise<{ code: number; text: string }> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting = null; reject(new Error('reply timeout')); }, timeoutMs);
      this.waiting = (r) => { clearTimeout(t); resolve(r); };
      this.failed = (e) => { clearTimeout(t); reject(e); };
    });
  }
}

function write(sock: Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
}

async function open(port: number): Promise<{ sock: Socket; rr: ReplyReader }> {
  const sock = connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  const rr = new ReplyReader(sock);
  await new Promise<void>((resolve, reject) => { sock.once('connect', () => resolve()); sock.once('error', reject); });
  const g = await rr.next(60000);
  if (g.code !== 220) throw new Error(`greeting ${g.text}`);
  await write(sock, 'EHLO bench.test\r\n');
  const e = await rr.next(60000);
  if (e.code !== 250) throw new Error(`EHLO ${e.text}`);
  return { sock, rr };
}

export interface LoadOptions {
  port: number;
  sessions: number;
  workload: Workload;
  /** stop starting new messages after this many ms (time-based run) */
  durationMs?: number;
  /** or: messages per session (count-based run) */
  perSession?: number;
  idPrefix: string;
  /** bodies with EICAR; each listed (session, index) sends one instead of the workload body */
  virus?: { bodies: Buffer[]; at: { session: number; index: number }[] };
}

/** Send one message on an open session; returns the result. */
async function sendOne(sock: Socket, rr: ReplyReader, id: string, body: Buffer, virus: boolean): Promise<MsgResult> {
  await write(sock, 'MAIL FROM:<sender@bench.test>\r\n');
  const m = await rr.next();
  if (m.code !== 250) return { id, code: m.code, waitMs: 0, bytes: 0, virus, reply: m.text };
  await write(sock, 'RCPT TO:<rcpt@sink.test>\r\n');
  const r = await rr.next();
  if (r.code !== 250) { await write(sock, 'RSET\r\n'); await rr.next(); return { id, code: r.code, waitMs: 0, bytes: 0, virus, reply: r.text }; }
  await write(sock, 'DATA\r\n');
  const d = await rr.next();
  if (d.code !== 354) { return { id, code: d.code, waitMs: 0, bytes: 0, virus, reply: d.text }; }
  const head = headerFor(id);
  sock.cork();
  sock.write(head);
  const p = write(sock, body);
  sock.uncork();
  await p;
  const t0 = process.hrtime.bigint();
  await write(sock, '.\r\n');
  const f = await rr.next();
  const waitMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { id, code: f.code, waitMs, bytes: head.length + body.length + 3, virus, reply: f.text };
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const results: MsgResult[] = [];
  const sessionErrors: string[] = [];
  const start = Date.now();
  const deadline = o.durationMs !== undefined ? start + o.durationMs : Infinity;
  const virusAt = new Map<string, number>();
  (o.virus?.at ?? []).forEach((v, k) => virusAt.set(`${v.session}/${v.index}`, k));

  const session = async (s: number) => {
    let i = 0;
    const more = () => (o.perSession !== undefined ? i < o.perSession : Date.now() < deadline);
    while (more()) {
      let conn: { sock: Socket; rr: ReplyReader };
      try { conn = await open(o.port); } catch (e) {
        sessionErrors.push(`s${s}: ${(e as Error).message}`);
        await sleep(200);
        if (o.perSession !== undefined) i++; // don't spin forever on a count-based run
        continue;
      }
      try {
        while (more()) {
          const vk = virusAt.get(`${s}/${i}`);
          const virus = vk !== undefined && !!o.virus;
          const body = virus ? o.virus!.bodies[vk % o.virus!.bodies.length]! : o.workload.bodies[o.workload.pick(i, s)]!;
          const id = `${o.idPrefix}-${s}-${i}${virus ? '-V' : ''}`;
          i++;
          const res = await sendOne(conn.sock, conn.rr, id, body, virus);
          results.push(res);
          if (res.code === 421) throw new Error(`421 ${res.reply}`);
        }
        await write(conn.sock, 'QUIT\r\n').catch(() => undefined);
        await conn.rr.next(5000).catch(() => undefined);
      } catch (e) {
        sessionErrors.push(`s${s}: ${(e as Error).message}`);
      } finally {
        conn.sock.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: o.sessions }, (_, s) => session(s)));
  return { results, elapsedMs: Date.now() - start, sessionErrors };
}

// ---- slow senders (memory test) -----------------------------------------------------------

export interface SlowOptions {
  port: number;
  sessions: number;
  body: Buffer;
  /** bytes per second per session */
  rate: number;
  /** send only this many bytes of the body, then hold until `release`, then abort (no dot) */
  holdAt?: number;
  idPrefix: string;
}

export interface SlowHandle {
  /** resolves when every session has sent holdAt bytes (or finished) */
  reached: Promise<void>;
  release(): void;
  done: Promise<MsgResult[]>;
}

export function slowSenders(o: SlowOptions): SlowHandle {
  let releaseFn: () => void = () => undefined;
  const released = new Promise<void>((r) => { releaseFn = r; });
  let reachedCount = 0;
  let reachedResolve: () => void = () => undefined;
  const reached = new Promise<void>((r) => { reachedResolve = r; });
  const mark = () => { if (++reachedCount === o.sessions) reachedResolve(); };
  const limit = o.holdAt ?? o.body.length;
  const waiting = new Set<Socket>();
  // on release, senders that never got as far as holdAt (e.g. stuck at RCPT because the filter
  // takes no more connections) are cut off and reported as not reached
  void released.then(() => { for (const s of waiting) s.destroy(new Error('did not reach the hold point before release')); });
  const chunk = 16 * 1024;
  const session = async (s: number): Promise<MsgResult> => {
    const id = `${o.idPrefix}-${s}`;
    let conn: { sock: Socket; rr: ReplyReader } | null = null;
    let marked = false;
    try {
      // stagger connects a little so 200 sessions don't arrive in one burst
      await sleep((s * 20) % 2000);
      conn = await open(o.port);
      const { sock, rr } = conn;
      waiting.add(sock);
      await write(sock, 'MAIL FROM:<sender@bench.test>\r\n'); await rr.next();
      await write(sock, 'RCPT TO:<rcpt@sink.test>\r\n');
      const r = await rr.next();
      if (r.code !== 250) throw new Error(`RCPT ${r.text}`);
      await write(sock, 'DATA\r\n');
      const d = await rr.next();
      if (d.code !== 354) throw new Error(`DATA ${d.text}`);
      await write(sock, headerFor(id));
      const t0 = Date.now();
      let sent = 0;
      while (sent < limit) {
        const n = Math.min(chunk, limit - sent);
        await write(sock, o.body.subarray(sent, sent + n));
        sent += n;
        const due = t0 + (sent / o.rate) * 1000;
        const now = Date.now();
        if (due > now) await sleep(due - now);
      }
      marked = true; mark();
      waiting.delete(sock);
      if (o.holdAt !== undefined) {
        await released;
        return { id, code: 0, waitMs: 0, bytes: sent, virus: false, reply: 'aborted by design' };
      }
      const tf = Date.now();
      await write(sock, '.\r\n');
      const f = await rr.next();
      await write(sock, 'QUIT\r\n').catch(() => undefined);
      return { id, code: f.code, waitMs: Date.now() - tf, bytes: sent, virus: false, reply: f.text };
    } catch (e) {
      if (!marked) mark();
      return { id, code: -1, waitMs: 0, bytes: 0, virus: false, reply: (e as Error).message };
    } finally {
      conn?.sock.destroy();
    }
  };
  const done = Promise.all(Array.from({ length: o.sessions }, (_, s) => session(s)));
  return { reached, release: releaseFn, done };
}

// ---- statistics ------------------------------------------------------------------------------

export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: number[]) => quantile(xs, 0.5);
