/**
 * judge.ts — the harness's rules, and the known-gaps list they are checked against.
 *
 * Per case (oracle readings + midstream's verdicts) at most one failure:
 *   missed          a hostile case where an oracle extracted EICAR or a banned name and
 *                   midstream did not reject;
 *   false-positive  a benign control that midstream rejected or tempfailed;
 *   control-flagged a benign control in which an oracle found EICAR or a banned name
 *                   (a bug in the generator, never listed as a gap);
 *   chunking        a split of the message gave a different verdict than the whole;
 *   internal        midstream ended in error(internal): a bug.
 * Known gaps (test/differential/known-gaps.json): a JSON array, one {"id","reason"} per
 * line, sorted by id. A failing case not listed is a regression; a listed case that
 * passes (or no longer exists) is stale: both fail the test, so the list only shrinks.
 * Ids of the clamd test start with "clamd:", of the mutation test with "mut:".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict, Actions } from '../../src/core/index.js';
import { ROOT } from '../helpers/paths.js';
import type { OracleVerdicts } from './oracles.js';
import { describe, rejects, tempfails, type MidstreamResult } from './midstream-run.js';

export const KNOWN_GAPS_FILE = join(ROOT, 'test', 'differential', 'known-gaps.json');

export type FailureKind = 'missed' | 'false-positive' | 'control-flagged' | 'chunking' | 'internal';

export interface Failure {
  kind: FailureKind;
  detail: string;
}

export function oracleSummary(o: OracleVerdicts): string {
  const parts: string[] = [];
  if (o.eicarBy.length) parts.push(`EICAR by ${o.eicarBy.join(',')}`);
  const clip = (n: string) => JSON.stringify(n.length > 48 ? '…' + n.slice(-47) : n);
  for (const [k, names] of Object.entries(o.bannedBy)) parts.push(`${k}: ${names.slice(0, 2).map(clip).join(' ')}`);
  return parts.join('; ');
}

export function judge(c: { benign: boolean }, o: OracleVerdicts, m: MidstreamResult, actions: Readonly<Actions>): Failure | null {
  const v: Verdict = m.verdict;
  if (v.kind === 'error' && v.errorKind === 'internal') return { kind: 'internal', detail: `internal error: ${v.detail ?? ''}`.slice(0, 300) };
  if (!m.invariant) return { kind: 'chunking', detail: `whole: ${describe(v)}; split (seed ${m.differing!.splitSeed}): ${describe(m.differing!.verdict)}` };
  if (c.benign) {
    if (o.flagged) return { kind: 'control-flagged', detail: `benign control flagged by oracles: ${oracleSummary(o)}` };
    if (rejects(v, actions) || tempfails(v, actions)) return { kind: 'false-positive', detail: `benign control: midstream ${describe(v)}` };
    return null;
  }
  if (o.flagged && !rejects(v, actions)) return { kind: 'missed', detail: `${oracleSummary(o)}; midstream ${describe(v)}` };
  return null;
}

/** Who fixes a class of #10: archive cases belong to src/core/unpack, the rest to mime/decode/names. */
export function owner(c: { id: string; family: string; cls: number }): 'archive' | 'mime' {
  if (['zip', 'tar'].includes(c.family) || c.cls === 10) return 'archive';
  if (c.family === 'names' && /\/(zip|tar|gzip)-/.test(c.id)) return 'archive';
  return 'mime';
}

/** A one-line reason for a new known-gaps entry. */
export function gapReason(c: { id: string; family: string; cls: number; note: string }, f: Failure): string {
  const fp = f.kind === 'false-positive' ? 'BENIGN CONTROL FALSE POSITIVE — ' : '';
  return `${fp}[#10 class ${c.cls}, ${owner(c)}] ${c.note} — ${f.kind}: ${f.detail}`;
}

export interface KnownGap {
  id: string;
  reason: string;
}

export function loadKnownGaps(): KnownGap[] {
  const list = JSON.parse(readFileSync(KNOWN_GAPS_FILE, 'utf8')) as KnownGap[];
  if (!Array.isArray(list)) throw new Error('known-gaps.json: not an array');
  for (const g of list) if (typeof g.id !== 'string' || typeof g.reason !== 'string' || !g.reason.trim()) throw new Error('known-gaps.json: every entry needs id and reason: ' + JSON.stringify(g));
  return list;
}

/** The known-gaps file text for a list (one entry per line, sorted): what a fixer's diff looks like. */
export function formatKnownGaps(list: KnownGap[]): string {
  const sorted = [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (sorted.length === 0) return '[]\n';
  return '[\n' + sorted.map((g) => '  ' + JSON.stringify({ id: g.id, reason: g.reason })).join(',\n') + '\n]\n';
}

/** Is `id` in the scope of the test that owns `prefix` ('' = the differential test)? */
export function inScope(id: string, prefix: string): boolean {
  return prefix ? id.startsWith(prefix) : !/^(clamd|mut):/.test(id);
}

/**
 * MIDSTREAM_WRITE_GAPS=1: rewrite this scope's entries from a run — entries still failing
 * keep their reason, passing ones go, new failures get `reason(id, failure)`.
 */
export function writeGaps(failures: Map<string, Failure>, prefix: string, reason: (id: string, f: Failure) => string): void {
  const list = loadKnownGaps();
  const old = new Map(list.map((g) => [g.id, g.reason]));
  const others = list.filter((g) => !inScope(g.id, prefix));
  const mine = [...failures].map(([id, f]) => ({ id, reason: old.get(id) ?? reason(id, f) }));
  writeFileSync(KNOWN_GAPS_FILE, formatKnownGaps([...others, ...mine]));
}

export interface GapCheck {
  regressions: { id: string; failure: Failure }[];
  stale: string[];
  listed: number;
}

/** Compare failures (id → failure) of one test's scope (ids with `prefix`) against the list. */
export function checkGaps(failures: Map<string, Failure>, allIds: Set<string>, prefix: string, list = loadKnownGaps()): GapCheck {
  const mine = list.filter((g) => inScope(g.id, prefix));
  const listed = new Set(mine.map((g) => g.id));
  const regressions = [...failures].filter(([id]) => !listed.has(id)).map(([id, failure]) => ({ id, failure }));
  const stale = mine.filter((g) => !failures.has(g.id) || !allIds.has(g.id)).map((g) => g.id);
  return { regressions, stale, listed: mine.length };
}
