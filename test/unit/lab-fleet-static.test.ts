/**
 * lab-fleet-static.test.ts — the scale-out lab (docker-compose.fleet.yml), checked without
 * a Docker engine like the main lab (lab-static.test.ts): two MX (Postfix before-queue +
 * its own midstream), two clamd, one Redis, the sink, Prometheus and Grafana; every core
 * service on the main lab's one image, whose Dockerfile installs what they run; each MX's
 * Postfix proxies to its own midstream, which forwards back to it; the shared midstream
 * config loads and points at both clamd services and the Redis service; Prometheus scrapes
 * both instances with a label per MX; the dashboard has a row per MX showing the scale-out
 * metrics (pool, cache) for that MX only; mounted files exist; ports bind 127.0.0.1; each
 * MX's /metrics is published; `npm run lab:fleet:up|down|test` drive this file through
 * scripts/lab.sh --fleet, whose port variables are the compose file's. It runs for real in
 * test/integration/lab-fleet.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/paths.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { ComposeService } from '../helpers/lab.js';
import { parseAddress } from '../../src/core/address.js';
import { parseRedisUrl } from '../../src/core/scan/redis-url.js';
import { createMetrics } from '../../src/metrics/metrics.js';

type Service = ComposeService;
type Compose = { services: Record<string, Service> } & Record<string, unknown>;
const load = (f: string) => parseYaml(readFileSync(join(ROOT, f), 'utf8'), { merge: true }) as Compose;
const fleet = load('docker-compose.fleet.yml');
const main = load('docker-compose.yml');
const S = fleet.services;
const MX = ['mx1', 'mx2'];

test('the fleet has two MX, each with its own midstream, two clamd, one Redis, a sink, Prometheus and Grafana', () => {
  for (const name of ['mx1', 'mx2', 'mx1-midstream', 'mx2-midstream', 'clamd1', 'clamd2', 'redis', 'sink', 'prometheus', 'grafana']) assert.ok(S[name], `service ${name}`);
  assert.equal(Object.keys(S).filter((n) => /^clamd/.test(n)).length, 2);
  assert.ok(!('name' in fleet), 'no top-level name: (docker-compose 1.29 rejects it)');
});

test('core services run the main lab image, and its Dockerfile installs what they run', () => {
  const labImage = main.services['midstream-proxy']!;
  for (const [name, s] of Object.entries(S)) {
    if (s.profiles?.includes('metrics')) continue;
    assert.equal(s.image, labImage.image, `${name}: the lab image`);
    assert.deepEqual(s.build, labImage.build, `${name}: built like the main lab`);
  }
  const df = readFileSync(join(ROOT, labImage.build!.dockerfile!), 'utf8');
  for (const pkg of ['postfix', 'clamav-daemon', 'redis-server']) assert.match(df, new RegExp(`\\b${pkg}\\b`), `the image installs ${pkg}`);
  assert.equal(S.redis!.command![0], 'redis-server');
  assert.ok(S.redis!.command!.includes('--save') && S.redis!.command!.includes('--appendonly'), 'no persistence');
});

test('each MX proxies to its own midstream, which forwards clean mail back to that MX', () => {
  const cfg = loadConfig(join(ROOT, 'docker/midstream/fleet.toml'));
  const listenPort = (parseAddress(cfg.proxy.listen, 'listen') as { port: number }).port;
  for (const mx of MX) {
    const pf = S[mx]!;
    const ms = S[`${mx}-midstream`]!;
    assert.equal(pf.environment!.LAB_MODE, 'before-queue');
    assert.equal(pf.environment!.MIDSTREAM_PROXY, `${mx}-midstream`, `${mx}: smtpd_proxy_filter → its own midstream`);
    assert.equal(Number(pf.environment!.FILTER_PORT), listenPort);
    const fwd = ms.command![ms.command!.indexOf('--forward') + 1];
    assert.equal(fwd, `${mx}:${pf.environment!.REINJECT_PORT}`, `${mx}-midstream forwards to ${mx}'s after-filter smtpd`);
    assert.ok(ms.volumes!.some((v) => v.startsWith('./docker/midstream/fleet.toml:/etc/midstream/midstream.toml')));
    assert.ok(ms.command!.includes('/etc/midstream/midstream.toml'));
  }
});

test('the shared config: both clamd services in the pool, the Redis service as the shared cache, metrics for Prometheus', () => {
  const cfg = loadConfig(join(ROOT, 'docker/midstream/fleet.toml'));
  const clamds = Object.keys(S).filter((n) => /^clamd\d$/.test(n)).sort();
  assert.deepEqual([...cfg.clamd.endpoints].sort(), clamds.map((c) => `tcp:${c}:3310`));
  assert.ok(cfg.clamd.cacheEntries > 0, 'the in-process tier is on');
  const r = parseRedisUrl(cfg.cache.url);
  assert.equal(r.kind === 'tcp' && r.host, 'redis');
  assert.equal(r.kind === 'tcp' && String(r.port), S.redis!.command![S.redis!.command!.indexOf('--port') + 1]);
  const prom = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus-fleet.yml'), 'utf8')) as {
    scrape_configs: { static_configs: { targets: string[]; labels: Record<string, string> }[] }[];
  };
  const port = (parseAddress(cfg.metrics.listen, 'metrics') as { port: number }).port;
  const statics = prom.scrape_configs.flatMap((s) => s.static_configs);
  assert.deepEqual(
    statics.map((s) => [s.targets, s.labels.mx]),
    MX.map((mx) => [[`${mx}-midstream:${port}`], mx]),
  );
  assert.ok(S.prometheus!.volumes!.some((v) => v.startsWith('./deploy/prometheus/prometheus-fleet.yml:')));
});

test('the fleet dashboard: a row per MX, every panel in it filtered to that MX, the scale-out metrics shown', async () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/midstream-fleet-dashboard.json'), 'utf8')) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  const rows: { title: string; exprs: string[] }[] = [];
  for (const p of dash.panels) {
    if (p.type === 'row') rows.push({ title: p.title, exprs: [] });
    else rows[rows.length - 1]!.exprs.push(...(p.targets ?? []).map((t) => t.expr));
  }
  for (const mx of MX) {
    const row = rows.find((r) => r.title.startsWith(`${mx}:`));
    assert.ok(row, `a row for ${mx}`);
    assert.ok(row.exprs.length >= 6);
    for (const e of row.exprs) assert.ok(e.includes(`mx="${mx}"`), `${mx} row: ${e}`);
    for (const m of ['midstream_clamd_in_flight', 'midstream_clamd_up', 'midstream_clamd_scans_total', 'midstream_clamd_scan_seconds', 'midstream_cache_lookups_total', 'midstream_cache_shared_up']) {
      assert.ok(row.exprs.some((e) => e.includes(m)), `${mx} row shows ${m}`);
    }
  }
  // Every name the dashboard uses is one midstream exports (no typo'd series).
  const names = new Set((await createMetrics({ processMetrics: true }).registry.getMetricsAsJSON()).map((m) => m.name));
  for (const e of rows.flatMap((r) => r.exprs)) {
    for (const m of e.match(/\b(?:midstream|process)_[a-z_]+/g) ?? []) assert.ok(names.has(m.replace(/_(bucket|sum|count)$/, '')), `exported: ${m}`);
  }
  assert.ok(S.grafana!.volumes!.some((v) => v.startsWith('./deploy/grafana/midstream-fleet-dashboard.json:')));
});

test('every mounted file exists and every published port binds 127.0.0.1, apart from the main lab', () => {
  const mainPorts = new Set(Object.values(main.services).flatMap((s) => (s.ports ?? []).map((p) => p.replace(/\$\{[A-Z0-9_]+:-(\d+)\}/, '$1').split(':')[1])));
  let ports = 0;
  for (const [name, s] of Object.entries(S)) {
    for (const v of s.volumes ?? []) {
      const src = v.split(':')[0]!;
      if (src.startsWith('./')) assert.ok(existsSync(join(ROOT, src)), `${name}: mounted ${src} exists`);
    }
    for (const p of s.ports ?? []) {
      const m = /^127\.0\.0\.1:\$\{[A-Z0-9_]+:-(\d+)\}:\d+$/.exec(p);
      assert.ok(m, `${name}: ${p} binds loopback only`);
      assert.ok(!mainPorts.has(m[1]), `${name}: host port ${m[1]} differs from the main lab's`);
      ports++;
    }
  }
  assert.ok(ports >= 7);
});

test("each MX's midstream publishes its /metrics port on loopback (the fleet test reads pool and cache state there)", () => {
  const cfg = loadConfig(join(ROOT, 'docker/midstream/fleet.toml'));
  const port = (parseAddress(cfg.metrics.listen, 'metrics') as { port: number }).port;
  for (const mx of MX) {
    const p = S[`${mx}-midstream`]!.ports ?? [];
    assert.equal(p.length, 1, `${mx}-midstream: one published port`);
    assert.match(p[0]!, new RegExp(`^127\\.0\\.0\\.1:\\$\\{FLEET_PORT_${mx.toUpperCase()}_METRICS:-\\d+\\}:${port}$`), `${mx}-midstream: metrics`);
  }
});

test('npm run lab:fleet:* drive this file through scripts/lab.sh --fleet, with the port variables it uses', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['lab:fleet:up'], 'sh scripts/lab.sh --fleet up');
  assert.equal(pkg.scripts['lab:fleet:down'], 'sh scripts/lab.sh --fleet down');
  assert.match(pkg.scripts['lab:fleet:test']!, /dist\/test\/integration\/lab-fleet\.test\.js/);
  const sh = readFileSync(join(ROOT, 'scripts/lab.sh'), 'utf8');
  assert.match(sh, /COMPOSE_FILE="\$ROOT\/docker-compose\.fleet\.yml"/);
  // Every FLEET_PORT_* the compose file reads is one lab.sh sets (and prints), and back.
  const text = readFileSync(join(ROOT, 'docker-compose.fleet.yml'), 'utf8');
  const inCompose = new Set([...text.matchAll(/\$\{(FLEET_PORT_[A-Z0-9_]+):-(\d+)\}/g)].filter((m) => !/PROMETHEUS|GRAFANA/.test(m[1]!)).map((m) => `${m[1]}=${m[2]}`));
  const inScript = new Set([...sh.matchAll(/(FLEET_PORT_[A-Z0-9_]+)="\$\{\1:-(\d+)\}"/g)].map((m) => `${m[1]}=${m[2]}`));
  assert.deepEqual([...inScript].sort(), [...inCompose].sort(), 'same variables, same defaults');
  const r = spawnSync('sh', ['-n', join(ROOT, 'scripts/lab.sh')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
