/**
 * smtp-client.ts — a minimal in-process SMTP client for tests.
 *
 * Sends exactly the bytes it is given (commands, raw dot-stuffed content, broken line
 * endings) and reads replies (multi-line aware). `sendMessage` runs a whole transaction;
 * `streamData` writes content with backpressure; `destroy()` disconnects at any moment
 * (e.g. mid-DATA). Reply waits time out (default 30 s) so a hung peer fails the test.
 * Gaps: no TLS, no AUTH.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  lines: string[];
  /** All lines joined with "\n", codes included. */
  text: string;
}

export class TestSmtpClient {
  private buf = '';
  private queue: Reply[] = [];
  private pending: string[] = [];
  private waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private closedErr: Error | null = null;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.onData(c));
    let done!: () => void;
    this.closed = new Promise((r) => (done = r));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closedErr = new Error('connection closed');
      for (const w of this.waiters.splice(0)) w.reject(this.closedErr);
      done();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestSmtpClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new TestSmtpClient(s));
      });
    });
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  private onData(c: Buffer): void {
    this.buf += c.toString('latin1');
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i < 0) break;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.pending.push(line);
      if (line[3] !== '-') {
        const lines = this.pending;
        this.pending = [];
        const r: Reply = { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
        const w = this.waiters.shift();
        if (w) w.resolve(r);
        else this.queue.push(r);
      }
    }
  }

  read(timeoutMs = 30_000): Promise<Reply> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (r: Reply) => (clearTimeout(t), resolve(r)),
        reject: (e: Error) => (clearTimeout(t), reject(e)),
      };
      this.waiters.push(w);
    });
  }

  write(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  async cmd(line: string | Uint8Array, timeoutMs?: number): Promise<Reply> {
    this.write(typeof line === 'string' ? line + '\r\n' : Buffer.concat([line, Buffer.from('\r\n')]));
    return this.read(timeoutMs);
  }

  /** Write content with backpressure (no dot-stuffing: give it already-stuffed bytes). */
  async streamData(chunks: Iterable<Uint8Array>): Promise<void> {
    for (const c of chunks) {
      if (this.closedErr) throw this.closedErr;
      if (!this.socket.write(c)) {
        await new Promise<void>((r) => {
          const done = () => (this.socket.off('drain', done), this.socket.off('close', done), r());
          this.socket.on('drain', done);
          this.socket.on('close', done);
        });
      }
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  async quit(): Promise<void> {
    if (!this.closedErr) {
      this.write('QUIT\r\n');
      await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
    }
    this.socket.destroy();
  }
}

/** SMTP dot-stuffing plus terminator, for tests that send a plain message. */
export function dotStuff(message: Buffer | string): Buffer {
  const s = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  const parts: Buffer[] = [];
  let start = 0;
  if (s[0] === 0x2e) parts.push(Buffer.from('.'));
  for (let i = 0; i < s.length; i++) {
    if (s[i] === 0x0a && s[i + 1] === 0x2e) {
      parts.push(s.subarray(start, i + 1), Buffer.from('.'));
      start = i + 1;
    }
  }
  parts.push(s.subarray(start));
  const endsCrlf = s.length >= 2 && s[s.length - 2] === 0x0d && s[s.length - 1] === 0x0a;
  parts.push(Buffer.from(s.length === 0 || endsCrlf ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(parts);
}

export interface SendResult {
  replies: Record<string, Reply>;
  rcpt: Reply[];
  /** Final reply after the dot (or the failing reply before it). */
  final: Reply;
}

/** A whole transaction: EHLO, MAIL, RCPT…, DATA, content, QUIT. Stops at the first failure before DATA. */
export async function sendMessage(
  port: number,
  o: { from: string; to: string[]; message: Buffer | string; ehlo?: string; mailParams?: string; rcptParams?: string },
): Promise<SendResult & { client: TestSmtpClient }> {
  const c = await TestSmtpClient.connect(port);
  const replies: Record<string, Reply> = {};
  try {
    replies.greeting = await c.read();
    replies.ehlo = await c.cmd(`EHLO ${o.ehlo ?? 'client.example'}`);
    replies.mail = await c.cmd(`MAIL FROM:<${o.from}>${o.mailParams ? ' ' + o.mailParams : ''}`);
    if (replies.mail.code !== 250) return { replies, rcpt: [], final: replies.mail, client: c };
    const rcpt: Reply[] = [];
    for (const t of o.to) rcpt.push(await c.cmd(`RCPT TO:<${t}>${o.rcptParams ? ' ' + o.rcptParams : ''}`));
    replies.data = await c.cmd('DATA');
    if (replies.data.code !== 354) return { replies, rcpt, final: replies.data, client: c };
    c.write(dotStuff(o.message));
    const final = await c.read(120_000);
    return { replies, rcpt, final, client: c };
  } finally {
    await c.quit();
  }
}
