/**
 * config-load.test.ts — loadConfig as the CLI uses it: defaults, unknown keys, TOML
 * syntax errors, missing files, command-line overrides, freezing, the sample
 * midstream.toml, renderConfig round trips and fail-open warnings.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import {
  CLI_SOURCE,
  ConfigError,
  clamdWarnings,
  configWarnings,
  failOpenWarnings,
  loadConfig,
  parseConfigText,
  renderConfig,
} from '../../src/config/load-config.js';
import { SECTIONS, type Field } from '../../src/config/schema.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { DEFAULT_ACTIONS } from '../../src/core/policy-table.js';

mkdirSync(TMP_BASE, { recursive: true });
const dir = mkdtempSync(join(TMP_BASE, 'config-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const isCfgErr = (file: string, key: string, reason?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
  assert.equal(e.file, file);
  assert.equal(e.key, key);
  if (reason) assert.match(e.reason, reason);
  return true;
};

test('no file: the defaults, matching the core defaults', () => {
  const c = loadConfig(undefined);
  assert.deepEqual({ ...c.limits }, { ...DEFAULT_LIMITS });
  assert.deepEqual({ ...c.actions }, { ...DEFAULT_ACTIONS });
  assert.equal(c.proxy.listen, '127.0.0.1:10025');
  assert.equal(c.proxy.forward, '127.0.0.1:10026');
  assert.equal(c.proxy.replyBudgetMs, 90_000);
  assert.equal(c.milter.listen, 'inet:7357@127.0.0.1');
  assert.equal(c.milter.socketMode, 0o660);
  assert.equal(c.clamd.maxStreamBytes, 25 * 1024 * 1024);
  assert.equal(c.metrics.listen, '');
  assert.deepEqual(c.rules, []);
});

test('an empty file is the defaults too', () => {
  assert.deepEqual(loadConfig(write('empty.toml', '')), loadConfig(undefined));
});

test('unknown top-level key is fatal, with a hint', () => {
  const f = write('u1.toml', '[proxi]\nlisten = "127.0.0.1:1"\n');
  assert.throws(() => loadConfig(f), isCfgErr(f, 'proxi', /unknown key.*"proxy"/));
  const g = write('u2.toml', 'verbose = true\n');
  assert.throws(() => loadConfig(g), isCfgErr(g, 'verbose', /^unknown key$/));
});

test('unknown nested key is fatal, with a hint', () => {
  const f = write('u3.toml', '[clamd]\nendpoint = ["tcp:127.0.0.1:3310"]\n');
  assert.throws(() => loadConfig(f), isCfgErr(f, 'clamd.endpoint', /did you mean "endpoints"/));
  const g = write('u4.toml', '[[rules]]\nmatch = { clients = ["10.0.0.0/8"] }\n');
  assert.throws(() => loadConfig(g), isCfgErr(g, 'rules[0].match.clients', /unknown key/));
  const h = write('u5.toml', '[limits.extra]\nx = 1\n');
  assert.throws(() => loadConfig(h), isCfgErr(h, 'limits.extra'));
});

test('bad TOML syntax names the file and the line', () => {
  const f = write('syntax.toml', '[proxy]\nlisten = "127.0.0.1:10025"\nforward = \n');
  assert.throws(() => loadConfig(f), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.file, f);
    assert.match(e.reason, /TOML syntax error: line 3/);
    assert.ok(e.message.startsWith(f + ': '));
    return true;
  });
});

test('a missing --config file is an error, not the defaults', () => {
  const f = join(dir, 'does-not-exist.toml');
  assert.throws(() => loadConfig(f), isCfgErr(f, '', /no such file/));
});

test('command-line overrides win over the file, strings are coerced per field', () => {
  const f = write('ov.toml', '[proxy]\nlisten = "127.0.0.1:2525"\nmax_connections = 10\n[log]\nlevel = "warn"\n');
  const c = loadConfig(f, {
    'proxy.listen': '127.0.0.1:0',
    'proxy.max_connections': '77',
    'headers.status': 'true',
    'clamd.endpoints': 'tcp:127.0.0.1:3310,unix:/run/clamav/clamd.ctl',
    'limits.scan_time': '30s',
  });
  assert.equal(c.proxy.listen, '127.0.0.1:0');
  assert.equal(c.proxy.maxConnections, 77);
  assert.equal(c.headers.status, true);
  assert.deepEqual(c.clamd.endpoints, ['tcp:127.0.0.1:3310', 'unix:/run/clamav/clamd.ctl']);
  assert.equal(c.limits.scanTimeMs, 30_000);
  assert.equal(c.log.level, 'warn', 'file value kept where no override');
  // Non-string override values are taken as they are; undefined means "flag not given".
  assert.equal(loadConfig(f, { 'proxy.max_connections': 5, 'log.level': undefined }).proxy.maxConnections, 5);
});

test('a bad override names the command line and the key', () => {
  assert.throws(() => loadConfig(undefined, { 'proxy.max_connections': 'lots' }), isCfgErr(CLI_SOURCE, 'proxy.max_connections', /integer/));
  assert.throws(() => loadConfig(undefined, { 'proxy.nope': 'x' }), isCfgErr(CLI_SOURCE, 'proxy.nope', /unknown key/));
  assert.throws(() => loadConfig(undefined, { 'rules': [] }), isCfgErr(CLI_SOURCE, 'rules'));
  assert.throws(() => loadConfig(undefined, { 'log.level': 'loud' }), isCfgErr(CLI_SOURCE, 'log.level'));
});

test('the returned config is deep-frozen', () => {
  const f = write('frozen.toml', '[[rules]]\nmatch = { client = ["10.0.0.0/8"] }\nskip_banned = true\n');
  const c = loadConfig(f);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.proxy));
  assert.ok(Object.isFrozen(c.policy.bannedExtensions));
  assert.ok(Object.isFrozen(c.rules[0]!.match.client));
  assert.throws(() => {
    (c.proxy as { listen: string }).listen = 'x';
  }, TypeError);
});

test('the sample midstream.toml loads to exactly the defaults and lists every key', () => {
  const sample = join(ROOT, 'midstream.toml');
  assert.deepEqual(loadConfig(sample), loadConfig(undefined));
  const text = readFileSync(sample, 'utf8');
  for (const [section, schema] of Object.entries(SECTIONS)) {
    const block = text.split(`[${section}]\n`)[1]?.split('\n[')[0] ?? '';
    assert.ok(block !== '', `section [${section}] present`);
    for (const f of Object.values(schema) as Field<unknown>[]) {
      assert.match(block, new RegExp(`^${f.toml} = .*# \\S`, 'm'), `${section}.${f.toml} present with a comment`);
    }
  }
  assert.match(text, /^# \[\[rules\]\]/m, 'rules documented');
});

test('[restart] keys: the sample config marks exactly them, and a reload reports exactly the changed ones', async () => {
  const { restartKeysChanged } = await import('../../src/cli/server-runtime.js');
  const text = readFileSync(join(ROOT, 'midstream.toml'), 'utf8');
  const base = loadConfig(undefined);
  const restartKeys: string[] = [];
  for (const [section, schema] of Object.entries(SECTIONS)) {
    const block = text.split(`[${section}]\n`)[1]?.split('\n[')[0] ?? '';
    for (const f of Object.values(schema) as Field<unknown>[]) {
      const line = block.split('\n').find((l) => l.startsWith(`${f.toml} = `))!;
      assert.equal(line.endsWith('[restart]'), f.restart === true, `${section}.${f.toml}: marked in the sample iff it needs a restart`);
      if (f.restart) restartKeys.push(`${section}.${f.toml}`);
    }
  }
  assert.deepEqual(restartKeys.sort(), [
    'metrics.listen', 'milter.listen', 'milter.socket_group', 'milter.socket_mode', 'milter.socket_owner',
    'pop3.listen', 'pop3.socket_group', 'pop3.socket_mode', 'pop3.socket_owner',
    'proxy.after_filter_milter', 'proxy.listen', 'proxy.listen_also', 'proxy.socket_group', 'proxy.socket_mode', 'proxy.socket_owner',
  ]);
  const changed = parseConfigText('[proxy]\nlisten = "127.0.0.1:2525"\nadd_header = "X-A: b"\n[metrics]\nlisten = ":9999"\n[log]\nlevel = "debug"\n', '/x.toml');
  assert.deepEqual(restartKeysChanged(base, changed, ['proxy', 'metrics']), ['proxy.listen', 'metrics.listen']);
  assert.deepEqual(restartKeysChanged(base, changed, ['milter', 'metrics']), ['metrics.listen'], "the proxy's listen is not the milter's business");
  assert.deepEqual(restartKeysChanged(base, parseConfigText('[limits]\nscan_time = "30s"\n', '/x.toml'), ['proxy', 'metrics']), []);
});

test('renderConfig round-trips, rules included', () => {
  const f = write(
    'rt.toml',
    `[proxy]\nreply_budget = "1500ms"\nadd_header = "X-Virus-Scanned: midstream"\n[milter]\nsocket_mode = "0600"\n` +
      `[limits]\nmessage_bytes = 1000\nratio = 12.5\n[metrics]\nlisten = "[::1]:9357"\n` +
      `[[rules]]\nname = "a"\nmatch = { client = ["10.0.0.0/8"], authenticated = true, recipient_domain = [".example.org"] }\n` +
      `skip_banned = true\nactions = { banned = "tempfail", error = "reject" }\nbanned_extensions = ["exe"]\nbanned_types = ["pe"]\nencrypted = "tempfail"\n` +
      `[[rules]]\nskip_banned = false\n`,
  );
  const c = loadConfig(f);
  const text = renderConfig(c);
  const again = parseConfigText(text, f);
  assert.deepEqual(again, c);
  assert.match(text, /^reply_budget = "1500ms"/m);
  assert.match(text, /^socket_mode = "0600"/m);
  assert.equal(c.rules[1]!.name, 'rules[1]');
});

test('failOpenWarnings lists every fail-open choice and nothing for the defaults', () => {
  assert.deepEqual(failOpenWarnings(loadConfig(undefined)), []);
  const f = write(
    'fo.toml',
    '[actions]\nerror = "accept"\nlimit = "accept"\n[policy]\nencrypted = "accept"\n[[rules]]\nactions = { error = "accept" }\n',
  );
  const keys = failOpenWarnings(loadConfig(f)).map((w) => w.key).sort();
  assert.deepEqual(keys, ['actions.error', 'actions.limit', 'policy.encrypted', 'rules[0].actions.error']);
});

test('a key of an earlier release still loads: [milter] add_headers maps onto [headers], with a warning', () => {
  const off = parseConfigText('[milter]\nadd_headers = false\n', 'old.toml');
  assert.equal(off.headers.scanned, '');
  assert.equal(off.headers.status, false);
  const on = parseConfigText('[milter]\nadd_headers = true\n', 'old.toml');
  assert.equal(on.headers.status, true);
  assert.equal(on.headers.scanned, loadConfig(undefined).headers.scanned, 'scanned keeps its default');
  assert.match(configWarnings(on).map((w) => `${w.key}: ${w.reason}`).join('\n'), /^milter\.add_headers: renamed: use \[headers\]/m);
  // What [headers] says itself wins over the old key.
  const both = parseConfigText('[milter]\nadd_headers = false\n[headers]\nstatus = true\nscanned = "x %V"\n', 'old.toml');
  assert.equal(both.headers.status, true);
  assert.equal(both.headers.scanned, 'x %V');
  assert.throws(() => parseConfigText('[milter]\nadd_headers = "yes"\n', 'old.toml'), isCfgErr('old.toml', 'milter.add_headers', /true or false/));
  assert.deepEqual(configWarnings(loadConfig(undefined)).filter((w) => w.key === 'milter.add_headers'), []);
});

test('clamdWarnings: max_concurrent + raw_max_concurrent + the health check over clamd\'s default MaxQueue (100) warns; raw streams count only where they are used', () => {
  const warn = (t: string) => clamdWarnings(parseConfigText(t, 'c.toml'));
  const ep = '[clamd]\nendpoints = ["tcp:127.0.0.1:3310"]\n';
  assert.deepEqual(warn(ep), [], 'defaults: 8 + 32 + 1');
  assert.deepEqual(warn('[clamd]\nmax_concurrent = 90\nraw_max_concurrent = 40\n'), [], 'no endpoints: built-in only, nothing to warn about');
  assert.deepEqual(warn(`${ep}max_concurrent = 67\nraw_max_concurrent = 32\n`), [], '100 connections: at the limit, not over it');
  const over = warn(`${ep}max_concurrent = 68\nraw_max_concurrent = 32\n`);
  assert.equal(over.length, 1);
  assert.equal(over[0]!.key, 'clamd.raw_max_concurrent');
  assert.match(over[0]!.reason, /max_concurrent \(68\) \+ raw_max_concurrent \(32\) \+ 1 health check = 101 .*MaxQueue \(100/);
  assert.deepEqual(warn(`${ep}max_concurrent = 90\nraw_max_concurrent = 40\nraw_message = "off"\n`), [], 'raw_message off: no raw streams');
  assert.deepEqual(warn(`${ep}max_concurrent = 90\nraw_max_concurrent = 40\nmode = "whole-message"\n`), [], 'whole-message: no raw streams');
  const alone = warn(`${ep}max_concurrent = 100\nraw_message = "off"\n`);
  assert.deepEqual(alone.map((w) => w.key), ['clamd.max_concurrent']);
  assert.match(alone[0]!.reason, /^max_concurrent \(100\) \+ 1 health check = 101/);
});
