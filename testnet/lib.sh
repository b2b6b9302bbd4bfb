# Shared by testnet/run.sh and the bench and profile scripts (sourced, not run).

pids=() # processes the script started; `stop_all` ends them (the scripts trap EXIT with it)
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

start_three() { # start_three DIR RPC_PORT: starts `$bin` on DIR/node0..2 (logs $logs/pyralogN.log),
  # records their pids and waits until each is ready and knows the three members
  local i
  for i in 0 1 2; do
    "$bin" start --base-path "$1/node$i" 2>"$logs/pyralog$i.log" &
    pids+=($!)
  done
  for i in 0 1 2; do wait_for "pyralog node $i" ready $(($2 + i)) 3; done
}

rpc() { # rpc PORT METHOD PARAMS_JSON: one JSON-RPC call to a local node
  curl -sS --max-time 40 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "http://127.0.0.1:$1"
}

call() { # call PORT METHOD PARAMS_JSON [JQ_FILTER]: the call's result (through JQ_FILTER), or
  # its error on stderr and a failure (also for a null or false result); prints nothing on
  # failure (safe inside $(...) and `retry`)
  local answer out
  answer=$(rpc "$1" "$2" "$3") || { echo "$2 at port $1: no answer" >&2; return 1; }
  if jq -e 'has("result")' <<<"$answer" >/dev/null 2>&1; then
    out=$(jq -e -c ".result | ${4:-.}" <<<"$answer") || { echo "$2 at port $1: result $(jq -c .result <<<"$answer")" >&2; return 1; }
    echo "$out"
  else
    echo "$2 at port $1: $(jq -c '.error // .' <<<"$answer" 2>/dev/null || echo "$answer")" >&2
    return 1
  fi
}

wait_for() { # wait_for WHAT COMMAND...: polls COMMAND for up to 60 s; the caller sets $logs
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$(basename "$0"): timed out waiting for $what; logs in $logs" >&2
  exit 1
}

ready() { # ready PORT NODES: the node answers, knows a global leader and NODES members
  rpc "$1" system_health '{}' | jq -e --argjson n "$2" '.result.ok and .result.members == $n'
}

step() { # step WHAT COMMAND...: runs COMMAND once; on failure says which step failed and exits
  local what=$1; shift
  if ! "$@"; then
    echo "$(basename "$0"): failed: $what; logs in $logs" >&2
    exit 1
  fi
}

retry() { # retry WHAT COMMAND...: runs COMMAND up to 5 times, 2 s apart, for steps a leader
  # election or a busy prover may fail (reads, idempotent or re-runnable writes); then as `step`
  local what=$1; shift
  for attempt in 1 2 3 4 5; do
    if "$@"; then return 0; fi
    [ "$attempt" = 5 ] || { echo "$(basename "$0"): $what failed (attempt $attempt of 5); retrying" >&2; sleep 2; }
  done
  echo "$(basename "$0"): failed: $what (5 attempts); logs in $logs" >&2
  exit 1
}
