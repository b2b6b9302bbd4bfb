# Contracts on the local testnet (sourced by run.sh after the chain light client's checks; uses
# its variables and lib.sh). A log with a constraint contract (monotonic keys) takes a batch and
# refuses one with the contract's reason; then a chain contract (the vote example) is deployed,
# opened and voted in by a fresh account, and the chain light client verifies the tally in the
# contract's storage against its trusted head through a node of cluster B.
examples="$here/../contracts/examples"

# The log constraint. Keys start with the time, so a re-run's keys still increase.
constraint=$("$bin" contract compile "$examples/monotonic_keys.wat" | jq -r .wasm)
create_ordered() { rpc "$rpc_port" log_create "{\"name\":\"ordered\",\"partitions\":1,\"replicationFactor\":3,\"constraint\":\"$constraint\"}" \
  | jq -e -c '.result.constraint // (.error | select(.code == 1020 and (.message | test("already exists"))))'; }
retry "creating the ordered log (monotonic-keys constraint)" create_ordered
ordered_writable() { rpc "$rpc_port" system_status '{}' | jq -e '[.result.partitions[] | select(.log=="ordered") | .leader] | all(. != null) and length == 1'; }
wait_for "the ordered log's partition leader" ordered_writable
now=$(date +%s%N)
keyed() { printf '{"key":"0x%s","value":"0x00"}' "$(hex "$1")"; }
append_ordered() { call $((rpc_port + 1)) log_append "{\"log\":\"ordered\",\"partition\":0,\"records\":[$(keyed "$now-1"),$(keyed "$now-2")]}" >/dev/null; }
retry "appending increasing keys to the ordered log" append_ordered
refused=$(rpc $((rpc_port + 1)) log_append "{\"log\":\"ordered\",\"partition\":0,\"records\":[$(keyed "$now-3"),$(keyed "$now-0")]}")
jq -e '.error.code == 1007 and .error.data.reason == "keys must increase" and .error.data.index == 1' <<<"$refused" >/dev/null \
  || { echo "$(basename "$0"): the constraint did not refuse a decreasing key: $refused; logs in $logs" >&2; exit 1; }
echo "log constraint: ordered refused record $(jq .error.data.index <<<"$refused") of a batch: $(jq -c .error.data.reason <<<"$refused") (code $(jq .error.code <<<"$refused"), constraint $(jq -r .error.data.constraint <<<"$refused" | cut -c1-18)...)"

# The chain contract, from a fresh account funded by node0 (whose key also signs anchors).
client_key="$out/contract-client.key"
[ -f "$client_key" ] || "$bin" keys generate --out "$client_key" >/dev/null
client=$("$bin" keys show "$client_key")
node_rpc="http://127.0.0.1:$rpc_port"
fund() { "$bin" tx transfer --rpc "$node_rpc" --base-path "$out/node0" --to "$client" --amount 1000000 --wait | jq -e -c 'select(.ok)' >/dev/null; }
retry "funding the contract client's account" fund
as_client=(--rpc "$node_rpc" --key "$client_key" --wait)
deployed=$(retry "deploying the vote contract" "$bin" contract deploy "${as_client[@]}" "$examples/vote.wat")
code=$(jq -r .code <<<"$deployed")
# The ballot closes far ahead: a little-endian u64 of 10^9.
close=0x00ca9a3b00000000
opened=$(retry "opening a ballot (instantiate)" "$bin" contract instantiate "${as_client[@]}" --code "$code" --input "$close" --fuel 200000)
ballot=$(jq -r .contract <<<"$opened")
voted=$(retry "voting" "$bin" contract call "${as_client[@]}" --contract "$ballot" --entry vote --input 0x01 --fuel 200000)
tally=$("$bin" contract query --rpc "$node_rpc" --contract "$ballot" --entry tally --input 0x01 | jq -r .output)
echo "chain contract: vote code ${code:0:18}..., ballot ${ballot:0:18}..., tally of choice 1 = $tally ($(jq -r .log <<<"$voted"))"

# The chain light client checks the tally in the ballot's storage against its trusted head.
vote_height=$(jq .height <<<"$voted")
# (Proof-of-Work: a header commits to the state k blocks below its parent, so the final head
# must be k + 1 past the vote.)
lag=0
[ "$engine" != pow ] || lag=$(($(jq '.consensus.pow.confirmations' "$out/genesis.json") + 1))
past_vote() { rpc "$b" chain_getFinalizedHead '{}' | jq -e --argjson h "$((vote_height + lag))" '.result.height > $h'; }
wait_for "a finalized block after the vote" past_vote
retry "the chain light client's sync past the vote" light_sync
verify_tally() { { [ "$engine" != pow ] || light_sync >/dev/null; } && "$bin" light verify-contract --rpc "http://127.0.0.1:$((b + 1))" --state "$light" --contract "$ballot" \
  --key "0x$(hex tally/)01" | jq -e -c --arg t "$tally" 'select(.verified and .value == $t)'; }
retry "the chain light client's verify-contract of the tally through cluster B" verify_tally
