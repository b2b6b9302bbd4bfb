//! Consensus benchmark: PBFT beside Tendermint in one run, 4 and 7 validators over real libp2p
//! on loopback (gossipsub for votes and proposals, RocksDB stores with the WAL fsynced before
//! every vote), blocks cut as fast as the network allows (block interval 0), first with empty
//! blocks, then with 1,000 transactions/s of 256 bytes submitted round-robin to the validators.
//! Then Proof-of-Work beside them: 4 miners of one thread each (one-second blocks, `k = 3`), where
//! commit latency is the time to `k`-deep finality and the orphan rate is the share of the seals
//! the miners found that did not end in the final chain.
//!
//! Figures: blocks/s and the time between consecutive commits (p50/p99) at validator 0; with
//! transactions, also commit latency: submission to a validator until that validator commits
//! the block carrying it (p50/p99); and the consensus messages and bytes all validators handed
//! the network per block (a broadcast counted once per other validator).
//!
//! Run: `make bench-consensus` (`BENCH_SECONDS` sets the measured time per case, default 10;
//! a 3-second warm-up is dropped; `BENCH_VALIDATORS=7` runs one size only).

#[allow(dead_code)]
#[path = "../tests/p2p/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyralog_consensus::Engine;
use pyralog_consensus::testkit::CountingApp;

/// When each transaction (by its 8-byte sequence number) was committed, per validator.
type Commits = Arc<Mutex<HashMap<u64, Instant>>>;

const TX_BYTES: usize = 256;
const WARM_UP: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

async fn case(engine: Engine, validators: usize, tx_rate: u64, seconds: u64) {
    let (keys, set) = support::validators(validators);
    let dirs: Vec<tempfile::TempDir> = (0..validators).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = support::driver_config(&set, Duration::ZERO);
    let commits: Vec<Commits> = (0..validators).map(|_| Commits::default()).collect();
    let blocks: Vec<Arc<Mutex<Vec<Instant>>>> = (0..validators).map(|_| Arc::default()).collect();
    // Each validator's app notes when it commits each benchmark transaction and each block.
    let app = |i: usize| {
        let (commits, blocks) = (commits[i].clone(), blocks[i].clone());
        CountingApp::default().observed(move |block| {
            let now = Instant::now();
            blocks.lock().unwrap().push(now);
            let mut commits = commits.lock().unwrap();
            for tx in block.txs.iter().filter(|tx| tx.len() == TX_BYTES) {
                commits.insert(u64::from_be_bytes(tx[..8].try_into().unwrap()), now);
            }
        })
    };
    let sent = support::Sent::default();
    let start = |i: usize, bootstrap: Vec<_>| {
        support::start_counted(
            engine,
            &keys[i],
            dirs[i].path(),
            config.clone(),
            bootstrap,
            app(i),
            sent.clone(),
        )
    };
    let first = start(0, Vec::new()).await;
    let bootstrap = support::dial_addr(first.handle(), "tcp").await;
    let mut nodes = vec![first];
    for i in 1..validators {
        nodes.push(start(i, vec![bootstrap.clone()]).await);
    }
    support::wait_for_height(&mut nodes[0].progress, 3).await;

    let mined = |nodes: &[support::Validating]| nodes.iter().map(|n| n.progress.borrow().mined).sum::<u64>();
    let start = Instant::now();
    let measured_from = start + WARM_UP;
    let end = measured_from + Duration::from_secs(seconds);
    let mut submitted: Vec<(u64, usize, Instant)> = Vec::new();
    let mut sent_at_start = None;
    let mut mined_at_start = 0;
    if tx_rate > 0 {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        let per_tick = tx_rate / 100;
        let mut seq = 0u64;
        while Instant::now() < end {
            ticker.tick().await;
            if sent_at_start.is_none() && Instant::now() >= measured_from {
                sent_at_start = Some(sent.totals());
                mined_at_start = mined(&nodes);
            }
            for _ in 0..per_tick {
                let node = (seq as usize) % validators;
                let mut tx = vec![0x5a; TX_BYTES];
                tx[..8].copy_from_slice(&seq.to_be_bytes());
                submitted.push((seq, node, Instant::now()));
                let _ = nodes[node].txs.try_send(tx);
                seq += 1;
            }
        }
    } else {
        tokio::time::sleep_until(measured_from.into()).await;
        sent_at_start = Some(sent.totals());
        mined_at_start = mined(&nodes);
        tokio::time::sleep_until(end.into()).await;
    }
    let (messages_at_end, bytes_at_end) = sent.totals();
    let (messages_at_start, bytes_at_start) = sent_at_start.unwrap_or_default();
    let sealed = mined(&nodes) - mined_at_start;
    // Let the last transactions land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in nodes {
        node.stop().await;
    }

    let times: Vec<Instant> =
        blocks[0].lock().unwrap().iter().copied().filter(|t| *t >= measured_from && *t < end).collect();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let blocks_per_s = times.len() as f64 / seconds as f64;
    let mut latencies = Vec::new();
    let mut lost = 0usize;
    for (seq, node, at) in submitted.iter().filter(|(_, _, at)| *at >= measured_from) {
        match commits[*node].lock().unwrap().get(seq) {
            Some(done) => latencies.push(*done - *at),
            None => lost += 1,
        }
    }
    latencies.sort();
    let load = if tx_rate == 0 { "empty".to_string() } else { format!("{tx_rate} tx/s") };
    let per_block = |total: u64| total as f64 / times.len().max(1) as f64;
    let (p50, p99) = if tx_rate == 0 {
        ("-".to_string(), "-".to_string())
    } else {
        (ms(percentile(&latencies, 0.5)), ms(percentile(&latencies, 0.99)))
    };
    // Proof-of-Work: seals found in the window that are not final blocks of it.
    let orphans = if engine == Engine::Pow {
        format!("{:.1}%", 100.0 * sealed.saturating_sub(times.len() as u64) as f64 / sealed.max(1) as f64)
    } else {
        "-".to_string()
    };
    println!(
        "{:>10} {:>10} {:>11} {:>9.2} {:>11} {:>11} {:>11} {:>11} {:>12} {:>10.1} {:>10.1} {:>8}",
        engine.name(),
        validators,
        load,
        blocks_per_s,
        ms(percentile(&gaps, 0.5)),
        ms(percentile(&gaps, 0.99)),
        p50,
        p99,
        if tx_rate == 0 { "-".to_string() } else { lost.to_string() },
        per_block(messages_at_end - messages_at_start),
        per_block(bytes_at_end - bytes_at_start) / 1024.0,
        orphans,
    );
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    println!(
        "PBFT and Tendermint (Malachite) over libp2p on loopback, block interval 0, {seconds} s per case after a 3 s warm-up; then Proof-of-Work, 4 one-thread miners, 1 s blocks, k = 3, at least 60 s per case"
    );
    println!(
        "{:>10} {:>10} {:>11} {:>9} {:>11} {:>11} {:>11} {:>11} {:>12} {:>10} {:>10} {:>8}",
        "engine",
        "validators",
        "load",
        "blocks/s",
        "block p50",
        "block p99",
        "commit p50",
        "commit p99",
        "uncommitted",
        "msgs/block",
        "KiB/block",
        "orphans"
    );
    // `BENCH_VALIDATORS=7` runs one size only.
    let sizes: Vec<usize> = match std::env::var("BENCH_VALIDATORS").ok().and_then(|s| s.parse().ok()) {
        Some(n) => vec![n],
        None => vec![4, 7],
    };
    for validators in &sizes {
        for rate in [0, 1000] {
            for engine in [Engine::Pbft, Engine::Tendermint] {
                case(engine, *validators, rate, seconds).await;
            }
        }
    }
    // Proof-of-Work: one-second blocks need a longer window for percentiles (at least 60 s).
    if sizes.contains(&4) {
        for rate in [0, 1000] {
            case(Engine::Pow, 4, rate, seconds.max(60)).await;
        }
    }
    println!(
        "(times in ms; commit latency: submission to a validator -> that validator commits it (PoW: k-deep \
         finality); msgs and KiB per block: consensus messages all validators handed the network; orphans: \
         PoW seals found that are not final blocks)"
    );
}
