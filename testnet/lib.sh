# Shared by testnet/run.sh and testnet/bench-etcd.sh (sourced, not run).

rpc() { # rpc PORT METHOD PARAMS_JSON: one JSON-RPC call to a local node
  curl -sS --max-time 40 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "http://127.0.0.1:$1"
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
