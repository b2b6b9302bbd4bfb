//! Replication benchmark: a 3-node cluster on loopback (the whole engine: global group,
//! partition group, checkpoints certified every 100 ms), durability on (every acknowledged
//! write is in a quorum's fsynced WAL), 256-byte values, one record per request through
//! `ClusterNode::append_to`, at 1/16/64/256 concurrent clients; then durable Scarab ids/s and
//! Obelisk values/s.
//!
//! Run: `make bench-cluster` (`BENCH_SECONDS` sets the measured time per level, default 3; a
//! 1-second warm-up per level is dropped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyralog_cluster::local::start_cluster;
use pyralog_cluster::model::{LogConfig, Record};
use pyralog_cluster::sequencer::{Obelisk, ScarabGenerator, SystemClock};
use pyralog_crypto::{ClusterId, LogName};
use tokio::sync::Mutex;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let cluster = ClusterId::new("bench").unwrap();
    let nodes = start_cluster(3, &cluster, dir.path(), |_| {}).await.unwrap();
    let config = LogConfig {
        name: LogName::new("bench").unwrap(),
        partitions: 1,
        replication_factor: 3,
        max_record_bytes: 4096,
        zk: Default::default(),
        constraint: None,
        trigger: None,
        acl: None,
    };
    let info = nodes[0].node().create_log(config).await.unwrap();
    assert!(nodes[0].node().wait_until_writable("bench", Duration::from_secs(60)).await.unwrap());
    let partition = info.partition_id(0);
    let leader = nodes
        .iter()
        .map(|n| n.node())
        .find(|n| n.status().partitions.iter().any(|p| p.role == pyralog_cluster::engine::Role::Leader))
        .expect("a partition leader");
    assert!(leader.replica(partition).is_some());
    let (leader_id, storage) = (leader.id(), leader.storage().clone());
    let nodes = Arc::new(nodes);

    println!(
        "3-node cluster on loopback, WAL fsync before acknowledgement, 256-byte values, 1 record/request,"
    );
    println!("concurrent requests batched into shared Raft entries by the leader, checkpoints every 100 ms");
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>16}",
        "clients", "records/s", "p50 ms", "p99 ms", "appends/fsync"
    );
    for clients in [1usize, 16, 64, 256] {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let warm_up_end = start + Duration::from_secs(1);
        let end = warm_up_end + Duration::from_secs(seconds);
        let before = storage.syncer().stats();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (nodes, latencies) = (nodes.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let leader = nodes.iter().map(|n| n.node()).find(|n| n.id() == leader_id).unwrap();
                let mut mine = Vec::new();
                while Instant::now() < end {
                    let record = Record { value: vec![0x5a; 256], ..Record::default() };
                    let sent = Instant::now();
                    leader.append_to("bench", 0, vec![record]).await.unwrap();
                    if sent >= warm_up_end {
                        mine.push(sent.elapsed());
                    }
                }
                latencies.lock().await.extend(mine);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let after = storage.syncer().stats();
        let mut latencies = latencies.lock().await.clone();
        latencies.sort();
        let measured = (Instant::now() - warm_up_end).as_secs_f64();
        let fsyncs = (after.fsyncs - before.fsyncs).max(1);
        println!(
            "{:>8} {:>12.0} {:>10.2} {:>10.2} {:>16.1}",
            clients,
            latencies.len() as f64 / measured,
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            (after.callbacks - before.callbacks) as f64 / fsyncs as f64,
        );
    }

    let mut scarab = ScarabGenerator::open(dir.path().join("scarab"), 1, SystemClock, 1000).unwrap();
    let rate = per_second(|| {
        std::hint::black_box(scarab.next_id().unwrap());
    });
    println!("durable Scarab ids/s (one coordinator, 1 s lease): {rate:.0}");
    let mut obelisk = Obelisk::open(dir.path().join("obelisk"), 1024).unwrap();
    let rate = per_second(|| {
        std::hint::black_box(obelisk.next_value().unwrap());
    });
    println!("durable Obelisk values/s (reserve 1024 per fdatasync): {rate:.0}");
}

/// How many times per second `step` runs, over one second.
fn per_second(mut step: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..1000 {
            step();
        }
        count += 1000;
    }
    count as f64 / started.elapsed().as_secs_f64()
}
