//! Constraint contracts on the append path (`make bench-contracts`): the constraint alone
//! (calls/s and fuel/s of the JSON-id check and the monotonic-keys rule on one core), then
//! append throughput on a 3-node cluster on loopback (durable, 256-byte JSON values, 64
//! concurrent clients, 1 and 16 records per request) to a log without a constraint and to one
//! with the JSON-id constraint, measured alternately in the same run.
//!
//! `BENCH_SECONDS` sets the measured time per run (default 3; a 1-second warm-up is dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pyralog_cluster::constraint::Constraint;
use pyralog_cluster::local::start_cluster;
use pyralog_cluster::model::{LogConfig, Record};
use pyralog_contracts::examples::{JSON_ID, MONOTONIC_KEYS, wasm_of};
use pyralog_crypto::{ClusterId, Digest, LogName};

const CLIENTS: usize = 64;

/// A 256-byte JSON value with an `"id"` member near its end (the check scans up to it).
fn json_value(n: u64) -> Vec<u8> {
    let mut value = format!("{{\"payload\":\"{}\",\"id\":{n:>12}}}", "x".repeat(200)).into_bytes();
    value.resize(256, b' ');
    *value.last_mut().unwrap() = b'}';
    value
}

fn config(name: &str, constraint: Option<Digest>) -> LogConfig {
    LogConfig {
        name: LogName::new(name).unwrap(),
        partitions: 1,
        replication_factor: 3,
        max_record_bytes: 4096,
        zk: Default::default(),
        constraint,
        trigger: None,
        acl: None,
    }
}

/// Calls/s and mean fuel per call of `check` over about one second.
fn rate(mut check: impl FnMut(u64) -> u64) -> (f64, f64) {
    let started = Instant::now();
    let (mut calls, mut fuel) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            fuel += check(calls);
            calls += 1;
        }
    }
    (calls as f64 / started.elapsed().as_secs_f64(), fuel as f64 / calls as f64)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let json = wasm_of(JSON_ID.as_bytes()).unwrap();
    let monotonic = wasm_of(MONOTONIC_KEYS.as_bytes()).unwrap();

    println!("the constraint alone (wasmi, one core): check of one record");
    println!("{:>16} {:>12} {:>12} {:>14}", "constraint", "calls/s", "fuel/call", "fuel/s");
    let checker = Constraint::new(LogName::new("bench").unwrap(), &json).unwrap();
    let (calls, fuel) = rate(|n| {
        let record = Record { value: json_value(n), ..Record::default() };
        checker.check(0, None, &record).unwrap()
    });
    println!("{:>16} {:>12.0} {:>12.0} {:>14.0}", "json-id (256 B)", calls, fuel, calls * fuel);
    let checker = Constraint::new(LogName::new("bench").unwrap(), &monotonic).unwrap();
    let (calls, fuel) = rate(|n| {
        let record = Record { key: Some(format!("key-{:>12}", n + 1).into_bytes()), ..Record::default() };
        let previous = format!("key-{n:>12}").into_bytes();
        checker.check(0, Some(&previous), &record).unwrap()
    });
    println!("{:>16} {:>12.0} {:>12.0} {:>14.0}", "monotonic keys", calls, fuel, calls * fuel);

    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(3, &ClusterId::new("bench").unwrap(), dir.path(), |_| {}).await.unwrap();
    let first = nodes[0].node();
    let hash = first.store_contract_code(json).await.unwrap();
    for (name, constraint) in [("plain", None), ("checked", Some(hash))] {
        first.create_log(config(name, constraint)).await.unwrap();
        assert!(first.wait_until_writable(name, Duration::from_secs(60)).await.unwrap());
    }
    let nodes = Arc::new(nodes);
    println!();
    println!(
        "appends on a 3-node cluster on loopback (WAL fsync before acknowledgement), {CLIENTS} clients,"
    );
    println!("256-byte JSON values, through the partition leader; runs alternate between the two logs");
    println!("{:>10} {:>14} {:>14} {:>14} {:>8}", "records/req", "plain rec/s", "checked rec/s", "ratio", "");
    for per_request in [1usize, 16] {
        let mut plain = Vec::new();
        let mut checked = Vec::new();
        for _ in 0..2 {
            plain.push(append_rate(&nodes, "plain", per_request, seconds).await);
            checked.push(append_rate(&nodes, "checked", per_request, seconds).await);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (p, c) = (mean(&plain), mean(&checked));
        println!("{:>10} {:>14.0} {:>14.0} {:>13.2}x", per_request, p, c, c / p);
    }
}

/// Records/s appended to `log` by [`CLIENTS`] clients sending `per_request` records a request.
async fn append_rate(
    nodes: &Arc<Vec<pyralog_cluster::local::LocalClusterNode>>,
    log: &'static str,
    per_request: usize,
    seconds: u64,
) -> f64 {
    let partition = nodes[0].node().log(log).unwrap().partition_id(0);
    let leader = nodes
        .iter()
        .map(|n| n.node())
        .find(|n| {
            n.replica(partition).is_some_and(|r| r.raft().metrics().borrow().current_leader == Some(n.id()))
        })
        .expect("a partition leader")
        .id();
    let counted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let warm_up_end = start + Duration::from_secs(1);
    let end = warm_up_end + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (nodes, counted) = (nodes.clone(), counted.clone());
        tasks.push(tokio::spawn(async move {
            let node = nodes.iter().map(|n| n.node()).find(|n| n.id() == leader).unwrap();
            let mut n = client as u64 * 1_000_000_000;
            while Instant::now() < end {
                let records: Vec<Record> = (0..per_request)
                    .map(|i| Record { value: json_value(n + i as u64), ..Record::default() })
                    .collect();
                n += per_request as u64;
                let sent = Instant::now();
                node.append_to(log, 0, records).await.unwrap();
                if sent >= warm_up_end {
                    counted.fetch_add(per_request as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    counted.load(Ordering::Relaxed) as f64 / (Instant::now() - warm_up_end).as_secs_f64()
}
