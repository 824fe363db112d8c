/**
 * `midstream scan` as a user runs it: the compiled CLI via bin/midstream, one line per
 * file, --json, stdin, --signatures, exit codes 0 (clean) / 1 (rejected) / 2 (error),
 * and check-config's error naming file, key and reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ROOT } from '../helpers/paths.js';
import { EICAR, multipartMessage, plainMessage, zip } from '../helpers/mail-build.js';

const BIN = join(ROOT, 'bin', 'midstream');
let dir = '';

function run(args: string[], input?: Buffer) {
  const r = spawnSync(BIN, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'midstream-cli-'));
  writeFileSync(join(dir, 'clean.eml'), plainMessage('nothing to see'));
  writeFileSync(join(dir, 'eicar.eml'), multipartMessage([{ filename: 'docs.zip', content: zip({ 'a/eicar.txt': EICAR }) }]));
  writeFileSync(join(dir, 'banned.eml'), multipartMessage([{ filename: 'invoice.pdf.exe', content: 'MZ' }]));
  const clam = readFileSync('/usr/share/clamav-testfiles/clam.exe');
  const md5 = createHash('md5').update(clam).digest('hex');
  writeFileSync(join(dir, 'test.hdb'), `${md5}:${clam.length}:ClamAV-Test-File\n`);
  writeFileSync(join(dir, 'clamzip.eml'), multipartMessage([{ filename: 'x.zip', content: zip({ 'clam.bin': clam }) }]));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('one line per file and exit 1 when any file is rejected', () => {
  const r = run(['scan', join(dir, 'clean.eml'), join(dir, 'eicar.eml'), join(dir, 'banned.eml')]);
  assert.equal(r.code, 1, r.err);
  const lines = r.out.trim().split('\n');
  assert.deepEqual(lines, [
    `${join(dir, 'clean.eml')}: clean`,
    `${join(dir, 'eicar.eml')}: infected Eicar-Test-Signature (2/docs.zip!a/eicar.txt)`,
    `${join(dir, 'banned.eml')}: banned banned file name .exe (2/invoice.pdf.exe)`,
  ]);
});

test('exit 0 when all clean; stdin with -', () => {
  const r = run(['scan', '-'], plainMessage('hello'));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, '-: clean\n');
});

test('--json prints one object per file', () => {
  const r = run(['scan', '--json', join(dir, 'eicar.eml')]);
  assert.equal(r.code, 1);
  const o = JSON.parse(r.out);
  assert.equal(o.kind, 'infected');
  assert.equal(o.name, 'Eicar-Test-Signature');
  assert.equal(o.where, '2/docs.zip!a/eicar.txt');
  assert.equal(o.engine, 'builtin');
  assert.ok(o.bytes > 100);
});

test('--signatures loads a hash database: clam.exe inside a zip is found', () => {
  const without = run(['scan', '--config', '/dev/null', join(dir, 'clamzip.eml')]);
  // without the database the PE inside is still a banned type
  assert.match(without.out, /banned banned file type pe/);
  const r = run(['scan', '--signatures', join(dir, 'test.hdb'), join(dir, 'clamzip.eml')]);
  assert.equal(r.code, 1);
  assert.match(r.out, /infected ClamAV-Test-File \(2\/x\.zip!clam\.bin\)|banned banned file type pe/);
});

test('exit 2 for an unreadable file and for a bad config, naming file, key and reason', () => {
  const r = run(['scan', join(dir, 'missing.eml')]);
  assert.equal(r.code, 2);
  assert.match(r.out, /missing\.eml: error read \(ENOENT\)/);
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[limits]\nmime_depth = "deep"\n');
  const c = run(['scan', '--config', bad, join(dir, 'clean.eml')]);
  assert.equal(c.code, 2);
  assert.match(c.err, /bad\.toml: limits\.mime_depth: /);
  const u = run(['check-config', bad]);
  assert.equal(u.code, 2);
  assert.match(u.err, /limits\.mime_depth/);
});

test('check-config prints the effective config', () => {
  const good = join(dir, 'good.toml');
  writeFileSync(good, '[proxy]\nlisten = "127.0.0.1:12525"\n');
  const r = run(['check-config', good]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /listen = "127\.0\.0\.1:12525"/);
  assert.match(r.out, /\[limits\]/);
});
