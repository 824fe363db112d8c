/**
 * actions-policy.test.ts — the pieces of issue #13 below the fronts: the six actions in
 * the one policy table (replies, strictness), reply templates (validation, expansion,
 * sanitising peer-controlled names), the edits each action asks of the message, name
 * globs and declared MIME types in the core, the sender block list, and the core's
 * "strictest action wins" among several findings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACTION_NAMES,
  ACTION_RANK,
  DEFAULT_ACTIONS,
  GlobList,
  compileGlob,
  createEngine,
  parseReplyTemplate,
  replyFor,
  stricterAction,
  templateMisfit,
  type Actions,
  type Verdict,
} from '../../src/core/index.js';
import { editsFor, prefixSubject, renamedHeader, statusText, expandScanned, type HeaderSettings } from '../../src/actions/message-edits.js';
import { multipartMessage, plainMessage, EICAR } from '../helpers/mail-build.js';

const INFECTED: Verdict = { kind: 'infected', name: 'Eicar-Test-Signature', where: '2/eicar.txt', engine: 'builtin' };
const BANNED: Verdict = { kind: 'banned', reason: 'banned file name .exe', where: '2/a.exe' };
const ERROR: Verdict = { kind: 'error', errorKind: 'scanner-timeout', where: '2/a', detail: 'tcp:127.0.0.1:3310 slow' };

test('every action: refusals get 4xx/5xx, the others 250; strictness order', () => {
  for (const a of ACTION_NAMES) {
    const r = replyFor(INFECTED, { ...DEFAULT_ACTIONS, infected: a });
    assert.equal(r.action, a);
    assert.equal(r.code, a === 'reject' ? 550 : a === 'tempfail' ? 451 : 250, a);
  }
  assert.deepEqual([...ACTION_NAMES].sort((x, y) => ACTION_RANK[y] - ACTION_RANK[x]), ['reject', 'tempfail', 'discard', 'quarantine', 'tag', 'accept']);
  assert.equal(stricterAction('tag', 'quarantine'), 'quarantine');
  assert.equal(stricterAction('discard', 'accept'), 'discard');
  assert.equal(stricterAction('reject', 'discard'), 'reject');
});

test('reply templates: validated once (no CR/LF, printable, code classes, placeholders)', () => {
  assert.deepEqual(parseReplyTemplate('550 5.7.1 Virus found: %v'), { code: 550, enhanced: '5.7.1', text: 'Virus found: %v' });
  assert.deepEqual(parseReplyTemplate('554 Refused %r'), { code: 554, enhanced: '5.7.1', text: 'Refused %r' });
  assert.deepEqual(parseReplyTemplate('No code at all: %w %%'), { text: 'No code at all: %w %%' });
  for (const [bad, why] of [
    ['550 5.7.1 a\r\nInjected: x', /one line/],
    ['550 5.7.1 \u00e9t\u00e9', /printable ASCII/],
    ['250 2.0.0 fine', /4xx or 5xx/],
    ['550 4.7.1 mixed', /does not match/],
    ['550 5.7.1 %x', /unknown placeholder %x/],
    ['550 5.7.1 ', /needs text/],
    ['55 short code', /starts with/],
    ['x'.repeat(201), /at most 200/],
  ] as const) {
    assert.throws(() => parseReplyTemplate(bad), (e: unknown) => e instanceof RangeError && why.test(e.message), bad);
  }
  const t = parseReplyTemplate('451 4.7.1 later');
  assert.equal(templateMisfit(t, 'tempfail'), null);
  assert.match(templateMisfit(t, 'reject')!, /does not fit action reject/);
  assert.equal(templateMisfit(t, 'quarantine'), null, 'unused by non-refusals');
});

test('reply templates: expansion with sanitised peer text; a misfit code is never used', () => {
  const tpl = { infected: '550 5.7.2 Virus %v in %w (%r) 100%%', banned: '451 4.7.1 wrong class' };
  const r = replyFor(INFECTED, DEFAULT_ACTIONS, tpl);
  assert.deepEqual(r, { action: 'reject', code: 550, enhanced: '5.7.2', text: 'Virus Eicar-Test-Signature in 2/eicar.txt (virus found: Eicar-Test-Signature) 100%' });
  const evil: Verdict = { kind: 'infected', name: 'Evil\r\n250 Ok\u0000%s', where: 'a\r\nb', engine: 'clamd' };
  const e = replyFor(evil, DEFAULT_ACTIONS, tpl);
  assert.ok(!/[\r\n\0]/.test(e.text), e.text);
  assert.match(e.text, /^Virus Evil\?\?250 Ok\?%s in a\?\?b/);
  // banned's template has a 4xx code but banned is rejected: the code falls back to 550.
  const b = replyFor(BANNED, DEFAULT_ACTIONS, tpl);
  assert.equal(b.code, 550);
  assert.equal(b.enhanced, '5.7.1');
  assert.equal(b.text, 'wrong class');
  // Error under tempfail: %v is our error kind, never the detail.
  assert.equal(replyFor(ERROR, DEFAULT_ACTIONS, { error: 'Try later (%v)' }).text, 'Try later (scanner-timeout)');
  // No template for the kind: the built-in words.
  assert.equal(replyFor(BANNED, { ...DEFAULT_ACTIONS, banned: 'tempfail' }, tpl).code, 451);
});

const H: HeaderSettings = { scanned: 'midstream 1.2.3 on mx.test', status: false, incoming: 'remove', subjectPrefix: '***VIRUS*** ' };

test('edits per action: what is added, prefixed, held or dropped', () => {
  assert.deepEqual(editsFor(INFECTED, 'reject', H), { add: [], discard: false });
  assert.deepEqual(editsFor(INFECTED, 'tempfail', H), { add: [], discard: false });
  assert.deepEqual(editsFor(INFECTED, 'discard', H), { add: [], discard: true });
  assert.deepEqual(editsFor({ kind: 'clean' }, 'accept', H), { add: [['X-Virus-Scanned', 'midstream 1.2.3 on mx.test']], discard: false });
  assert.deepEqual(editsFor({ kind: 'clean' }, 'accept', { ...H, status: true }, false), { add: [['X-Virus-Status', 'Clean']], discard: false });
  assert.deepEqual(editsFor(INFECTED, 'tag', H), {
    add: [['X-Virus-Scanned', 'midstream 1.2.3 on mx.test'], ['X-Virus-Status', 'Infected (Eicar-Test-Signature)']],
    discard: false,
    subjectPrefix: '***VIRUS*** ',
  });
  assert.deepEqual(editsFor(BANNED, 'quarantine', { ...H, scanned: '' }), {
    add: [['X-Virus-Status', 'Banned (banned file name .exe)']],
    discard: false,
    quarantine: 'midstream: banned banned file name .exe (2/a.exe)',
  });
  assert.equal(statusText(ERROR), 'Error (scanner-timeout)');
  assert.equal(statusText({ kind: 'limit', which: 'ratio', where: '2' }), 'Limit (ratio)');
  assert.equal(prefixSubject(' hello', '[V] '), '[V] hello');
  assert.equal(prefixSubject('[V] hello', '[V] '), '[V] hello', 'never doubled');
  assert.equal(renamedHeader('X-Virus-Status'), 'X-Upstream-Virus-Status');
  assert.equal(expandScanned('midstream %V on %H (100%%)', { version: '9', hostname: 'h' }), 'midstream 9 on h (100%)');
});

test('name globs: * ? [..] [!..] escapes, case-insensitive, whole name; bad patterns refused', () => {
  const g = (p: string, s: string) => compileGlob(p).matches(s);
  assert.ok(g('*.pdf.exe', 'Invoice.PDF.exe'));
  assert.ok(!g('*.pdf.exe', 'invoice.pdf.exe.txt'));
  assert.ok(g('invoice?.zip', 'invoice7.zip'));
  assert.ok(!g('invoice?.zip', 'invoice.zip'));
  assert.ok(g('report[0-9][0-9].doc', 'report42.doc'));
  assert.ok(!g('report[!0-9]*', 'report4'));
  assert.ok(g('a\\*b', 'a*b') && !g('a\\*b', 'axb'));
  assert.ok(g('*a*a*a*a*a*b', 'a'.repeat(5000) + 'b'));
  assert.ok(!g('*a*a*a*a*a*b', 'a'.repeat(5000)), 'the backtracking walk finishes on a long near-miss');
  assert.ok(g('application/x-ms*', 'application/x-msdownload'));
  for (const bad of ['', 'a[b', 'x\\', '[z-a]', 'y'.repeat(201)]) assert.throws(() => compileGlob(bad), RangeError, bad);
  assert.equal(new GlobList(['*.a', '*.b']).first('x.B'), '*.b');
});

async function verdictOf(msg: Buffer, opts: Parameters<typeof createEngine>[0] = {}, policy: Record<string, unknown> = {}): Promise<Verdict> {
  const e = await createEngine(opts);
  try {
    const s = e.begin({}, { policy });
    await s.push(msg);
    return await s.end();
  } finally {
    await e.close();
  }
}

test('core: banned by name glob and by declared MIME type; the sender block list; skip_banned skips both', async () => {
  const glob = multipartMessage([{ filename: 'Invoice.PDF.zipx', content: 'x' }]);
  assert.deepEqual(await verdictOf(glob, { bannedNames: ['*.pdf.zipx'] }), { kind: 'banned', reason: 'banned file name (*.pdf.zipx)', where: '2/Invoice.PDF.zipx' });
  assert.equal((await verdictOf(glob)).kind, 'clean', 'no glob: clean');
  const typed = multipartMessage([{ filename: 'notes.dat', contentType: 'application/x-msdownload', content: 'plain words' }]);
  assert.deepEqual(await verdictOf(typed), { kind: 'banned', reason: 'banned declared type application/x-msdownload', where: '2/notes.dat' });
  assert.equal((await verdictOf(typed, { bannedMimeTypes: [] })).kind, 'clean');
  assert.equal((await verdictOf(typed, {}, { skipBanned: true })).kind, 'clean');
  const clean = plainMessage('hello\r\n');
  assert.deepEqual(await verdictOf(clean, {}, { blocked: 'sender blocked' }), { kind: 'banned', reason: 'sender blocked', where: '(envelope)' });
});

test('core: several findings, the strictest action decides (then the worse kind)', async () => {
  // An infected file and a banned one in the same message.
  const both = multipartMessage([
    { filename: 'setup.exe', content: 'harmless program bytes' },
    { filename: 'eicar.txt', content: EICAR },
  ]);
  const run = (actions: Partial<Actions>) => verdictOf(both, { actions });
  assert.equal((await run({ infected: 'tag', banned: 'quarantine' })).kind, 'banned', 'quarantine beats tag');
  assert.equal((await run({ infected: 'quarantine', banned: 'tag' })).kind, 'infected');
  assert.equal((await run({ infected: 'tag', banned: 'discard' })).kind, 'banned', 'discard beats tag');
  assert.equal((await run({ infected: 'tag', banned: 'tag' })).kind, 'infected', 'same action: the worse kind');
});
