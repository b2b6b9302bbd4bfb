#!/usr/bin/env bash
# Anchoring lag on the running local testnet (testnet/run.sh): the time from appending a record
# in cluster A (acknowledged) until a node of cluster B serves it with finality (anchored in a
# finalized block, the whole path to a commit certificate available to light clients). Samples
# one record at a time; prints min, p50, p99 and max. `make bench-chain` runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TESTNET_DIR:-$here/out}
rpc_port=${TESTNET_RPC_PORT:-9944}
per_cluster=${TESTNET_NODES:-3}
samples=${BENCH_SAMPLES:-40}
logs="$out/node*/node.log"
. "$here/lib.sh"

a=$rpc_port
b=$((rpc_port + per_cluster))
cluster_a=$(rpc "$a" system_status '{}' | jq -r .result.cluster)
rpc "$a" log_create '{"name":"lag","partitions":1,"replicationFactor":3}' >/dev/null
writable() { rpc "$a" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="lag") | .leader] | length == 1 and all(. != null)'; }
wait_for "the lag log's leader" writable
interval=$(grep -m1 anchor_interval_ms "$out/node0/config.toml" | tr -dc 0-9)
block=$(grep -m1 block_interval_ms "$out/node0/config.toml" | tr -dc 0-9)

now_ms() { echo $(($(date +%s%N) / 1000000)); }
lags=()
for i in $(seq 1 "$samples"); do
  start=$(now_ms)
  offset=$(rpc "$a" log_append "{\"log\":\"lag\",\"partition\":0,\"records\":[{\"value\":\"0x$(printf '%08x' "$i")\"}]}" | jq -e '.result[0].offset')
  final() { rpc "$b" log_getProof "{\"log\":\"lag\",\"partition\":0,\"offset\":$offset,\"cluster\":\"$cluster_a\",\"finality\":true}" | jq -e '.result.finality.height' >/dev/null; }
  until final; do sleep 0.02; done
  lags+=($(($(now_ms) - start)))
  sleep 0.$((RANDOM % 10)) # spread the samples over the anchoring period
done
sorted=($(printf '%s\n' "${lags[@]}" | sort -n))
n=${#sorted[@]}
pct() { local i=$(( ($1 * n + 99) / 100 - 1 )); echo "${sorted[$((i < 0 ? 0 : i))]}"; }
echo "anchoring lag (append acknowledged in $cluster_a -> served with finality by a node of cluster B)"
echo "  samples $n, anchor interval ${interval} ms, block interval ${block} ms, 6 validators"
echo "  min ${sorted[0]} ms  p50 $(pct 50) ms  p99 $(pct 99) ms  max ${sorted[$((n - 1))]} ms"
