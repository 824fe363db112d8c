/**
 * lib-core-clamd.ts — the clamd side of bench/core-bench.ts.
 *
 * instream(): one zINSTREAM over a fresh UNIX-socket connection per message (64 KiB
 * chunks, honouring socket backpressure), resolving with clamd's reply text.
 * loadSignatures(): copies a synthetic .ndb into a running test clamd's database dir,
 * sends zRELOAD and polls until a probe payload carrying one of those signatures is
 * reported FOUND — so the timed scans run against the same signatures as our engine.
 * Errors: a socket error or a reply without NUL rejects; the bench then stops.
 */
import { connect } from 'node:net';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';

const CHUNK = 64 * 1024;

/** INSTREAM `data` to clamd at `socketPath`; resolves with the reply without the NUL. */
export function instream(socketPath: string, data: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socketPath });
    let reply = '';
    let settled = false;
    const done = (err: Error | null, r?: string) => {
      if (settled) return;
      settled = true;
      s.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    s.on('error', (e) => done(e));
    s.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      const z = reply.indexOf('\0');
      if (z >= 0) done(null, reply.slice(0, z));
    });
    s.on('close', () => done(new Error(`clamd closed without a complete reply: ${JSON.stringify(reply)}`)));
    s.on('connect', () => {
      s.write('zINSTREAM\0');
      let off = 0;
      const pump = (): void => {
        while (off < data.length) {
          const n = Math.min(CHUNK, data.length - off);
          const hdr = Buffer.alloc(4);
          hdr.writeUInt32BE(n);
          s.write(hdr);
          const ok = s.write(data.subarray(off, off + n));
          off += n;
          if (!ok) {
            s.once('drain', pump);
            return;
          }
        }
        s.write(Buffer.alloc(4)); // zero-length chunk ends the stream
      };
      pump();
    });
  });
}

/** Send one command (e.g. 'zRELOAD') and return the reply. */
function command(socketPath: string, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socketPath });
    let reply = '';
    s.on('error', reject);
    s.on('connect', () => s.write(`${cmd}\0`));
    s.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    s.on('close', () => resolve(reply.replace(/\0$/, '')));
  });
}

/**
 * Add `ndbFile` to the running clamd (database dir `dbDir`), reload, and wait until
 * `probe` (bytes that one of its signatures matches) is reported FOUND.
 */
export async function loadSignatures(socketPath: string, dbDir: string, ndbFile: string, probe: Uint8Array, timeoutMs = 300_000): Promise<number> {
  const t0 = performance.now();
  await copyFile(ndbFile, join(dbDir, 'synthetic.ndb'));
  const r = await command(socketPath, 'zRELOAD');
  if (!/RELOADING/.test(r)) throw new Error(`clamd RELOAD answered ${JSON.stringify(r)}`);
  for (;;) {
    try {
      const a = await instream(socketPath, probe);
      if (/FOUND$/.test(a)) return performance.now() - t0;
    } catch {
      /* clamd may refuse connections while it swaps engines */
    }
    if (performance.now() - t0 > timeoutMs) throw new Error('clamd did not load the synthetic signatures in time');
    await new Promise((res) => setTimeout(res, 200));
  }
}
