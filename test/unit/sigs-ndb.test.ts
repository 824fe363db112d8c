/**
 * sigs-ndb.test.ts — .ndb syntax: each element with a positive and a near-miss negative,
 * offsets, skip reasons, and SignatureFileError for syntax errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignatureDb, SignatureFileError, SIG_ERROR_CODES, EICAR_NAME } from '../../src/core/scan/sigs/signature-db.js';
import { parseNdbLine } from '../../src/core/scan/sigs/ndb-parse.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const db1 = (line: string) => SignatureDb.fromSources([{ label: 't.ndb', kind: 'ndb', text: line + '\n' }]);
function scan(db: SignatureDb, data: Uint8Array): string | null {
  const m = db.createMatcher();
  return m.write(data) ?? m.end();
}

// [signature, positive input hex, near-miss input hex]
const CASES: [string, string, string, string][] = [
  ['static bytes', 'S:0:*:deadbeef01', '00 deadbeef01 00', '00 deadbeef02 00'],
  ['upper-case hex', 'S:0:*:DEADBEEF', 'deadbeef', 'deadbeee'],
  ['?? any byte', 'S:0:*:6162??6364', '6162ff6364', '61626364'],
  ['a? high nibble', 'S:0:*:6162a?6364', '6162af6364', '6162bf6364'],
  ['?a low nibble', 'S:0:*:6162?a6364', '61621a6364', '61621b6364'],
  ['* any number', 'S:0:*:41424344*45464748', '41424344 000102 45464748', '45464748 41424344'],
  ['* zero bytes', 'S:0:*:41424344*45464748', '4142434445464748', '41424344454647'],
  ['{n} inline (n<128)', 'S:0:*:4142{3}4344', '4142 000000 4344', '4142 0000 4344'],
  ['{n} split (n>=128)', 'S:0:*:41424344{130}45464748', '41424344' + '00'.repeat(130) + '45464748', '41424344' + '00'.repeat(129) + '45464748'],
  ['{-n} at most n', 'S:0:*:41424344{-2}45464748', '41424344 0000 45464748', '41424344 000000 45464748'],
  ['{-n} zero', 'S:0:*:41424344{-2}45464748', '4142434445464748', '41424344ff45464749'],
  ['{n-} at least n', 'S:0:*:41424344{2-}45464748', '41424344 00000000 45464748', '41424344 00 45464748'],
  ['{n-m} lower bound', 'S:0:*:41424344{2-3}45464748', '41424344 0000 45464748', '41424344 00 45464748'],
  ['{n-m} upper bound', 'S:0:*:41424344{2-3}45464748', '41424344 000000 45464748', '41424344 00000000 45464748'],
  ['(aa|bb) single-byte', 'S:0:*:4142(43|44)4546', '4142444546', '4142454546'],
  ['(aabb|ccdd) multi-byte equal length', 'S:0:*:4142(4344|4546)4748', '41424546 4748', '41424346 4748'],
  ['(aa|bbcc) different lengths, short', 'S:0:*:4142(43|4445)4647', '4142434647', '414244 4647'],
  ['(aa|bbcc) different lengths, long', 'S:0:*:4142(43|4445)4647', '41424445 4647', '41424345 4647'],
  ['!(aa|bb) negated single', 'S:0:*:4142!(43|44)4546', '4142454546', '4142434546'],
  ['!(aabb|ccdd) negated multi', 'S:0:*:4142!(4344|4546)4748', '41424345 4748', '41424546 4748'],
  ['(a?|b?) nibble alternatives', 'S:0:*:4142(a?|b?)4546', '4142b74546', '4142c74546'],
  ['HEXSIG[x-y]aa', 'S:0:*:41424344[1-2]45', '41424344 0000 45', '41424344 000000 45'],
  ['aa[x-y]HEXSIG', 'S:0:*:45[1-2]41424344', '45 00 41424344', '45 41424344'],
  ['(W) non-alphanumeric', 'S:0:*:4142(W)4344', '41422e4344', '4142614344'],
  ['offset n', 'S:0:2:41424344', '0000 41424344', '000000 41424344'],
  ['offset n,m', 'S:0:1,2:41424344', '000000 41424344', '00000000 41424344'],
  ['offset 0 multi-segment', 'S:0:0:41424344*45464748', '41424344 00 45464748', '00 41424344 00 45464748'],
  ['EOF-n', 'S:0:EOF-6:41424344', '00 41424344 0000', '00 41424344 00'],
  ['EOF-n,m', 'S:0:EOF-6,1:41424344', '00 41424344 00', '41424344 000000'],
  ['EOF-n with gap', 'S:0:EOF-8:4142*4344', '00 4142 0000 4344 0000', '4142 0000 4344 0000 00'],
  ['MinFL within engine level', 'S:0:*:41424344:20', '41424344', '41424345'],
  ['non-zero target type applies to all files', 'S:1:*:4d5a9000', '4d5a9000', '4d5a9001'],
];

for (const [what, line, pos, neg] of CASES) {
  test(`ndb ${what}: ${line}`, () => {
    const db = db1(line);
    assert.equal(db.skippedTotal, 0);
    assert.equal(scan(db, hex(pos)), 'S', 'positive');
    assert.equal(scan(db, hex(neg)), null, 'near miss');
  });
}

test('EICAR is always built in and reported as Eicar-Test-Signature', () => {
  const eicar = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
  for (const db of [SignatureDb.builtin(), db1('S:0:*:41424344')]) {
    assert.equal(scan(db, Buffer.concat([eicar, Buffer.from('\r\n')])), EICAR_NAME);
    const broken = Buffer.from(eicar);
    broken[10] ^= 0x20;
    assert.equal(scan(db, broken), null);
  }
  assert.equal(SignatureDb.builtin().count, 1);
  assert.equal(db1('S:0:*:41424344').count, 2);
});

test('body hit is reported from the write that delivers the last byte', () => {
  const db = db1('S:0:*:41424344*45464748');
  const m = db.createMatcher();
  assert.equal(m.write(hex('0041')), null);
  assert.equal(m.write(hex('424344 00 4546')), null);
  assert.equal(m.write(hex('47')), null);
  assert.equal(m.write(hex('48 99')), 'S');
  assert.equal(m.write(hex('00')), 'S', 'latched');
  assert.equal(m.end(), 'S');
});

test('offset n: a match elsewhere does not count', () => {
  const db = db1('S:0:4:41424344');
  assert.equal(scan(db, hex('41424344 41424344')), 'S');
  assert.equal(scan(db, hex('41424344 00 41424344')), null);
});

test('skipped signatures are counted by reason, not fatal', () => {
  const text = [
    'Pe:1:EP+0:41424344',
    'Sect:1:S1+10:41424344',
    'Last:1:SL+0:41424344',
    'Whole:1:SE2:41424344',
    'Boundary:0:*:4142(B)4344',
    'NoRun:0:*:41??42??43',
    'NoRunSeg:0:*:41424344*41??42',
    'NewEngine:0:*:41424344:999',
    'OldEngine:0:*:41424344:1:50',
    'Good:0:*:41424344',
  ].join('\n');
  const db = SignatureDb.fromSources([{ label: 'x.ndb', kind: 'ndb', text }]);
  assert.deepEqual({ ...db.skipped }, { 'pe-offset': 4, 'char-class': 1, 'no-static-run': 2, flevel: 2 });
  assert.equal(db.skippedTotal, 9);
  assert.equal(db.count, 2); // Good + EICAR
  assert.equal(scan(db, hex('41424344')), 'Good');
});

test('too many alternative expansions are skipped', () => {
  const alt = '(' + Array.from({ length: 20 }, (_, i) => (0x30 + i).toString(16) + '41').join('|') + ')';
  const db = db1(`Big:0:*:4142${alt}${alt}4344`); // 400 forms > 256
  assert.equal(db.skipped['too-many-forms'], 1);
  assert.equal(db1(`Ok:0:*:4142${alt}4344`).skippedTotal, 0);
});

const BAD: [string, string][] = [
  ['S:0:*', 'too few fields'],
  ['S:0:*:4142:1:2:3', 'too many fields'],
  [':0:*:41424344', 'empty name'],
  ['S:x:*:41424344', 'bad target'],
  ['S:0:Q:41424344', 'bad offset'],
  ['S:0:*,3:41424344', 'star with shift'],
  ['S:0:*:4142434', 'odd hex'],
  ['S:0:*:4142zz44', 'bad hex digit'],
  ['S:0:*:*41424344', 'leading gap'],
  ['S:0:*:41424344*', 'trailing gap'],
  ['S:0:*:4142**4344', 'double gap'],
  ['S:0:*:4142{3-1}4344', 'range max < min'],
  ['S:0:*:4142{-}4344', 'empty range'],
  ['S:0:*:4142{3', 'unterminated brace'],
  ['S:0:*:4142(43|44', 'unterminated paren'],
  ['S:0:*:4142(43|)4546', 'empty alternative'],
  ['S:0:*:4142(43)4546', 'one alternative'],
  ['S:0:*:4142!(43|4445)4546', 'negated different lengths'],
  ['S:0:*:4142!4546', 'bang without paren'],
  ['S:0:*:41424344[1-40]45', 'range over 32'],
  ['S:0:*:41424344:x', 'bad minfl'],
  ['S:0:*:', 'empty hex'],
];
for (const [line, why] of BAD) {
  test(`syntax error (${why}) throws SignatureFileError with file and line`, () => {
    assert.throws(
      () => SignatureDb.fromSources([{ label: 'bad.ndb', kind: 'ndb', text: `# comment\nOK:0:*:41424344\n${line}\n` }]),
      (e: unknown) => {
        assert.ok(e instanceof SignatureFileError, String(e));
        assert.equal(e.code, SIG_ERROR_CODES.syntax);
        assert.equal(e.file, 'bad.ndb');
        assert.equal(e.line, 3);
        assert.ok(e.reason.length > 0);
        return true;
      },
    );
  });
}

test('parseNdbLine compiles segments, gaps and forms', () => {
  const r = parseNdbLine('N:0:10,5:4142(43|4445){-4}4647??48*494a', 'f', 1);
  assert.ok(r.ok);
  assert.deepEqual(r.sig.offset, { kind: 'abs', min: 10, max: 15 });
  assert.equal(r.sig.segments.length, 3);
  assert.equal(r.sig.segments[0]!.forms.length, 2);
  assert.deepEqual([r.sig.segments[1]!.gapMin, r.sig.segments[1]!.gapMax], [0, 4]);
  assert.deepEqual([r.sig.segments[2]!.gapMin, r.sig.segments[2]!.gapMax], [0, Infinity]);
  assert.deepEqual([...r.sig.segments[1]!.forms[0]!.masks], [0xff, 0xff, 0, 0xff]);
});
