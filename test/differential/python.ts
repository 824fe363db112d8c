/**
 * python.ts — which python3 the harness runs: Debian's /usr/bin/python3 (installed by
 * scripts/install-deps.sh, the same on every machine and in CI) when present, so an
 * oracle's reading does not change with whatever python3 comes first on PATH.
 */
import { existsSync } from 'node:fs';

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
