//! Replication benchmark: 3 replicas on loopback, durability on (every acknowledged write is in
//! a quorum's fsynced WAL), 256-byte values, one record per request, at 1/16/64/256 concurrent
//! clients; then durable Scarab ids/s and Obelisk values/s.
//!
//! Run: `make bench-cluster` (`BENCH_SECONDS` sets the measured time per level, default 3; a
//! 1-second warm-up per level is dropped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::Config;
use pyralog_cluster::local::{start_replica_set, wait_for_leader};
use pyralog_cluster::model::Record;
use pyralog_cluster::sequencer::{Obelisk, ScarabGenerator, SystemClock};
use pyralog_cluster::storage::PartitionId;
use tokio::sync::Mutex;

const PARTITION: PartitionId = PartitionId { log: 1, partition: 0 };

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            ..Config::default()
        }
        .validate()
        .unwrap(),
    );
    let nodes = start_replica_set(3, dir.path(), PARTITION, config).await.unwrap();
    let leader_id = wait_for_leader(&nodes, Duration::from_secs(60)).await.expect("a leader");
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();
    let storage = leader.storage.clone();
    let nodes = Arc::new(nodes);

    println!("3 replicas on loopback, WAL fsync before acknowledgement, 256-byte values, 1 record/request,");
    println!("concurrent requests batched into shared Raft entries by the leader");
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
                let replica = nodes.iter().find(|n| n.id == leader_id).unwrap().replica().unwrap();
                let mut mine = Vec::new();
                while Instant::now() < end {
                    let record = Record { value: vec![0x5a; 256], ..Record::default() };
                    let sent = Instant::now();
                    replica.append(vec![record]).await.unwrap();
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
