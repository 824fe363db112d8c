/**
 * scan-command.ts — `midstream scan [--config FILE] [--signatures PATH]... [--clamd ADDR] [--json] FILE...`
 *
 * Streams each file (or stdin for "-") through the core. One line per file:
 *   FILE: clean | infected NAME (where) | banned REASON (where) | limit WHICH (where)
 *         | anomaly WHICH (where) | unparseable REASON (where) | error KIND
 * --json prints one JSON object per file instead. Exit 0 if all clean, 1 if any was
 * rejected, 2 on any error (an error verdict or an unreadable file).
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Engine, Verdict } from '../core/index.js';
import { sanitize } from '../core/index.js';

export function formatVerdict(file: string, v: Verdict): string {
  switch (v.kind) {
    case 'clean':
      return `${file}: clean`;
    case 'infected':
      return `${file}: infected ${sanitize(v.name)} (${sanitize(v.where, 300)})`;
    case 'banned':
      return `${file}: banned ${sanitize(v.reason)} (${sanitize(v.where, 300)})`;
    case 'limit':
      return `${file}: limit ${v.which} (${sanitize(v.where, 300)})`;
    case 'anomaly':
      return `${file}: anomaly ${sanitize(v.which)} (${sanitize(v.where, 300)})`;
    case 'unparseable':
      return `${file}: unparseable ${sanitize(v.reason)} (${sanitize(v.where, 300)})`;
    case 'error':
      return `${file}: error ${v.errorKind}`;
  }
}

export async function scanReadable(engine: Engine, input: Readable): Promise<{ verdict: Verdict; bytes: number; ms: number; anomalies: string[] }> {
  const t0 = performance.now();
  const session = engine.begin();
  try {
    for await (const chunk of input) {
      await session.push(chunk as Uint8Array);
      // Keep draining the input after a final verdict: the answer is known, the file is not ours to cut.
    }
  } catch (err) {
    session.abort();
    throw err;
  }
  const verdict = await session.end();
  return { verdict, bytes: session.stats.bytes, ms: performance.now() - t0, anomalies: session.stats.anomalies };
}

export async function runScan(engine: Engine, files: string[], json: boolean, out: (s: string) => void): Promise<number> {
  let worst = 0;
  for (const file of files) {
    let line: string;
    try {
      const input = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 64 * 1024 });
      const { verdict, bytes, ms, anomalies } = await scanReadable(engine, input);
      line = json
        ? JSON.stringify({ file, ...verdict, bytes, ms: Math.round(ms * 10) / 10, ...(anomalies.length ? { anomalies } : {}) })
        : formatVerdict(file, verdict);
      if (verdict.kind === 'error') worst = 2;
      else if (verdict.kind !== 'clean') worst = Math.max(worst, 1);
    } catch (err) {
      const msg = (err as NodeJS.ErrnoException).code ?? 'read-error';
      line = json ? JSON.stringify({ file, kind: 'error', errorKind: 'read', detail: msg }) : `${file}: error read (${msg})`;
      worst = 2;
    }
    out(line);
  }
  return worst;
}
