#!/usr/bin/env bash
# Pyralog and etcd side by side (what `make bench-etcd` runs): a 3-member etcd (Debian's
# etcd-server, default fsync) and a 3-node Pyralog cluster (disk storage, fsync per Raft append
# batch), one at a time, on loopback, on this machine, with the same load generator settings:
# 8-byte keys, 256-byte values, 1/16/64/256 concurrent clients (each with its own connection),
# one write in flight per client, warm-up dropped. Prints throughput, p50/p99 and the nodes' CPU
# time per acknowledged write (all three processes, from /proc) for each, with the ratio to
# etcd, and writes the table to $BENCH_DIR/table.md.
#
# Pyralog is driven twice: one keyed record per `log_append` over WebSocket JSON-RPC (client i
# writes to partition i mod 3 at its leader, which it learnt from the nodes' `system_status`,
# as a Kafka client learns leaders from Metadata), and one keyed record per
# Produce over Kafka's protocol (librdkafka, acks=all, linger 0: the client sends to the
# partition's leader itself), each to a log of 3 partitions with replication factor 3 (one Raft
# group per partition, leaders spread over the nodes). etcd does one `Put` per call over gRPC
# (one Raft group). All acknowledge only after a majority has the write in its fsynced log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make bench-etcd does)}
loadgen=${LOADGEN_BIN:?set LOADGEN_BIN to the pyralog-loadgen binary (make bench-etcd does)}
out=${BENCH_DIR:-$here/out/bench-etcd}
clients=${BENCH_CLIENTS:-1,16,64,256}
warmup=${BENCH_WARMUP:-2}
duration=${BENCH_DURATION:-10}
etcd_client_port=${BENCH_ETCD_PORT:-23790}
etcd_peer_port=$((etcd_client_port + 10))
raft_port=${BENCH_RAFT_PORT:-31333}
rpc_port=${BENCH_RPC_PORT:-19944}
metrics_port=${BENCH_METRICS_PORT:-19615}
kafka_port=${BENCH_KAFKA_PORT:-19092}
load=(--clients "$clients" --warmup "$warmup" --duration "$duration" --key-bytes 8 --value-bytes 256)

command -v etcd >/dev/null || { echo "bench-etcd: no etcd binary (apt-get install etcd-server)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"

logs=$out
. "$here/lib.sh"
trap stop_all EXIT

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members"
cluster=""
for i in 0 1 2; do cluster+="e$i=http://127.0.0.1:$((etcd_peer_port + i)),"; done
for i in 0 1 2; do
  client_url="http://127.0.0.1:$((etcd_client_port + i))"
  peer_url="http://127.0.0.1:$((etcd_peer_port + i))"
  etcd --name "e$i" --data-dir "$out/etcd$i" --logger zap --log-outputs stderr \
    --listen-client-urls "$client_url" --advertise-client-urls "$client_url" \
    --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "${cluster%,}" --initial-cluster-state new --initial-cluster-token bench \
    2>"$out/etcd$i.log" &
  pids+=($!)
done
for i in 0 1 2; do
  wait_for "etcd member $i" bash -c "curl -sf http://127.0.0.1:$((etcd_client_port + i))/health | grep -q '\"health\":\"true\"'"
done
endpoints=$(for i in 0 1 2; do printf 'http://127.0.0.1:%d,' $((etcd_client_port + i)); done)
"$loadgen" run --system etcd --endpoints "${endpoints%,}" "${load[@]}" --pids "$(IFS=,; echo "${pids[*]}")" \
  --out "$out/etcd.json"
stop_all

# etcd's peers talk plaintext here, so Pyralog's do too (--dev: plain TCP cluster links);
# BENCH_TRANSPORT=wireguard measures Pyralog over its WireGuard + Rosenpass tunnels instead.
transport_flag=--dev
[ "${BENCH_TRANSPORT:-tcp}" = wireguard ] && transport_flag=
echo "== Pyralog $("$bin" --version | awk '{print $2}'): 3 nodes, ${BENCH_TRANSPORT:-tcp} links"
"$bin" testnet --nodes 3 --out "$out/pyralog" --raft-port "$raft_port" --rpc-port "$rpc_port" \
  --metrics-port "$metrics_port" --kafka-port "$kafka_port" $transport_flag >/dev/null
# Room for 256 WebSocket clients (the default allows 100 connections per node).
sed -i 's/^max_connections = .*/max_connections = 1024/' "$out"/pyralog/node*/config.toml
start_three "$out/pyralog" "$rpc_port"
endpoints=$(for i in 0 1 2; do printf 'http://127.0.0.1:%d,' $((rpc_port + i)); done)
node_pids=$(IFS=,; echo "${pids[*]}")
"$loadgen" run --system pyralog --endpoints "${endpoints%,}" "${load[@]}" --log bench --partitions 3 \
  --replication-factor 3 --direct --label pyralog-jsonrpc --pids "$node_pids" --out "$out/pyralog.json"
brokers=$(for i in 0 1 2; do printf '127.0.0.1:%d,' $((kafka_port + i)); done)
"$loadgen" run --system kafka --endpoints "${brokers%,}" "${load[@]}" --log bench-kafka --partitions 3 \
  --replication-factor 3 --label pyralog-kafka --pids "$node_pids" --out "$out/pyralog-kafka.json"
stop_all

echo "== side by side ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
"$loadgen" report "$out/pyralog.json" "$out/pyralog-kafka.json" "$out/etcd.json" --baseline etcd \
  --out "$out/table.md"
echo "table written to $out/table.md"
