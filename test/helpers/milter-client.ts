/**
 * milter-client.ts — a minimal MTA-side milter client for protocol tests.
 *
 * Speaks our own wire codec (milter/milter-wire.ts) over TCP or a unix socket.
 * `command()` sends one packet and, unless the negotiated NR_* bits say the milter
 * will stay silent, waits for the final reply (PROGRESS packets are counted and
 * skipped; modification packets before the final reply are collected).
 * `expectSilence(ms)` asserts nothing arrives. Every wait has a timeout so a
 * broken milter fails the test instead of hanging it.
 */
import net from 'node:net';
import { Buffer } from 'node:buffer';
import { MilterDecoder, cstrings, encodeOptneg, encodePacket, parseOptneg, type Packet } from '../../milter/milter-wire.js';
import { SMFIC, SMFIP, SMFIR } from '../../milter/milter-codes.js';

export interface Reply {
  /** Modification packets (ADDHEADER …) before the final one. */
  mods: Packet[];
  /** The final action packet. */
  final: Packet;
  /** PROGRESS packets seen before the final one. */
  progress: number;
}

const NR: Record<string, number> = {
  C: SMFIP.NR_CONN,
  H: SMFIP.NR_HELO,
  M: SMFIP.NR_MAIL,
  R: SMFIP.NR_RCPT,
  T: SMFIP.NR_DATA,
  U: SMFIP.NR_UNKN,
  L: SMFIP.NR_HDR,
  N: SMFIP.NR_EOH,
  B: SMFIP.NR_BODY,
};
const FINAL = new Set<string>([
  SMFIR.ACCEPT, SMFIR.CONTINUE, SMFIR.DISCARD, SMFIR.REJECT, SMFIR.TEMPFAIL, SMFIR.REPLYCODE, SMFIR.SKIP,
  SMFIR.SHUTDOWN, SMFIR.CONN_FAIL, SMFIC.OPTNEG,
]);

export class MilterClient {
  private readonly decoder = new MilterDecoder(1 << 24);
  private readonly queue: Packet[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  /** What the milter chose in OPTNEG. */
  negotiated = { version: 0, actions: 0, protocol: 0 };

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (c: Buffer) => {
      const r = this.decoder.push(c);
      this.queue.push(...r.packets);
      this.waiter?.();
    });
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }

  /** address: 'inet:PORT@HOST' or 'unix:PATH'. */
  static connect(address: string): Promise<MilterClient> {
    return new Promise((res, rej) => {
      let s: net.Socket;
      const m = /^inet6?:(\d+)@(.+)$/.exec(address);
      if (m) s = net.connect({ port: Number(m[1]), host: m[2] });
      else s = net.connect(address.replace(/^(unix|local):/, ''));
      s.once('connect', () => res(new MilterClient(s)));
      s.once('error', rej);
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Send raw bytes (for malformed-packet tests). */
  raw(b: Uint8Array): void {
    this.sock.write(b);
  }

  send(cmd: string, data: Uint8Array = Buffer.alloc(0)): void {
    this.sock.write(encodePacket(cmd, data));
  }

  /** Next packet from the milter, or null when the connection closed; throws after timeoutMs. */
  async next(timeoutMs = 5000): Promise<Packet | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`milter client: no packet within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiter = () => {
          clearTimeout(t);
          res();
        };
      });
      this.waiter = null;
    }
    return this.queue.shift()!;
  }

  /** Read until a final reply. */
  async reply(timeoutMs = 5000): Promise<Reply> {
    const mods: Packet[] = [];
    let progress = 0;
    for (;;) {
      const p = await this.next(timeoutMs);
      if (!p) throw new Error('milter client: connection closed while waiting for a reply');
      if (p.cmd === SMFIR.PROGRESS) progress++;
      else if (FINAL.has(p.cmd)) return { mods, final: p, progress };
      else mods.push(p);
    }
  }

  /** False when the milter asked to skip this step (NOHELO for 'H'). */
  want(cmd: string): boolean {
    return !(cmd === SMFIC.HELO && (this.negotiated.protocol & SMFIP.NOHELO) !== 0);
  }

  /** True when the negotiated protocol promises no reply to cmd. */
  silent(cmd: string): boolean {
    const bit = NR[cmd];
    return bit !== undefined && (this.negotiated.protocol & bit) !== 0;
  }

  /** Send a command; wait for its reply unless the milter promised silence (then null). */
  async command(cmd: string, data: Uint8Array = Buffer.alloc(0), timeoutMs = 5000): Promise<Reply | null> {
    this.send(cmd, data);
    if (this.silent(cmd)) return null;
    return this.reply(timeoutMs);
  }

  /** Assert that nothing arrives within ms (the connection may stay open). */
  async expectSilence(ms = 200): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.queue.length > 0) throw new Error(`milter client: unexpected packet '${this.queue[0]!.cmd}'`);
  }

  async negotiate(version = 6, actions = 0x1ff, protocol = 0x1fffff): Promise<{ version: number; actions: number; protocol: number }> {
    this.send(SMFIC.OPTNEG, encodeOptneg(version, actions, protocol));
    const p = await this.next();
    if (!p || p.cmd !== SMFIC.OPTNEG) throw new Error(`milter client: expected OPTNEG reply, got ${p?.cmd}`);
    const o = parseOptneg(p.data);
    if (!o) throw new Error('milter client: short OPTNEG reply');
    this.negotiated = o;
    return o;
  }

  macro(stage: string, ...pairs: string[]): void {
    this.send(SMFIC.MACRO, Buffer.concat([Buffer.from(stage, 'latin1'), cstrings(...pairs)]));
  }

  connectInfo(host = 'client.test', addr = '127.0.0.1', port = 2525): Promise<Reply | null> {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(port);
    return this.command(SMFIC.CONNECT, Buffer.concat([cstrings(host), Buffer.from('4'), p, cstrings(addr)]));
  }

  mail(from: string, ...args: string[]): Promise<Reply | null> {
    return this.command(SMFIC.MAIL, cstrings(from, ...args));
  }

  rcpt(to: string, ...args: string[]): Promise<Reply | null> {
    return this.command(SMFIC.RCPT, cstrings(to, ...args));
  }

  header(name: string, value: string): Promise<Reply | null> {
    return this.command(SMFIC.HEADER, cstrings(name, value));
  }

  eoh(): Promise<Reply | null> {
    return this.command(SMFIC.EOH);
  }

  body(chunk: Uint8Array | string): Promise<Reply | null> {
    return this.command(SMFIC.BODY, typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
  }

  async eob(timeoutMs = 5000): Promise<Reply> {
    this.send(SMFIC.BODYEOB);
    return this.reply(timeoutMs);
  }

  abort(): void {
    this.send(SMFIC.ABORT);
  }

  quit(): void {
    this.send(SMFIC.QUIT);
  }

  quitNc(): void {
    this.send(SMFIC.QUIT_NC);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The text of a REPLYCODE packet (without the NUL). */
export function replyCodeText(p: Packet): string {
  const s = p.data.toString('latin1');
  return s.endsWith('\0') ? s.slice(0, -1) : s;
}
