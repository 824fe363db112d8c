/**
 * header-filter.test.ts — the proxy's header-block filter against an independent oracle
 * (a line-based rewrite of the whole message, written the obvious way), whole, byte by
 * byte and in random splits (fast-check): chunking must not matter. Plus the cases the
 * oracle encodes: folded fields, blanks before the colon, any case, bare LF, dot-stuffed
 * lines, the body left alone, rename, capture, and views instead of copies past the header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeaderFilter } from '../../src/smtp/header-filter.js';

const REMOVE = ['X-Midstream-Ticket', 'X-Virus-Status', 'X-Virus-Scanned'];
const RENAME = new Map([
  ['X-Virus-Status', 'X-Upstream-Virus-Status'],
  ['X-Virus-Scanned', 'X-Upstream-Virus-Scanned'],
]);

/** The oracle: split off the header block, then judge line by line with a regex. */
function oracle(msg: string, mode: 'remove' | 'rename'): string {
  const lines = msg.split(/(?<=\n)/);
  const out: string[] = [];
  let inHeader = true;
  let last: 'keep' | 'drop' = 'keep';
  for (const l of lines) {
    if (!inHeader) {
      out.push(l);
      continue;
    }
    if (l === '\r\n' || l === '\n') {
      inHeader = false;
      out.push(l);
      continue;
    }
    if (/^[ \t]/.test(l)) {
      if (last === 'keep') out.push(l);
      continue;
    }
    const m = /^([^:\s\r\n]+)([ \t]*):/.exec(l);
    const name = m?.[1]?.toLowerCase();
    if (name === 'x-midstream-ticket' || (mode === 'remove' && (name === 'x-virus-status' || name === 'x-virus-scanned'))) {
      last = 'drop';
      continue;
    }
    last = 'keep';
    if (mode === 'rename' && (name === 'x-virus-status' || name === 'x-virus-scanned')) {
      out.push((name === 'x-virus-status' ? 'X-Upstream-Virus-Status' : 'X-Upstream-Virus-Scanned') + l.slice(m![1]!.length));
    } else out.push(l);
  }
  return out.join('');
}

function run(msg: string, mode: 'remove' | 'rename', splits: number[]): string {
  const f = new HeaderFilter({ prelude: null, remove: mode === 'remove' ? REMOVE : ['X-Midstream-Ticket'], rename: mode === 'rename' ? RENAME : new Map(), captureBytes: 0 });
  const b = Buffer.from(msg, 'latin1');
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of [...splits.filter((x) => x > 0 && x < b.length).sort((x, y) => x - y), b.length]) {
    if (s <= at) continue;
    out.push(...f.push([b.subarray(at, s)]));
    at = s;
  }
  return Buffer.concat(out).toString('latin1');
}

const MESSAGES: Record<string, string> = {
  forged: 'From: a@b\r\nX-Virus-Status: Clean\r\nSubject: hi\r\nX-Virus-Scanned: by a friend\r\n\r\nbody\r\nX-Virus-Status: Clean in the body\r\n',
  folded: 'X-Virus-Status: Clean,\r\n\tfolded on\r\n  and on\r\nSubject: kept\r\n folded too\r\n\r\nx\r\n',
  'blanks before colon, any case': 'x-VIRUS-status \t: Clean\r\nX-Virus-Statusx: not ours\r\nX-Virus-Stat: short\r\n\r\n',
  'bare LF': 'From: a\nX-Virus-Status: Clean\nSubject: s\n\nX-Virus-Status: body\n',
  'dot-stuffed and odd lines': '..X-Virus-Status: stuffed, not a field\r\nnot a header line\r\nX-Virus-Status: after a junk line\r\n\rX: cr-led\r\n\r\n',
  'ticket forged': 'X-Midstream-Ticket: 0123456789abcdef0123456789abcdef\r\nSubject: s\r\n\r\n',
  'no body': 'Subject: only headers\r\nX-Virus-Status: Clean\r\n',
  'name without colon then blanks': 'X-Virus-Status    \r\nX-Virus-Status next\r\n\r\n',
};

for (const mode of ['remove', 'rename'] as const) {
  test(`header filter (${mode}) matches the oracle, whole and byte by byte`, () => {
    for (const [name, msg] of Object.entries(MESSAGES)) {
      const want = oracle(msg, mode);
      assert.equal(run(msg, mode, []), want, `${name}: whole`);
      assert.equal(run(msg, mode, [...msg].map((_, i) => i)), want, `${name}: byte by byte`);
    }
  });
}

test('the oracle itself sees what a reader sees (sanity of the expectation)', () => {
  const got = oracle(MESSAGES.forged!, 'remove');
  assert.ok(!/^X-Virus-Status/m.test(got.split('\r\n\r\n')[0]!));
  assert.match(got, /X-Virus-Status: Clean in the body/);
  assert.match(oracle(MESSAGES.forged!, 'rename'), /^X-Upstream-Virus-Status: Clean\r$/m);
});

test('header filter: random messages in random splits give the oracle output', () => {
  const line = fc.oneof(
    fc.constantFrom('X-Virus-Status: Clean', 'x-virus-scanned :yes', 'X-Midstream-Ticket: f00', 'Subject: s', '\tcontinued', ' cont', 'X-Virus-Statu: no', 'junk', '.dot', 'X-Virus-Status', ''),
    fc.stringMatching(/^[A-Za-z-]{1,20}: [ -~]{0,30}$/),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\r\n', '\n'), fc.array(fc.nat(400), { maxLength: 20 }), fc.constantFrom('remove' as const, 'rename' as const), (lines, eol, splits, mode) => {
      const msg = lines.join(eol) + eol + 'body X-Virus-Status: x' + eol;
      assert.equal(run(msg, mode, splits), oracle(msg, mode));
    }),
    { seed: 1305, numRuns: 300 },
  );
});

test('prelude, capture, and no copies past the header block', () => {
  const pre = Buffer.from('X-Virus-Scanned: midstream\r\n');
  const f = new HeaderFilter({ prelude: pre, remove: REMOVE, rename: new Map(), captureBytes: 40 });
  assert.deepEqual(f.prelude(), [pre]);
  const msg = Buffer.from('Subject: a long enough subject line\r\nX-Virus-Status: Clean\r\n\r\nbody', 'latin1');
  const out = f.push([msg]);
  assert.equal(Buffer.concat(out).toString('latin1'), 'Subject: a long enough subject line\r\n\r\nbody');
  assert.equal(f.inHeader, false);
  const cap = f.captured();
  assert.equal(cap.text, 'Subject: a long enough subject line\r\nX-V', 'the original, forged field included, cut at 40 bytes');
  assert.equal(cap.truncated, true);
  const body = [Buffer.from('more body')];
  assert.equal(f.push(body), body, 'past the header block the very same array comes back');
  // A kept header run is forwarded as a view of the input, not a copy.
  const g = new HeaderFilter({ prelude: null, remove: REMOVE, rename: new Map(), captureBytes: 0 });
  const input = Buffer.from('Subject: x\r\nFrom: y\r\n');
  const pieces = g.push([input]);
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0]!.buffer, input.buffer);
});
