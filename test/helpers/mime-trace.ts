/**
 * mime-trace.ts — renders MimeSplitter events as text lines for golden tests.
 *
 *   header <path|-> <Name> "<value, JSON, cut at 72 chars>"
 *   start <path> <role> d=<depth> <type|-> cte=<cte|-> disp=<disp|-> [name="<filename>"]
 *   data <sha256 first 16 hex> <len>     (whole part, so chunking cannot show)
 *   end <path>
 *   limit <which> <path|->   /   warn <code> <path|->
 *   anomaly <code> <path|-> [verdict]
 *   fork <label>             (another reading starts here; its lines follow this one's)
 *   reading <label> <code> <path|->   (first line of a forked reading)
 *   merged                   (this reading was dropped: another reads on for it)
 *
 * traceMime(bytes, chunkSizes): chunkSizes is cycled over the input (e.g. [1] = byte by
 * byte); empty = one write. Every reading is traced (MimeReadings): the first, then the
 * forked ones in birth order (label = fork path). Also checks the event protocol (data only inside a part,
 * start/end balanced) and throws on a violation, so every golden test checks it too.
 */
import { createHash, type Hash } from 'node:crypto';
import { MimeSplitter } from '../../src/core/mime/mime-splitter.js';
import { MimeReadings, MAX_READINGS } from '../../src/core/mime/mime-readings.js';
import { DEFAULT_LIMITS, type Limits } from '../../src/core/limits.js';
import type { MimeHandler, PartInfo } from '../../src/core/mime/mime-events.js';

const p = (s: string) => (s === '' ? '-' : s);

function cut(v: string): string {
  const j = JSON.stringify(v.length > 72 ? v.slice(0, 72) : v);
  return v.length > 72 ? `${j}…(+${v.length - 72})` : j;
}

export function splitBy(bytes: Uint8Array, chunkSizes: readonly number[]): Uint8Array[] {
  if (chunkSizes.length === 0) return [bytes];
  const out: Uint8Array[] = [];
  let k = 0;
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, chunkSizes[k++ % chunkSizes.length]!);
    out.push(bytes.slice(i, i + n)); // slice: the splitter must not rely on the caller's buffer
    i += n;
  }
  return out;
}

/** One reading's tracer; forks get their own (label = fork path from the first reading). */
function tracer(label: string, origin: string, all: Map<string, string[]>): MimeHandler {
  const lines: string[] = [];
  if (label !== '') lines.push(`reading ${label} ${origin}`);
  all.set(label, lines);
  let cur: { info: PartInfo; hash: Hash; len: number } | null = null;
  let forks = 0;
  return {
    onHeader: (path, name, value) => lines.push(`header ${p(path)} ${name} ${cut(value)}`),
    onPartStart(info) {
      if (cur) throw new Error(`start ${info.path} inside ${cur.info.path}`);
      cur = { info, hash: createHash('sha256'), len: 0 };
      const name = info.filename === undefined ? '' : ` name=${JSON.stringify(info.filename)}`;
      const more = info.names && info.names.length > 1 ? ` names=${JSON.stringify(info.names.slice(1))}` : '';
      const bnd = info.boundary === undefined ? '' : ` boundary=${JSON.stringify(info.boundary)}`;
      lines.push(
        `start ${info.path} ${info.role} d=${info.depth} ${info.contentType || '-'} cte=${info.transferEncoding || '-'} disp=${info.disposition || '-'}${name}${more}${bnd}`,
      );
    },
    onPartData(chunk) {
      if (!cur) throw new Error('data outside a part');
      if (chunk.length === 0) throw new Error('empty data chunk');
      cur.hash.update(chunk);
      cur.len += chunk.length;
    },
    onPartEnd() {
      if (!cur) throw new Error('end outside a part');
      lines.push(`data ${cur.hash.digest('hex').slice(0, 16)} ${cur.len}`, `end ${cur.info.path}`);
      cur = null;
    },
    onLimit: (which, path) => lines.push(`limit ${which} ${p(path)}`),
    onWarning: (code, path) => lines.push(`warn ${code} ${p(path)}`),
    onAnomaly: (code, path, verdict) => lines.push(`anomaly ${code} ${p(path)}${verdict ? ' verdict' : ''}`),
    onFork(code, path) {
      const child = `${label}${label === '' ? '' : '.'}${forks++}`;
      lines.push(`fork ${child}`);
      return tracer(child, `${code} ${p(path)}`, all);
    },
    onMerge() {
      if (cur) throw new Error('merged with a part open');
      lines.push('merged');
    },
  };
}

/** Key order of labels "", "0", "0.1", "1" … (numeric per component). */
function labelLess(a: string, b: string): number {
  const x = a === '' ? [] : a.split('.').map(Number);
  const y = b === '' ? [] : b.split('.').map(Number);
  for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k]! - y[k]!;
  return x.length - y.length;
}

/** Every reading of the message (MimeReadings), the first one first, then forks in birth order. */
export function traceChunks(chunks: readonly Uint8Array[], limits: Limits = DEFAULT_LIMITS, maxReadings = MAX_READINGS): string {
  const all = new Map<string, string[]>();
  const r = new MimeReadings(tracer('', '', all), limits, maxReadings);
  for (const c of chunks) r.write(c);
  r.end();
  const out: string[] = [];
  for (const label of [...all.keys()].sort(labelLess)) out.push(...all.get(label)!);
  return out.join('\n') + '\n';
}

export function traceMime(bytes: Uint8Array, chunkSizes: readonly number[] = [], limits: Limits = DEFAULT_LIMITS): string {
  return traceChunks(splitBy(bytes, chunkSizes), limits);
}

/** Concatenated data per part path (for tests that check exact bytes). */
export function collectParts(bytes: Uint8Array, chunkSizes: readonly number[] = [], limits: Limits = DEFAULT_LIMITS): Map<string, { info: PartInfo; data: string }> {
  const parts = new Map<string, { info: PartInfo; data: string }>();
  let cur: { info: PartInfo; data: string } | null = null;
  const s = new MimeSplitter(
    {
      onPartStart(info) {
        cur = { info, data: '' };
        parts.set(info.path, cur);
      },
      onPartData(chunk) {
        cur!.data += Buffer.from(chunk).toString('latin1');
      },
      onPartEnd() {
        cur = null;
      },
      onLimit() {},
    },
    limits,
  );
  for (const c of splitBy(bytes, chunkSizes)) s.write(c);
  s.end();
  return parts;
}
