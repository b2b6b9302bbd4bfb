#!/usr/bin/env bash
# Local testnet (what `make testnet` runs): two 3-node clusters linked by the chain, on this
# machine. Every node is a Tendermint validator of the chain; each cluster's partition leaders
# anchor their certified checkpoints on it.
#
# Generates the nodes' base paths once (`pyralog testnet`; re-runs reuse them), stops a previous
# run, starts the nodes (logs in $TESTNET_DIR/nodeN/node.log), waits until they are ready and
# the chain finalizes, creates a log in cluster A, appends records through one node, reads them
# back through every node of A, verifies a record with the cluster light client, then syncs the
# chain light client from genesis and verifies a record of cluster A through a node of cluster B
# up to a finalized header. Stop with testnet/stop.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make testnet does)}
out=${TESTNET_DIR:-$here/out}
per_cluster=${TESTNET_NODES:-3}
clusters=${TESTNET_CLUSTERS:-2}
nodes=$((per_cluster * clusters))
raft_port=${TESTNET_RAFT_PORT:-30333}
rpc_port=${TESTNET_RPC_PORT:-9944}
metrics_port=${TESTNET_METRICS_PORT:-9615}
p2p_port=${TESTNET_P2P_PORT:-40333}

TESTNET_DIR=$out "$here/stop.sh" >/dev/null
"$bin" --version
# A layout from before the chain (no genesis) or of another shape is generated afresh.
if [ ! -f "$out/genesis.json" ] || [ ! -f "$out/node$((nodes - 1))/config.toml" ] || [ -e "$out/node$nodes" ]; then
  rm -rf "$out"
  "$bin" testnet --nodes "$per_cluster" --clusters "$clusters" --out "$out" --raft-port "$raft_port" \
    --rpc-port "$rpc_port" --metrics-port "$metrics_port" --p2p-port "$p2p_port"
fi
for i in $(seq 0 $((nodes - 1))); do
  "$bin" start --base-path "$out/node$i" >>"$out/node$i/node.log" 2>&1 &
  echo $! >"$out/node$i/pid"
done

logs="$out/node*/node.log"
. "$here/lib.sh"
for i in $(seq 0 $((nodes - 1))); do wait_for "node$i to be ready" ready $((rpc_port + i)) "$per_cluster"; done
finalizing() { rpc "$1" chain_getFinalizedHead '{}' | jq -e '.result.height >= 2'; }
for i in $(seq 0 $((nodes - 1))); do wait_for "node$i to finalize chain blocks" finalizing $((rpc_port + i)); done
cluster_a=$(rpc "$rpc_port" system_status '{}' | jq -r .result.cluster)
b=$((rpc_port + per_cluster)) # the first node of cluster B
echo "testnet: $clusters clusters x $per_cluster nodes ready; chain at height $(rpc "$rpc_port" chain_getFinalizedHead '{}' | jq .result.height)"

rpc "$rpc_port" log_create '{"name":"demo","partitions":3,"replicationFactor":3}' | jq -c '.result // .error'
writable() { rpc "$rpc_port" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="demo") | .leader] | length == 3 and all(. != null)'; }
wait_for "the demo log's partition leaders" writable
records=$(for i in $(seq 1 9); do printf '{"key":"0x%s","value":"0x%s"},' "$(printf 'user-%d' $((i % 3)) | od -An -tx1 | tr -d ' \n')" "$(printf 'event %d' "$i" | od -An -tx1 | tr -d ' \n')"; done)
rpc $((rpc_port + 1)) log_append "{\"log\":\"demo\",\"records\":[${records%,}]}" | jq -c '.result // .error'
for i in $(seq 0 $((per_cluster - 1))); do
  count=$(rpc $((rpc_port + i)) log_read '{"log":"demo","partition":0}' | jq '.result | length')
  echo "node$i: partition 0 holds $count records"
done
certified() { rpc "$rpc_port" log_getCheckpoint '{"log":"demo","partition":0}' | jq -e '.result.checkpoint.size > 0'; }
wait_for "a certified checkpoint" certified

# Cluster light client: verify a record from node2 without trusting it. The trust file pins the
# members' keys and the log's placement on first use, then keeps the latest verified checkpoint.
trust="$out/light-trust.json"
"$bin" light verify-record --rpc "http://127.0.0.1:$((rpc_port + 2))" --log demo --partition 0 --offset 0 \
  --trust "$trust" --trust-on-first-use | jq -c .

# Chain light client: the partition leader anchors the checkpoint on the chain; a node of cluster
# B serves the record of cluster A (fetched over the overlay) with the path to a finalized
# header; the light client syncs from genesis and verifies it trusting nothing else.
anchored() { rpc "$b" log_getProof "{\"log\":\"demo\",\"partition\":0,\"offset\":0,\"cluster\":\"$cluster_a\",\"finality\":true}" | jq -e '.result.finality.height > 0'; }
wait_for "the checkpoint to be anchored and final" anchored
light="$out/light-state.json"
rm -f "$light"
"$bin" light sync --rpc "http://127.0.0.1:$b" --genesis "$out/genesis.json" --state "$light" | jq -c .
"$bin" light verify-record --rpc "http://127.0.0.1:$((b + 1))" --cluster "$cluster_a" --log demo --partition 0 \
  --offset 0 --finality --state "$light" | jq -c .

cat <<MSG

Testnet running ($out): chain $(jq -r .chainId "$out/genesis.json"), $clusters clusters
$(for i in $(seq 0 $((nodes - 1))); do echo "  node$i  $(grep -m1 cluster_id "$out/node$i/config.toml" | cut -d'"' -f2)  JSON-RPC http://127.0.0.1:$((rpc_port + i))  metrics http://127.0.0.1:$((metrics_port + i))/metrics  log $out/node$i/node.log"; done)
Try:   curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"chain_getFinalizedHead","params":{}}' http://127.0.0.1:$rpc_port
Stop:  testnet/stop.sh
Light client:
  $bin light sync --rpc http://127.0.0.1:$b --genesis $out/genesis.json --state $light
  $bin light verify-record --rpc http://127.0.0.1:$b --cluster $cluster_a --log demo --partition 0 --offset 0 --finality --state $light
MSG
