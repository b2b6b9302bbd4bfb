#!/usr/bin/env bash
# Local testnet (what `make testnet` runs).
#
# Today the node binary has its identity tooling only: this script prepares the key of each of
# three local nodes (idempotent: existing keys are kept) and checks them. Starting the nodes,
# writing records and the light-client check arrive with the cluster engine and node issues.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make testnet does)}
out=${TESTNET_DIR:-$here/out}
nodes=${TESTNET_NODES:-3}

"$bin" --version
for i in $(seq 0 $((nodes - 1))); do
  dir="$out/node$i"
  mkdir -p "$dir"
  [ -f "$dir/node.key" ] || "$bin" keys generate --out "$dir/node.key" >/dev/null 2>&1
  echo "node$i  $("$bin" keys show "$dir/node.key")  $dir/node.key"
done
cat <<MSG

Prepared identity keys for $nodes local nodes under $out.
The multi-node testnet (Raft cluster, JSON-RPC, light-client check) arrives with the
cluster engine and node issues; until then this is all \`make testnet\` can run.
MSG
