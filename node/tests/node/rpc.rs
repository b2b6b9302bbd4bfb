//! Three real `pyralog` processes from `pyralog testnet`: every RPC method round-trips, writes
//! sent to any node land (forwarded to the leader), proofs served verify against the certified
//! checkpoint, bad requests get their documented codes and change nothing, and SIGTERM stops a
//! node cleanly (exit 0).

use std::process::Command;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::ws_client::WsClientBuilder;
use pyralog_crypto::merkle::{Blake3Merkle, InclusionProof};
use pyralog_crypto::{Checkpoint, Digest};
use serde_json::{Value, json};

use crate::support::{
    DEADLINE, call, code, eventually, hex, params, raw_get, raw_get_with, raw_post, spawn_node, start, unhex,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_processes_serve_the_rpc_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = start(dir.path()).await;
    let (a, b) = (net.rpc[0].clone(), net.rpc[1].clone());
    let probe = |path: &str| raw_get(&a, path);
    assert!(probe("/health").starts_with("HTTP/1.1 200"), "{}", probe("/health"));
    assert!(probe("/readiness").starts_with("HTTP/1.1 200"), "{}", probe("/readiness"));
    // The OpenRPC document lists exactly the methods the node serves.
    let discovered = call(&a, "rpc.discover", json!({})).await.unwrap();
    assert_eq!(discovered["info"]["version"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> =
        discovered["methods"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 51);
    for name in names.iter().filter(|n| !n.contains("_subscribe")) {
        let answer = call(&a, name, json!({})).await;
        assert!(!matches!(&answer, Err(ClientError::Call(e)) if e.code() == -32601), "{name} is not served");
    }
    assert_eq!(code(call(&a, "log_nonexistent", json!({})).await), -32601);
    // CometBFT's headers only on a chain run behind it.
    assert_eq!(code(call(&a, "chain_getCometLightBlock", json!({})).await), 1054);
    let version = call(&a, "system_version", json!({})).await.unwrap();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    // The testnet's cluster links run through WireGuard keyed by Rosenpass (chain_rpc.rs: TCP).
    let tunnel = eventually("a WireGuard session", async || {
        let tunnel = call(&a, "system_tunnel", json!({})).await.ok()?;
        (tunnel["counters"]["handshakes"].as_u64()? > 0).then_some(tunnel)
    })
    .await;
    assert_eq!((&tunnel["links"], &tunnel["rosenpass"]), (&json!("wireguard"), &json!(true)), "{tunnel}");

    let created = call(
        &a,
        "log_create",
        json!({"name": "orders", "partitions": 2, "replicationFactor": 3, "maxRecordBytes": 512}),
    )
    .await
    .unwrap();
    assert_eq!(created["partitions"], 2);
    eventually("the log listed on node 1", async || {
        let logs = call(&b, "log_list", json!({})).await.ok()?;
        (logs.as_array()?.len() == 1).then_some(())
    })
    .await;
    eventually("partition leaders", async || {
        let status = call(&a, "system_status", json!({})).await.ok()?;
        let led = status["partitions"].as_array()?.iter().all(|p| p["leader"].is_u64());
        (status["partitions"].as_array()?.len() == 2 && led).then_some(())
    })
    .await;

    // Writes through any node: the engine forwards to the partition leader.
    let records: Vec<Value> = (0..6).map(|i| json!({"key": hex(format!("k{}", i % 2).as_bytes()), "value": hex(format!("v{i}").as_bytes())})).collect();
    let receipts = call(&b, "log_append", json!({"log": "orders", "records": records})).await.unwrap();
    let receipts = receipts.as_array().unwrap();
    assert_eq!(receipts.len(), 6);
    assert!(receipts.iter().all(|r| r["offset"].is_u64()
        && r["epoch"].as_u64() >= Some(1)
        && r["scarabId"].as_str().and_then(|s| s.parse::<u64>().ok()) > Some(0)));
    let more = call(
        &net.rpc[2],
        "log_append",
        json!({"log": "orders", "partition": 1, "records": [{"value": "0x00ff"}]}),
    )
    .await
    .unwrap();
    assert_eq!(more[0]["partition"], 1);

    // Reads (JSON and Arrow) agree on every node.
    let k0_partition = receipts[0]["partition"].as_u64().unwrap();
    for url in &net.rpc {
        let read = eventually("the records on every node", async || {
            let read =
                call(url, "log_read", json!({"log": "orders", "partition": k0_partition})).await.ok()?;
            (read.as_array()?.len() >= 3).then_some(read)
        })
        .await;
        assert_eq!(read[0]["value"], hex(b"v0"));
        let arrow =
            call(url, "log_read", json!({"log": "orders", "partition": k0_partition, "format": "arrow"}))
                .await
                .unwrap();
        let batches = pyralog_cluster::columnar::ipc_to_batches(&unhex(&arrow["data"])).unwrap();
        assert_eq!(batches[0].num_rows(), read.as_array().unwrap().len());
        let latest = call(url, "log_getLatest", json!({"log": "orders", "key": hex(b"k0")})).await.unwrap();
        assert_eq!(latest["value"], hex(b"v4"));
    }

    // Subscriptions: every record from offset 0 once and in order, then new ones as they land;
    // and checkpoints as they are certified.
    let ws_url = net.rpc[1].replace("http://", "ws://");
    let ws = WsClientBuilder::default().build(&ws_url).await.unwrap();
    let mut records_sub: Subscription<Value> = ws
        .subscribe(
            "log_subscribeRecords",
            params(json!({"log": "orders", "partition": k0_partition, "from": 0})),
            "log_unsubscribeRecords",
        )
        .await
        .unwrap();
    let mut checkpoints_sub: Subscription<Value> = ws
        .subscribe(
            "log_subscribeCheckpoints",
            params(json!({"log": "orders", "partition": k0_partition})),
            "log_unsubscribeCheckpoints",
        )
        .await
        .unwrap();
    let extra: Vec<Value> = (0..3).map(|i| json!({"value": hex(format!("late{i}").as_bytes())})).collect();
    call(&a, "log_append", json!({"log": "orders", "partition": k0_partition, "records": extra}))
        .await
        .unwrap();
    let total = call(&a, "log_read", json!({"log": "orders", "partition": k0_partition}))
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    for expected in 0..total as u64 {
        let next = tokio::time::timeout(DEADLINE, records_sub.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(next["offset"], expected, "records arrive once, in order");
    }
    // Nothing more (no duplicates) until something new is written.
    let quiet = tokio::time::timeout(Duration::from_millis(500), records_sub.next()).await;
    assert!(quiet.is_err(), "an unexpected record: {quiet:?}");
    let certified_event =
        tokio::time::timeout(DEADLINE, checkpoints_sub.next()).await.unwrap().unwrap().unwrap();
    assert!(certified_event["checkpoint"]["size"].as_u64() > Some(0));
    let unknown = ws
        .subscribe::<Value, _>(
            "log_subscribeRecords",
            params(json!({"log": "nope", "partition": 0})),
            "log_unsubscribeRecords",
        )
        .await;
    assert!(matches!(unknown, Err(ClientError::Call(err)) if err.code() == 1001));

    // Proofs verify against the certified checkpoint; a changed value does not.
    let certified = eventually("a certified checkpoint", async || {
        let c =
            call(&a, "log_getCheckpoint", json!({"log": "orders", "partition": k0_partition})).await.ok()?;
        (c["checkpoint"]["size"].as_u64()? >= 3).then_some(c)
    })
    .await;
    let checkpoint = Checkpoint::decode(&unhex(&certified["encoded"])).unwrap();
    let proof = eventually("a proof from node 2", async || {
        call(&net.rpc[2], "log_getProof", json!({"log": "orders", "partition": k0_partition, "offset": 0}))
            .await
            .ok()
    })
    .await;
    let path: Vec<Digest> = proof["proof"]["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Digest(unhex(d).try_into().unwrap()))
        .collect();
    let inclusion =
        InclusionProof::<Blake3Merkle>::new(0, proof["proof"]["treeSize"].as_u64().unwrap(), path);
    let served = Checkpoint::decode(&unhex(&proof["certificate"]["encoded"])).unwrap();
    assert!(served.size >= checkpoint.size);
    let encoded = unhex(&proof["encoded"]);
    assert_eq!(served.verify_inclusion(&encoded, &inclusion), Ok(()));
    let mut tampered = encoded.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        served.verify_inclusion(&tampered, &inclusion),
        Err(pyralog_crypto::merkle::VerifyError::RootMismatch { .. })
    ));
    let consistency = call(
        &a,
        "log_getConsistencyProof",
        json!({"log": "orders", "partition": k0_partition, "oldSize": 1, "newSize": 3}),
    )
    .await
    .unwrap();
    assert!(consistency["path"].is_array());

    // The light client verifies the same record end to end (pinning keys on first use) and
    // refuses to run without trust.
    let light = |extra: &[&str]| {
        let trust = dir.path().join("trust.json");
        let partition = k0_partition.to_string();
        let mut args = vec![
            "light",
            "verify-record",
            "--rpc",
            &net.rpc[1],
            "--log",
            "orders",
            "--partition",
            &partition,
            "--offset",
            "0",
        ];
        args.extend_from_slice(&["--trust", trust.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_pyralog")).args(&args).output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.success(), report)
    };
    let (ok, report) = light(&[]);
    assert!(!ok && report["verified"] == false, "{report}");
    let (ok, report) = light(&["--trust-on-first-use"]);
    assert!(ok && report["verified"] == true, "{report}");
    assert_eq!(report["value"], hex(b"v0"));
    let (ok, report) = light(&[]);
    assert!(ok && report["verified"] == true, "with the saved trust file: {report}");

    // Bad requests: documented codes, nothing changes.
    let before = call(&a, "log_read", json!({"log": "orders", "partition": 0})).await.unwrap();
    assert_eq!(
        code(call(&a, "log_append", json!({"log": "nope", "records": [{"value": "0x01"}]})).await),
        1001
    );
    assert_eq!(code(call(&a, "log_read", json!({"log": "orders", "partition": 9})).await), 1002);
    assert_eq!(code(call(&a, "log_read", json!({"log": "orders", "partition": 0, "from": 999})).await), 1003);
    let big = hex(&vec![7u8; 600]);
    assert_eq!(
        code(
            call(&a, "log_append", json!({"log": "orders", "partition": 0, "records": [{"value": big}]}))
                .await
        ),
        1004
    );
    assert_eq!(
        code(call(&a, "log_append", json!({"log": "orders", "records": [{"value": "zz"}]})).await),
        -32602
    );
    assert_eq!(
        code(call(&a, "log_append", json!({"log": "orders", "records": [{"value": 5}]})).await),
        -32602
    );
    assert_eq!(
        code(
            call(&a, "log_create", json!({"name": "orders", "partitions": 1, "replicationFactor": 1})).await
        ),
        1020
    );
    assert_eq!(
        code(
            call(&a, "log_create", json!({"name": "bad name!", "partitions": 1, "replicationFactor": 1}))
                .await
        ),
        -32602
    );
    assert!(raw_post(&a, "{not json").contains("-32700"));
    assert_eq!(call(&a, "log_read", json!({"log": "orders", "partition": 0})).await.unwrap(), before);

    // Prometheus metrics: request counts, Raft and partition figures.
    // Once a height was decided since the start (the consensus histograms have a sample).
    let scraped = eventually("a decided height in the metrics", async || {
        let scraped = raw_get(&net.metrics[0], "/metrics");
        scraped
            .lines()
            .any(|l| l.starts_with("pyralog_consensus_rounds_per_height_count ") && !l.ends_with(" 0"))
            .then_some(scraped)
    })
    .await;
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    let value = |series: &str| -> u64 {
        let prefix = format!("{series} ");
        let text = scraped.lines().find_map(|l| l.strip_prefix(&prefix));
        text.unwrap_or_else(|| panic!("{series} missing from\n{scraped}")).parse().unwrap()
    };
    assert!(value("pyralog_rpc_requests_total{method=\"log_append\",outcome=\"ok\"}") > 0);
    value("pyralog_wal_fsyncs_total");
    // Every group committed since start (the log's creation and its writes), and no group
    // commits past its log or applies past its commits.
    for group in ["global", "orders/0"] {
        let labels = format!("{{group=\"{group}\"}}");
        let committed = value(&format!("pyralog_raft_commit_index{labels}"));
        assert!(committed > 0, "{group}");
        assert!(committed <= value(&format!("pyralog_raft_last_log_index{labels}")), "{group}");
        value(&format!("pyralog_raft_term{labels}"));
    }
    assert!(value("pyralog_partition_records{log=\"orders\",partition=\"0\"}") > 0);
    // Records were appended, so the WAL and the user-bytes counters moved.
    for kind in ["user", "wal"] {
        assert!(value(&format!("pyralog_storage_written_bytes_total{{kind=\"{kind}\"}}")) > 0, "{kind}");
    }
    assert!(raw_get(&net.metrics[0], "/other").starts_with("HTTP/1.1 404"));
    // The classic text format by default, which Prometheus's own linter passes (promtool reads
    // only that format); OpenMetrics when the scraper asks for it.
    let open =
        raw_get_with(&net.metrics[0], "/metrics", "Accept: application/openmetrics-text; version=1.0.0\r\n");
    assert!(open.contains("application/openmetrics-text") && open.trim_end().ends_with("# EOF"), "{open}");
    assert!(scraped.contains("text/plain; version=0.0.4") && !scraped.contains("# EOF"), "{scraped}");
    assert!(scraped.contains("# TYPE pyralog_rpc_requests_total counter"), "{scraped}");
    // The chain's: its head, and the power of each of the three validators.
    assert!(value("pyralog_chain_finalized_height") > 0);
    let powers = scraped.lines().filter(|l| l.starts_with("pyralog_chain_validator_power{")).count();
    assert_eq!(powers, 3, "{scraped}");
    value("pyralog_chain_evidence_total");
    // Each of three validators is connected to the two others over the overlay.
    assert!(value("pyralog_p2p_peers{kind=\"connected\"}") >= 2, "{scraped}");
    // Consensus gossip both ways, the mempool, the anchoring lag of the log's partitions.
    for direction in ["in", "out"] {
        let series =
            format!("pyralog_p2p_gossip_messages_total{{topic=\"consensus\",direction=\"{direction}\"}}");
        assert!(value(&series) > 0, "{series}");
    }
    value("pyralog_mempool_txs");
    value("pyralog_mempool_refused_total{reason=\"full\"}");
    value("pyralog_anchor_lag_records{log=\"orders\",partition=\"0\"}");
    promtool_check(&scraped);
    // The dashboard against this node: Tendermint without staking, no log contracts, and maybe
    // nothing anchored yet.
    let elsewhere = ["pyralog_staking_", "pyralog_anchor_age_seconds", "pyralog_log_contract_"];
    crate::dashboard::check_dashboard(&net.metrics[0], &scraped, &elsewhere).await;

    // SIGTERM: a clean exit.
    let pid = net.children[2].id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = net.children[2].try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "node did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}

/// The leader of `partition` of `log` according to `url`'s status.
async fn partition_leader(url: &str, log: &str, partition: u64) -> Option<u64> {
    let status = call(url, "system_status", json!({})).await.ok()?;
    let entry =
        status["partitions"].as_array()?.iter().find(|p| p["log"] == log && p["partition"] == partition)?;
    entry["leader"].as_u64()
}

/// Kill -9 of the partition leader's process during writes, then a restart: every write
/// acknowledged over RPC is readable at its offset from every node afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_of_a_node_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = start(dir.path()).await;
    call(&net.rpc[0], "log_create", json!({"name": "crash", "partitions": 1, "replicationFactor": 3}))
        .await
        .unwrap();
    let rpc = net.rpc.clone();
    let leader =
        eventually("a partition leader", async || partition_leader(&rpc[0], "crash", 0).await).await as usize;

    // Writers go through every node in turn; a write that fails is not retried (not acked).
    // The phases below wait on the count of acknowledged writes, not on the clock.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked_so_far = || acks.load(std::sync::atomic::Ordering::Relaxed);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (rpc, stop, acks) = (rpc.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let value = hex(format!("w{w}-{n}").as_bytes());
                    let url = &rpc[(n as usize + w) % rpc.len()];
                    let records = json!({"log": "crash", "partition": 0, "records": [{"value": value}]});
                    match tokio::time::timeout(Duration::from_secs(10), call(url, "log_append", records))
                        .await
                    {
                        Ok(Ok(receipts)) => {
                            acked.push((receipts[0]["offset"].as_u64().unwrap(), value));
                            acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                acked
            })
        })
        .collect();
    eventually("writes acknowledged before the kill", async || (acked_so_far() >= 10).then_some(())).await;
    net.children[leader].kill().unwrap(); // SIGKILL
    net.children[leader].wait().unwrap();
    // A new leader is elected and takes writes.
    let at_kill = acked_so_far();
    eventually("writes acknowledged after the kill", async || (acked_so_far() >= at_kill + 10).then_some(()))
        .await;
    net.children[leader] = spawn_node(dir.path(), leader as u16);
    let restarted = rpc[leader].clone();
    eventually("the restarted node serving", async || {
        call(&restarted, "system_status", json!({})).await.ok()
    })
    .await;
    let at_restart = acked_so_far();
    eventually("writes acknowledged after the restart", async || {
        (acked_so_far() >= at_restart + 10).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = std::collections::BTreeMap::new();
    for writer in writers {
        for (offset, value) in writer.await.unwrap() {
            assert!(acked.insert(offset, value).is_none(), "offset {offset} acknowledged twice");
        }
    }
    assert!(acked.len() > 10, "too few acknowledged writes: {}", acked.len());
    let size = *acked.keys().next_back().unwrap() + 1;
    for url in &net.rpc {
        let records = eventually("every node caught up", async || {
            let read =
                call(url, "log_read", json!({"log": "crash", "partition": 0, "max": 10000})).await.ok()?;
            (read.as_array()?.len() as u64 >= size).then_some(read)
        })
        .await;
        for (offset, value) in &acked {
            assert_eq!(&records[*offset as usize]["value"], value, "offset {offset} at {url}");
        }
    }
}

/// `promtool check metrics` on a scrape's body (HTTP head cut off): no problem reported. Skips,
/// saying so, without promtool (`make deps` installs Debian's `prometheus` package for it).
fn promtool_check(scrape: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!(
            "skipped: promtool check metrics (no promtool; make deps installs Debian's prometheus package)"
        );
        return;
    };
    let body = scrape.split_once("\r\n\r\n").map_or(scrape, |(_, body)| body);
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
}
