/**
 * metrics-server.test.ts — the fronts' metric calls show up in GET /metrics with the
 * right values, on a loopback port-0 server; everything else is 404.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../src/metrics/metrics.js';
import { startMetricsServer } from '../../src/metrics/metrics-server.js';

/** Exposition text → Map of 'name{k="v",...}' (labels sorted) → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `well-formed line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => `${x[1]}="${x[2]}"`).sort() : [];
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]));
  }
  return out;
}

async function get(address: string, path: string, method = 'GET') {
  const res = await fetch(`http://${address}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

test('GET /metrics shows what the fronts reported', async () => {
  const metrics = createMetrics();
  const srv = await startMetricsServer('127.0.0.1:0', metrics);
  try {
    assert.match(srv.address, /^127\.0\.0\.1:[1-9][0-9]*$/);
    metrics.connOpened('proxy');
    metrics.connOpened('proxy');
    metrics.connOpened('milter');
    metrics.connClosed('proxy');
    metrics.messageDone({ front: 'proxy', verdict: 'clean', bytes: 1000, scanMs: 20, eodMs: 5 });
    metrics.messageDone({ front: 'proxy', verdict: 'infected', bytes: 500, scanMs: 30, eodMs: 7 });
    metrics.messageDone({ front: 'milter', verdict: 'limit', bytes: 250, scanMs: 1500, eodMs: 1200, limit: 'mime-depth' });
    metrics.messageDone({ front: 'milter', verdict: 'limit', bytes: 0, scanMs: -5, eodMs: Number.NaN, limit: 'made-up' });
    metrics.clamdHealth('tcp:127.0.0.1:3310', true);
    metrics.clamdHealth('unix:/run/clamav/clamd.ctl', false);
    metrics.signaturesLoaded(10, 'daily-1', 0.5);
    metrics.signaturesLoaded(12, 'daily-2', 0.25);

    const r = await get(srv.address, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    const s = parse(r.body);
    const expect: Record<string, number> = {
      'midstream_connections{front="proxy"}': 1,
      'midstream_connections{front="milter"}': 1,
      'midstream_messages_total{front="proxy",verdict="clean"}': 1,
      'midstream_messages_total{front="proxy",verdict="infected"}': 1,
      'midstream_messages_total{front="proxy",verdict="banned"}': 0,
      'midstream_messages_total{front="milter",verdict="limit"}': 2,
      'midstream_bytes_total{front="proxy"}': 1500,
      'midstream_bytes_total{front="milter"}': 250,
      'midstream_limits_total{which="mime-depth"}': 1,
      'midstream_limits_total{which="other"}': 1,
      'midstream_scan_seconds_count': 4,
      'midstream_scan_seconds_sum': 1.55,
      'midstream_scan_seconds_bucket{le="0.025"}': 2, // 0.02 and the clamped 0
      'midstream_scan_seconds_bucket{le="0.05"}': 3,
      'midstream_scan_seconds_bucket{le="+Inf"}': 4,
      'midstream_eod_wait_seconds_count{front="proxy"}': 2,
      'midstream_eod_wait_seconds_sum{front="proxy"}': 0.012,
      'midstream_eod_wait_seconds_bucket{front="milter",le="1"}': 1,
      'midstream_eod_wait_seconds_bucket{front="milter",le="2.5"}': 2,
      'midstream_clamd_up{endpoint="tcp:127.0.0.1:3310"}': 1,
      'midstream_clamd_up{endpoint="unix:/run/clamav/clamd.ctl"}': 0,
      'midstream_signatures': 12,
      'midstream_signature_reload_seconds': 0.25,
      'midstream_signature_version_info{version="daily-2"}': 1,
    };
    for (const [k, v] of Object.entries(expect)) {
      assert.ok(s.has(k), `series ${k} present`);
      assert.ok(Math.abs(s.get(k)! - v) < 1e-9, `${k} = ${s.get(k)}, want ${v}`);
    }
    assert.ok(!s.has('midstream_signature_version_info{version="daily-1"}'), 'old version series removed');
    assert.ok([...s.keys()].some((k) => k.startsWith('process_cpu_user_seconds_total')), 'default process metrics present');
    assert.match(r.body, /^# HELP midstream_messages_total /m);
    assert.match(r.body, /^# TYPE midstream_scan_seconds histogram$/m);
  } finally {
    await srv.close();
  }
});

test('other paths and methods are 404; HEAD has no body; close frees the port', async () => {
  const metrics = createMetrics({ processMetrics: false });
  const srv = await startMetricsServer('127.0.0.1:0', metrics);
  assert.equal((await get(srv.address, '/')).status, 404);
  assert.equal((await get(srv.address, '/metrics/extra')).status, 404);
  assert.equal((await get(srv.address, '/metrics', 'POST')).status, 404);
  const head = await get(srv.address, '/metrics', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  const plain = await get(srv.address, '/metrics?x=1');
  assert.equal(plain.status, 200);
  assert.ok(!/process_cpu/.test(plain.body), 'process metrics off when asked');
  await srv.close();
  await assert.rejects(fetch(`http://${srv.address}/metrics`));
});

test('registries are independent (two instances do not share counts)', async () => {
  const a = createMetrics({ processMetrics: false });
  const b = createMetrics({ processMetrics: false });
  a.messageDone({ front: 'proxy', verdict: 'clean', bytes: 1, scanMs: 1, eodMs: 1 });
  const sa = parse(await a.render());
  const sb = parse(await b.render());
  assert.equal(sa.get('midstream_messages_total{front="proxy",verdict="clean"}'), 1);
  assert.equal(sb.get('midstream_messages_total{front="proxy",verdict="clean"}'), 0);
});

test('an empty listen address is refused (metrics off)', async () => {
  await assert.rejects(startMetricsServer('', createMetrics({ processMetrics: false })), /empty/);
});

test('midstream_clamd_raw_scans_total: every result starts at 0, counts by result, anything else is "other"', async () => {
  const m = createMetrics({ processMetrics: false });
  const results = ['clean', 'infected', 'limit', 'error', 'no-slot'];
  let s = parse(await m.render());
  for (const r of results) assert.equal(s.get(`midstream_clamd_raw_scans_total{result="${r}"}`), 0, r);
  m.clamdRawScan('infected');
  m.clamdRawScan('infected');
  m.clamdRawScan('no-slot');
  m.clamdRawScan('bogus\nvalue');
  s = parse(await m.render());
  assert.equal(s.get('midstream_clamd_raw_scans_total{result="infected"}'), 2);
  assert.equal(s.get('midstream_clamd_raw_scans_total{result="no-slot"}'), 1);
  assert.equal(s.get('midstream_clamd_raw_scans_total{result="clean"}'), 0);
  assert.equal(s.get('midstream_clamd_raw_scans_total{result="other"}'), 1);
});
