// Markdown report and hand-written SVG chart for the peer benchmark.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantile, median } from './load.js';
import type { ConfigDef, Cell, CellFigures, Accounting, LatencyProbe, MemoryResult } from './types.js';

export interface Meta {
  date: string; quick: boolean; rounds: number; durationMs: number; concurrency: number[];
  host: { cpus: number; kernel: string; node: string }; versions: Record<string, string>; wallS: number;
  eicarAtSink: number; noIdAtSink: number; workloads: { key: string; title: string; sizes: number[] }[]; midstream: boolean; amavisServers: number;
  loadavg?: { start: string; end: string };
}

export function figures(c: Cell): CellFigures {
  const msgs = c.results.length;
  const s = c.elapsedMs / 1000;
  const bytes = c.results.reduce((a, r) => a + r.bytes, 0);
  const waits = c.results.filter((r) => r.code === 250 && !r.virus).map((r) => r.waitMs);
  const n = Math.max(1, msgs);
  return {
    msgs, msgPerS: msgs / s, mbitPerS: (bytes * 8) / 1e6 / s, p50: quantile(waits, 0.5), p99: quantile(waits, 0.99),
    cpuPerMsg: { mta: c.cpuMs.mta / n, filter: c.cpuMs.filter / n, clamd: c.cpuMs.clamd / n },
  };
}

export function account(cells: Cell[], delivered: Map<string, number>): Accounting {
  const a: Accounting = { sentClean: 0, acceptedClean: 0, delivered: 0, missing: 0, duplicates: 0, tempfailClean: 0, rejectedClean: 0, virusSent: 0, virusRejected: 0, virusDiscarded: 0, virusDelivered: 0, sessionErrors: 0 };
  for (const c of cells) {
    a.sessionErrors += c.sessionErrors.length;
    for (const r of c.results) {
      const d = delivered.get(r.id) ?? 0;
      if (r.virus) {
        a.virusSent++;
        if (d > 0) a.virusDelivered++;
        else if (r.code >= 500) a.virusRejected++;
        else if (r.code === 250) a.virusDiscarded++;
        continue;
      }
      a.sentClean++;
      if (r.code === 250) {
        a.acceptedClean++;
        if (d > 0) a.delivered++; else a.missing++;
        if (d > 1) a.duplicates += d - 1;
      } else if (r.code >= 400 && r.code < 500) { a.tempfailClean++; if (d > 0) a.duplicates += d; }
      else { a.rejectedClean++; if (d > 0) a.duplicates += d; }
    }
  }
  return a;
}

const f1 = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : '–');
const kb = (x: number) => (x >= 10240 ? `${(x / 1024).toFixed(0)} MB` : `${Math.round(x)} kB`);

interface Agg { msgPerS: number; lo: number; hi: number; mbit: number; p50: number; p99: number; cpu: { mta: number; filter: number; clamd: number }; rounds: number; acct: Accounting }

function aggregate(cells: Cell[], delivered: Map<string, number>): Agg {
  const fs = cells.map(figures);
  const rates = fs.map((f) => f.msgPerS);
  const waits = cells.flatMap((c) => c.results.filter((r) => r.code === 250 && !r.virus).map((r) => r.waitMs));
  const msgs = Math.max(1, cells.reduce((a, c) => a + c.results.length, 0));
  const sum = (k: 'mta' | 'filter' | 'clamd') => cells.reduce((a, c) => a + c.cpuMs[k], 0) / msgs;
  return {
    msgPerS: median(rates), lo: Math.min(...rates), hi: Math.max(...rates), mbit: median(fs.map((f) => f.mbitPerS)),
    p50: quantile(waits, 0.5), p99: quantile(waits, 0.99), cpu: { mta: sum('mta'), filter: sum('filter'), clamd: sum('clamd') }, rounds: cells.length,
    acct: account(cells, delivered),
  };
}

function acctText(a: Accounting, filters: boolean): string {
  const bad = a.missing + a.duplicates + a.virusDelivered + a.tempfailClean + a.rejectedClean;
  let s = bad === 0 ? `ok ${a.delivered}/${a.acceptedClean}` : `**${a.delivered}/${a.acceptedClean}**`;
  if (a.missing) s += ` missing ${a.missing}`;
  if (a.duplicates) s += ` dup ${a.duplicates}`;
  if (a.tempfailClean) s += ` 4xx ${a.tempfailClean}`;
  if (a.rejectedClean) s += ` 5xx-clean ${a.rejectedClean}`;
  if (filters && a.virusSent) s += `; EICAR ${a.virusRejected} rej${a.virusDiscarded ? ` ${a.virusDiscarded} discarded` : ''}${a.virusDelivered ? ` **${a.virusDelivered} DELIVERED**` : ''}/${a.virusSent}`;
  return s;
}

export function writeReport(outDir: string, meta: Meta, configs: ConfigDef[], cells: Cell[], delivered: Map<string, number>, probes: LatencyProbe[], memory: MemoryResult[]): void {
  const main = cells.filter((c) => c.round >= 1 && c.round < 99);
  const key = (c: string, w: string, s: number) => `${c}|${w}|${s}`;
  const groups = new Map<string, Cell[]>();
  for (const c of main) { const k = key(c.config, c.workload, c.sessions); groups.set(k, [...(groups.get(k) ?? []), c]); }
  const agg = new Map<string, Agg>();
  for (const [k, g] of groups) agg.set(k, aggregate(g, delivered));
  const label = (k: string) => configs.find((c) => c.key === k)?.label ?? k;
  const L: string[] = [];
  L.push('# midstream peer benchmark', '');
  L.push(`Run ${meta.date}${meta.quick ? ' (`--quick`)' : ''}: ${meta.rounds} interleaved rounds of ${meta.durationMs / 1000} s per cell, ` +
    `${meta.concurrency.join('/')} concurrent sessions; ${meta.host.cpus} CPUs, Linux ${meta.host.kernel}, Node ${meta.host.node}; wall time ${Math.round(meta.wallS / 60)} min.`);
  if (meta.loadavg) L.push(`Load average (1/5/15 min) at start ${meta.loadavg.start}, at end ${meta.loadavg.end} — anything well above 2 means other work shared the 2 cores; only ratios within this run are meaningful.`);
  L.push(`Versions: ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}. One shared clamd (test database: EICAR .ndb + clam.exe .hdb).`);
  L.push('', 'Command: `npx tsx bench/run-peers.ts' + (meta.quick ? ' --quick' : '') + '` (see bench/README-peers.md).', '');

  L.push('## Configurations', '');
  for (const c of configs) L.push(`- \`${c.key}\`: ${c.label}`);
  if (!meta.midstream) L.push('- midstream configurations: **not measured** (CLI not built at run time)');
  L.push('', '## Workloads', '');
  for (const w of meta.workloads) L.push(`- \`${w.key}\`: ${w.title} (message ${w.sizes.map((s) => kb(s / 1024)).join(' / ')})`);
  L.push('', 'Every 2 cells per filter configuration also carry EICAR messages (inline and attached), which must be rejected (or discarded) and never reach the sink.');

  // summary
  for (const s of meta.concurrency) {
    L.push('', `## Throughput, ${s} concurrent session${s > 1 ? 's' : ''} (msg/s, median of ${meta.rounds} rounds [min–max])`, '');
    L.push(`| configuration | ${meta.workloads.map((w) => w.key).join(' | ')} |`);
    L.push(`|---|${meta.workloads.map(() => '---:').join('|')}|`);
    for (const c of configs) {
      L.push(`| ${c.key} | ${meta.workloads.map((w) => { const a = agg.get(key(c.key, w.key, s)); return a ? `${f1(a.msgPerS)} [${f1(a.lo)}–${f1(a.hi)}]` : '–'; }).join(' | ')} |`);
    }
  }

  // details per workload and concurrency
  for (const s of meta.concurrency) {
    for (const w of meta.workloads) {
      L.push('', `### ${w.title}, ${s} session${s > 1 ? 's' : ''}`, '');
      L.push('| configuration | msg/s | Mbit/s | vs direct | wait after dot p50 / p99 (ms) | CPU ms/msg MTA | filter | clamd | accounting |');
      L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
      for (const c of configs) {
        const a = agg.get(key(c.key, w.key, s));
        if (!a) continue;
        const direct = agg.get(key(c.mta === 'postfix' ? 'pf-direct' : 'sm-direct', w.key, s));
        L.push(`| ${c.key} | ${f1(a.msgPerS)} [${f1(a.lo)}–${f1(a.hi)}] | ${f1(a.mbit)} | ${direct ? pct(a.msgPerS / direct.msgPerS) : '–'} | ${f1(a.p50)} / ${f1(a.p99)} | ${f2(a.cpu.mta)} | ${c.filterRoots ? f2(a.cpu.filter) : '–'} | ${f2(a.cpu.clamd)} | ${acctText(a.acct, c.filters)} |`);
      }
    }
  }

  // ratios to each peer
  const peers = configs.filter((c) => c.kind === 'peer');
  const mine = configs.filter((c) => c.kind === 'midstream' || c.kind === 'ceiling');
  const sRef = meta.concurrency.includes(10) ? 10 : meta.concurrency[0]!;
  if (peers.length && mine.length) {
    L.push('', `## Ratios to each peer (msg/s, ${sRef} sessions)`, '');
    L.push(`| configuration | workload | ${peers.map((p) => p.key).join(' | ')} | best peer |`);
    L.push(`|---|---|${peers.map(() => '---:').join('|')}|---:|`);
    for (const m of mine) for (const w of meta.workloads) {
      const am = agg.get(key(m.key, w.key, sRef));
      if (!am) continue;
      const rs = peers.map((p) => { const ap = agg.get(key(p.key, w.key, sRef)); return ap ? am.msgPerS / ap.msgPerS : NaN; });
      const best = Math.max(...peers.map((p) => agg.get(key(p.key, w.key, sRef))?.msgPerS ?? 0));
      L.push(`| ${m.key} | ${w.key} | ${rs.map((r) => `${f2(r)}×`).join(' | ')} | ${f2(am.msgPerS / best)}× |`);
    }
  }

  // latency probe
  if (probes.length) {
    L.push('', '## Wait after the final dot, 1 MB base64 attachment, 1 session (7 messages)', '');
    L.push('| configuration | median (ms) | min | max | replies |');
    L.push('|---|---:|---:|---:|---|');
    for (const p of probes) {
      const ok = p.waits.filter((_, i) => p.codes[i] === 250);
      L.push(`| ${p.config} | ${f1(median(ok))} | ${f1(Math.min(...ok))} | ${f1(Math.max(...ok))} | ${[...new Set(p.codes)].join(',')} |`);
    }
  }

  // memory
  if (memory.length) {
    L.push('', '## Filter memory with slow senders of 10 MB messages', '');
    L.push(`Mode: ${memory[0]!.mode}. RSS/PSS summed over the filter's processes, sampled every 250 ms; per-connection = (peak at the larger count − peak at the smaller) / difference in sessions.`, '');
    L.push('| configuration | sessions | idle RSS | peak RSS | peak PSS | procs | main VmHWM | temp disk peak (files) | completed | (peak − idle) / sessions | per-connection (RSS slope) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of configs) {
      const ms = memory.filter((m) => m.config === c.key).sort((a, b) => a.sessions - b.sessions);
      ms.forEach((m, i) => {
        let per = '';
        if (i > 0) { const p = ms[0]!; per = kb((m.peakRssKb - p.peakRssKb) / (m.sessions - p.sessions)); }
        L.push(`| ${c.key} | ${m.sessions} | ${kb(m.baselineKb)} | ${kb(m.peakRssKb)} | ${kb(m.peakPssKb)} | ${m.peakProcs} | ${kb(m.hwmMainKb)} | ${kb(m.tempPeakKb)} (${m.tempFilesPeak}) | ${m.reached}/${m.sessions}${m.errors.length ? ` (${m.errors[0]})` : ''} | ${kb((m.peakRssKb - m.baselineKb) / m.sessions)} | ${per} |`);
      });
    }
  }

  // temp disk during throughput cells
  L.push('', '## Temp disk used during the throughput runs (peak du of the filter\'s temp dir above its idle size)', '');
  L.push('| configuration | temp dir | peak | peak files |', '|---|---|---:|---:|');
  for (const c of configs.filter((x) => x.filterRoots)) {
    const cs = main.filter((x) => x.config === c.key);
    L.push(`| ${c.key} | ${c.tempDir ? (c.kind === 'midstream' ? 'its TMPDIR' : 'configured spool/temp dir') : 'none (pure relay)'} | ${kb(Math.max(0, ...cs.map((x) => x.tempPeakKb)))} | ${Math.max(0, ...cs.map((x) => x.tempFilesPeak))} |`);
  }

  // accounting
  L.push('', '## Accounting (all cells, incl. warm-up and probes)', '');
  L.push('| configuration | clean sent | accepted | delivered | missing | duplicates | 4xx | EICAR sent | rejected | discarded | delivered | session errors |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of configs) {
    const a = account(cells.filter((x) => x.config === c.key), delivered);
    L.push(`| ${c.key} | ${a.sentClean} | ${a.acceptedClean} | ${a.delivered} | ${a.missing} | ${a.duplicates} | ${a.tempfailClean} | ${a.virusSent} | ${a.virusRejected} | ${a.virusDiscarded} | ${a.virusDelivered} | ${a.sessionErrors} |`);
  }
  L.push('', `Messages carrying the EICAR string seen by the sink: ${meta.eicarAtSink} (only direct configurations, which have no filter, may deliver them; they are not sent EICAR). Messages without an id at the sink: ${meta.noIdAtSink}.`);

  // targets (issue 11 "Done when")
  L.push('', '## Targets (issue 11)', '');
  const g = (c: string, w: string) => agg.get(key(c, w, sRef));
  const bestPeer = (w: string) => Math.max(0, ...peers.filter((p) => p.mta === 'postfix').map((p) => g(p.key, w)?.msgPerS ?? 0));
  const wk = meta.workloads.map((w) => w.key);
  const ratioLine = (what: string, num: string, den: (w: string) => number | undefined, want: number, asPct = false) => {
    const cells: string[] = [];
    let met = 0, n = 0;
    for (const w of wk) {
      const a = g(num, w)?.msgPerS, b = den(w);
      if (!a || !b) continue;
      n++;
      const r = a / b;
      if (r >= want) met++;
      cells.push(`${w} ${asPct ? pct(r) : `${f2(r)}×`}${r >= want ? '' : ' **✗**'}`);
    }
    if (n) L.push(`- ${what}: ${cells.join(', ')} → ${met === n ? 'met' : `**missed on ${n - met} of ${n}**`}`);
  };
  if (!meta.midstream) L.push('- midstream was not built at run time: targets not evaluated.');
  else {
    ratioLine('pf-ms-builtin ≥ 90% of the pass-through', 'pf-ms-builtin', (w) => g('pf-passthrough', w)?.msgPerS, 0.9, true);
    ratioLine('pf-ms-milter ≥ 2× pf-clamav-milter', 'pf-ms-milter', (w) => g('pf-clamav-milter', w)?.msgPerS, 2);
    ratioLine('sm-ms-milter ≥ 2× sm-clamav-milter', 'sm-ms-milter', (w) => g('sm-clamav-milter', w)?.msgPerS, 2);
    ratioLine('pf-ms-milter-clamd ≥ 1.5× pf-clamav-milter', 'pf-ms-milter-clamd', (w) => g('pf-clamav-milter', w)?.msgPerS, 1.5);
    ratioLine('pf-ms-clamd-perfile ≥ the best Postfix peer', 'pf-ms-clamd-perfile', bestPeer, 1);
    const pb = probes.find((p) => p.config === 'pf-ms-builtin');
    if (pb) { const m = median(pb.waits); L.push(`- wait after the final dot, 1 MB, built-in engine ≤ 20 ms (issue 6): ${f1(m)} ms → ${m <= 20 ? 'met' : '**missed**'}`); }
    for (const c of configs.filter((x) => x.kind === 'midstream')) {
      const ms = memory.filter((m) => m.config === c.key).sort((a, b) => a.sessions - b.sessions);
      if (ms.length >= 2) { const per = (ms[ms.length - 1]!.peakRssKb - ms[0]!.peakRssKb) / (ms[ms.length - 1]!.sessions - ms[0]!.sessions); L.push(`- ${c.key} memory growth ≤ 64 KB per connection: ${kb(per)} → ${per <= 64 ? 'met' : '**missed**'}`); }
    }
  }
  const pt = g('pf-passthrough', 'b64-1m'), d = g('pf-direct', 'b64-1m');
  if (pt && d) L.push(`- reference: pass-through reaches ${pct(pt.msgPerS / d.msgPerS)} of Postfix direct on b64-1m and ${f2(pt.msgPerS / bestPeer('b64-1m'))}× the best Postfix peer.`);

  L.push('', '## Method and caveats', '');
  L.push('- One private Postfix instance (temp dir, chroot off, `in_flow_delay = 0`, no connection limits) carries every Postfix configuration as its own front smtpd listener; before-queue filters forward to one shared after-filter smtpd (XFORWARD, `no_unknown_recipient_checks`); everything is relayed to a Node sink that records the `X-Bench-Id` of each message. Sendmail configurations are separate Sendmail 8.17 instances relaying to the same sink.');
  L.push('- A cell = one configuration × workload × concurrency for a fixed time; then the harness waits until every accepted message has reached the sink, so the CPU figures include queueing and delivery. Configurations are interleaved and their order rotates each round. msg/s counts every completed transaction (incl. EICAR rejects) over the sending time.');
  L.push('- CPU ms per message: utime+stime (+ reaped children) from /proc of the process trees: the whole Postfix instance (master and all its children) or the Sendmail daemon tree; the filter; clamd. The load generator and the sink are not counted (they compete for the same 2 cores, equally for all configurations).');
  L.push('- Wait after the final dot: from writing `.\\r\\n` (after the body\'s write completed) to the final reply. With kernel socket buffers, part of a large body may still be in flight at that moment.');
  L.push('- clamsmtp `Action: drop` answers EICAR with `250 Virus Detected; Discarded Email` (counted as discarded); the others reject with 5xx.');
  writeFileSync(join(outDir, 'peers-report.md'), L.join('\n') + '\n');
  writeFileSync(join(outDir, 'peers-chart.svg'), chart(meta, configs, agg, sRef));
}

function esc(s: string): string { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

/** Horizontal bar chart, one panel per workload, msg/s at the reference concurrency. */
function chart(meta: Meta, configs: ConfigDef[], agg: Map<string, Agg>, s: number): string {
  const colors: Record<ConfigDef['kind'], string> = { direct: '#888888', ceiling: '#bbbbbb', peer: '#d9822b', midstream: '#2b7bd9' };
  const barH = 14, gap = 4, left = 300, width = 900, plotW = width - left - 90;
  let y = 50;
  const out: string[] = [];
  out.push(`<text x="20" y="28" font-size="14" font-weight="bold">midstream vs peers: messages/s at ${s} concurrent sessions (median of ${meta.rounds} rounds; whiskers min–max)</text>`);
  for (const w of meta.workloads) {
    const rows = configs.map((c) => ({ c, a: agg.get(`${c.key}|${w.key}|${s}`) })).filter((r) => r.a);
    if (!rows.length) continue;
    const max = Math.max(...rows.map((r) => r.a!.hi)) * 1.05 || 1;
    out.push(`<text x="20" y="${y + 4}" font-size="14" font-weight="bold">${esc(w.title)}</text>`);
    y += 14;
    for (const { c, a } of rows) {
      const bw = (a!.msgPerS / max) * plotW;
      out.push(`<text x="${left - 6}" y="${y + barH - 3}" font-size="11" text-anchor="end">${esc(c.label)}</text>`);
      out.push(`<rect x="${left}" y="${y}" width="${bw.toFixed(1)}" height="${barH}" fill="${colors[c.kind]}"/>`);
      const lo = left + (a!.lo / max) * plotW, hi = left + (a!.hi / max) * plotW;
      out.push(`<line x1="${lo.toFixed(1)}" x2="${hi.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#222" stroke-width="1"/>`);
      out.push(`<text x="${(left + Math.max(bw, hi - left) + 5).toFixed(1)}" y="${y + barH - 3}" font-size="11">${f1(a!.msgPerS)}</text>`);
      y += barH + gap;
    }
    y += 18;
  }
  const legend = (Object.entries(colors) as [string, string][]).map(([k, col], i) => `<rect x="${20 + i * 130}" y="${y}" width="12" height="12" fill="${col}"/><text x="${36 + i * 130}" y="${y + 11}" font-size="12">${k === 'ceiling' ? 'pass-through (ceiling)' : k}</text>`);
  y += 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${out.join('\n')}\n${legend.join('\n')}\n</svg>\n`;
}
