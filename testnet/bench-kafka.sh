#!/usr/bin/env bash
# Pyralog and Apache Kafka side by side (what `make bench-kafka` runs): 3 Pyralog nodes (disk
# storage, fsync per Raft append batch, plain TCP links) and then 3 Apache Kafka brokers (KRaft,
# each broker and controller, replication factor 3, min.insync.replicas=2), one at a time, on
# loopback on this machine, driven by the same client with the same settings: Kafka's own
# `kafka-producer-perf-test` (org.apache.kafka.tools.ProducerPerformance, Java client), 256-byte
# records, acks=all, unthrottled, to a topic of 3 partitions, with the client's default batching
# (linger.ms=5, batch.size=16384) and with linger.ms=0. Kafka runs twice: at its default, which
# acknowledges writes that are in the replicas' page caches but not yet fsynced, and with
# flush.messages=1 (an fsync per write batch, the durability Pyralog always has).
#
# For each case: records/s, MB/s, latency p50/p99/p99.9 as the tool reports them (an unthrottled
# producer's latency is mostly the time a record waits in its 32 MB buffer, so a third case
# throttles the producer to BENCH_RATE records/s, which every system keeps up with, for latency),
# and the brokers' CPU time per record (all three processes, from /proc). A warm-up run per
# system is not reported. Writes $BENCH_DIR/table.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYRALOG_BIN:?set PYRALOG_BIN to the pyralog binary (make bench-kafka does)}
libs=${PYRALOG_KAFKA_LIBS:?set PYRALOG_KAFKA_LIBS to Apache Kafka jars (make bench-kafka does)}
out=${BENCH_DIR:-$here/out/bench-kafka}
records=${BENCH_RECORDS:-300000}
warmup_records=${BENCH_WARMUP_RECORDS:-100000}
rate=${BENCH_RATE:-5000}
raft_port=${BENCH_RAFT_PORT:-31433}
rpc_port=${BENCH_RPC_PORT:-19954}
metrics_port=${BENCH_METRICS_PORT:-19625}
pyralog_kafka_port=${BENCH_PYRALOG_KAFKA_PORT:-19192}
kafka_port=${BENCH_KAFKA_PORT:-29092}
controller_port=$((kafka_port + 10))

command -v java >/dev/null || { echo "bench-kafka: no java (Apache Kafka needs Java 17)" >&2; exit 1; }
[ -f "$libs/kafka-tools-4.1.1.jar" ] || { echo "bench-kafka: no Kafka jars in $libs (make kafka-jars)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
logs=$out
. "$here/lib.sh"
trap stop_all EXIT

# How Kafka's jars run: with our log config, on the fetched classpath.
java_flags=(-Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$libs/*")
java_run() { # java_run CLASS ARGS...: one of Kafka's tools
  java "${java_flags[@]}" "$@"
}

cpu_ticks() { # cpu_ticks PID...: user + system clock ticks of the processes, summed
  local total=0 pid fields
  for pid in "$@"; do
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
  done
  echo "$total"
}

# One measured run: perf_run SYSTEM CASE BOOTSTRAP TOPIC [PRODUCER_PROPS...]; appends a JSON line.
# $throughput caps the producer's rate (-1: unthrottled).
throughput=-1
perf_run() {
  local system=$1 case=$2 bootstrap=$3 topic=$4; shift 4
  local before after line
  before=$(cpu_ticks "${pids[@]}")
  line=$(java_run -Xmx512m org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
    --num-records "$records" --record-size 256 --throughput "$throughput" \
    --producer-props bootstrap.servers="$bootstrap" acks=all "$@" 2>>"$out/perf-client.log" | tail -1)
  after=$(cpu_ticks "${pids[@]}")
  echo "   $system, $case: $line"
  # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th,
  # P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
  awk -v sys="$system" -v kase="$case" -v ticks=$((after - before)) -v n="$records" -F'[ ,(]+' '{
    printf "{\"system\":\"%s\",\"case\":\"%s\",\"recordsPerSec\":%s,\"mbPerSec\":%s,\"p50Ms\":%s,\"p99Ms\":%s,\"p999Ms\":%s,\"cpuUsPerRecord\":%.1f}\n",
      sys, kase, $4, $6, $16, $22, $25, ticks * 10000 / n
  }' <<<"$line" >>"$out/results.jsonl"
}

echo "== Pyralog $("$bin" --version | awk '{print $2}'): 3 nodes, plain TCP links"
"$bin" testnet --nodes 3 --out "$out/pyralog" --raft-port "$raft_port" --rpc-port "$rpc_port" \
  --metrics-port "$metrics_port" --kafka-port "$pyralog_kafka_port" --dev >/dev/null
start_three "$out/pyralog" "$rpc_port"
bootstrap=$(for i in 0 1 2; do printf '127.0.0.1:%d,' $((pyralog_kafka_port + i)); done)
bootstrap=${bootstrap%,}
for topic in warmup bench bench-linger0 bench-rate; do
  java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic "$topic" \
    --partitions 3 --replication-factor 3 >/dev/null 2>>"$out/perf-client.log"
done
for i in 0 1 2; do wait_for "pyralog's partition leaders" call $((rpc_port + i)) system_status '{}' \
  '[.partitions[] | select(.leader != null)] | length == 12'; done
throttled() { # throttled SYSTEM BOOTSTRAP TOPIC: $rate records/s for 10 s, default batching
  local saved=$records
  records=$((rate * 10)); throughput=$rate
  perf_run "$1" "$rate records/s" "$2" "$3"
  records=$saved; throughput=-1
}
records_saved=$records; records=$warmup_records
perf_run pyralog warmup "$bootstrap" warmup >/dev/null
records=$records_saved
perf_run pyralog "default batching" "$bootstrap" bench
perf_run pyralog "linger.ms=0" "$bootstrap" bench-linger0 linger.ms=0
throttled pyralog "$bootstrap" bench-rate
stop_all

kafka_version=$(basename "$libs"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-//')
echo "== Apache Kafka $kafka_version: 3 brokers (KRaft), replication factor 3, min.insync.replicas=2"
cluster_id=$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
voters=$(for i in 1 2 3; do printf '%d@127.0.0.1:%d,' "$i" $((controller_port + i)); done)
for i in 1 2 3; do
  cat >"$out/kafka$i.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=${voters%,}
listeners=PLAINTEXT://127.0.0.1:$((kafka_port + i)),CONTROLLER://127.0.0.1:$((controller_port + i))
advertised.listeners=PLAINTEXT://127.0.0.1:$((kafka_port + i))
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$out/kafka$i
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
EOF
  java_run kafka.tools.StorageTool format -t "$cluster_id" -c "$out/kafka$i.properties" >/dev/null 2>&1
done
for i in 1 2 3; do
  # The heap and collector settings of Kafka's own start script; `exec`, so the pid is the JVM's.
  (exec java "${java_flags[@]}" -Xmx1G -Xms1G \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true \
    kafka.Kafka "$out/kafka$i.properties") 2>"$out/kafka$i.log" >&2 &
  pids+=($!)
done
bootstrap=$(for i in 1 2 3; do printf '127.0.0.1:%d,' $((kafka_port + i)); done)
bootstrap=${bootstrap%,}
wait_for "kafka brokers" java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list
for spec in "warmup:" "bench:" "bench-linger0:" "bench-rate:" "bench-flush:flush.messages=1" \
  "bench-flush-linger0:flush.messages=1" "bench-flush-rate:flush.messages=1"; do
  topic=${spec%%:*}; config=${spec#*:}
  java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic "$topic" \
    --partitions 3 --replication-factor 3 ${config:+--config "$config"} >/dev/null 2>>"$out/perf-client.log"
done
records_saved=$records; records=$warmup_records
perf_run kafka warmup "$bootstrap" warmup >/dev/null
records=$records_saved
perf_run "kafka (default: no fsync)" "default batching" "$bootstrap" bench
perf_run "kafka (default: no fsync)" "linger.ms=0" "$bootstrap" bench-linger0 linger.ms=0
perf_run "kafka (flush.messages=1)" "default batching" "$bootstrap" bench-flush
perf_run "kafka (flush.messages=1)" "linger.ms=0" "$bootstrap" bench-flush-linger0 linger.ms=0
throttled "kafka (default: no fsync)" "$bootstrap" bench-rate
throttled "kafka (flush.messages=1)" "$bootstrap" bench-flush-rate
stop_all

echo "== side by side ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
{
  echo "| case | system | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | broker CPU µs/record | Pyralog / this |"
  echo "|:---|:---|---:|---:|---:|---:|---:|---:|---:|"
  jq -rs '
    (map(select(.system == "pyralog")) | map({key: .case, value: .recordsPerSec}) | from_entries) as $ours
    | map(select(.case != "warmup"))
    | sort_by(.case)
    | .[]
    | "| \(.case) | \(.system) | \(.recordsPerSec | floor) | \(.mbPerSec) | \(.p50Ms) | \(.p99Ms) | \(.p999Ms) | \(.cpuUsPerRecord) | \(if .system == "pyralog" then "-" else "\(($ours[.case] / .recordsPerSec * 100 | round) / 100)x" end) |"
  ' "$out/results.jsonl"
} | tee "$out/table.md"
echo "table written to $out/table.md"
