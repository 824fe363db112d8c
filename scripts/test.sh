#!/bin/sh
# test.sh — the one test command (npm test): install what the tests need, type-check
# and build, then run every test (unit, property, golden, integration with real
# Postfix, Sendmail, clamd and miltertest). Extra args are passed to `node --test`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
rm -rf dist
npx tsc -p tsconfig.json
files=$(find dist/test -name '*.test.js' | sort)
[ -n "$files" ] || { echo "test.sh: no test files found" >&2; exit 1; }
# One file at a time keeps the real-MTA tests from competing for the 2 cores.
exec node --test --test-reporter=spec --test-concurrency=1 "$@" $files
