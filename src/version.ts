/**
 * version.ts — midstream's version, read once from package.json (the one place it is
 * written). Works from dist/src/ (built, or installed with npm install -g) and from
 * src/ (tsx). Output: VERSION, e.g. "0.1.0"; "unknown" if package.json is missing.
 */
import { readFileSync } from 'node:fs';

function read(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'midstream' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export const VERSION: string = read();
