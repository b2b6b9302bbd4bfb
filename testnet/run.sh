#!/usr/bin/env bash
# Local testnet (what `make testnet` runs): a 3-node cluster on this machine.
#
# Generates the nodes' base paths once (`pyralog testnet`; re-runs reuse them), stops a previous
# run, starts the nodes (logs in $TESTNET_DIR/nodeN/node.log), waits until they are ready,
# creates a log, appends records through one node, reads them back through every node, and
# verifies records with the light client. Stop with testnet/stop.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make testnet does)}
out=${TESTNET_DIR:-$here/out}
nodes=${TESTNET_NODES:-3}
raft_port=${TESTNET_RAFT_PORT:-30333}
rpc_port=${TESTNET_RPC_PORT:-9944}
metrics_port=${TESTNET_METRICS_PORT:-9615}

TESTNET_DIR=$out "$here/stop.sh" >/dev/null
"$bin" --version
if [ ! -f "$out/node0/config.toml" ]; then
  "$bin" testnet --nodes "$nodes" --out "$out" --raft-port "$raft_port" --rpc-port "$rpc_port" \
    --metrics-port "$metrics_port"
fi
for i in $(seq 0 $((nodes - 1))); do
  "$bin" start --base-path "$out/node$i" >>"$out/node$i/node.log" 2>&1 &
  echo $! >"$out/node$i/pid"
done

logs="$out/node*/node.log"
. "$here/lib.sh"
for i in $(seq 0 $((nodes - 1))); do wait_for "node$i to be ready" ready $((rpc_port + i)) "$nodes"; done
echo "testnet: $nodes nodes ready"

rpc "$rpc_port" log_create '{"name":"demo","partitions":3,"replicationFactor":3}' | jq -c '.result // .error'
writable() { rpc "$rpc_port" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="demo") | .leader] | length == 3 and all(. != null)'; }
wait_for "the demo log's partition leaders" writable
records=$(for i in $(seq 1 9); do printf '{"key":"0x%s","value":"0x%s"},' "$(printf 'user-%d' $((i % 3)) | od -An -tx1 | tr -d ' \n')" "$(printf 'event %d' "$i" | od -An -tx1 | tr -d ' \n')"; done)
rpc $((rpc_port + 1)) log_append "{\"log\":\"demo\",\"records\":[${records%,}]}" | jq -c '.result // .error'
for i in $(seq 0 $((nodes - 1))); do
  count=$(rpc $((rpc_port + i)) log_read '{"log":"demo","partition":0}' | jq '.result | length')
  echo "node$i: partition 0 holds $count records"
done
certified() { rpc "$rpc_port" log_getCheckpoint '{"log":"demo","partition":0}' | jq -e '.result.checkpoint.size > 0'; }
wait_for "a certified checkpoint" certified

# Light client: verify a record end to end from node2 without trusting it. The trust file pins
# the members' keys and the log's placement on first use, then keeps the latest verified
# checkpoint, so the second check (after more writes, through node1) also proves that the new
# certified state extends the trusted one.
trust="$out/light-trust.json"
"$bin" light verify-record --rpc "http://127.0.0.1:$((rpc_port + 2))" --log demo --partition 0 --offset 0 \
  --trust "$trust" --trust-on-first-use | jq -c .
rpc "$rpc_port" log_append '{"log":"demo","partition":0,"records":[{"value":"0x6d6f7265"}]}' >/dev/null
grown() { rpc "$rpc_port" log_getCheckpoint '{"log":"demo","partition":0}' | jq -e --argjson n "$(rpc "$rpc_port" log_read '{"log":"demo","partition":0}' | jq '.result | length')" '.result.checkpoint.size == $n'; }
wait_for "a checkpoint covering the new record" grown
"$bin" light verify-record --rpc "http://127.0.0.1:$((rpc_port + 1))" --log demo --partition 0 --offset 1 \
  --trust "$trust" | jq -c .

cat <<MSG

Testnet running ($out):
$(for i in $(seq 0 $((nodes - 1))); do echo "  node$i  JSON-RPC http://127.0.0.1:$((rpc_port + i))  metrics http://127.0.0.1:$((metrics_port + i))/metrics  log $out/node$i/node.log"; done)
Try:   curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"system_status","params":{}}' http://127.0.0.1:$rpc_port
Stop:  testnet/stop.sh
Light client: $bin light verify-record --rpc http://127.0.0.1:$rpc_port --log demo --partition 0 --offset 0 --trust $trust
MSG
