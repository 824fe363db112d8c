/**
 * lab-static.test.ts — the docker-compose lab and the deploy files, checked without a
 * Docker engine: the compose file parses, every build context, Dockerfile, COPY
 * source and mounted file exists, published ports bind 127.0.0.1, the lab renders the
 * same postfix/ and sendmail/ templates the tests use and gives every placeholder a
 * value, the lab's midstream configs load, Prometheus scrapes the right ports, the
 * Grafana dashboard shows every midstream_ metric, and the systemd units carry the
 * directives operations rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/paths.js';
import { loadConfig } from '../../src/config/load-config.js';
import { parseAddress } from '../../src/core/address.js';
const metricsPort = (s: string) => (parseAddress(s, 'metrics') as { port: number }).port;
import { createMetrics } from '../../src/metrics/metrics.js';

type Service = {
  build?: { context: string; dockerfile?: string };
  image?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  command?: string[];
};
const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;
const inRepo = (p: string) => {
  const r = relative(ROOT, normalize(p));
  return r !== '' && !r.startsWith('..');
};

function dockerfileOf(s: Service): string {
  return join(ROOT, s.build!.context, s.build!.dockerfile ?? 'Dockerfile');
}

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

function copySources(file: string): string[] {
  const srcs: string[] = [];
  for (const ins of instructions(file)) {
    const m = /^(COPY|ADD)\s+(.*)$/i.exec(ins);
    if (!m) continue;
    const words = m[2]!.split(/\s+/);
    if (words.some((w) => w.startsWith('--from='))) continue;
    const args = words.filter((w) => !w.startsWith('--'));
    srcs.push(...args.slice(0, -1));
  }
  return srcs;
}

test('the compose file has every lab service', () => {
  for (const name of ['midstream-proxy', 'midstream-milter', 'clamd', 'postfix-bq', 'postfix-milter', 'sendmail', 'sink', 'prometheus', 'grafana']) {
    assert.ok(services[name], `service ${name}`);
  }
  assert.match(services.sink!.image!, /^axllent\/mailpit(:|$)/);
  assert.deepEqual(services['midstream-proxy']!.build, services['midstream-milter']!.build, 'one midstream image for both fronts');
});

test('build contexts, Dockerfiles and every COPY source exist in the repo', () => {
  let copies = 0;
  for (const [name, s] of Object.entries(services)) {
    if (!s.build) {
      assert.ok(s.image, `${name}: build or image`);
      continue;
    }
    const ctx = join(ROOT, s.build.context);
    assert.ok(inRepo(ctx) || normalize(ctx) === normalize(ROOT), `${name}: context inside the repo`);
    assert.ok(statSync(ctx).isDirectory(), `${name}: context ${s.build.context}`);
    const df = dockerfileOf(s);
    assert.ok(existsSync(df), `${name}: ${relative(ROOT, df)}`);
    assert.match(instructions(df)[0]!, /^FROM /i, `${name}: Dockerfile starts with FROM`);
    for (const src of copySources(df)) {
      const p = join(ctx, src);
      assert.ok(existsSync(p), `${name}: COPY source ${src} exists`);
      copies++;
    }
  }
  assert.ok(copies >= 10, `found the COPY lines (${copies})`);
});

test('the midstream image is node:20-slim with npm ci and a tsc build', () => {
  const ins = instructions(join(ROOT, 'docker/midstream/Dockerfile'));
  assert.ok(ins.filter((i) => /^FROM node:20-slim\b/.test(i)).length >= 1);
  assert.ok(ins.some((i) => /npm ci/.test(i)));
  assert.ok(ins.some((i) => /tsc -p/.test(i)));
  assert.ok(ins.some((i) => /^USER midstream$/.test(i)), 'runs unprivileged');
});

test('clamd is built with a test database, no freshclam', () => {
  const df = readFileSync(join(ROOT, 'docker/clamd/Dockerfile'), 'utf8');
  assert.doesNotMatch(df.replace(/^#.*$/gm, ''), /freshclam/);
  const ndb = readFileSync(join(ROOT, 'docker/clamd/lab.ndb'), 'utf8');
  const eicar = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');
  assert.match(ndb, new RegExp(`^[A-Za-z0-9.-]+:0:\\*:${eicar.toString('hex')}$`, 'm'));
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
      assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${p} binds loopback only`);
      ports++;
    }
  }
  assert.ok(mounts >= 5 && ports >= 6, `mounts ${mounts}, ports ${ports}`);
});

test("the lab's midstream configs are valid and match Prometheus and the MTAs", () => {
  const proxy = loadConfig(join(ROOT, 'docker/midstream/proxy.toml'));
  const milter = loadConfig(join(ROOT, 'docker/midstream/milter.toml'));
  assert.match(proxy.proxy.forward, /^postfix-bq:/);
  assert.equal(proxy.proxy.listen.split(':').pop(), services['postfix-bq']!.environment!.FILTER_PORT);
  assert.equal(proxy.proxy.forward.split(':').pop(), services['postfix-bq']!.environment!.REINJECT_PORT);
  assert.equal(milter.milter.listen.split(':')[1]!.split('@')[0], services.sendmail!.environment!.MILTER_PORT);
  assert.ok(services['postfix-milter']!.environment!.MILTER!.endsWith(':' + services.sendmail!.environment!.MILTER_PORT));
  for (const c of [proxy, milter]) assert.deepEqual(c.clamd.endpoints, ['tcp:clamd:3310']);
  const prom = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { static_configs: { targets: string[] }[] }[];
  };
  const targets = prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((x) => x.targets)).sort();
  const want = [
    `midstream-milter:${metricsPort(milter.metrics.listen)}`,
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
  const sm = readFileSync(join(ROOT, 'docker/sendmail/Dockerfile'), 'utf8');
  for (const m of sm.matchAll(/COPY (sendmail\/[^\s]+\.in) /g)) out.push({ file: m[1]!, service: 'sendmail', entrypoint: 'docker/sendmail/entrypoint.sh' });
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

test('the lab scripts are executable and parse as sh', () => {
  for (const f of ['docker/lab-render.sh', 'docker/postfix/entrypoint.sh', 'docker/sendmail/entrypoint.sh']) {
    const p = join(ROOT, f);
    assert.ok((statSync(p).mode & 0o111) !== 0, `${f} is executable`);
    const r = spawnSync('sh', ['-n', p], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
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
  for (const [unit, cmd] of [['midstream-proxy.service', 'proxy'], ['midstream-milter.service', 'milter']] as const) {
    const text = readFileSync(join(ROOT, 'deploy/systemd', unit), 'utf8');
    const has = (line: string) => assert.ok(text.split('\n').includes(line), `${unit}: ${line}`);
    has('User=midstream');
    has(`ExecStart=/usr/local/bin/midstream ${cmd} --config /etc/midstream/midstream.toml`);
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
