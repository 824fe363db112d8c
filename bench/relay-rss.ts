/**
 * relay-rss.ts — peak RSS of `midstream proxy` (built-in engine) relaying one 10 MB and one
 * 1 GiB message to a sink, each in a fresh proxy process: memory must not grow with the
 * message (target: the 1 GiB run within 16 MB of the 10 MB run), and no temp file appears.
 *
 *   npx tsx bench/relay-rss.ts [--huge-mb 1024] [--reps 2] [--reject]
 *
 * (MIDSTREAM_ROOT=DIR measures another build, e.g. an older checkout.)
 * The client streams a base64 attachment from a generator (nothing held, nothing on disk)
 * straight to the proxy (no front Postfix: this measures our process); the proxy forwards to
 * bench/lib/sink.ts. Peak = VmHWM of the proxy process, read before it is stopped; the
 * proxy runs with its own TMPDIR, which is checked for files afterwards.
 * Prints a markdown table.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sink } from './lib/sink.js';
import { freePorts, sleep, waitPort } from './lib/proc.js';
import { randomExe } from './lib/messages.js';

const ROOT = process.env.MIDSTREAM_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
const HUGE_MB = Number(opt('--huge-mb') ?? 1024);
const REPS = Number(opt('--reps') ?? 2);
const REJECT = argv.includes('--reject');
const MB = 1 << 20;

function reply(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (/(^|\n)\d{3} [^\n]*\n$/.test(buf)) { sock.off('data', onData); resolve(buf); }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

async function cmd(sock: Socket, line: string): Promise<string> {
  const r = reply(sock);
  sock.write(line + '\r\n');
  return r;
}

/** Send one message of about `bytes` (a base64 attachment) and return the final reply. */
async function sendBig(port: number, bytes: number): Promise<string> {
  const sock = connect({ port, host: '127.0.0.1' });
  sock.setNoDelay(true);
  await reply(sock);
  await cmd(sock, 'EHLO bench.test');
  await cmd(sock, 'MAIL FROM:<a@bench.test>');
  await cmd(sock, 'RCPT TO:<b@sink.test>');
  const d = await cmd(sock, 'DATA');
  if (!d.startsWith('354')) throw new Error(d);
  const head = 'X-Bench-Id: rss\r\nFrom: a@bench.test\r\nTo: b@sink.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n' +
    'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n';
  const block = randomExe(57 * 1024 * 3, 5); // 171 KiB → 3072 base64 lines of 76
  const b64 = Buffer.from((block.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n', 'latin1');
  const write = (b: Buffer) => new Promise<void>((res, rej) => sock.write(b, (e) => (e ? rej(e) : res())));
  await write(Buffer.from(head, 'latin1'));
  for (let sent = 0; sent < bytes; sent += b64.length) await write(b64);
  const fin = reply(sock);
  await write(Buffer.from('--b--\r\n.\r\n', 'latin1'));
  const f = await fin;
  sock.end('QUIT\r\n');
  return f.trim();
}

async function run(bytes: number): Promise<{ hwmKb: number; idleKb: number; reply: string; tempFiles: number; ms: number }> {
  const [pp, sp] = await freePorts(2);
  const sink = await Sink.start(sp!);
  const tmp = mkdtempSync(join(tmpdir(), 'relay-rss-'));
  const conf = join(tmp, 'm.toml');
  // Same policy as the peer bench: scan only (the attachment is a PE). --reject keeps the
  // default policy: the PE is banned at its first KiB and the rest is read and discarded.
  writeFileSync(conf, '[log]\nlevel = "warn"\n' + (REJECT ? '' : '[policy]\nbanned_extensions = []\nbanned_types = []\n'));
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'proxy', '--config', conf, '--listen', `127.0.0.1:${pp}`, '--forward', `127.0.0.1:${sp}`], {
    stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, TMPDIR: join(tmp) },
  });
  try {
    await waitPort(pp!, 30000);
    await sendBig(pp!, 64 * 1024); // warm up
    await sleep(500);
    const status = () => readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (f: string) => Number(new RegExp(`^${f}:\\s+(\\d+)`, 'm').exec(status())?.[1] ?? 0);
    const idleKb = kb('VmHWM');
    const t0 = Date.now();
    const r = await sendBig(pp!, bytes);
    const ms = Date.now() - t0;
    const hwmKb = kb('VmHWM');
    const tempFiles = readdirSync(tmp).filter((f) => f !== 'm.toml').length;
    return { hwmKb, idleKb, reply: r, tempFiles, ms };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    sink.child.kill();
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const rows: string[] = [];
  const res: Record<string, number[]> = {};
  for (let k = 0; k < REPS; k++) {
    for (const mb of [10, HUGE_MB]) {
      const r = await run(mb * MB);
      (res[mb] ??= []).push(r.hwmKb);
      rows.push(`| ${mb} MB | ${k + 1} | ${Math.round(r.idleKb / 1024)} | ${Math.round(r.hwmKb / 1024)} | ${((mb * MB) / MB / (r.ms / 1000)).toFixed(0)} | ${r.tempFiles} | ${r.reply.slice(0, 40)} |`);
      process.stderr.write(`${mb} MB rep ${k + 1}: peak ${r.hwmKb} kB (warm ${r.idleKb}) ${r.ms} ms temp files ${r.tempFiles}\n`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const diff = (med(res[HUGE_MB]!) - med(res[10]!)) / 1024;
  console.log(`Relay peak RSS (midstream proxy, built-in engine, no front Postfix), load ${load0} at start:\n`);
  console.log('| message | rep | peak RSS after warm-up (MB) | peak RSS (MB) | MB/s | temp files | final reply |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) console.log(r);
  console.log(`\n${HUGE_MB} MB vs 10 MB: ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} MB peak RSS (target ≤ 16 MB) → ${diff <= 16 ? 'met' : 'missed'}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
