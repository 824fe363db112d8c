/**
 * install.test.ts — installable: `npm pack` + scripts/install.sh (which runs
 * `npm install -g` of the tarball) into a staging root (DESTDIR) give a working
 * `midstream` command, the system user, /etc/midstream/proxy.toml and milter.toml (valid,
 * each with its own log file and metrics port), the systemd units (checked by
 * `systemd-analyze verify`), the logrotate file (parsed by logrotate) and the Prometheus
 * alert rules (checked and unit-tested by promtool). Runs as root, like the test machines.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from '../helpers/paths.js';
import { EICAR } from '../helpers/mail-build.js';

mkdirSync(TMP_BASE, { recursive: true });
const dir = mkdtempSync(join(TMP_BASE, 'install-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd = ROOT) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, cwd, timeout: 180_000 });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

const root = join(dir, 'root');
const bin = join(root, 'usr/local/bin/midstream');

test('npm pack + install.sh: a working midstream command, the user, one config per unit, units, logrotate', () => {
  // dist/ is built by the test command; prepack would build it again.
  const pack = sh('npm', ['pack', '--ignore-scripts', '--pack-destination', dir]);
  assert.equal(pack.code, 0, pack.err);
  const tgz = readdirSync(dir).find((f) => /^midstream-.*\.tgz$/.test(f));
  assert.ok(tgz, 'a tarball');
  const inst = sh('sh', ['scripts/install.sh'], { ...process.env, DESTDIR: root, MIDSTREAM_TGZ: join(dir, tgz) });
  assert.equal(inst.code, 0, inst.out + inst.err);

  // The command works from its installed place, not from this checkout.
  const v = sh(bin, ['--version'], process.env, dir);
  assert.equal(v.out, `midstream ${VERSION}\n`, v.err);
  assert.ok(!readFileSync(join(root, 'usr/local/lib/node_modules/midstream/bin/midstream'), 'utf8').includes(ROOT));
  writeFileSync(join(dir, 'eicar.eml'), `Subject: x\r\n\r\n${EICAR}\r\n`);
  const scan = sh(bin, ['scan', join(dir, 'eicar.eml')], process.env, dir);
  assert.equal(scan.code, 1);
  assert.match(scan.out, /eicar\.eml: infected Eicar-Test-Signature/);
  assert.ok(!existsSync(join(root, 'usr/local/lib/node_modules/midstream/src')), 'compiled JS only, no sources');
  assert.ok(!existsSync(join(root, 'usr/local/lib/node_modules/midstream/dist/test')), 'no tests in the package');

  // The user and group.
  assert.equal(sh('getent', ['passwd', 'midstream']).code, 0, 'user midstream');
  assert.match(sh('getent', ['passwd', 'midstream']).out, /:\/usr\/sbin\/nologin$/m);

  // One config per unit: valid, own log file and metrics port, readable by group midstream only.
  for (const [front, port] of [['proxy', 9357], ['milter', 9358], ['pop3', 9359]] as const) {
    const conf = join(root, 'etc/midstream', `${front}.toml`);
    const st = statSync(conf);
    assert.equal(st.mode & 0o777, 0o640, `${front}.toml mode`);
    const text = readFileSync(conf, 'utf8');
    assert.match(text, new RegExp(`^file = "/var/log/midstream/${front}\\.log"`, 'm'));
    assert.match(text, new RegExp(`^listen = "127\\.0\\.0\\.1:${port}"`, 'm'));
    // Valid as installed (its log file pointed into this test's directory).
    const local = join(dir, `${front}.toml`);
    writeFileSync(local, text.replace(`/var/log/midstream/${front}.log`, join(dir, `${front}.log`)));
    const cc = sh(bin, ['check-config', '--quiet', local], process.env, dir);
    assert.equal(cc.code, 0, cc.err);
    assert.equal(cc.out, '');
  }
  // Re-running keeps an admin's edits.
  writeFileSync(join(root, 'etc/midstream/proxy.toml'), '# edited\n');
  assert.equal(sh('sh', ['scripts/install.sh'], { ...process.env, DESTDIR: root, MIDSTREAM_TGZ: join(dir, tgz) }).code, 0);
  assert.equal(readFileSync(join(root, 'etc/midstream/proxy.toml'), 'utf8'), '# edited\n');

  for (const u of ['midstream-proxy.service', 'midstream-milter.service', 'midstream-pop3.service']) {
    const text = readFileSync(join(root, 'etc/systemd/system', u), 'utf8');
    const front = /midstream-(\w+)\.service/.exec(u)![1]!;
    assert.match(text, new RegExp(`^ExecStart=/usr/local/bin/midstream ${front} --config /etc/midstream/${front}\\.toml$`, 'm'));
    assert.match(text, new RegExp(`^ExecStartPre=/usr/local/bin/midstream check-config --quiet --config /etc/midstream/${front}\\.toml$`, 'm'));
  }
  assert.equal(readFileSync(join(root, 'etc/logrotate.d/midstream'), 'utf8'), readFileSync(join(ROOT, 'deploy/logrotate/midstream'), 'utf8'));
  const lr = sh('logrotate', ['-d', '-s', join(dir, 'lr-state'), join(root, 'etc/logrotate.d/midstream')]);
  assert.equal(lr.code, 0, lr.err);
  assert.doesNotMatch(lr.err, /error/i);
});

test('systemd-analyze verify: the installed units are clean (no warnings)', () => {
  // Debian's systemd verifies unit files without a booted systemd. The units name
  // /usr/local/bin/midstream; here it lives under the staging root, so point them there.
  for (const u of ['midstream-proxy.service', 'midstream-milter.service', 'midstream-pop3.service']) {
    const src = join(root, 'etc/systemd/system', u);
    assert.ok(existsSync(src), 'installed by the first test');
    const copy = join(dir, u);
    writeFileSync(copy, readFileSync(src, 'utf8').replaceAll('/usr/local/bin/midstream', bin));
    const r = sh('systemd-analyze', ['verify', '--man=no', copy], { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' });
    assert.equal(r.code, 0, `${u}: ${r.err}`);
    assert.equal(r.err.trim(), '', `${u}: no warnings`);
  }
});

test('Prometheus alert rules: promtool checks them and their unit tests pass', () => {
  const rules = join(ROOT, 'deploy/prometheus/midstream-alerts.yml');
  const check = sh('promtool', ['check', 'rules', rules]);
  assert.equal(check.code, 0, check.out + check.err);
  assert.match(check.out, /SUCCESS: 4 rules found/);
  const unit = sh('promtool', ['test', 'rules', join(ROOT, 'deploy/prometheus/midstream-alerts.test.yml')]);
  assert.equal(unit.code, 0, unit.out + unit.err);
  const cfg = sh('promtool', ['check', 'config', join(ROOT, 'deploy/prometheus/prometheus.yml')]);
  assert.equal(cfg.code, 0, cfg.out + cfg.err);
  // Every series the rules use exists in our metrics.
  const names = [...readFileSync(rules, 'utf8').matchAll(/\b(midstream_[a-z_]+)/g)].map((m) => m[1]!);
  const exported = readFileSync(join(ROOT, 'src/metrics/metrics.ts'), 'utf8');
  for (const n of new Set(names)) assert.ok(exported.includes(`'${n}'`), `${n} is exported`);
});
