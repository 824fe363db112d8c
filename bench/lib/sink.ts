// A tiny SMTP sink for the benchmark, run as a child process (fork, IPC):
// accepts everything, records the X-Bench-Id of every delivered message, and hands the ids
// received since the last request to the parent on {cmd:'take'}. Also reports messages that
// carry the EICAR string (they must never arrive).
import { createServer, type Socket } from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const EICAR_MARK = 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE';
const END = Buffer.from('\r\n.\r\n', 'latin1');

export interface SinkTake { ids: string[]; eicar: number; noId: number }

function serve(port: number): void {
  let ids: string[] = [];
  let eicar = 0, noId = 0;
  const srv = createServer((sock: Socket) => {
    sock.setNoDelay(true);
    let inData = false;
    let line = '';
    let head = '';       // first bytes of the message, for the id
    let tail = Buffer.alloc(0); // last 4 bytes of data seen, for a terminator across chunks
    let sawEicar = false;
    sock.write('220 sink.test ESMTP bench sink\r\n');
    const onCommand = (cmd: string) => {
      const verb = cmd.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') sock.write('250-sink.test\r\n250-8BITMIME\r\n250-SIZE 0\r\n250 PIPELINING\r\n');
      else if (verb === 'HELO') sock.write('250 sink.test\r\n');
      else if (verb === 'DATA') { inData = true; head = ''; tail = Buffer.alloc(0); sawEicar = false; sock.write('354 go\r\n'); }
      else if (verb === 'QUIT') { sock.end('221 bye\r\n'); }
      else sock.write('250 ok\r\n');
    };
    const finishMsg = () => {
      const m = /X-Bench-Id: (\S+)/i.exec(head);
      if (m) ids.push(m[1]!); else noId++;
      if (sawEicar || head.includes(EICAR_MARK)) eicar++;
      sock.write('250 2.0.0 queued\r\n');
    };
    sock.on('data', (d: Buffer) => {
      let buf = d;
      while (buf.length) {
        if (!inData) {
          const s = buf.toString('latin1');
          const nl = s.indexOf('\n');
          if (nl < 0) { line += s; return; }
          const cmd = (line + s.slice(0, nl)).replace(/\r$/, '');
          line = '';
          buf = buf.subarray(nl + 1);
          onCommand(cmd);
          continue;
        }
        if (head.length < 8192) head += buf.subarray(0, 8192 - head.length).toString('latin1');
        // find the terminator, possibly spanning the previous chunk's tail
        const joined = tail.length ? Buffer.concat([tail, buf.subarray(0, Math.min(buf.length, 8))]) : null;
        let endAt = -1;
        if (joined) {
          const j = joined.indexOf(END);
          if (j >= 0) endAt = j + END.length - tail.length;
        }
        if (endAt < 0) { const k = buf.indexOf(END); if (k >= 0) endAt = k + END.length; }
        const part = endAt >= 0 ? buf.subarray(0, endAt) : buf;
        if (!sawEicar && part.includes(EICAR_MARK)) sawEicar = true;
        if (endAt < 0) {
          tail = Buffer.from(buf.subarray(Math.max(0, buf.length - 4)));
          return;
        }
        inData = false;
        tail = Buffer.alloc(0);
        finishMsg();
        buf = buf.subarray(endAt);
      }
    });
    sock.on('error', () => { /* peer went away */ });
  });
  srv.listen(port, '127.0.0.1', () => process.send?.({ ready: true }));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'take') { process.send?.({ ids, eicar, noId }); ids = []; eicar = 0; noId = 0; }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Parent side: start the sink as a child process. */
export class Sink {
  private waiters: ((t: SinkTake) => void)[] = [];
  private constructor(readonly child: ChildProcess, readonly port: number) {
    child.on('message', (m: SinkTake & { ready?: boolean }) => {
      if (m.ready) return;
      this.waiters.shift()?.(m);
    });
  }

  static async start(port: number): Promise<Sink> {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', String(port)], {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (c) => reject(new Error(`sink exited ${c}`)));
    });
    return new Sink(child, port);
  }

  take(): Promise<SinkTake> {
    return new Promise((resolve) => { this.waiters.push(resolve); this.child.send({ cmd: 'take' }); });
  }
}

if (process.argv[2] === '--serve') serve(Number(process.argv[3]));
