#!/usr/bin/env bash
# Local testnet (what `make testnet` runs): two 3-node clusters linked by the chain, on this
# machine. Every node is a validator of the chain, which runs Tendermint, or PBFT with
# `--engine pbft` (`make testnet ENGINE=pbft`); each cluster's partition leaders anchor their
# certified checkpoints on it. With `--engine pos` (`make testnet ENGINE=pos`) the chain runs
# Proof-of-Stake over Tendermint: the last node starts as a follower and joins the set by
# staking, then another validator is stopped until it is jailed for downtime, and the chain light
# client verifies a record with finality across both set changes; the stopped node comes back and
# unjails.
#
# Generates the nodes' base paths once (`pyralog testnet`; re-runs reuse them), stops a previous
# run, starts the nodes (logs in $TESTNET_DIR/nodeN/node.log), waits until they are ready and
# the chain finalizes, creates a log in cluster A, appends records through one node, reads them
# back through every node of A, verifies a record with the cluster light client, then syncs the
# chain light client from genesis and verifies a record of cluster A through a node of cluster B
# up to a finalized header; last, a zk log: a client-made membership proof and a node-made
# append STARK verified by the light client; then contracts: a log whose constraint refuses a
# record, and a chain contract (deployed, called) whose storage the light client verifies.
# Stop with testnet/stop.sh.
#
# Every step says what failed (and where the logs are); steps a leader election or a busy prover
# may fail are retried (`retry` in lib.sh), so re-running on a running testnet works. (A retried
# append whose first outcome was unknown, code 1013, may append its records twice: the script
# counts nothing exactly.)
set -euo pipefail
trap 'echo "$(basename "$0"): failed at line $LINENO: $BASH_COMMAND; logs in ${logs:-$out}" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make testnet does)}
out=${TESTNET_DIR:-$here/out}
per_cluster=${TESTNET_NODES:-3}
clusters=${TESTNET_CLUSTERS:-2}
nodes=$((per_cluster * clusters))
raft_port=${TESTNET_RAFT_PORT:-30333}
rpc_port=${TESTNET_RPC_PORT:-9944}
metrics_port=${TESTNET_METRICS_PORT:-9615}
# Below Linux's ephemeral range (32768-60999): a port there can be taken as the local port of
# another node's outgoing connection before its own node binds it (it happened: "cannot listen
# on /ip4/127.0.0.1/tcp/40336").
p2p_port=${TESTNET_P2P_PORT:-30433}
kafka_port=${TESTNET_KAFKA_PORT:-9092}
engine=${ENGINE:-tendermint}
while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=${2:?--engine needs tendermint, pbft, pos or pow}; shift 2 ;;
    *) echo "usage: $0 [--engine tendermint|pbft|pos|pow]" >&2; exit 2 ;;
  esac
done

TESTNET_DIR=$out "$here/stop.sh" >/dev/null
"$bin" --version
# A layout from before the chain (no genesis) or the tunnels (no WireGuard key), of another
# shape, of another engine, or whose data an older build wrote in a format this one no longer
# reads (`layout_version`: bumped when a stored format changes; 2: logs' contracts in the
# cluster's global state), is generated afresh.
layout_version=2
if [ "$(cat "$out/layout-version" 2>/dev/null)" != "$layout_version" ] || [ ! -f "$out/genesis.json" ] || [ ! -f "$out/node$((nodes - 1))/config.toml" ] || [ -e "$out/node$nodes" ] \
  || [ ! -f "$out/node0/wireguard.key" ] || ! grep -q '^\[kafka\]' "$out/node0/config.toml" \
  || ! grep -q "tcp/$p2p_port\"" "$out/node0/config.toml" \
  || [ "$(jq -r '.consensus.engine // "tendermint"' "$out/genesis.json")" != "$engine" ]; then
  rm -rf "$out"
  # On Proof-of-Stake, the last node is no genesis validator: it joins by staking below.
  validators=$nodes
  [ "$engine" != pos ] || validators=$((nodes - 1))
  "$bin" testnet --nodes "$per_cluster" --clusters "$clusters" --out "$out" --raft-port "$raft_port" \
    --rpc-port "$rpc_port" --metrics-port "$metrics_port" --p2p-port "$p2p_port" --kafka-port "$kafka_port" \
    --engine "$engine" --validators "$validators"
  echo "$layout_version" >"$out/layout-version"
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
echo "testnet: $clusters clusters x $per_cluster nodes ready; $engine chain at height $(rpc "$rpc_port" chain_getFinalizedHead '{}' | jq .result.height)"

# Cluster links run in WireGuard tunnels keyed by Rosenpass: every node has exchanged a
# post-quantum key and completed a WireGuard handshake.
tunnel_metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v k="kind=\"$2\"" '$1 ~ /^pyralog_tunnel_events/ && index($1, k) { print $2 }'; }
tunneled() { [ "$(tunnel_metric "$1" rosenpass_exchanges)" -ge 1 ] && [ "$(tunnel_metric "$1" handshakes)" -ge 1 ]; }
for i in $(seq 0 $((nodes - 1))); do wait_for "node$i's WireGuard+Rosenpass links" tunneled $((metrics_port + i)); done
echo "cluster links: WireGuard+Rosenpass; node0: $(tunnel_metric "$metrics_port" handshakes) handshakes, $(tunnel_metric "$metrics_port" rosenpass_exchanges) Rosenpass key exchanges"

# A re-run finds the log already there (code 1020, "already exists"): that is fine; any other
# refusal is not.
create_demo() { rpc "$rpc_port" log_create '{"name":"demo","partitions":3,"replicationFactor":3}' | jq -e -c '.result // (.error | select(.code == 1020 and (.message | test("already exists"))))'; }
retry "creating the demo log" create_demo
writable() { rpc "$rpc_port" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="demo") | .leader] | length == 3 and all(. != null)'; }
wait_for "the demo log's partition leaders" writable
records=$(for i in $(seq 1 9); do printf '{"key":"0x%s","value":"0x%s"},' "$(printf 'user-%d' $((i % 3)) | od -An -tx1 | tr -d ' \n')" "$(printf 'event %d' "$i" | od -An -tx1 | tr -d ' \n')"; done)
append_demo() { call $((rpc_port + 1)) log_append "{\"log\":\"demo\",\"records\":[${records%,}]}"; }
retry "appending to the demo log through node1" append_demo
for i in $(seq 0 $((per_cluster - 1))); do
  count=$(rpc $((rpc_port + i)) log_read '{"log":"demo","partition":0}' | jq '.result | length')
  echo "node$i: partition 0 holds $count records"
done
# Kafka clients: kcat produces to the demo log's partition 1 through node0's Kafka listener (its
# metadata sends the batch to the partition's Raft leader) and reads it back through node2.
if command -v kcat >/dev/null; then
  kafka_produce() { printf 'kafka-1\nkafka-2\nkafka-3\n' | kcat -P -b "127.0.0.1:$kafka_port" -t demo -p 1 -X acks=all; }
  retry "producing through the Kafka listener (kcat)" kafka_produce
  kafka_consumed() { kcat -C -b "127.0.0.1:$((kafka_port + 2))" -t demo -p 1 -o -3 -e -q | grep -c '^kafka-[123]$' | grep -qx 3; }
  wait_for "kcat to read the three records back through node2" kafka_consumed
  echo "kafka: kcat produced 3 records through node0 and consumed them through node2 (partition 1 of demo)"
else
  echo "kafka: SKIPPED, kcat is not installed (make deps installs it)"
fi
certified() { rpc "$rpc_port" log_getCheckpoint '{"log":"demo","partition":0}' | jq -e '.result.checkpoint.size > 0'; }
wait_for "a certified checkpoint" certified

# Cluster light client: verify a record from node2 without trusting it. The trust file pins the
# members' keys and the log's placement on first use, then keeps the latest verified checkpoint.
trust="$out/light-trust.json"
verify_demo() { "$bin" light verify-record --rpc "http://127.0.0.1:$((rpc_port + 2))" --log demo --partition 0 --offset 0 \
  --trust "$trust" --trust-on-first-use | jq -e -c 'select(.verified)'; }
retry "the cluster light client's verify-record through node2" verify_demo

# Chain light client: the partition leader anchors the checkpoint on the chain; a node of cluster
# B serves the record of cluster A (fetched over the overlay) with the path to a finalized
# header; the light client syncs from genesis and verifies it trusting nothing else.
anchored() { rpc "$b" log_getProof "{\"log\":\"demo\",\"partition\":0,\"offset\":0,\"cluster\":\"$cluster_a\",\"finality\":true}" | jq -e '.result.finality.height > 0'; }
wait_for "the checkpoint to be anchored and final" anchored
light="$out/light-state.json"
rm -f "$light"
# On Proof-of-Work the client asks two servers (one per cluster) and keeps the heaviest chain of
# seals; a header is final once k seals of it are on top.
light_servers="--rpc http://127.0.0.1:$b"
[ "$engine" != pow ] || light_servers="$light_servers --rpc http://127.0.0.1:$rpc_port"
# shellcheck disable=SC2086
light_sync() { "$bin" light sync $light_servers --genesis "$out/genesis.json" --state "$light" | jq -e -c 'select(.synced)'; }
retry "the chain light client's sync from genesis" light_sync
# (Proof-of-Work: synced again first, so the client's chain holds the served header k deep.)
verify_final() { { [ "$engine" != pow ] || light_sync >/dev/null; } && "$bin" light verify-record --rpc "http://127.0.0.1:$((b + 1))" --cluster "$cluster_a" --log demo --partition 0 \
  --offset 0 --finality --state "$light" | jq -e -c 'select(.verified)'; }
retry "the chain light client's verify-record --finality through cluster B" verify_final

# zk proofs: a log that also keeps Poseidon and Rescue trees. The client proves it holds one of
# its records without saying which (Groth16, keys from a single-party setup kept in $out), a node
# proves the appends so far (STARK), and the light client checks both against the certified
# checkpoint through another node.
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
zk_keys="$out/zk-keys"
# Kept between runs; made again when missing or of an older circuit (the file's first 8 bytes
# name its format).
[ -f "$zk_keys/membership.vk" ] && [ "$(head -c 8 "$zk_keys/membership.pk" 2>/dev/null)" = PYRZKPK2 ] \
  || step "the Groth16 key setup" "$bin" zk setup --out "$zk_keys" >/dev/null
create_zk() { rpc "$rpc_port" log_create '{"name":"zk-demo","partitions":1,"replicationFactor":3,"zk":["groth16","stark"]}' \
  | jq -e -c '.result.zk // (.error | select(.code == 1020 and (.message | test("already exists"))))'; }
retry "creating the zk-demo log" create_zk
zk_writable() { rpc "$rpc_port" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="zk-demo") | .leader] | all(. != null) and length == 1'; }
wait_for "the zk-demo log's partition leader" zk_writable
blinding=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
zk_records=$(for i in 1 2 3 4; do printf '{"key":"0x%s","value":"0x%s","headers":[{"name":"zk-blinding","value":"0x%s"}]},' "$(hex "member-$i")" "$(hex "credential $i")" "$blinding"; done)
append_zk() { call "$rpc_port" log_append "{\"log\":\"zk-demo\",\"partition\":0,\"records\":[${zk_records%,}]}" '.[0].offset'; }
first=$(retry "appending to the zk-demo log" append_zk)
zk_size=$((first + 4))
zk_certified() { rpc "$rpc_port" log_getCheckpoint '{"log":"zk-demo","partition":0}' | jq -e --argjson n "$zk_size" '.result.checkpoint.size >= $n'; }
wait_for "a certified checkpoint of zk-demo" zk_certified
printf '{"offset":%s,"key":"0x%s","value":"0x%s","blinding":"0x%s"}\n' "$((first + 1))" "$(hex member-2)" "$(hex "credential 2")" "$blinding" >"$out/zk-record.json"
# The verifier's nonce is a BN254 scalar (32 bytes, little-endian): 31 random bytes and a zero
# top byte are always below the modulus.
nonce=$(od -An -tx1 -N31 /dev/urandom | tr -d ' \n')00
zk_trust="$out/zk-trust.json"
rm -f "$zk_trust"
retry "the client's membership proof (zk prove-membership)" "$bin" zk prove-membership --rpc "http://127.0.0.1:$rpc_port" \
  --log zk-demo --partition 0 --record-file "$out/zk-record.json" --keys "$zk_keys" --nonce "0x$nonce" --out "$out/zk-membership.json"
echo "zk: membership proof made by the client: $out/zk-membership.json"
verify_membership() { "$bin" light verify-zk --rpc "http://127.0.0.1:$((rpc_port + 2))" --proof "$out/zk-membership.json" --keys "$zk_keys" \
  --nonce "0x$nonce" --trust "$zk_trust" --trust-on-first-use | jq -e -c 'select(.verified)'; }
retry "the light client's check of the membership proof" verify_membership
size=$(rpc "$rpc_port" log_getCheckpoint '{"log":"zk-demo","partition":0}' | jq -e '.result.checkpoint.size')
prove_appends() { call "$rpc_port" zk_proveAppends "{\"log\":\"zk-demo\",\"partition\":0,\"fromSize\":0,\"toSize\":$size}" >"$out/zk-appends.json"; }
retry "the node's append STARK (zk_proveAppends)" prove_appends
verify_appends() { "$bin" light verify-zk --rpc "http://127.0.0.1:$((rpc_port + 2))" --proof "$out/zk-appends.json" --trust "$zk_trust" | jq -e -c 'select(.verified)'; }
retry "the light client's check of the append STARK" verify_appends

# Contracts: a log constraint refusing a record, and a chain contract whose storage the light
# client verifies (testnet/contracts.sh).
. "$here/contracts.sh"

if [ "$engine" = pos ]; then
  . "$here/pos.sh"
fi

# The status and explorer page every node serves on its RPC port.
curl -sf "http://127.0.0.1:$rpc_port/" | grep -q '/ui/app.js' || { echo "node0 does not serve its page at http://127.0.0.1:$rpc_port/" >&2; exit 1; }

cat <<MSG

Testnet running ($out): chain $(jq -r .chainId "$out/genesis.json"), $clusters clusters
$(for i in $(seq 0 $((nodes - 1))); do echo "  node$i  $(grep -m1 cluster_id "$out/node$i/config.toml" | cut -d'"' -f2)  JSON-RPC http://127.0.0.1:$((rpc_port + i))  kafka 127.0.0.1:$((kafka_port + i))  metrics http://127.0.0.1:$((metrics_port + i))/metrics  log $out/node$i/node.log"; done)
Page:  http://127.0.0.1:$rpc_port/  (every node serves it on its RPC port; its "Verify" checks a record in the browser from the genesis file $out/genesis.json)
Try:   curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"chain_getFinalizedHead","params":{}}' http://127.0.0.1:$rpc_port
Stop:  testnet/stop.sh
Light client:
  $bin light sync --rpc http://127.0.0.1:$b --genesis $out/genesis.json --state $light
  $bin light verify-record --rpc http://127.0.0.1:$b --cluster $cluster_a --log demo --partition 0 --offset 0 --finality --state $light
  $bin light verify-zk --rpc http://127.0.0.1:$rpc_port --proof $out/zk-membership.json --keys $zk_keys --nonce 0x$nonce --trust $zk_trust
  $bin light verify-contract --rpc http://127.0.0.1:$b --state $light --contract $ballot --key 0x$(hex tally/)01
Contracts:
  $bin contract query --rpc http://127.0.0.1:$rpc_port --contract $ballot --entry tally --input 0x01
MSG
