/** Repo-root-relative paths that work from both test/ (tsx) and dist/test/ (compiled). */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let d = start;
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('repo root not found from ' + start);
    d = up;
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const fixture = (...p: string[]) => join(ROOT, 'test', 'fixtures', ...p);
/** Scratch space for tests; created here because a clean clone has no .tmp/ (it is ignored). */
export const TMP_BASE = join(ROOT, '.tmp');
mkdirSync(TMP_BASE, { recursive: true });
