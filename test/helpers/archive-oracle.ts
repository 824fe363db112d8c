/**
 * archive-oracle.ts — run test/helpers/archive-oracle.py (Python's zipfile and tarfile,
 * Info-ZIP unzip, libarchive bsdtar) over archives and say what each client extracts.
 * One python3 process for a whole batch (process start dominates the cost).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TMP_BASE } from './paths.js';

export interface OracleMember {
  name: string;
  sha256?: string;
  error?: string;
}
export interface OracleView {
  ok: boolean;
  error: string | null;
  members: OracleMember[];
}
export type Views = Partial<Record<'zipfile' | 'tarfile' | 'unzip' | 'bsdtar', OracleView>>;

/** Views of every archive in `files` (label → bytes). */
export function oracle(files: Record<string, Uint8Array>): Record<string, Views> {
  mkdirSync(TMP_BASE, { recursive: true });
  const dir = mkdtempSync(join(TMP_BASE, 'oracle-'));
  try {
    const paths: string[] = [];
    const labels = Object.keys(files);
    labels.forEach((label, i) => {
      const p = join(dir, `f${i}`);
      writeFileSync(p, files[label]!);
      paths.push(p);
    });
    const out = execFileSync('python3', [join(ROOT, 'test', 'helpers', 'archive-oracle.py'), ...paths], { maxBuffer: 64 << 20 });
    const raw = JSON.parse(out.toString()) as Record<string, Views>;
    const res: Record<string, Views> = {};
    labels.forEach((label, i) => (res[label] = raw[paths[i]!]!));
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every member some client extracts with content: `name sha256` (deduplicated). */
export function extracted(v: Views): { name: string; sha256: string; by: string }[] {
  const out: { name: string; sha256: string; by: string }[] = [];
  for (const [by, view] of Object.entries(v)) {
    if (!view) continue;
    for (const m of view.members) if (m.sha256 && !out.some((o) => o.name === m.name && o.sha256 === m.sha256)) out.push({ name: m.name, sha256: m.sha256, by });
  }
  return out;
}
