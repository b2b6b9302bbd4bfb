//! A short run of the load generator against a real single-node Pyralog (`pyralog start --dev`)
//! and a real single-node etcd: every counted write is really stored, the report pairs the rows.
//! The benchmark itself is `testnet/bench-etcd.sh`, not a test.

use std::process::{Command, Output, Stdio};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::Value;

use crate::support::{Running, eventually, free_ports, pyralog_bin};

fn loadgen(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pyralog-loadgen")).args(args).output().unwrap();
    assert!(output.status.success(), "loadgen {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A one-second load at 1 and 4 clients to a log of 2 partitions (replication 1), with `extra`
/// arguments.
fn short_load(system: &str, endpoints: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--system", system, "--endpoints", endpoints, "--clients", "1,4"];
    args.extend(["--warmup", "0.2", "--duration", "1", "--partitions", "2", "--replication-factor", "1"]);
    args.extend_from_slice(extra);
    loadgen(&args)
}

/// Records the log `loadgen` holds on a node, from its `system_status`.
fn stored_records(status: &Value) -> u64 {
    status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["log"] == "loadgen")
        .map(|p| p["size"].as_u64().unwrap())
        .sum()
}

/// The results `run` printed, one JSON object per client count.
fn results(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn check_results(results: &[Value], system: &str) -> u64 {
    assert_eq!(results.len(), 2, "{results:?}");
    for (result, clients) in results.iter().zip([1, 4]) {
        assert_eq!(result["system"], system);
        assert_eq!(result["clients"], clients);
        assert!(result["ops"].as_u64().unwrap() > 0, "{result}");
        assert_eq!(result["errors"], 0, "{result}");
        assert!(result["p50Ms"].as_f64().unwrap() <= result["p99Ms"].as_f64().unwrap(), "{result}");
    }
    results.iter().map(|r| r["ops"].as_u64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_against_pyralog_stores_every_counted_write() {
    let [rpc, raft, metrics] = free_ports();
    let _node = Running(
        Command::new(pyralog_bin())
            .args(["start", "--dev", "--rpc-addr", &format!("127.0.0.1:{rpc}")])
            .args(["--raft-addr", &format!("127.0.0.1:{raft}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{rpc}");
    let client = HttpClientBuilder::default().build(&url).unwrap();
    eventually("the dev node", async || {
        let health: Value = client.request("system_health", rpc_params![]).await.ok()?;
        (health["ok"] == true).then_some(())
    })
    .await;

    let output = short_load("pyralog", &url, &[]);
    let counted = check_results(&results(&output), "pyralog");
    let status: Value = client.request("system_status", rpc_params![]).await.unwrap();
    let stored = stored_records(&status);
    // Warm-up writes are stored too, so at least every counted one.
    assert!(stored >= counted, "{stored} records stored, {counted} counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_against_etcd_stores_every_counted_write() {
    if Command::new("etcd").arg("--version").output().is_err() {
        println!("skipped: no etcd binary (make deps installs Debian's etcd-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let [client_port, peer_port] = free_ports();
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let _etcd = Running(
        Command::new("etcd")
            .args(["--name", "smoke", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("smoke={peer_url}"), "--logger", "zap"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut client = eventually("etcd", async || {
        let mut client = etcd_client::Client::connect([&client_url], None).await.ok()?;
        client.status().await.ok()?;
        Some(client)
    })
    .await;

    let out = dir.path().join("etcd.json");
    let output = loadgen(&[
        "run",
        "--system",
        "etcd",
        "--endpoints",
        &client_url,
        "--clients",
        "1,4",
        "--warmup",
        "0.2",
        "--duration",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let counted = check_results(&results(&output), "etcd");
    let all = etcd_client::GetOptions::new().with_from_key().with_count_only();
    let stored = client.get(vec![0u8], Some(all)).await.unwrap().count() as u64;
    assert!(stored >= counted, "{stored} keys stored, {counted} counted");

    // The report compares each row with etcd's at the same client count (here etcd itself).
    let table = loadgen(&["report", out.to_str().unwrap(), "--baseline", "etcd"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().skip(2).all(|row| row.ends_with("| 1.00x |")), "{table}");
}

/// The Kafka-protocol load (librdkafka, linger 0) against a one-node Pyralog's Kafka listener:
/// every counted write is stored, and the node's CPU time per write is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_kafka_load_against_pyralog_reports_node_cpu_per_write() {
    let cluster = crate::support::Cluster::start(1).await;
    let pid = cluster.pid(0).to_string();
    let output = short_load("kafka", &cluster.bootstrap(), &["--label", "pyralog-kafka", "--pids", &pid]);
    let results = results(&output);
    let counted = check_results(&results, "kafka");
    assert!(
        results.iter().all(|r| r["label"] == "pyralog-kafka" && r["nodeCpuUsPerWrite"].as_f64() > Some(0.0))
    );
    let status = crate::support::call(&cluster.rpc[0], "system_status", Value::Null).await.unwrap();
    let stored = stored_records(&status);
    assert!(stored >= counted, "{stored} records stored, {counted} counted");
}
