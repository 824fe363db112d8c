/**
 * mime-readings.test.ts — every reading of a message (MimeReadings: forks, merges, the
 * cap) is a function of the bytes, not of how they arrive: generated messages full of
 * the ambiguities clients disagree on (junk header lines, `Name : value`, bare CRs,
 * prefix delimiters, reused and closed boundaries, duplicate and lenient Content-Types,
 * encoded multiparts) give identical traces of all readings whole, byte by byte and at
 * random splits; the number of readings never passes the cap; memory held between
 * writes stays bounded. Fixed seed (fast-check), bounded runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { traceChunks } from '../helpers/mime-trace.js';
import { MimeReadings } from '../../src/core/mime/mime-readings.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import type { MimeHandler } from '../../src/core/mime/mime-events.js';

const SEED = 0x5eed10;

/** Header lines, some of them ambiguous. */
const headerLine = fc.constantFrom(
  'Subject: hi',
  'X-Junk line without colon',
  ':colon first',
  'From an mbox line',
  'Content-Type : text/plain',
  'X-\xe9t\xe9: eight bit',
  'Content-Type: text/plain',
  'Content-Type: "text/plain"',
  'Content-Transfer-Encoding: base64',
  'Content-Transfer-Encoding: "base64"',
  'Content-Disposition: attachment; filename*0="a"; filename*2=".exe"',
  'X-Bare: a\rContent-Type: text/plain',
  ' folded continuation',
);

const bodyLine = fc.constantFrom('hello', 'QUJD', '--', '-- sig', '', 'text\r--b1', 'x\r', '=?utf-8?q?x?=');

interface Gen {
  top: string[];
  parts: { headers: string[]; body: string[]; delim: string }[];
  close: string;
  after: string[];
}

const delimVariant = fc.constantFrom('--b1', '--b1 ', '--b1x', '--b1--x', '\r--b1', '--b1\r');

const message: fc.Arbitrary<Gen> = fc.record({
  top: fc.array(headerLine, { maxLength: 4 }),
  parts: fc.array(
    fc.record({ headers: fc.array(headerLine, { maxLength: 3 }), body: fc.array(bodyLine, { maxLength: 3 }), delim: delimVariant }),
    { minLength: 1, maxLength: 4 },
  ),
  close: fc.constantFrom('--b1--', '--b1-- x', '--b1--\r'),
  after: fc.array(fc.constantFrom('--b1', 'epilogue', 'Content-Type: text/plain; name=z.exe', ''), { maxLength: 3 }),
});

const lead = fc.constantFrom('', '\r\n', '\xef\xbb\xbf');
const ctTop = fc.constantFrom(
  'Content-Type: multipart/mixed; boundary=b1',
  'Content-Type: multipart/mixed; boundary="b1"; boundary=b2',
  'Content-Type: multipart/mixed boundary=b1',
  'Content-Type: "multipart/mixed"; boundary=b1',
  'Content-Type: multipart/mixed; boundary=b1\r\nContent-Transfer-Encoding: quoted-printable',
  'Content-Type: multipart/mixed; boundary=b1\r\nContent-Type: text/plain',
);

function render(l: string, ct: string, g: Gen): Buffer {
  const crlf = '\r\n';
  let s = l + [...g.top.slice(0, 2), ct, ...g.top.slice(2)].join(crlf) + crlf + crlf + 'preamble' + crlf;
  for (const p of g.parts) {
    s += p.delim + crlf + p.headers.join(crlf) + crlf + crlf + p.body.join(crlf) + crlf;
  }
  s += g.close + crlf + g.after.join(crlf);
  return Buffer.from(s, 'latin1');
}

/** Cut `bytes` at the given offsets (sorted, deduplicated). */
function cutAt(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const cuts = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const c of cuts) {
    out.push(bytes.slice(last, c));
    last = c;
  }
  out.push(bytes.slice(last));
  return out;
}

function bytewise(b: Uint8Array): Uint8Array[] {
  return Array.from(b, (_, i) => b.slice(i, i + 1));
}

test('every reading is chunking-invariant on generated ambiguous messages (and forks do happen)', () => {
  let forked = 0;
  let merged = 0;
  let capped = 0;
  fc.assert(
    fc.property(lead, ctTop, message, fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (l, ct, g, offs) => {
      const raw = render(l, ct, g);
      const whole = traceChunks([raw]);
      if (/^fork /m.test(whole)) forked++;
      if (/^merged$/m.test(whole)) merged++;
      if (/mime-readings - verdict|mime-readings \S+ verdict/.test(whole)) capped++;
      return traceChunks(cutAt(raw, offs)) === whole && traceChunks(bytewise(raw)) === whole;
    }),
    { seed: SEED, numRuns: 200 },
  );
  // not vacuous: the generator reaches forks, merges and the cap
  assert.ok(forked > 100, `forked in ${forked} runs`);
  assert.ok(merged > 10, `merged in ${merged} runs`);
  assert.ok(capped > 0, `cap reached in ${capped} runs`);
});

test('the cap holds at every moment, and memory between writes stays bounded', () => {
  fc.assert(
    fc.property(lead, ctTop, message, fc.integer({ min: 1, max: 64 }), (l, ct, g, size) => {
      const raw = render(l, ct, g);
      let max = 0;
      let held = 0;
      const noop = (): MimeHandler => ({
        onPartStart() {},
        onPartData() {},
        onPartEnd() {},
        onLimit() {},
        onFork: () => noop(),
      });
      const r = new MimeReadings(noop(), DEFAULT_LIMITS, 4, (n) => (max = Math.max(max, n)));
      for (let i = 0; i < raw.length; i += size) {
        r.write(raw.subarray(i, i + size));
        max = Math.max(max, r.count);
        held = Math.max(held, r.carryBytes);
      }
      r.end();
      // per reading: a header line in progress (≤ this message) and a delimiter carry
      return max <= 4 && held <= 4 * (raw.length + 2048);
    }),
    { seed: SEED + 1, numRuns: 150 },
  );
});

test('one fork per reader profile per lineage: a second junk line is only recorded', () => {
  const m = Buffer.from('From: a\r\njunk one\r\njunk two\r\nContent-Type: text/plain\r\n\r\nbody\r\n', 'latin1');
  const t = traceChunks([m]);
  assert.equal((t.match(/^fork /gm) ?? []).length, 1, t);
  assert.match(t, /reading 0 header-junk-line -\n(.|\n)*warn header-junk-skipped -\n(.|\n)*warn header-junk-skipped -/);
});

test('a per-part ambiguity merges back: the rest of the message is read once', () => {
  const m = Buffer.from(
    'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n' +
      'Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n',
    'latin1',
  );
  const t = traceChunks([m]);
  assert.match(t, /reading 0 duplicate-content-transfer-encoding 1\n(.|\n)*data [0-9a-f]{16} 4\nend 1\nmerged\n$/, t);
  assert.equal((t.match(/^start 2 /gm) ?? []).length, 1, 'part 2 read once');
});
