#!/usr/bin/env bash
# Runs a command while every core is kept busy by a bounded load generator, the way CI runs the suite:
# a test that passes only on an idle machine fails here, not on someone else's.
#   bash scripts/under-load.sh npm test        (LOAD_SECONDS bounds the load; default 1200)
set -euo pipefail
seconds=${LOAD_SECONDS:-1200}
cores=$(nproc)
if ! command -v stress-ng >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq stress-ng >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null 2>&1; }) || true
fi
if command -v stress-ng >/dev/null 2>&1; then
  stress-ng --cpu "$cores" --timeout "${seconds}s" --quiet &
  load=$!
  echo "under load: stress-ng --cpu $cores for at most ${seconds}s (pid $load)"
else
  # No stress-ng to be had: one busy shell loop per core, bounded the same way.
  timeout "$seconds" sh -c "for i in \$(seq $cores); do (while :; do :; done) & done; wait" &
  load=$!
  echo "under load: $cores busy loops for at most ${seconds}s (pid $load)"
fi
stop() { kill -- -"$load" 2>/dev/null || kill "$load" 2>/dev/null || true; pkill -P "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; }
trap stop EXIT
"$@"
