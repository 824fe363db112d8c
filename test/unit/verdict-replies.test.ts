/**
 * verdict-replies.test.ts — reply texts that fit each action, and "the virus wins over
 * the name": a file that is both banned and infected is reported as infected (scanned to
 * its end before the banned name or type is settled), at every place a name is judged —
 * MIME attachment, archive member, uuencoded file — and in any chunking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, replyFor, DEFAULT_ACTIONS, type Verdict, type Actions } from '../../src/core/index.js';
import { multipartMessage, EICAR, zip, chunks } from '../helpers/mail-build.js';

const KINDS: Verdict[] = [
  { kind: 'infected', name: 'Eicar-Test-Signature', where: '2/a', engine: 'builtin' },
  { kind: 'banned', reason: 'banned file name .exe', where: '2/a.exe' },
  { kind: 'limit', which: 'ratio', where: '2/a.zip' },
  { kind: 'anomaly', which: 'message-partial', where: '1' },
  { kind: 'unparseable', reason: 'corrupt archive', where: '2/a.zip' },
  { kind: 'error', errorKind: 'scanner-unavailable', where: '2/a', detail: 'tcp:127.0.0.1:3310: connect failed (ECONNREFUSED)' },
];

test('each action has its own words: rejected / deferred / generic only for scan errors', () => {
  for (const v of KINDS) {
    const all = (a: 'reject' | 'tempfail' | 'accept') => ({ ...DEFAULT_ACTIONS, [v.kind]: a }) as Actions;
    const rej = replyFor(v, all('reject'));
    assert.equal(rej.code, 550);
    assert.match(rej.text, /^Message rejected: /);
    const tmp = replyFor(v, all('tempfail'));
    assert.equal(tmp.code, 451);
    assert.equal(tmp.enhanced, '4.7.1');
    if (v.kind === 'error') {
      assert.equal(tmp.text, 'Message could not be scanned, try again later', 'scan errors: generic text, detail only in the log');
      assert.ok(!tmp.text.includes('ECONNREFUSED'));
    } else {
      assert.doesNotMatch(tmp.text, /could not be scanned/, `${v.kind} under tempfail is a policy decision, not a scan failure`);
      assert.match(tmp.text, /^Message deferred: .+, try again later$/);
    }
    assert.equal(replyFor(v, all('accept')).code, 250);
  }
  assert.equal(replyFor(KINDS[1]!, { ...DEFAULT_ACTIONS, banned: 'tempfail' }).text, 'Message deferred: banned file name .exe, try again later');
  assert.equal(replyFor(KINDS[0]!, { ...DEFAULT_ACTIONS, infected: 'tempfail' }).text, 'Message deferred: virus found: Eicar-Test-Signature, try again later');
});

async function scanAll(msg: Uint8Array, size?: number): Promise<Verdict> {
  const e = await createEngine();
  const s = e.begin();
  for (const c of size ? chunks(msg, size) : [msg]) await s.push(c);
  return s.end();
}

test('EICAR named eicar.com is infected, not banned — also inside a zip, uuencoded, and in any chunking', async () => {
  const filler = 'f'.repeat(3000);
  const cases: [string, Buffer, string][] = [
    ['attachment', multipartMessage([{ filename: 'eicar.com', content: EICAR + filler }]), '2/eicar.com'],
    ['attachment, signature at the end', multipartMessage([{ filename: 'setup.exe', content: filler + EICAR }]), '2/setup.exe'],
    ['zip member', multipartMessage([{ filename: 'files.zip', content: zip({ 'eicar.com': EICAR + filler }) }]), '2/files.zip!eicar.com'],
    ['banned zip name, infected member', multipartMessage([{ filename: 'files.exe', content: zip({ 'notes.txt': EICAR }) }]), '2/files.exe!notes.txt'],
  ];
  for (const [what, msg, where] of cases) {
    for (const size of [undefined, 1, 7, 4096]) {
      const v = await scanAll(msg, size);
      assert.equal(v.kind, 'infected', `${what} (chunks of ${size ?? 'all'}): ${JSON.stringify(v)}`);
      assert.equal(v.kind === 'infected' && v.where, where);
    }
  }
  const uu = Buffer.from(
    'From: a@b\r\nSubject: uu\r\n\r\nsee below\r\nbegin 644 eicar.com\r\n' +
      // uuencode of the EICAR string, 45 bytes per line
      Buffer.from(EICAR, 'latin1').reduce<string[]>((acc, _b, i, all) => {
        if (i % 45 === 0) acc.push(uuLine(all.subarray(i, i + 45)));
        return acc;
      }, []).join('') + '`\r\nend\r\n',
    'latin1',
  );
  assert.equal((await scanAll(uu)).kind, 'infected', 'uuencoded eicar.com');
});

test('a banned name or type without a virus is still banned, and latches before the end of the message', async () => {
  const e = await createEngine();
  const s = e.begin();
  const latched: Verdict[] = [];
  s.onFinal((v) => latched.push(v));
  const msg = multipartMessage([{ filename: 'tool.exe', content: 'harmless' }, { filename: 'notes.txt', content: 'n'.repeat(5000) }]);
  await s.push(msg.subarray(0, msg.indexOf('notes.txt') + 200));
  assert.equal(latched[0]?.kind, 'banned', 'settled at the end of that file, before the end of the message');
  assert.deepEqual(await s.end(), { kind: 'banned', reason: 'banned file name .exe', where: '2/tool.exe' });
});

function uuLine(b: Uint8Array): string {
  const enc = (n: number) => String.fromCharCode(n === 0 ? 0x60 : n + 0x20);
  let out = enc(b.length);
  for (let i = 0; i < b.length; i += 3) {
    const x = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    out += enc((x >> 18) & 63) + enc((x >> 12) & 63) + enc((x >> 6) & 63) + enc(x & 63);
  }
  return out + '\r\n';
}
