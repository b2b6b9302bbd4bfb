#!/usr/bin/env bash
# Stops the local testnet started by testnet/run.sh (SIGTERM, then SIGKILL after 20 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TESTNET_DIR:-$here/out}
for pidfile in "$out"/node*/pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped $(basename "$(dirname "$pidfile")") (pid $pid)"
  fi
  rm -f "$pidfile"
done
