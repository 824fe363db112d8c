#!/bin/sh
# start.sh — npm start: install npm packages, build, and run the Postfix before-queue
# proxy on the built-in engine (listen 127.0.0.1:10025, forward 127.0.0.1:10026).
# Extra args go to `midstream proxy`, e.g. npm start -- --config midstream.toml
set -eu
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then npm ci --no-audit --no-fund --loglevel=error; fi
npx tsc -p tsconfig.json
exec ./bin/midstream proxy "$@"
