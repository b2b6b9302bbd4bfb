#!/usr/bin/env bash
# Where a write's CPU goes (what `make profile-write-path` runs): 3 Pyralog nodes (as
# `make bench-etcd` runs them) under its load, 64 clients writing 256-byte records one at a time
# through PROFILE_SYSTEM (pyralog: JSON-RPC; kafka: the Kafka listener), sampled by
# `perf record` (DWARF call graphs) across the three node processes for PROFILE_SECONDS. Writes
# the folded stacks (inferno-collapse-perf, gzipped) to testnet/profiles/$PROFILE_NAME.folded.gz and prints
# the functions with the most self time. `make profile-write-path` installs inferno.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary}
loadgen=${LOADGEN_BIN:?set LOADGEN_BIN to the pyralog-loadgen binary}
name=${PROFILE_NAME:-write-path}
system=${PROFILE_SYSTEM:-pyralog}
seconds=${PROFILE_SECONDS:-8}
out=${BENCH_DIR:-$here/out/profile}
raft_port=${BENCH_RAFT_PORT:-31533}
rpc_port=${BENCH_RPC_PORT:-19964}
metrics_port=${BENCH_METRICS_PORT:-19635}
kafka_port=${BENCH_KAFKA_PORT:-19292}
command -v perf >/dev/null || { echo "profile: no perf (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-collapse-perf >/dev/null || { echo "profile: no inferno-collapse-perf (cargo install inferno)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out" "$here/profiles"
logs=$out
. "$here/lib.sh"
trap stop_all EXIT

"$bin" testnet --nodes 3 --out "$out/pyralog" --raft-port "$raft_port" --rpc-port "$rpc_port" \
  --metrics-port "$metrics_port" --kafka-port "$kafka_port" --dev >/dev/null
start_three "$out/pyralog" "$rpc_port"
node_pids=$(IFS=,; echo "${pids[*]}")
direct=()
[ "$system" = pyralog ] && [ "${PROFILE_DIRECT:-1}" = 1 ] && direct=(--direct)
case $system in
  pyralog) endpoints=$(for i in 0 1 2; do printf 'http://127.0.0.1:%d,' $((rpc_port + i)); done) ;;
  kafka) endpoints=$(for i in 0 1 2; do printf '127.0.0.1:%d,' $((kafka_port + i)); done) ;;
  *) echo "profile: PROFILE_SYSTEM is pyralog or kafka" >&2; exit 1 ;;
esac
"$loadgen" run --system "$system" --endpoints "${endpoints%,}" --clients 64 --warmup 3 \
  --duration $((seconds + 6)) --key-bytes 8 --value-bytes 256 --log profiled --partitions 3 \
  --replication-factor 3 --pids "$node_pids" "${direct[@]}" --out "$out/load.json" >"$out/load.log" &
load=$!
sleep 6
perf record -F 199 --call-graph dwarf,16384 -p "$node_pids" -o "$out/perf.data" -- sleep "$seconds" \
  2>"$out/perf.log" >/dev/null
wait "$load"
folded=$out/$name.folded
perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf --all >"$folded"
gzip -9 -c "$folded" >"$here/profiles/$name.folded.gz"
echo "== $name: $(jq -r '.[0] | "\(.throughput | floor) writes/s, node CPU \(.nodeCpuUsPerWrite | floor) µs per write"' "$out/load.json")"
echo "== self time by function (top 30)"
awk '{
  n = $NF; stack = $0; sub(/ [0-9]+$/, "", stack)
  k = split(stack, frames, ";"); leaf = frames[k]; self[leaf] += n; total += n
} END { for (f in self) printf "%6.2f%%  %s\n", 100 * self[f] / total, f }' "$folded" | sort -rn | head -30
echo "folded stacks in testnet/profiles/$name.folded.gz (zcat it | inferno-flamegraph > flame.svg)"
