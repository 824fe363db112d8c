/**
 * errors.test.ts — one error taxonomy: every error midstream throws on purpose is a
 * MidstreamError whose code is one of ERROR_CODES (stable strings), and no module
 * outside the parsers' internals defines an error class of its own beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { ERROR_CODES, MidstreamError, errorFields } from '../../src/core/errors.js';
import { AddressError, parseAddress } from '../../src/core/address.js';
import { ConfigError, parseConfigText } from '../../src/config/load-config.js';
import { UsageError, parseCommon } from '../../src/cli/args.js';
import { ClamdClient, ClamdError } from '../../src/core/scan/clamd-client.js';
import { DownstreamClient, DownstreamError } from '../../src/smtp/downstream-client.js';
import { SignatureDb, SignatureFileError } from '../../src/core/scan/sigs/signature-db.js';
import { createEngine } from '../../src/core/engine.js';

const CODES = new Set<string>(Object.values(ERROR_CODES));

function check(e: unknown, cls: new (...a: never[]) => Error, code?: string): true {
  assert.ok(e instanceof cls, `${String(e)} is a ${cls.name}`);
  assert.ok(e instanceof MidstreamError, `${cls.name} is a MidstreamError`);
  assert.ok(CODES.has(e.code), `code ${e.code} is in ERROR_CODES`);
  if (code) assert.equal(e.code, code);
  return true;
}

test('codes are unique, upper snake case DOMAIN_REASON', () => {
  const values = Object.values(ERROR_CODES);
  assert.equal(new Set(values).size, values.length);
  for (const c of values) assert.match(c, /^[A-Z]+(_[A-Z]+)*$/);
});

test('every failure kind throws a MidstreamError with its stable code', async () => {
  assert.throws(() => parseAddress('inet:127.0.0.1:7357', 'milter'), (e) => check(e, AddressError, 'ADDRESS_INVALID'));
  assert.throws(() => parseConfigText('[proxy]\nlisten = 5\n', '/x.toml'), (e) => check(e, ConfigError, 'CONFIG_INVALID'));
  assert.throws(() => parseCommon(['--no-such-flag']), (e) => check(e, UsageError, 'USAGE'));
  await assert.rejects(SignatureDb.load(['/nonexistent/x.ndb']), (e) => check(e, SignatureFileError, 'SIG_NOT_FOUND'));
  await assert.rejects(createEngine({ builtin: false }), (e) => check(e, MidstreamError, 'NO_ENGINE'));
  const c = new ClamdClient({ endpoints: ['tcp:127.0.0.1:1'], connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
  try {
    await assert.rejects(c.ping('tcp:127.0.0.1:1'), (e) => {
      check(e, ClamdError, 'CLAMD_UNAVAILABLE');
      assert.equal((e as ClamdError).errno, 'ECONNREFUSED');
      assert.equal((e as ClamdError).endpoint, 'tcp:127.0.0.1:1');
      return true;
    });
  } finally {
    c.close();
  }
  await assert.rejects(DownstreamClient.connect({ kind: 'tcp', host: '127.0.0.1', port: 1 }, { timeoutMs: 2000 }), (e) => {
    check(e, DownstreamError, 'DOWNSTREAM_CONNECT');
    assert.equal((e as DownstreamError).errno, 'ECONNREFUSED');
    return true;
  });
});

test('errorFields: the same bounded log fields for ours, system errors and bugs', () => {
  const ours = errorFields(new MidstreamError(ERROR_CODES.listenInUse, 'busy', { endpoint: 'unix:/x', errno: 'EADDRINUSE' }));
  assert.deepEqual(ours, { code: 'LISTEN_IN_USE', errno: 'EADDRINUSE', endpoint: 'unix:/x', error: 'busy' });
  const sys = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' });
  assert.deepEqual(errorFields(sys), { code: 'SYSTEM', errno: 'ECONNREFUSED', syscall: 'connect', error: 'connect ECONNREFUSED' });
  assert.equal(errorFields(new TypeError('x is undefined')).code, 'INTERNAL');
  assert.ok(errorFields(new Error('y'.repeat(10_000))).error!.length < 400, 'capped');
});

test('no other error base classes: outside the parsers\' internals, errors extend MidstreamError', () => {
  // Parser-internal errors that never leave the core (they become verdicts) may stay plain.
  const internal = /^src\/core\/errors\.ts$|^src\/core\/(mime|decode|unpack)\/|^src\/core\/scan\/sigs\/ndb-parse\.ts$|^src\/config\/schema\.ts$/;
  const bad: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const rel = relative(ROOT, p);
        if (internal.test(rel)) continue;
        for (const m of readFileSync(p, 'utf8').matchAll(/class (\w+) extends (\w*Error)\b/g)) {
          if (m[2] !== 'MidstreamError') bad.push(`${rel}: ${m[1]} extends ${m[2]}`);
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'milter'));
  assert.deepEqual(bad, []);
});
