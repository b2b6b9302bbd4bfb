# Proof-of-Stake on the local testnet (sourced by run.sh with `--engine pos`): two validator-set
# changes, then the chain light client verifies a record with finality across them.
#
# 1. The last node, a follower at genesis, stakes (`pyralog tx create-validator`) and is in the set
#    two heights after its transaction, then signs blocks.
# 2. Another validator is stopped; after the signed-blocks window it is slashed and jailed, and the
#    set drops it two heights later.
# 3. New records are appended and anchored; the light client syncs across both changes (skipping,
#    bisecting where the trusted power is too small) and verifies one up to a finalized header.
# 4. The stopped node restarts, waits out its jail time and unjails (a third change); the run ends
#    with the light client verifying another record with finality after it.
# Re-runs on a running testnet skip what the chain already shows (a validator created before).

joiner=$((nodes - 1))
stopped=$((nodes - 2))
joiner_key=$(jq -r ".accounts[$joiner].publicKey" "$out/genesis.json")
stopped_key=$(jq -r ".accounts[$stopped].publicKey" "$out/genesis.json")
in_set() { rpc "$b" chain_getValidators '{}' | jq -e --arg k "$1" '[.result.validators[].publicKey] | index($k) != null'; }
out_of_set() { ! in_set "$1"; }
status_of() { rpc "$b" staking_validator "{\"operator\":\"$1\"}" | jq -r '.result.validator.status // "none"'; }
set_size() { rpc "$b" chain_getValidators '{}' | jq '.result.validators | length'; }
echo "pos: $(set_size) validators at height $(rpc "$b" chain_getFinalizedHead '{}' | jq .result.height)"

# 1. node$joiner stakes and joins.
if [ "$(status_of "$joiner_key")" = none ]; then
  step "node$joiner's create-validator" "$bin" tx create-validator --rpc "http://127.0.0.1:$b" \
    --base-path "$out/node$joiner" --self-bond 2000 --description "node$joiner" --wait >/dev/null
fi
wait_for "node$joiner in the validator set" in_set "$joiner_key"
signs() { rpc "$b" chain_getBlock '{}' | jq -e --arg k "$1" '.result.lastCommitSigners | index($k) != null'; }
wait_for "node$joiner to sign a block" signs "$joiner_key"
echo "pos: node$joiner staked and joined: $(set_size) validators, it signs blocks (change 1)"

# 2. node$stopped stops and is jailed for downtime.
kill "$(cat "$out/node$stopped/pid")" 2>/dev/null || true
jailed() { [ "$(status_of "$stopped_key")" = jailed ]; }
wait_for "node$stopped to be jailed for downtime" jailed
wait_for "node$stopped out of the validator set" out_of_set "$stopped_key"
missed=$(rpc "$b" staking_validator "{\"operator\":\"$stopped_key\"}" | jq -r .result.validator.tokens)
echo "pos: node$stopped stopped, slashed to $missed tokens, jailed and out of the set: $(set_size) validators (change 2)"

# 3. A record appended after both changes, anchored, verified by the light client across them.
append_more() { call "$rpc_port" log_append '{"log":"demo","partition":0,"records":[{"value":"0x706f73"}]}' '.[0].offset'; }
anchored_new() { rpc "$b" log_getProof "{\"log\":\"demo\",\"partition\":0,\"offset\":$offset,\"cluster\":\"$cluster_a\",\"finality\":true}" | jq -e '.result.finality.height > 0'; }
verify_after_changes() {
  "$bin" light sync --rpc "http://127.0.0.1:$b" --genesis "$out/genesis.json" --state "$light" | jq -e -c 'select(.synced)' >/dev/null \
    && "$bin" light verify-record --rpc "http://127.0.0.1:$b" --cluster "$cluster_a" --log demo --partition 0 \
      --offset "$offset" --finality --state "$light" | jq -e -c 'select(.verified)'
}
verify_new_record() { # verify_new_record AFTER: appends a record and verifies it with finality
  offset=$(retry "appending after $1" append_more)
  wait_for "record $offset (after $1) to be anchored and final" anchored_new
  retry "the chain light client's verify-record --finality after $1" verify_after_changes >/dev/null
  echo "pos: the light client verified record $offset with finality at height $(jq '.head.height' "$light") under a set of $(jq '.head.next_validators | length' "$light") validators (after $1)"
}
verify_new_record "changes 1 and 2"

# 4. node$stopped returns, bonds again what the slash took (1% of its 1000 tokens left it under
#    one unit of power) and unjails once its jail time is over.
"$bin" start --base-path "$out/node$stopped" >>"$out/node$stopped/node.log" 2>&1 &
echo $! >"$out/node$stopped/pid"
wait_for "node$stopped to be ready again" ready $((rpc_port + stopped)) "$per_cluster"
step "node$stopped's delegate" "$bin" tx delegate --rpc "http://127.0.0.1:$b" --base-path "$out/node$stopped" \
  --validator "$stopped_key" --amount 1000 --wait >/dev/null
until_ms=$(rpc "$b" staking_validator "{\"operator\":\"$stopped_key\"}" | jq -r '.result.validator.jailedUntilMs // 0')
jail_over() { rpc "$b" chain_getFinalizedHead '{}' | jq -e --argjson t "$until_ms" '.result.header.timeMs > $t'; }
wait_for "node$stopped's jail time to pass (block time after $until_ms)" jail_over
unjail() { "$bin" tx unjail --rpc "http://127.0.0.1:$b" --base-path "$out/node$stopped" --wait >/dev/null; }
retry "node$stopped's unjail" unjail
wait_for "node$stopped back in the validator set" in_set "$stopped_key"
echo "pos: node$stopped unjailed and back: $(set_size) validators (change 3)"
verify_new_record "change 3"
