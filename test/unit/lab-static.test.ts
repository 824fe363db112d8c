/**
 * lab-static.test.ts — the docker-compose lab and the deploy files, checked without a
 * Docker engine (test/integration/lab.test.ts runs the lab for real): the compose file
 * parses and suits docker-compose 1.29 as well as Compose v2, the core services share one
 * locally built image while registry images sit in optional profiles, every path the
 * Dockerfile takes from the repo and every mounted file exists, published ports bind
 * 127.0.0.1, the lab renders the same postfix/ and sendmail/ templates the tests use and
 * gives every placeholder a value, clamd logs without a LogFile, Sendmail gets a qualified
 * name and resolves services by name, the lab's midstream configs load, Prometheus scrapes
 * the right ports, the Grafana dashboard shows every midstream_ metric, and the systemd
 * units carry the directives operations rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/paths.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { ComposeService } from '../helpers/lab.js';
import { parseAddress } from '../../src/core/address.js';
const metricsPort = (s: string) => (parseAddress(s, 'metrics') as { port: number }).port;
import { createMetrics } from '../../src/metrics/metrics.js';

type Service = ComposeService;
const composeText = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parseYaml(composeText, { merge: true }) as { services: Record<string, Service> } & Record<string, unknown>;
const services = compose.services;
const CORE = ['clamd', 'midstream-proxy', 'midstream-milter', 'midstream-pop3', 'dovecot', 'postfix-bq', 'postfix-milter', 'sendmail', 'sink'];
const OPTIONAL = { mailpit: 'mailpit', prometheus: 'metrics', grafana: 'metrics' } as const;
const DOCKERFILE = join(ROOT, 'docker/Dockerfile');

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(file: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    cur += raw.replace(/\\$/, ' ');
    if (!raw.endsWith('\\')) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
    }
  }
  return out;
}

test('the compose file has every lab service; the core needs no registry image', () => {
  for (const name of [...CORE, ...Object.keys(OPTIONAL)]) assert.ok(services[name], `service ${name}`);
  const image = services.clamd!.image!;
  assert.match(image, /^midstream-lab\/lab:/);
  for (const name of CORE) {
    const s = services[name]!;
    assert.equal(s.image, image, `${name}: the one lab image`);
    assert.deepEqual(s.build, { context: '.', dockerfile: 'docker/Dockerfile' }, `${name}: built from docker/Dockerfile`);
    assert.equal(s.profiles, undefined, `${name}: always on`);
    assert.ok(s.healthcheck?.test.includes('/opt/midstream/docker/lab-healthy.sh'), `${name}: health from lab-healthy.sh`);
  }
  for (const [name, profile] of Object.entries(OPTIONAL)) {
    assert.deepEqual(services[name]!.profiles, [profile], `${name}: optional profile ${profile}`);
    assert.equal(services[name]!.build, undefined, `${name}: a registry image`);
  }
  for (const name of CORE) {
    const deps = services[name]!.depends_on ?? {};
    for (const d of Array.isArray(deps) ? deps : Object.keys(deps)) assert.ok(CORE.includes(d), `${name} depends on core ${d} only`);
  }
});

test('the compose file suits docker-compose 1.29 (Debian 12) and Compose v2', () => {
  assert.equal(compose.name, undefined, 'no top-level name: (docker-compose 1.29 rejects it)');
  assert.equal(compose.version, undefined, 'no version: (Compose v2 warns, 1.29 reads the compose spec without it)');
  // The real parser, where it is installed (scripts/install-deps.sh installs it).
  const r = spawnSync('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'], { encoding: 'utf8', env: { ...process.env, COMPOSE_PROFILES: 'mailpit,metrics' } });
  if (r.error === undefined) assert.equal(r.status, 0, r.stderr);
});

test('the lab Dockerfile: one image from debian:12-slim and node:20-slim, npm ci with the CA as a build secret', () => {
  const ins = instructions(DOCKERFILE);
  assert.ok(ins.includes('ARG DEBIAN_IMAGE=debian:12-slim') && ins.includes('ARG NODE_IMAGE=node:20-slim'));
  assert.deepEqual(ins.filter((i) => /^FROM /.test(i)), ['FROM ${NODE_IMAGE} AS app', 'FROM ${DEBIAN_IMAGE}']);
  const npmCi = ins.find((i) => /npm ci/.test(i))!;
  assert.match(npmCi, /--mount=type=secret,id=npm_ca\b/);
  assert.match(npmCi, /NODE_EXTRA_CA_CERTS=\/run\/secrets\/npm_ca/);
  assert.ok(ins.some((i) => /typescript\/bin\/tsc -p tsconfig\.json/.test(i) && /npm prune --omit=dev/.test(i)), 'tsc build, production deps only');
  // Nothing machine-specific committed: no CA file in the repo, none copied in.
  assert.ok(!ins.some((i) => /\.(crt|pem)\b/.test(i)));
  const final = ins.slice(ins.findIndex((i) => i === 'FROM ${DEBIAN_IMAGE}'));
  const layers = final.filter((i) => /^(RUN|COPY|ADD) /.test(i));
  assert.equal(layers.length, 2, `two layers on debian:12-slim (vfs copies each whole): ${layers.join(' | ')}`);
  assert.match(layers[0]!, /apt-get install .*postfix .*clamav-daemon/);
  assert.match(layers[0]!, /apt-get download -qq sendmail-bin sendmail-base sendmail-cf/);
  assert.equal(layers[1], 'COPY --from=app /out/ /');
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
});

test('every repo path the Dockerfile takes exists', () => {
  const text = instructions(DOCKERFILE).join('\n');
  const paths = new Set<string>();
  for (const m of text.matchAll(/--mount=type=bind,source=([^,\s]+)/g)) paths.add(m[1]!);
  for (const m of text.matchAll(/\/src\/([\w./-]+)/g)) paths.add(m[1]!);
  const docker = /cd \/src\/docker && cp -a ([^$]+) \$O\/docker\//.exec(text);
  assert.ok(docker, 'the lab scripts and configs are copied from docker/');
  for (const f of docker[1]!.trim().split(/\s+/)) paths.add(`docker/${f}`);
  assert.ok(paths.size >= 12, `found the paths (${[...paths].join(' ')})`);
  for (const p of paths) assert.ok(existsSync(join(ROOT, p)), `${p} exists`);
  // Every path a service runs is in the image: under /opt/midstream/docker/ from docker/.
  for (const [name, s] of Object.entries(services)) {
    for (const w of [...(s.command ?? []), ...(s.healthcheck?.test ?? [])]) {
      const m = /^\/opt\/midstream\/(docker\/.+)$/.exec(w);
      if (m) {
        assert.ok(existsSync(join(ROOT, m[1]!)), `${name}: ${m[1]} exists`);
        assert.ok([...paths].some((p) => m[1]!.startsWith(p)), `${name}: ${m[1]} is copied into the image`);
      }
    }
  }
});

test('clamd logs to stdout without a LogFile and loads the test database, no freshclam', () => {
  const conf = readFileSync(join(ROOT, 'docker/clamd/clamd.conf'), 'utf8');
  assert.doesNotMatch(conf, /^\s*LogFile\b/m, 'ClamAV 1.4 refuses LogFile /dev/stdout (a symlink)');
  assert.match(conf, /^Foreground yes$/m);
  const db = /^DatabaseDirectory (\S+)$/m.exec(conf)![1]!;
  assert.equal(db, '/opt/midstream/docker/clamd/db');
  assert.doesNotMatch(readFileSync(DOCKERFILE, 'utf8').replace(/^#.*$/gm, ''), /freshclam/);
  const ndb = readFileSync(join(ROOT, 'docker/clamd/db/lab.ndb'), 'utf8');
  const eicar = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
  assert.match(ndb, new RegExp(`^[A-Za-z0-9.-]+:0:\\*:${eicar.toString('hex')}$`, 'm'));
  assert.ok(services.clamd!.command!.includes('--config-file=/opt/midstream/docker/clamd/clamd.conf'));
});

test('Sendmail: a qualified name, services by name resolved when used, logs in docker logs', () => {
  const sm = services.sendmail!;
  assert.ok(sm.hostname && sm.domainname, 'hostname + domainname: a qualified name in /etc/hosts');
  const entry = readFileSync(join(ROOT, 'docker/sendmail/entrypoint.sh'), 'utf8').replace(/^\s*#.*$/gm, '');
  assert.doesNotMatch(entry, /getent|resolve\(\)/, 'no addresses pinned at start');
  assert.match(entry, /inet:\$MILTER_PORT@\$MILTER_HOST/);
  assert.match(entry, /\[\$SINK_HOST\]/);
  assert.match(entry, /hosts: files dns/);
  assert.match(entry, /busybox syslogd -n -O \/dev\/stdout/);
  assert.equal(sm.environment!.MILTER_HOST, 'midstream-milter');
});

test('midstream runs unprivileged in the lab', () => {
  for (const name of ['midstream-proxy', 'midstream-milter', 'midstream-pop3']) {
    assert.equal(services[name]!.user, 'midstream', name);
    assert.equal(services[name]!.command![0], 'midstream');
  }
  assert.match(readFileSync(DOCKERFILE, 'utf8'), /useradd --system [^\n]* midstream/);
});

test('every mounted file exists and every published port binds 127.0.0.1', () => {
  let mounts = 0;
  let ports = 0;
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const src = v.split(':')[0]!;
      if (!src.startsWith('./')) continue; // named volumes
      assert.ok(existsSync(join(ROOT, src)), `${name}: mounted ${src} exists`);
      mounts++;
    }
    for (const p of s.ports ?? []) {
      assert.equal(typeof p, 'string', `${name}: ports written as strings`);
      assert.match(p, /^127\.0\.0\.1:\$\{LAB_PORT_[A-Z0-9_]+:-\d+\}:\d+$/, `${name}: ${p} binds loopback only`);
      ports++;
    }
  }
  assert.ok(mounts >= 6 && ports >= 9, `mounts ${mounts}, ports ${ports}`);
  const published = (svc: string) => /:-(\d+)\}/.exec(services[svc]!.ports![0]!)![1];
  assert.deepEqual(['postfix-bq', 'postfix-milter', 'sendmail', 'sink', 'midstream-pop3', 'dovecot'].map(published), ['2525', '2526', '2527', '8025', '2110', '2111']);
});

test("the lab's midstream configs are valid and match Prometheus and the MTAs", () => {
  const proxy = loadConfig(join(ROOT, 'docker/midstream/proxy.toml'));
  const milter = loadConfig(join(ROOT, 'docker/midstream/milter.toml'));
  assert.match(proxy.proxy.forward, /^postfix-bq:/);
  assert.equal(proxy.proxy.listen.split(':').pop(), services['postfix-bq']!.environment!.FILTER_PORT);
  assert.equal(proxy.proxy.forward.split(':').pop(), services['postfix-bq']!.environment!.REINJECT_PORT);
  assert.equal(milter.milter.listen.split(':')[1]!.split('@')[0], services.sendmail!.environment!.MILTER_PORT);
  assert.ok(services['postfix-milter']!.environment!.MILTER!.endsWith(':' + services.sendmail!.environment!.MILTER_PORT));
  const pop3 = loadConfig(join(ROOT, 'docker/midstream/pop3.toml'));
  assert.equal(pop3.pop3.upstream, 'dovecot:110');
  assert.match(readFileSync(join(ROOT, 'docker/dovecot/dovecot.conf'), 'utf8'), /inet_listener pop3 \{\s*port = 110\s*\}/);
  assert.equal(pop3.pop3.listen.split(':').pop(), services['midstream-pop3']!.ports![0]!.split(':').pop());
  for (const c of [proxy, milter, pop3]) assert.deepEqual(c.clamd.endpoints, ['tcp:clamd:3310']);
  const prom = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { static_configs: { targets: string[] }[] }[];
  };
  const targets = prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((x) => x.targets)).sort();
  const want = [
    `midstream-milter:${metricsPort(milter.metrics.listen)}`,
    `midstream-pop3:${metricsPort(pop3.metrics.listen)}`,
    `midstream-proxy:${metricsPort(proxy.metrics.listen)}`,
  ];
  assert.deepEqual(targets, want);
});

/** Templates the lab renders, from the Dockerfiles' COPY lines and the entrypoints. */
function labTemplates(): { file: string; service: string; entrypoint: string }[] {
  const out: { file: string; service: string; entrypoint: string }[] = [];
  const pf = readFileSync(join(ROOT, 'docker/postfix/entrypoint.sh'), 'utf8');
  for (const name of new Set([...pf.matchAll(/"\$T\/([a-z.]+\.in)"/g)].map((m) => m[1]!))) {
    const service = /milter/.test(name) ? 'postfix-milter' : 'postfix-bq';
    out.push({ file: `postfix/${name}`, service, entrypoint: 'docker/postfix/entrypoint.sh' });
  }
  const sm = readFileSync(join(ROOT, 'docker/sendmail/entrypoint.sh'), 'utf8');
  for (const m of sm.matchAll(/\/opt\/midstream\/(sendmail\/[^\s"]+\.in) /g)) out.push({ file: m[1]!, service: 'sendmail', entrypoint: 'docker/sendmail/entrypoint.sh' });
  return out;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && /\.ts$/.test(d.name))
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

test('the lab renders the same templates the tests use, and fills every placeholder', () => {
  const tpl = labTemplates();
  assert.deepEqual(
    tpl.map((t) => t.file).sort(),
    ['postfix/main.cf.in', 'postfix/master.cf.in', 'postfix/milter.cf.in', 'sendmail/midstream.mc.in'],
  );
  const testSources = filesUnder(join(ROOT, 'test')).map((f) => readFileSync(f, 'utf8'));
  for (const t of tpl) {
    const path = join(ROOT, t.file);
    assert.ok(existsSync(path), `${t.file} exists`);
    const base = t.file.split('/').pop()!;
    assert.ok(
      testSources.some((s) => s.includes(base)),
      `some test or helper under test/ renders ${t.file} too`,
    );
    const entry = readFileSync(join(ROOT, t.entrypoint), 'utf8');
    const defaults = new Set([...entry.matchAll(/: "\$\{([A-Z_]+):=/g)].map((m) => m[1]!));
    const env = new Set(Object.keys(services[t.service]!.environment ?? {}));
    for (const m of new Set([...readFileSync(path, 'utf8').matchAll(/@([A-Z][A-Z0-9_]*)@/g)].map((x) => x[1]!))) {
      assert.ok(defaults.has(m) || env.has(m), `${t.file}: @${m}@ gets a value in ${t.entrypoint} or the ${t.service} environment`);
    }
  }
});

test('the lab scripts are executable and parse', () => {
  const scripts = [
    'docker/lab-render.sh', 'docker/postfix/entrypoint.sh', 'docker/sendmail/entrypoint.sh', 'docker/lab-healthy.sh', 'docker/dovecot/entrypoint.sh',
    'docker/base/base-images.sh', 'scripts/lab.sh',
  ];
  for (const f of scripts) {
    const p = join(ROOT, f);
    assert.ok((statSync(p).mode & 0o111) !== 0, `${f} is executable`);
    const shell = readFileSync(p, 'utf8').startsWith('#!/bin/bash') ? 'bash' : 'sh';
    const r = spawnSync(shell, ['-n', p], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['lab:up'], 'sh scripts/lab.sh up');
  assert.equal(pkg.scripts['lab:down'], 'sh scripts/lab.sh down');
  assert.match(pkg.scripts['lab:test']!, /dist\/test\/integration\/lab\.test\.js/);
});

test('the Grafana dashboard is valid JSON and shows every midstream_ metric', async () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/midstream-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(dash.panels.length >= 6);
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  const names = (await createMetrics({ processMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(names.length >= 10);
  for (const n of names) assert.ok(exprs.includes(n), `dashboard shows ${n}`);
  for (const ds of ['datasources/prometheus.yml', 'dashboards/midstream.yml']) {
    assert.ok(parseYaml(readFileSync(join(ROOT, 'docker/grafana/provisioning', ds), 'utf8')).apiVersion === 1, ds);
  }
});

test('systemd units: unprivileged, hardened, reload by HUP, graceful stop', () => {
  for (const [unit, cmd] of [['midstream-proxy.service', 'proxy'], ['midstream-milter.service', 'milter'], ['midstream-pop3.service', 'pop3']] as const) {
    const text = readFileSync(join(ROOT, 'deploy/systemd', unit), 'utf8');
    const has = (line: string) => assert.ok(text.split('\n').includes(line), `${unit}: ${line}`);
    has('User=midstream');
    // One config per unit: they cannot share listen, log or metrics addresses.
    has(`ExecStart=/usr/local/bin/midstream ${cmd} --config /etc/midstream/${cmd}.toml`);
    has(`ExecStartPre=/usr/local/bin/midstream check-config --quiet --config /etc/midstream/${cmd}.toml`);
    has('RuntimeDirectoryPreserve=yes');
    has('ExecReload=/bin/kill -HUP $MAINPID');
    has('NoNewPrivileges=yes');
    has('ProtectSystem=strict');
    has('PrivateTmp=yes');
    has('RuntimeDirectory=midstream');
    has('RuntimeDirectoryMode=0750');
    has('Restart=on-failure');
    has('KillSignal=SIGTERM');
    has('RestartPreventExitStatus=2');
    const stop = /^TimeoutStopSec=(\d+)s$/m.exec(text);
    assert.ok(stop && Number(stop[1]) > loadConfig(undefined).proxy.replyBudgetMs / 1000, `${unit}: TimeoutStopSec above reply_budget`);
    assert.ok(!/^MemoryDenyWriteExecute=yes/m.test(text), 'V8 needs W+X memory');
    for (const section of ['[Unit]', '[Service]', '[Install]']) has(section);
  }
});
